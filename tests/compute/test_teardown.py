"""The four crash cases end with zero live instances on the fake: trainer crash, network drop, SIGINT, SIGTERM.

Signals are sent to a real ``kolmbuild compute rent`` subprocess once the ledger says its instance runs.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from tests.compute.conftest import point_at
from tests.compute.fakes import FakeLambda, FakeRunPod, FakeVast

SLEEP = ["--command", "python3", "--command", "-c", "--command", "import time; print('training', flush=True); "
         "time.sleep(60)"]


def _ledger(state: Path) -> dict:
    p = state / "rentals.json"
    return json.loads(p.read_text())["rentals"] if p.exists() else {}


def _wait_running(state: Path, proc, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = list(_ledger(state).values())
        if rows and rows[0]["state"] == "running":
            time.sleep(0.5)  # the trainer has started
            return rows[0]
        if proc.poll() is not None:
            raise AssertionError(f"rent exited early: {proc.communicate()}")
        time.sleep(0.05)
    raise AssertionError("the rental never reached 'running'")


@pytest.fixture(params=[("vast", FakeVast, "KOLM_VAST_TOKEN"), ("lambda", FakeLambda, "KOLM_LAMBDA_TOKEN"),
                        ("runpod", FakeRunPod, "KOLM_RUNPOD_TOKEN")], ids=["vast", "lambda", "runpod"])
def provider(request, project, monkeypatch):
    name, cls, var = request.param
    with cls() as fake:
        point_at(project, name, fake.url)
        monkeypatch.setenv(var, fake.token)
        yield name, fake


def test_trainer_crash_releases(project, provider, _state_dir):
    name, fake = provider
    r = project.invoke("compute", "rent", "--backend", name, "--confirm",
                       "--command", "python3", "--command", "-c", "--command", "raise SystemExit(3)")
    assert r.exit_code == 1 and "exited with status 3" in r.output and "released" in r.output
    assert len(fake.instances) == 1 and fake.live() == 0
    [row] = _ledger(_state_dir).values()
    assert row["state"] == "released"


def test_network_drop_mid_run_releases_once_the_network_returns(project, provider, _state_dir):
    name, fake = provider
    proc = project.spawn("compute", "rent", "--backend", name, "--confirm", *SLEEP)
    try:
        _wait_running(_state_dir, proc)
        fake.partition(True)  # the provider API stops answering mid-run
        time.sleep(1.5)  # the monitor gives up, aborts the trainer, and starts releasing (which fails)
        assert fake.live() == 1
        fake.partition(False)  # back: the retried terminate goes through
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    assert "lost contact" in err
    assert fake.live() == 0
    [row] = _ledger(_state_dir).values()
    assert row["state"] == "released"


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_signal_releases(project, provider, _state_dir, sig, code):
    name, fake = provider
    proc = project.spawn("compute", "rent", "--backend", name, "--confirm", *SLEEP)
    try:
        _wait_running(_state_dir, proc)
        assert fake.live() == 1
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    assert "released" in err and "Traceback" not in err
    assert fake.live() == 0
    [row] = _ledger(_state_dir).values()
    assert row["state"] == "released" and row["instance_id"]


def test_terminate_is_retried_and_not_found_is_success(project, monkeypatch, _state_dir):
    """RunPod answers 'pod not found' for an already-gone pod: that is a release, not an error."""
    from kolmbuild.compute.adapters import adapter_for
    from kolmbuild.compute.adapters.base import RunHandle
    from kolmbuild.compute.ledger import Ledger, Rental
    from kolmbuild.compute.registry import builtin_conf_dirs, load_registry

    with FakeRunPod() as fake:
        point_at(project, "runpod", fake.url)
        monkeypatch.setenv("KOLM_RUNPOD_TOKEN", fake.token)
        adapter = adapter_for(load_registry(builtin_conf_dirs(project.root)).get("runpod"))
        Ledger().put(Rental(run_id="kolm-x", backend="runpod", state="running", instance_id="pod404"))
        adapter.teardown(RunHandle("kolm-x", "runpod", "pod404"))
        assert Ledger().get("kolm-x").state == "released"


def test_release_failure_is_recorded_never_marked_released(project, monkeypatch, _state_dir):
    from kolmbuild.compute.adapters import adapter_for
    from kolmbuild.compute.adapters.base import RunHandle
    from kolmbuild.compute.ledger import Ledger, Rental
    from kolmbuild.compute.registry import builtin_conf_dirs, load_registry
    from kolmbuild.errors import ComputeError

    with FakeVast() as fake:
        point_at(project, "vast", fake.url, terminate_backoff_seconds=[0.05, 0.05])
        monkeypatch.setenv("KOLM_VAST_TOKEN", fake.token)
        fake.instances["9"] = {"id": 9, "label": "kolm-y", "actual_status": "running"}
        fake.partition(True)
        adapter = adapter_for(load_registry(builtin_conf_dirs(project.root)).get("vast"))
        Ledger().put(Rental(run_id="kolm-y", backend="vast", state="running", instance_id="9"))
        with pytest.raises(ComputeError, match="could not confirm"):
            adapter.teardown(RunHandle("kolm-y", "vast", "9"))
        assert Ledger().get("kolm-y").state == "release-failed"
        assert fake.live() == 1


def test_signal_during_release_is_deferred(project, monkeypatch, _state_dir):
    """A second Ctrl+C while releasing does not stop the release."""
    import os

    from kolmbuild.compute.adapters import adapter_for
    from kolmbuild.compute.adapters.base import RunHandle
    from kolmbuild.compute.ledger import Ledger, Rental
    from kolmbuild.compute.registry import builtin_conf_dirs, load_registry

    with FakeVast() as fake:
        point_at(project, "vast", fake.url)
        monkeypatch.setenv("KOLM_VAST_TOKEN", fake.token)
        fake.instances["9"] = {"id": 9, "label": "kolm-z", "actual_status": "running"}
        adapter = adapter_for(load_registry(builtin_conf_dirs(project.root)).get("vast"))
        real_terminate = adapter.terminate_instance

        def terminate_after_ctrl_c(iid: str) -> None:
            os.kill(os.getpid(), signal.SIGINT)  # arrives mid-release
            time.sleep(0.05)
            real_terminate(iid)

        monkeypatch.setattr(adapter, "terminate_instance", terminate_after_ctrl_c)
        Ledger().put(Rental(run_id="kolm-z", backend="vast", state="running", instance_id="9"))
        from kolmbuild.compute.signals import Interrupted

        with pytest.raises(Interrupted):  # raised only after the release finished
            adapter.teardown(RunHandle("kolm-z", "vast", "9"))
        assert fake.live() == 0 and Ledger().get("kolm-z").state == "released"
