"""The remote stage cache on S3: moto's server mode (a real S3 HTTP API) on a loopback port, spoken to
with s3fs. Credentials and the endpoint come from the AWS environment, as on a CI runner."""

from __future__ import annotations

import json
import time

import boto3

from tests.remote.conftest import ARTIFACT, CountingProxy, free_port

STAGES = ["count", "echo", "joined", "pack"]
URL = "s3://team/kolm"


def _bucket(s3) -> dict[str, int]:
    client = boto3.client("s3", endpoint_url=s3.url, region_name="us-east-1")
    out = client.list_objects_v2(Bucket="team", Prefix="kolm/")
    return {o["Key"]: o["Size"] for o in out.get("Contents", [])}


def test_second_checkout_pulls_everything_from_s3_and_pulls_only_what_it_needs(machines, s3):
    a, b = machines
    first = a.build("--remote", URL, "--push")
    assert sorted(first["ran"]) == STAGES and sorted(first["pushed"]) == STAGES
    layout = _bucket(s3)
    outputs = a.outputs()
    assert {f"kolm/objects/{c}" for outs in outputs.values() for c in outs.values()} \
        == {k for k in layout if k.startswith("kolm/objects/")}
    assert len([k for k in layout if k.startswith("kolm/runs/") and k.endswith(".json")]) == 4

    b.trust(a)
    second = b.build("--remote", URL)
    assert second["ran"] == [] and sorted(second["pulled"]) == STAGES and b.runs() == []
    assert (b.root / ARTIFACT).read_bytes() == (a.root / ARTIFACT).read_bytes()
    assert b.objects() == {outputs["pack"]["artifact.kolm"]}  # the one object it needed
    assert b.build("--remote", URL)["status"] == "up-to-date"


def test_an_unreachable_remote_costs_seconds_and_the_build_goes_on_locally(machines, monkeypatch):
    a, _ = machines
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = {"AWS_ENDPOINT_URL_S3": closed, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y",
           "AWS_DEFAULT_REGION": "us-east-1"}
    started = time.monotonic()
    r = a.invoke("build", "--json", "--remote", URL, "--push", env=env)
    elapsed = time.monotonic() - started
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)[0]
    assert sorted(doc["ran"]) == STAGES and doc["pulled"] == [] and doc["pushed"] == []
    warnings = [ln for ln in r.stderr.splitlines() if "warning" in ln]
    assert len(warnings) == 1 and "is unavailable" in warnings[0] and "building locally" in warnings[0], r.stderr
    assert elapsed < 20  # the shell stages and the engine: the remote itself costs about a second here

    (a.root / ARTIFACT).unlink()
    (a.root / "data/eval.jsonl").write_text('{"input": "z", "output": "w"}\n')
    r = a.invoke("build", "--json", "--remote", URL, "--remote-required", env=env)
    assert r.exit_code == 2, r.output
    assert "is unavailable" in r.output and "Traceback" not in r.output
    assert len(a.runs()) == 4  # nothing ran: the remote is asked before any stage


def test_no_op_with_an_s3_remote_makes_no_request(machines, s3):
    """Counted on the wire: the machine reaches moto only through a counting proxy."""
    a, _ = machines
    proxy = CountingProxy(s3.port)
    try:
        env = {"AWS_ENDPOINT_URL_S3": proxy.url}
        a.build("--remote", URL, "--push", env=env)
        assert proxy.connections > 0
        before = proxy.connections
        for _ in range(2):  # the full engine, in-process
            assert a.build("--remote", URL, "--push", env=env)["status"] == "up-to-date"
        assert a.invoke("status", "--remote", URL, env=env).exit_code == 0
        p = a.spawn("--remote", URL, "--push", env=env)  # the console entry point's no-op fast path
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0 and "nothing to do" in err
        assert proxy.connections == before
    finally:
        proxy.close()


def test_storage_options_secrets_never_leave(machines, s3, tmp_path):
    a, b = machines
    secret = "s3cr3t-value-never-printed"
    a.set_cache(remote=URL, push=True, storage_options={"key": "testing", "secret": secret})
    r = a.invoke("build", "--json")
    assert r.exit_code == 0 and secret not in r.output
    blobs = [p.read_bytes() for p in a.root.rglob("*") if p.is_file() and "kolmfile" not in p.name]
    assert not any(secret.encode() in blob for blob in blobs)  # not in the cache, the artifact, the state db
    client = boto3.client("s3", endpoint_url=s3.url, region_name="us-east-1")
    for key in _bucket(s3):
        assert secret.encode() not in client.get_object(Bucket="team", Key=key)["Body"].read()
    # a URL with a password is shown without it
    r = b.invoke("build", "--remote", f"sftp://bob:{secret}@127.0.0.1:{free_port()}/srv/kolm")
    assert r.exit_code == 0 and "sftp://bob@127.0.0.1" in r.output and secret not in r.output


def test_a_closed_port_costs_at_most_a_few_seconds(tmp_path, monkeypatch):
    """The remote's own cost, alone: seven concurrent lookups against a port nobody listens on."""
    from kolmbuild.remote.cache import RemoteCache

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    warned: list[str] = []
    cache = RemoteCache.from_url(URL, base=tmp_path, warn=warned.append)
    keys = [f"bagaaiera{'a' * 50}{i}" for i in range(7)]
    started = time.monotonic()
    assert cache.get_runs(keys) == {}
    first = time.monotonic() - started
    assert cache.get_runs(keys) == {} and cache.has_objects(keys) == set()  # down: answered at once
    assert first < 8, first  # about 3 s here: two attempts (S3 throttling needs a retry), the client set-up
    assert time.monotonic() - started - first < 0.1
    assert cache.down is not None and len(warned) == 1
    cache.close()
