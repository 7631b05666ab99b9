"""Sweep points serially vs ``-j 4``: on a stage that waits (a rented machine) and on stages that compute.

Usage: python bench/sweep.py [--points 4] [--wait 3] [--out docs/bench/sweep.json]

Each case sweeps ``task.description`` over fresh values (nothing cached) in a small project whose
only stage that differs between points is the one measured, run through the real CLI; the time is
the summary's ``wall_s`` (the sweep itself, not Python's start-up). Three stages:

* ``wait``: ``remote: true`` on the fake vast provider (tests/compute/fakes.py, HTTP on 127.0.0.1,
  machines metered per second), the far side sleeping ``--wait`` seconds: what a GPU job looks
  like from here. The baseline is serial; -j 4 should approach ``points``x.
* ``cpu_process``: a shell rule that burns CPU in its own process (``python -c`` a hashing loop): can
  use as many cores as the machine has, no more.
* ``cpu_in_process``: a Python action that burns CPU in kolmbuild's process: points are threads, so
  the GIL serializes them (about 1x). A process or cluster executor (Ray, later) is what helps here.

Prints one JSON record (and writes it to --out): per case the serial and -j times and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _record import emit  # noqa: E402  (bench/ is sys.path[0])

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.compute.fakes import FakeVast  # noqa: E402
from tests.sweep.conftest import WaitProject, rented, write_yaml  # noqa: E402

BURN = "import hashlib,sys; h=b'x'\nfor _ in range(int(sys.argv[1])): h=hashlib.sha256(h).digest()"
ACTIONS = '''
import hashlib, os
from kolmbuild.engine.stage import StageResult


def burn(ctx):
    h = ctx.param("task.description").encode()
    for _ in range(int(os.environ["BURN_ROUNDS"])):
        h = hashlib.sha256(h).digest()  # small inputs: hashlib keeps the GIL
    ctx.output("result.txt").write_text(h.hex())
    return StageResult()
'''


def run_sweep(root: Path, values: list[str], jobs: int, *args: str, env: dict[str, str]) -> float:
    full = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), **env}
    cmd = [sys.executable, "-m", "kolmbuild", "-C", str(root), "-m", f"task.description={','.join(values)}",
           "-j", str(jobs), *args, "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=full, timeout=1800)
    if p.returncode != 0:
        raise SystemExit(f"sweep failed ({p.returncode}): {p.stderr[-2000:]}")
    summary = json.loads(p.stdout)
    assert all(r["status"] == "ok" and r["ran"] for r in summary["runs"]), summary["runs"]
    return float(summary["wall_s"])


def case(root: Path, points: int, jobs: int, *args: str, env: dict[str, str]) -> dict[str, Any]:
    serial = run_sweep(root, [f"s{i}" for i in range(points)], 1, *args, env=env)
    parallel = run_sweep(root, [f"p{i}" for i in range(points)], jobs, *args, env=env)
    return {"serial_s": round(serial, 2), f"j{jobs}_s": round(parallel, 2), "speedup": round(serial / parallel, 2)}


def cpu_project(root: Path, in_process: bool) -> Path:
    WaitProject(root)  # the same small project; its heavy stage replaced by one that computes
    if in_process:
        (root / "remote_actions.py").write_text(ACTIONS)
        rule = {"action": "remote_actions:burn", "env": ["BURN_ROUNDS"]}
    else:
        (root / "burn.py").write_text(BURN)
        rule = {"shell": f'{sys.executable} burn.py "$BURN_ROUNDS"; echo "$KOLM_TARGET" > "$KOLM_OUT/result.txt"',
                "env": ["BURN_ROUNDS"]}
    write_yaml(root / "rules/heavy.yaml", {"name": "heavy", "version": 1, "reads": ["task.description"],
                                           "outputs": ["result.txt"], **rule})
    write_yaml(root / "kolmfile.yaml", {"version": 1, "pipeline": ["heavy"], "defaults": {"backend": "local-cpu"},
                                        "targets": {"demo": {"task": "demo"}}})
    return root


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=4)
    ap.add_argument("--wait", type=float, default=3.0, help="seconds the remote stage waits")
    ap.add_argument("--rounds", type=int, default=1_500_000, help="sha256 rounds of a CPU-bound stage")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    record: dict[str, Any] = {"bench": "sweep", "points": a.points, "jobs": a.points, "machine": platform.machine(),
                              "cpus": os.cpu_count(), "python": platform.python_version(),
                              "load_avg_1m_before": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory(prefix="kolm-bench-sweep-") as tmp:
        base = Path(tmp)
        state = {"KOLM_STATE_DIR": str(base / "state"), "KOLM_CONFIG_DIR": str(base / "config")}
        wait = WaitProject(base / "wait")
        with FakeVast() as fake:
            rented(wait.root, "vast", fake.url, 40.0)
            env = {**state, "KOLM_VAST_TOKEN": fake.token, "SWEEP_SLEEP": str(a.wait)}
            record["wait"] = {"stage_s": a.wait, **case(wait.root, a.points, a.points, "backend=vast", "--budget", "20",
                                                          env=env)}
            record["wait"]["machines_rented"] = len(fake.instances)
        env = {**state, "BURN_ROUNDS": str(a.rounds)}
        for name, in_process in (("cpu_process", False), ("cpu_in_process", True)):
            root = cpu_project(base / name, in_process)
            record[name] = {"sha256_rounds": a.rounds, **case(root, a.points, a.points, env=env)}
    record["load_avg_1m_after"] = round(os.getloadavg()[0], 2)
    record["ray"] = "not measured: the Ray executor comes with the remote stage cache (issue 15, second part)"
    emit(record, a.out)


if __name__ == "__main__":
    main()
