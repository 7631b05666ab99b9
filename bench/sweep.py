"""Sweep points serially vs ``-j 4`` vs Ray with 2 workers: on a stage that waits (a rented machine) and on
stages that compute.

Usage: python bench/sweep.py [--points 4] [--wait 3] [--no-ray] [--out docs/bench/sweep.json]

Each case sweeps ``task.description`` over fresh values (nothing cached) in a small project whose
only stage that differs between points is the one measured, run through the real CLI; the time is
the summary's ``wall_s`` (the sweep itself, not Python's start-up). Three stages:

* ``wait``: ``remote: true`` on the fake vast provider (tests/compute/fakes.py, HTTP on 127.0.0.1,
  machines metered per second), the far side sleeping ``--wait`` seconds: what a GPU job looks
  like from here. The baseline is serial; -j 4 should approach ``points``x.
* ``cpu_process``: a shell rule that burns CPU in its own process (``python -c`` a hashing loop): can
  use as many cores as the machine has, no more.
* ``cpu_in_process``: a Python action that burns CPU in kolmbuild's process: points are threads, so
  the GIL serializes them (about 1x). A process or cluster executor (Ray) is what helps here.

Ray: a head started here with ``ray start --head --num-cpus 2`` (two workers, one point each at a
time), each point a Ray task (``--executor ray``) building with its own cache and pushing to a
remote cache (a folder), then taken from there into the sweep folder. Like the tests, the whole
bench then runs inside user, network and PID namespaces of its own (it re-executes itself under
``unshare -rnpf``; loopback is the only interface, so Ray, the fake provider and the sweeps talk
over 127.0.0.1 only, and every Ray process ends with the bench). The Ray time includes what the
executor costs: connecting, shipping the project, starting worker processes, pushing and pulling.

Prints one JSON record (and writes it to --out): per case the serial, -j and Ray times, the ratios
to serial, and ``ray_overhead_s``: the Ray time minus half the serial time (a perfect two-way split).
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

from kolmbuild.artifact.keys import generate_keypair  # noqa: E402
from tests.compute.fakes import FakeVast  # noqa: E402
from tests.sweep.conftest import WaitProject, rented, write_yaml  # noqa: E402
from tests.sweep.raycluster import RAY, head_command, in_namespaces, missing_tools  # noqa: E402

IN_NAMESPACES = "KOLM_BENCH_IN_NAMESPACES"  # set when this process is the first of its own namespaces

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


def case(root: Path, points: int, jobs: int, *args: str, env: dict[str, str], ray: list[str]) -> dict[str, Any]:
    """``ray``: the arguments of a Ray sweep (empty: not measured)."""
    serial = run_sweep(root, [f"s{i}" for i in range(points)], 1, *args, env=env)
    parallel = run_sweep(root, [f"p{i}" for i in range(points)], jobs, *args, env=env)
    out: dict[str, Any] = {"serial_s": round(serial, 2), f"j{jobs}_s": round(parallel, 2),
                           "speedup": round(serial / parallel, 2)}
    if ray:
        on_ray = run_sweep(root, [f"r{i}" for i in range(points)], 1, *args, *ray, env=env)
        # what Ray added over a perfect split of the serial work across its two workers
        out.update(ray2_s=round(on_ray, 2), ray_speedup=round(serial / on_ray, 2),
                   ray_overhead_s=round(on_ray - serial / 2, 2))
    return out


def start_ray(base: Path, env: dict[str, str]) -> list[str]:
    """A two-CPU Ray head in this process's namespaces; the sweep arguments that use it."""
    config = Path(env["KOLM_CONFIG_DIR"])
    generate_keypair(config / "keys")  # the workers and this machine sign with it (a workstation's setup)
    full = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), **env,
            "RAY_USAGE_STATS_ENABLED": "0"}
    subprocess.run(head_command(2, base / "ray", block=False), env=full, check=True, capture_output=True,
                   timeout=600)
    return ["--executor", "ray", "--ray-address", "127.0.0.1:6379", "--remote", str(base / "remote")]


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
    ap.add_argument("--no-ray", action="store_true", help="measure serial and -j only")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    if not a.no_ray and os.environ.get(IN_NAMESPACES) != "1":
        gone = missing_tools()
        if gone:
            raise SystemExit(f"the Ray part needs {', '.join(gone)} (or pass --no-ray)")
        os.environ[IN_NAMESPACES] = "1"  # this process becomes the first of namespaces of its own
        cmd = in_namespaces([sys.executable, *sys.argv])
        os.execvp(cmd[0], cmd)
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
            # the Ray workers get the provider's token from their own environment (the head's), never from us
            ray = [] if a.no_ray else start_ray(base, env)
            try:
                record["wait"] = {"stage_s": a.wait, **case(wait.root, a.points, a.points, "backend=vast", "--budget",
                                                              "20", env=env, ray=ray)}
                record["wait"]["machines_rented"] = len(fake.instances)
                env = {**state, "BURN_ROUNDS": str(a.rounds)}
                for name, in_process in (("cpu_process", False), ("cpu_in_process", True)):
                    root = cpu_project(base / name, in_process)
                    record[name] = {"sha256_rounds": a.rounds, **case(root, a.points, a.points, env=env, ray=ray)}
            finally:
                if ray:  # only this namespace's Ray: `ray stop` sees no other process
                    subprocess.run([str(RAY), "stop", "--force"], capture_output=True, timeout=120)
    record["load_avg_1m_after"] = round(os.getloadavg()[0], 2)
    if ray:
        record["ray"] = ("head: ray start --head --num-cpus 2 (two workers) in namespaces of the bench's own; "
                         "each point a Ray task pushing to a folder remote cache, then pulled into the sweep folder")
    emit(record, a.out)


if __name__ == "__main__":
    main()
