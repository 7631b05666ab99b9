"""The remote stage cache on a plain folder: two checkouts with their own caches and keys.

The project is the packed shell project (count -> joined, echo -> pack; pack's artifact.kolm is
installed), so every stage that runs leaves a line in runs.log.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kolmbuild.artifact.keys import generate_keypair, load_private_key
from kolmbuild.remote.envelope import RUN_TYPE, open_envelope, seal
from tests.remote.conftest import ARTIFACT, Machine

STAGES = ["count", "echo", "joined", "pack"]  # sorted


def _publish(a: Machine, remote: Path) -> dict[str, object]:
    doc = a.build("--remote", str(remote), "--push")
    assert sorted(doc["ran"]) == STAGES and sorted(doc["pushed"]) == STAGES
    return doc


def _record_path(remote: Path, a: Machine, stage: str) -> Path:
    keys = {p.stage: p.key for p in _plans(a)}
    return remote / "runs" / f"{keys[stage]}.json"


def _plans(m: Machine) -> list:
    from tests.engine.conftest import open_engine

    engine, targets = open_engine(m.root)
    with engine:
        return [p for t in targets for p in engine.status([t])]


def test_second_checkout_pulls_every_stage_runs_none_and_installs_the_same_bytes(machines, tmp_path):
    a, b = machines
    remote = tmp_path / "remote"
    _publish(a, remote)
    assert sorted(p.name for p in (remote / "runs").iterdir()) == sorted(f"{p.key}.json" for p in _plans(a))

    b.trust(a)
    doc = b.build("--remote", str(remote))
    assert doc["ran"] == [] and sorted(doc["pulled"]) == STAGES and doc["status"] == "built"
    assert b.runs() == []  # nothing ran on the second machine
    assert (b.root / ARTIFACT).read_bytes() == (a.root / ARTIFACT).read_bytes()
    assert b.outputs() == a.outputs()  # same keys, same output CIDs
    # only what was needed came down: the installed artifact (no stage ran, so no stage read anything)
    assert b.objects() == {a.outputs()["pack"]["artifact.kolm"]}

    again = b.build("--remote", str(remote))
    assert again["status"] == "up-to-date" and again["ran"] == [] and again["pulled"] == []


def test_status_and_dry_run_say_which_stale_stages_the_remote_can_supply(machines, tmp_path):
    a, b = machines
    remote = tmp_path / "remote"
    _publish(a, remote)
    r = b.invoke("status", "--remote", str(remote))
    assert r.exit_code == 0
    assert "ignoring" in r.output and "not a trusted key" in r.output  # b does not trust a yet
    b.trust(a)
    lines = b.invoke("status", "--remote", str(remote)).stdout.splitlines()
    assert len(lines) == 4 and all("stale" in ln and "the remote cache has it" in ln for ln in lines), lines
    plan = json.loads(b.invoke("status", "--json", "--remote", str(remote)).stdout)
    assert [p["remote"] for p in plan] == [True] * 4
    assert all("would pull" in ln for ln in b.invoke("build", "-n", "--remote", str(remote)).stdout.splitlines())
    assert b.runs() == [] and b.objects() == set()  # status and -n fetched no object

    b.invoke("build", "--remote", str(remote))
    (b.root / "data/eval.jsonl").write_text('{"input": "x", "output": "y"}\n')  # joined and pack go stale
    lines = {ln.split()[1]: ln for ln in b.invoke("status", "--remote", str(remote)).stdout.splitlines()}
    assert "up to date" in lines["count"] and "input task.eval changed" in lines["joined"]
    assert "the remote cache has it" not in lines["joined"]


def test_untrusted_signer_is_ignored_and_the_stages_run_here(machines, tmp_path):
    a, b = machines
    remote = tmp_path / "remote"
    _publish(a, remote)
    r = b.invoke("build", "--json", "--remote", str(remote))
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)[0]
    assert sorted(doc["ran"]) == STAGES and doc["pulled"] == []
    assert sorted(b.runs()) == STAGES
    warnings = [ln for ln in r.stderr.splitlines() if "warning" in ln]
    assert warnings and all("not a trusted key" in w and "runs/" in w for w in warnings)


def test_stripped_resigned_or_altered_records_are_ignored(machines, tmp_path):
    a, b = machines
    remote = tmp_path / "remote"
    _publish(a, remote)
    b.trust(a)
    a_key = load_private_key(a.config / "keys" / "kolm-signing.pem")
    priv, _ = generate_keypair(tmp_path / "mallory", name="mallory")
    mallory = load_private_key(priv)

    count = _record_path(remote, a, "count")
    envelope = json.loads(count.read_bytes())
    envelope["signatures"] = []
    count.write_text(json.dumps(envelope))  # stripped

    echo = _record_path(remote, a, "echo")
    payload, _ = open_envelope(echo.read_bytes(), RUN_TYPE, _trusting(a_key))
    echo.write_bytes(seal(payload, RUN_TYPE, mallory))  # re-signed by a key nobody trusts

    pack = _record_path(remote, a, "pack")
    doc = json.loads(open_envelope(pack.read_bytes(), RUN_TYPE, _trusting(a_key))[0])
    doc["metrics"] = {"forged": True}
    forged = json.loads(pack.read_bytes())
    import base64

    forged["payload"] = base64.b64encode(json.dumps(doc).encode()).decode()
    pack.write_text(json.dumps(forged))  # a's signature kept, payload altered

    r = b.invoke("build", "--json", "--remote", str(remote))
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)[0]
    # count and echo ran here; joined was pulled (count made the same bytes, so its key matched a's)
    assert sorted(out["ran"]) == ["count", "echo", "pack"] and out["pulled"] == ["joined"]
    assert "no signature" in r.stderr and "not a trusted key" in r.stderr and "does not match (altered)" in r.stderr
    assert "forged" not in json.dumps(b.outputs())
    assert (b.root / ARTIFACT).read_bytes() == (a.root / ARTIFACT).read_bytes()


def _trusting(key):
    from kolmbuild.remote.envelope import TrustedKeys

    return TrustedKeys({key.fingerprint: key.public_key})


def test_flipped_object_on_the_remote_is_detected_and_rebuilt(machines, tmp_path):
    a, b = machines
    remote = tmp_path / "remote"
    _publish(a, remote)
    b.trust(a)
    artifact_cid = a.outputs()["pack"]["artifact.kolm"]
    obj = remote / "objects" / artifact_cid
    data = bytearray(obj.read_bytes())
    data[0] ^= 0xFF
    obj.write_bytes(bytes(data))

    r = b.invoke("build", "--json", "--remote", str(remote))
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)[0]
    assert out["ran"] == ["pack"] and sorted(out["pulled"]) == ["count", "echo", "joined"]
    assert f"objects/{artifact_cid} is damaged" in r.stderr
    assert (b.root / ARTIFACT).read_bytes() == (a.root / ARTIFACT).read_bytes()  # rebuilt, the same bytes
    assert bytes(data) not in [p.read_bytes() for p in (b.root / "cache/objects").rglob("*") if p.is_file()]
    assert b.runs() == ["pack"]


def test_a_record_whose_object_is_gone_is_rebuilt(machines, tmp_path):
    a, b = machines
    remote = tmp_path / "remote"
    _publish(a, remote)
    b.trust(a)
    (remote / "objects" / a.outputs()["joined"]["joined.txt"]).unlink()
    out = b.build("--remote", str(remote))
    # pack was pulled (its artifact is there); nothing needed joined.txt, so nothing noticed
    assert out["ran"] == [] and (b.root / ARTIFACT).is_file()
    artifact = a.outputs()["pack"]["artifact.kolm"]
    (b.root / ARTIFACT).unlink()
    here = b.root / "cache" / "objects" / artifact[-2:] / artifact
    here.chmod(0o644)
    here.unlink()  # b's one downloaded object is gone, and so is the remote's copy
    (remote / "objects" / artifact).unlink()
    r = b.invoke("build", "--json", "--remote", str(remote))
    out = json.loads(r.stdout)[0]
    assert r.exit_code == 0 and "objects/" in r.stderr and "is missing" in r.stderr
    assert sorted(out["ran"]) == ["joined", "pack"]  # pack needs joined.txt, which only a had
    assert (b.root / ARTIFACT).read_bytes() == (a.root / ARTIFACT).read_bytes()


def test_cache_push_pull_and_status(machines, tmp_path):
    a, b = machines
    remote = tmp_path / "remote"
    assert sorted(a.build()["ran"]) == STAGES  # built without a remote
    r = a.invoke("cache", "push", "--json", "--remote", str(remote))
    assert r.exit_code == 0, r.output
    pushed = json.loads(r.stdout)
    assert sorted(pushed["pushed"]) == STAGES and pushed["objects_uploaded"] == len(a.objects()) == 4
    assert pushed["skipped"] == []
    assert json.loads(a.invoke("cache", "push", "--json", "--remote", str(remote)).stdout)["objects_uploaded"] == 0

    b.trust(a)
    status = json.loads(b.invoke("cache", "status", "--json", "--remote", str(remote)).stdout)
    assert [s["where"] for s in status["stages"]] == ["remote"] * 4
    r = b.invoke("cache", "pull", "--json", "--remote", str(remote))
    assert r.exit_code == 0, r.output
    pulled = json.loads(r.stdout)
    assert len(pulled["pulled"]) == 4 and pulled["objects_downloaded"] == 4 and pulled["missing"] == []
    assert b.objects() == a.objects()
    status = json.loads(b.invoke("cache", "status", "--json", "--remote", str(remote)).stdout)
    assert [s["where"] for s in status["stages"]] == ["local"] * 4
    # everything is here now: a build with no remote at all installs without running anything
    out = b.build()
    assert out["ran"] == [] and (b.root / ARTIFACT).read_bytes() == (a.root / ARTIFACT).read_bytes()


def test_push_with_pulled_outputs_only_on_the_remote(machines, tmp_path):
    """b pulled without downloading; pushing its runs to a second remote names objects b never had."""
    a, b = machines
    remote, other = tmp_path / "remote", tmp_path / "other"
    _publish(a, remote)
    b.trust(a)
    b.build("--remote", str(remote))
    r = b.invoke("cache", "push", "--json", "--remote", str(other))
    assert r.exit_code == 1
    report = json.loads(r.stdout)
    assert report["pushed"] == ["pack"] and {s["stage"] for s in report["skipped"]} == {"count", "joined", "echo"}
    assert all("neither here nor on the remote" in s["reason"] for s in report["skipped"])


def test_kolmfile_cache_block_and_environment(machines, tmp_path, monkeypatch):
    a, b = machines
    remote = tmp_path / "remote"
    a.set_cache(remote="../remote", push=True)  # relative to the kolmfile's folder
    assert sorted(a.build()["pushed"]) == STAGES
    assert (remote / "runs").is_dir()
    b.trust(a)
    out = b.build(env={"KOLM_REMOTE_CACHE": str(remote)})
    assert sorted(out["pulled"]) == STAGES and out["pushed"] == []

    (a.root / "data/eval.jsonl").write_text('{"input": "p", "output": "q"}\n')
    assert a.build(env={"KOLM_CACHE_PUSH": "0"})["pushed"] == []  # the environment turns push off


@pytest.mark.parametrize(("kolmfile_cache", "env", "args", "needle"), [
    ({"remotee": "x"}, {}, [], "cache.remotee: unknown key"),
    ({"remote": "../r", "trust": ["keys/nope.pub"]}, {}, [], "cache.trust:"),
    ({}, {"KOLM_CACHE_PUSH": "maybe"}, [], "KOLM_CACHE_PUSH='maybe'"),
    ({}, {}, ["--remote-required"], "--remote-required needs a remote cache"),
    ({}, {}, ["--push"], "needs a remote cache"),
    ({}, {}, ["--remote", "s4://bucket/kolm"], "unknown storage protocol 's4'"),
    ({"remote": "bogus://x/y"}, {}, [], "unknown storage protocol 'bogus'"),
])
def test_bad_remote_settings_exit_2_naming_them(machines, kolmfile_cache, env, args, needle):
    a, _ = machines
    if kolmfile_cache:
        a.set_cache(**kolmfile_cache)
    r = a.invoke("build", *args, env=env)
    assert r.exit_code == 2, r.output
    assert needle in r.output and "Traceback" not in r.output
    assert a.runs() == []


def test_push_writes_objects_first_and_the_record_last(machines, tmp_path):
    from fsspec.implementations.local import LocalFileSystem

    from kolmbuild.remote.cache import RemoteCache
    from tests.engine.conftest import open_engine

    writes: list[str] = []

    class Recording(LocalFileSystem):
        def mv(self, path1, path2, **kw):  # every write lands by a rename
            writes.append(str(path2))
            return super().mv(path1, path2, **kw)

    a, _ = machines
    remote = tmp_path / "remote"
    from kolmbuild.artifact.keys import resolve_signing_key

    cache = RemoteCache.over(Recording(), str(remote), push=True, signer=resolve_signing_key)
    engine, targets = open_engine(a.root, remote=cache)
    with engine:
        out = engine.build(targets)
    assert sorted(out[0].pushed) == STAGES
    for stage, rec in ((p.stage, p.record) for p in _plans(a)):
        record_at = writes.index(str(remote / "runs" / f"{rec.key}.json"))
        for cid in rec.outputs.values():
            assert writes.index(str(remote / "objects" / cid)) < record_at, stage
    assert not [p for p in remote.rglob(".tmp-*")]  # no temp file left


def test_two_machines_pushing_the_same_key_at_once(machines, tmp_path):
    """Both push every stage concurrently: each record is whole and verifies, every object intact."""
    from kolmbuild.hashing.files import file_cid

    a, b = machines
    remote = tmp_path / "remote"
    a.build()
    b.build()
    assert a.outputs() == b.outputs()
    procs = [m.spawn("cache", "push", "--remote", str(remote)) for m in (a, b)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    for obj in (remote / "objects").iterdir():
        assert str(file_cid(obj)) == obj.name
    from kolmbuild.remote.envelope import TrustedKeys

    keys = TrustedKeys.load([a.public_key, b.public_key])
    for rec in (remote / "runs").iterdir():
        open_envelope(rec.read_bytes(), RUN_TYPE, keys)  # signed by one of them, whole
    assert not list(remote.rglob(".tmp-*"))


def test_no_op_with_a_remote_makes_no_call(machines, tmp_path):
    from fsspec.implementations.local import LocalFileSystem

    from kolmbuild.remote.cache import RemoteCache
    from tests.engine.conftest import open_engine

    calls: list[str] = []

    class Counting(LocalFileSystem):
        def __getattribute__(self, name):
            if name in ("cat_file", "open", "exists", "pipe_file", "put_file", "mv", "ls", "makedirs", "info"):
                calls.append(name)
            return super().__getattribute__(name)

    a, _ = machines
    remote = tmp_path / "remote"
    _publish(a, remote)
    cache = RemoteCache.over(Counting(), str(remote))
    engine, targets = open_engine(a.root, remote=cache)
    with engine:
        assert engine.build(targets)[0].status == "up-to-date"
        assert [p.status for p in engine.status(targets)] == ["up-to-date"] * 4
    assert calls == [] and cache.stats.requests == 0 and not cache.connected


def test_http_remote_is_read_only(machines, tmp_path, http_folder):
    import shutil

    a, b = machines
    folder, url = http_folder
    _publish(a, tmp_path / "remote")
    shutil.copytree(tmp_path / "remote", folder, dirs_exist_ok=True)
    b.trust(a)
    out = b.build("--remote", f"{url}/")
    assert out["ran"] == [] and sorted(out["pulled"]) == STAGES
    assert (b.root / ARTIFACT).read_bytes() == (a.root / ARTIFACT).read_bytes()
    r = b.invoke("build", "--remote", url, "--push")
    assert r.exit_code == 2 and "read-only" in r.output


def test_remote_going_down_between_lookup_and_download_rebuilds_here(machines, tmp_path):
    """Records come down, then the remote dies before any object does: the build still succeeds."""
    from fsspec.implementations.local import LocalFileSystem

    from kolmbuild.remote.cache import RemoteCache
    from kolmbuild.remote.envelope import TrustedKeys
    from tests.engine.conftest import open_engine

    class DiesOnDownload(LocalFileSystem):
        def open(self, path, mode="rb", **kw):
            if "objects/" in str(path) and "r" in mode:
                raise ConnectionResetError("the link went down")
            return super().open(path, mode, **kw)

    a, b = machines
    remote = tmp_path / "remote"
    _publish(a, remote)
    warned: list[str] = []
    cache = RemoteCache.over(DiesOnDownload(), str(remote), trust=TrustedKeys.load([a.public_key]),
                             warn=warned.append)
    engine, targets = open_engine(b.root, remote=cache)
    with engine:
        [out] = engine.build(targets)
    assert out.ok, out.error
    assert sorted(out.ran) == STAGES and out.pulled == []
    assert (b.root / ARTIFACT).read_bytes() == (a.root / ARTIFACT).read_bytes()
    assert len(warned) == 1 and "unavailable" in warned[0]
