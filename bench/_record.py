"""What every bench script shares: a median wall time, and the JSON record printed and written."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def median_time(fn: Callable[[], object], reps: int) -> float:
    """Median wall seconds of ``reps`` calls of ``fn``."""
    samples = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def emit(record: dict[str, Any], out: str | Path | None) -> None:
    """Print the record as JSON and, with ``out``, write it there (the file under docs/bench/)."""
    text = json.dumps(record, indent=2)
    print(text)
    if out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")


def machine(**extra: Any) -> dict[str, Any]:
    """Where a record was measured: Python, CPU, cores, load (a shared machine's numbers vary with it)."""
    return {
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        **extra,
        "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "cpu_count": os.cpu_count(),
    }
