"""Sweeps (``kolmbuild -m``): one build per point of a Hydra sweep, each artifact kept, measured
time and cost per point in ``summary.json``, points run serially or up to ``-j N`` at once."""

from kolmbuild.sweep.executor import PointExecutor, SerialExecutor, ThreadExecutor, executor_for
from kolmbuild.sweep.points import SweepPoint, sweep_points
from kolmbuild.sweep.run import SUMMARY_KIND, SUMMARY_VERSION, SweepResult, run_sweep

__all__ = ["SUMMARY_KIND", "SUMMARY_VERSION", "PointExecutor", "SerialExecutor", "SweepPoint", "SweepResult",
           "ThreadExecutor", "executor_for", "run_sweep", "sweep_points"]
