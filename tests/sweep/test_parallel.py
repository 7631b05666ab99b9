"""``-j N`` in a sweep: points that wait on remote machines wait together, and each is billed.

The remote stage sleeps 5 s on a rented machine (the fake vast provider, which meters every instance
per second from create to gone). Four points with ``-j 4`` must take less than twice one point's
time; serially they take four times. Each point rents its own machine, every machine is released,
and each point's measured cost is what the provider's meter says.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.compute.fakes import FakeVast
from tests.conftest import REPO
from tests.sweep.conftest import WaitProject, kolmbuild, rented, summary_of

PRICE = 36.0  # USD per hour the fake charges: a cent a second, so costs show with four decimals
SLEEP = 5.0


@pytest.mark.timeout(600)
def test_four_points_waiting_on_remote_machines_take_about_one_points_time(wait_project: WaitProject,
                                                                           _state_dir: Path) -> None:
    root = wait_project.root
    with FakeVast() as fake:
        fake.price_per_hour = PRICE
        rented(root, "vast", fake.url, 40.0)
        env = {"KOLM_VAST_TOKEN": fake.token, "SWEEP_SLEEP": str(SLEEP)}
        one = summary_of(kolmbuild(root, "-m", "task.description=solo", "backend=vast", "--budget", "20", "--json",
                                   env=env))
        billed_one = fake.billed_usd()
        four = summary_of(kolmbuild(root, "-m", "task.description=a,b,c,d", "backend=vast", "--budget", "20",
                                    "-j", "4", "--json", env=env))
        billed_four = fake.billed_usd() - billed_one
        assert len(fake.instances) == 5 and fake.live() == 0  # one machine per point, all released

    assert one["executor"] == {"kind": "serial", "workers": 1}
    assert four["executor"] == {"kind": "threads", "workers": 4} and four["complete"] is True
    runs = four["runs"]
    assert [(r["point"], r["status"], r["ran"]) for r in runs] == [(i, "ok", ["heavy"]) for i in range(1, 5)]
    assert [r["overrides"][0] for r in runs] == [f"task.description={x}" for x in "abcd"]
    # the time: each point waits SLEEP s on its machine; together they wait once
    assert all(r["backend_seconds"] >= SLEEP for r in runs)
    print(f"one point {one['wall_s']:.2f} s, four points -j 4 {four['wall_s']:.2f} s")
    assert four["wall_s"] < 2 * one["wall_s"], (four["wall_s"], one["wall_s"])

    # the money: each point's compute cost is its rental's metered time at the provider's rate
    assert all(r["ran_on_backend"] == ["heavy"] and r["cost_basis"] == "ledger" for r in runs)
    assert all(r["compute_cost_usd"] >= SLEEP * PRICE / 3600 for r in runs)
    ours = sum(r["compute_cost_usd"] for r in runs)
    assert ours == pytest.approx(billed_four, rel=0.05, abs=4 * 0.5 * PRICE / 3600), (ours, billed_four)
    assert four["spent_usd"] == pytest.approx(ours, abs=1e-5)  # all of it was spent by this sweep
    assert one["runs"][0]["compute_cost_usd"] == pytest.approx(billed_one, rel=0.05, abs=0.5 * PRICE / 3600)
    ledger = json.loads((_state_dir / "rentals.json").read_text())["rentals"]
    assert sorted(r["state"] for r in ledger.values()) == ["released"] * 5
    assert all(r["actual_usd"] > 0 and r["billed_from"] <= r["released_at"] for r in ledger.values())


def test_a_point_that_cannot_be_composed_fails_alone(wait_project: WaitProject) -> None:
    r = kolmbuild(wait_project.root, "-m", "task.description=a,b", "gates=default,nosuch", "-j", "2", "--json")
    assert r.returncode == 2, r.stderr  # the bad option is the user's input
    runs = json.loads(r.stdout)["runs"]
    assert [(x["gates"] or x["overrides"][1], x["status"]) for x in runs] == [
        ("default", "ok"), ("gates=nosuch", "failed"), ("default", "ok"), ("gates=nosuch", "failed")]
    assert "nosuch" in runs[1]["message"] and runs[1]["artifact"] is None


def _spawn(root: Path, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    full = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), **env}
    return subprocess.Popen([sys.executable, "-m", "kolmbuild", "-C", str(root), *args], env=full, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.timeout(300)
def test_ctrl_c_stops_the_points_running_on_threads_and_releases_their_machines(
        wait_project: WaitProject, tmp_path: Path, _state_dir: Path) -> None:
    """Signals reach the main thread only; the points' rentals run on other threads. SIGINT must still
    stop them (their watchers see the sweep's Stop), release both machines, start no further point,
    and leave a summary that says the sweep did not finish."""
    marks = tmp_path / "marks"
    marks.mkdir()
    with FakeVast() as fake:
        rented(wait_project.root, "vast", fake.url, 40.0)
        env = {"KOLM_VAST_TOKEN": fake.token, "SWEEP_SLEEP": "300", "SWEEP_MARK": str(marks)}
        proc = _spawn(wait_project.root, "-m", "task.description=a,b,c", "backend=vast", "--budget", "20", "-j", "2",
                      env=env)
        deadline = time.monotonic() + 120
        while len(list(marks.iterdir())) < 2:  # both far sides are running (sleeping)
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
        assert fake.live() == 2
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert fake.live() == 0 and len(fake.instances) == 2  # the third point never started
    assert "the sweep was stopped" in err and "Traceback" not in err
    assert not any(_alive(int(m.read_text())) for m in marks.iterdir())  # the far sides were killed
    ledger = json.loads((_state_dir / "rentals.json").read_text())["rentals"]
    assert sorted(r["state"] for r in ledger.values()) == ["released", "released"]
    [summary_path] = (wait_project.root / "sweeps").glob("*/summary.json")
    summary = json.loads(summary_path.read_text())
    assert summary["complete"] is False and [r["status"] for r in summary["runs"]] == ["failed", "failed"]
    assert (summary_path.parent / "report.html").is_file()


def test_wall_clock_limit_holds_for_points_on_threads(wait_project: WaitProject, _state_dir: Path) -> None:
    """$0.0005 at $0.50/h buys 3.6 s: a remote stage that hangs is torn down then, on a worker thread
    (no SIGALRM there) as on the main one."""
    with FakeVast() as fake:
        rented(wait_project.root, "vast", fake.url, 0.5, cold_start_seconds=0, effective_tflops=1e9)
        env = {"KOLM_VAST_TOKEN": fake.token, "SWEEP_SLEEP": "300"}
        started = time.monotonic()
        r = kolmbuild(wait_project.root, "-m", "task.description=a,b", "backend=vast", "--budget", "0.0005",
                      "-j", "2", "--json", env=env, timeout=200)
        took = time.monotonic() - started
        assert fake.live() == 0 and len(fake.instances) == 2
    assert r.returncode == 1, r.stderr
    runs = json.loads(r.stdout)["runs"]
    assert [x["status"] for x in runs] == ["failed", "failed"]
    assert all("wall-clock limit of 4 s" in x["message"] for x in runs), runs
    assert took < 120  # not the 300 s the stage would have slept
