"""Configuration: the kolmfile, Hydra composition of config groups, and validated models."""
