"""kill -9 at every commit point, and at 50 random moments: the cache is never poisoned, the
installed artifact is whole or absent, and the rebuild gives the bytes of a clean build.

The builds run in children forked from a warm process (tests/engine/forkrun.py): real processes
running the real CLI, killed with SIGKILL, without a second of interpreter start-up each.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kolmbuild.hashing.files import file_cid
from tests.conftest import REPO
from tests.engine.conftest import ARTIFACT, stage_outputs

STAGES = 4  # count, echo, joined, pack: one output each
HITS = {"after-put": STAGES, "after-record": STAGES, "after-last": STAGES, "before-install": 1, "after-install": 1}


class ForkRunner:
    def __init__(self, log: Path) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
        self.log = log
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("forkrun.py"))], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        assert json.loads(self.proc.stdout.readline()) == {"ready": True}

    def run(self, cwd: Path, *args: str, kill_after: float | None = None, fault: str | None = None) -> dict[str, Any]:
        req = {"cwd": str(cwd), "args": list(args), "log": str(self.log), "kill_after": kill_after,
               "env": {"KOLM_FAULT": fault} if fault else {}, "unset": [] if fault else ["KOLM_FAULT"]}
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture
def forkrun(tmp_path: Path) -> Iterator[ForkRunner]:
    runner = ForkRunner(tmp_path / "builds.log")
    try:
        yield runner
    finally:
        runner.close()


def _wipe(root: Path) -> None:
    shutil.rmtree(root / "cache", ignore_errors=True)
    shutil.rmtree(root / "artifacts", ignore_errors=True)
    (root / "runs.log").unlink(missing_ok=True)


def _records(root: Path) -> dict[str, dict[str, str]]:
    db_path = root / "cache/state.db"
    if not db_path.exists():
        return {}
    db = sqlite3.connect(db_path)
    try:
        if db.execute("SELECT name FROM sqlite_master WHERE name='runs'").fetchone() is None:
            return {}  # killed between creating the file and its tables: the next build makes them
        return {stage: json.loads(outputs) for stage, outputs in db.execute("SELECT stage, outputs FROM runs")}
    finally:
        db.close()


def _assert_consistent(root: Path, ref: bytes, log: Path) -> None:
    """What a kill may leave: complete records of intact objects, a whole artifact or none."""
    objects = root / "cache/objects"
    for p in objects.rglob("*") if objects.is_dir() else ():
        if p.is_file() and not p.name.startswith("."):
            assert str(file_cid(p)) == p.name, f"poisoned object {p}"
    for stage, outputs in _records(root).items():
        for name, cid in outputs.items():
            assert (objects / cid[-2:] / cid).is_file(), f"the {stage} record names {name} ({cid}), not in the store"
    art = root / ARTIFACT
    if art.exists():
        assert art.read_bytes() == ref, "a partial artifact was installed"
    assert "Traceback" not in log.read_text()


def _rebuild_and_compare(runner: ForkRunner, root: Path, ref: bytes, ref_outputs: dict) -> None:
    r = runner.run(root)
    assert r["code"] == 0, runner.log.read_text()[-3000:]
    assert (root / ARTIFACT).read_bytes() == ref
    assert _records(root) == ref_outputs
    assert not [p for p in (root / "artifacts").iterdir() if p.name != Path(ARTIFACT).name]  # no temp left


def _reference(runner: ForkRunner, root: Path) -> tuple[bytes, dict, float]:
    r = runner.run(root)
    assert r["code"] == 0, runner.log.read_text()[-3000:]
    assert _records(root) == stage_outputs(root)  # what the engine plans is what state.db holds
    return (root / ARTIFACT).read_bytes(), _records(root), r["seconds"]


def test_kill_at_each_commit_point_then_rebuild(packed, forkrun: ForkRunner) -> None:
    root = packed.root
    ref, ref_outputs, _ = _reference(forkrun, root)
    for point, hits in HITS.items():
        for n in range(1, hits + 1):
            _wipe(root)
            r = forkrun.run(root, fault=f"{point}:{n}")
            assert r["code"] == -9, (point, n, forkrun.log.read_text()[-2000:])  # it died at that point
            _assert_consistent(root, ref, forkrun.log)
            recorded = len(_records(root))
            expect = {"after-put": n - 1, "after-record": n, "after-last": n}.get(point, STAGES)
            assert recorded == expect, (point, n, recorded)
            installed = (root / ARTIFACT).exists()
            assert installed == (point == "after-install"), (point, installed)
            if point == "before-install":  # the whole temp copy is there, never under the real name
                [tmp] = list((root / "artifacts").glob(".demo-0.1.0.kolm.*.tmp"))
                assert tmp.read_bytes() == ref
            packed.reset_runs()
            _rebuild_and_compare(forkrun, root, ref, ref_outputs)
            assert len(packed.runs()) == STAGES - recorded, (point, n, packed.runs())  # recorded work is kept


def test_fifty_random_kills_each_rebuild_matches_a_clean_build(packed, forkrun: ForkRunner) -> None:
    root = packed.root
    ref, ref_outputs, seconds = _reference(forkrun, root)
    rng = random.Random(20260509)
    kills = attempts = 0
    while kills < 50:
        attempts += 1
        assert attempts <= 200, f"only {kills} of {attempts} kills landed before the build finished"
        _wipe(root)
        r = forkrun.run(root, kill_after=rng.uniform(0.0, seconds * 1.1))
        if not r["killed"]:
            assert r["code"] == 0
            continue
        kills += 1
        _assert_consistent(root, ref, forkrun.log)
        if rng.random() < 0.3:  # kill the rebuild too: a kill on a half-filled cache
            again = forkrun.run(root, kill_after=rng.uniform(0.0, seconds))
            kills += again["killed"]
            _assert_consistent(root, ref, forkrun.log)
        _rebuild_and_compare(forkrun, root, ref, ref_outputs)
    print(f"{kills} kills in {attempts} attempts; a clean build took {seconds:.2f} s")
