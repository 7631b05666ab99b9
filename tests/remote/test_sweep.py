"""A sweep with ``-j 2`` meets the remote cache: points build on threads of one engine, sharing it.

Two points (gates=default, gates=strict) of the packed shell project share count, joined and pack
(pack reads only the bytes of joined and echo, which do not depend on the gates) and differ in echo:
five stage keys in all. Pushing, each key runs once and is pushed once; pulling, each record and
each object the points need comes down once, and nothing runs.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path

from fsspec.implementations.local import LocalFileSystem

from kolmbuild.engine.results import BuildOptions
from kolmbuild.remote.cache import RemoteCache
from kolmbuild.remote.envelope import TrustedKeys
from kolmbuild.sweep import run_sweep
from tests.engine.conftest import open_engine
from tests.remote.conftest import ARTIFACT, Machine

POINTS = ["gates=default,strict"]
STAGES = ["count", "echo", "joined", "pack"]
LATENCY = 0.2


class CountingFS(LocalFileSystem):
    """A local folder that counts each read of a record or an object, by path (fsspec's cat_file
    reads through open, so open sees every read)."""

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)
        self.reads: Counter[str] = Counter()
        self._count_lock = threading.Lock()

    def _seen(self, path: object) -> None:
        rel = str(path).rsplit("/", 2)
        with self._count_lock:
            self.reads[f"{rel[-2]}/{rel[-1]}"] += 1

    def open(self, path, mode="rb", **kw):  # type: ignore[no-untyped-def]
        if "r" in mode:
            self._seen(path)
            time.sleep(LATENCY)  # a network's round trip: the two points' lookups overlap
        return super().open(path, mode, **kw)


def _artifacts(root: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted((root / "sweeps").rglob("*.kolm"))]


def test_two_points_with_j2_push_each_stage_once_and_pull_each_record_and_object_once(machines, tmp_path):
    a, b = machines
    remote = tmp_path / "remote"

    # a: the sweep runs each of the five keys once (the points wait for each other's shared stages)
    r = a.invoke("build", "-m", *POINTS, "-j", "2", "--remote", str(remote), "--push", "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["executor"] == {"kind": "threads", "workers": 2}
    runs = summary["runs"]
    assert [x["status"] for x in runs] == ["ok", "ok"]
    assert sorted(a.runs()) == ["count", "echo", "echo", "joined", "pack"]
    assert sorted(s for x in runs for s in x["ran"]) == ["count", "echo", "echo", "joined", "pack"]
    assert sorted(s for x in runs for s in x["pushed"]) == ["count", "echo", "echo", "joined", "pack"]
    assert len(list((remote / "runs").glob("*.json"))) == 5
    built = _artifacts(a.root)
    assert len(built) == 2 and built[0] == built[1]

    # b: the same sweep from the remote, in-process so the remote's reads can be counted
    fs = CountingFS()
    cache = RemoteCache.over(fs, str(remote), trust=TrustedKeys.load([a.public_key]))
    engine, _ = open_engine(b.root, remote=cache)
    with engine:
        result = run_sweep(engine, [], POINTS, BuildOptions(jobs=2))
    assert result.exit_code == 0, [str(o.error) for o in result.outcomes]
    assert b.runs() == []  # nothing ran here
    assert [o.ran for o in result.outcomes] == [[], []]
    # each key is pulled once in the sweep: a stage the other point pulled first is up to date here
    assert sorted(s for o in result.outcomes for s in o.pulled) == ["count", "echo", "echo", "joined", "pack"]
    assert [o.status for o in result.outcomes] == ["built", "built"]
    assert _artifacts(b.root) == built
    records = {k: n for k, n in fs.reads.items() if k.startswith("runs/")}
    objects = {k: n for k, n in fs.reads.items() if k.startswith("objects/")}
    assert len(records) == 5 and set(records.values()) == {1}, records  # each key asked once
    artifact = a.outputs()["pack"]["artifact.kolm"]
    assert objects == {f"objects/{artifact}": 1}  # the one artifact both points install, downloaded once
    assert b.objects() == {artifact}
    assert not (b.root / ARTIFACT).exists()  # a sweep installs into its own folders only


def test_a_stage_both_points_need_runs_once_when_the_remote_lacks_it(machines: tuple[Machine, Machine], tmp_path):
    """A pull-only sweep against an empty remote: nothing to pull, the shared stages run once, nothing is pushed."""
    a, _ = machines
    remote = tmp_path / "remote"
    r = a.invoke("build", "-m", *POINTS, "-j", "2", "--remote", str(remote), "--json")
    assert r.exit_code == 0, r.output
    runs = json.loads(r.stdout)["runs"]
    assert [x["pulled"] for x in runs] == [[], []] and [x["pushed"] for x in runs] == [[], []]
    assert sorted(a.runs()) == ["count", "echo", "echo", "joined", "pack"]
    assert not (remote / "runs").exists()  # pull-only: nothing was written
