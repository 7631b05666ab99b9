"""The make-like promises: nothing twice, only what changed, safe under kill -9 and concurrency."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from kolmbuild.cli.entry import main as entry_main


def test_second_build_runs_nothing(shell_project) -> None:
    r = shell_project.kolmbuild()
    assert r.returncode == 0, r.stderr
    assert sorted(shell_project.runs()) == ["count", "echo", "joined"]
    shell_project.reset_runs()
    r = shell_project.kolmbuild()
    assert r.returncode == 0, r.stderr
    assert shell_project.runs() == []
    assert "nothing to do" in r.stderr


def test_touch_without_change_runs_nothing(shell_project) -> None:
    assert shell_project.kolmbuild().returncode == 0
    shell_project.reset_runs()
    for p in [shell_project.root / "data/eval.jsonl", shell_project.root / "corpus/doc1.txt"]:
        os.utime(p, ns=(time.time_ns(), time.time_ns()))
    r = shell_project.kolmbuild()
    assert r.returncode == 0, r.stderr
    assert shell_project.runs() == []


def test_changing_eval_reruns_only_stages_that_read_it(shell_project) -> None:
    assert shell_project.kolmbuild().returncode == 0
    shell_project.reset_runs()
    (shell_project.root / "data/eval.jsonl").write_text('{"input": "c", "output": "changed"}\n')
    st = shell_project.kolmbuild("status")
    assert "joined" in st.stdout and "input task.eval changed" in st.stdout, st.stdout
    r = shell_project.kolmbuild()
    assert r.returncode == 0, r.stderr
    assert shell_project.runs() == ["joined"]


def test_early_cutoff_stops_at_unchanged_output(shell_project) -> None:
    assert shell_project.kolmbuild().returncode == 0
    shell_project.reset_runs()
    (shell_project.root / "corpus/doc0.txt").write_text("new bytes, same file count\n")
    r = shell_project.kolmbuild()
    assert r.returncode == 0, r.stderr
    # count reran (its input changed) but wrote the same count, so joined did not.
    assert shell_project.runs() == ["count"]


def test_config_override_reruns_only_readers(shell_project) -> None:
    assert shell_project.kolmbuild().returncode == 0
    shell_project.reset_runs()
    r = shell_project.kolmbuild("gates=strict")
    assert r.returncode == 0, r.stderr
    assert shell_project.runs() == ["echo"]
    shell_project.reset_runs()
    assert shell_project.kolmbuild("gates=default").returncode == 0
    assert shell_project.runs() == []  # the earlier run is still in the cache


def test_noop_fast_path_answers_from_the_stamp(shell_project, capsys) -> None:
    assert shell_project.kolmbuild().returncode == 0
    assert shell_project.kolmbuild().returncode == 0  # this one writes the stamp
    cwd = os.getcwd()
    os.chdir(shell_project.root)
    try:
        from kolmbuild.engine import fastpath

        assert fastpath.try_noop([]) == 0
        assert fastpath.try_noop(["status"]) == 0
        assert "up to date" in capsys.readouterr().out
        (shell_project.root / "corpus/new.txt").write_text("x")
        assert fastpath.try_noop([]) is None  # a new corpus file: the full engine decides
        assert entry_main([]) == 0
        assert shell_project.runs().count("count") == 2
    finally:
        os.chdir(cwd)


def _wait_for(path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_kill_9_mid_stage_leaves_a_consistent_cache(shell_project) -> None:
    root = shell_project.root
    (root / "slow.flag").write_text("")
    proc = subprocess.Popen([sys.executable, "-m", "kolmbuild"], cwd=root, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(root / "started.flag")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    (root / "slow.flag").unlink()
    # Nothing from the killed stage was recorded…
    db = sqlite3.connect(root / "cache/state.db")
    assert [r for r in db.execute("SELECT stage FROM runs") if r[0] == "count"] == []
    # …and the rebuild succeeds, with every recorded output present in the store.
    r = shell_project.kolmbuild()
    assert r.returncode == 0, r.stderr
    for outputs, in db.execute("SELECT outputs FROM runs"):
        for cid in json.loads(outputs).values():
            assert (root / "cache/objects" / cid[-2:] / cid).is_file()
    assert (root / "cache/objects").is_dir()
    assert "partial" not in "".join(p.read_text() for p in (root / "cache/objects").rglob("b*") if p.is_file())


def test_two_concurrent_builds_both_succeed(shell_project) -> None:
    root = shell_project.root
    procs = [subprocess.Popen([sys.executable, "-m", "kolmbuild"], cwd=root, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert sorted(shell_project.runs()) == ["count", "echo", "joined"]  # built once, not twice


def test_parallel_jobs_build_everything(shell_project) -> None:
    r = shell_project.kolmbuild("-j", "3", "--json")
    assert r.returncode == 0, r.stderr
    [out] = json.loads(r.stdout)
    assert out["status"] == "built" and sorted(out["ran"]) == ["count", "echo", "joined"]


def test_editing_a_rules_command_reruns_that_stage(shell_project) -> None:
    assert shell_project.kolmbuild().returncode == 0
    shell_project.reset_runs()
    rule = shell_project.root / "rules/echo.yaml"
    rule.write_text(rule.read_text().replace('cp "$KOLM_IN_TASK_EXAMPLES"', 'cat "$KOLM_IN_TASK_EXAMPLES" >'))
    st = shell_project.kolmbuild("status")
    assert "rule's command changed" in st.stdout, st.stdout
    r = shell_project.kolmbuild()
    assert r.returncode == 0, r.stderr
    assert shell_project.runs() == ["echo"]  # same bytes out: nothing downstream would rerun either
