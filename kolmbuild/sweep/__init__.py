"""Sweeps (``kolmbuild -m``): one build per point of a Hydra sweep, each artifact kept, measured
time and cost per point in ``summary.json``, points run serially, up to ``-j N`` at once, or as
tasks on a Ray cluster (``--executor ray``, :mod:`kolmbuild.sweep.ray_executor`; loaded only then)."""

from kolmbuild.sweep.base import PointExecutor, PointRunner, SweepJob, Where
from kolmbuild.sweep.executor import SerialExecutor, ThreadExecutor, executor_for, executor_spec
from kolmbuild.sweep.points import SweepPoint, sweep_points
from kolmbuild.sweep.run import SUMMARY_KIND, SUMMARY_VERSION, SweepResult, run_sweep

__all__ = ["SUMMARY_KIND", "SUMMARY_VERSION", "PointExecutor", "PointRunner", "SerialExecutor", "SweepJob",
           "SweepPoint", "SweepResult", "ThreadExecutor", "Where", "executor_for", "executor_spec", "run_sweep",
           "sweep_points"]
