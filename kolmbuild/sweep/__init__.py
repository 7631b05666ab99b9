"""Sweeps (``kolmbuild -m``): one build per point of a Hydra sweep, and their ``summary.json``."""

from kolmbuild.sweep.run import SUMMARY_KIND, SweepResult, run_sweep

__all__ = ["SUMMARY_KIND", "SweepResult", "run_sweep"]
