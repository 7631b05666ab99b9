"""LoRA training: peft on CPU/MPS, an axolotl config for CUDA, and GGUF LoRA export.

Heavy imports (torch, transformers, peft, gguf) happen inside the functions that need them, so
importing this package stays cheap.
"""
