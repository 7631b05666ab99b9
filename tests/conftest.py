"""Shared fixtures: an isolated user config dir, and small projects built from shell rules.

Under ``CI=true`` a skipped test is a failure: CI must prove what the README says, so a missing
system dependency (sshd, chromium, a second Python, user namespaces) fails loudly with the skip's
reason instead of passing silently.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
KOLMBUILD = [sys.executable, "-m", "kolmbuild"]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.skipped and in_ci() and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where no test may skip: {reason}"


@pytest.fixture(autouse=True)
def _isolated_user_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    cfg = tmp_path_factory.mktemp("kolm-config")
    monkeypatch.setenv("KOLM_CONFIG_DIR", str(cfg))
    monkeypatch.delenv("KOLM_BACKEND", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cfg


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


class ShellProject:
    """A project whose pipeline is three shell rules; every run appends its stage to runs.log.

    count  (reads the corpus folder and the examples)  ->  joined (after count, reads eval)
    echo   (reads only the examples)
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        write(root / "kolmfile.yaml", """
            pipeline: [count, joined, echo]
            defaults:
              backend: box-a
            targets:
              demo:
                task: demo
        """)
        write(root / "conf/task/demo.yaml", """
            name: demo
            examples: data/train.jsonl
            eval: data/eval.jsonl
            corpus: corpus
        """)
        write(root / "conf/backend/box-a.yaml", "name: box-a\nkind: local\n")
        write(root / "conf/backend/box-b.yaml", "name: box-b\nkind: self-hosted\n")
        write(root / "conf/gates/default.yaml", "K_min: 0.7\n")
        write(root / "conf/gates/strict.yaml", "K_min: 0.9\n")
        write(root / "data/train.jsonl", '{"input": "a", "output": "b"}\n')
        write(root / "data/eval.jsonl", '{"input": "c", "output": "d"}\n')
        for i in range(3):
            write(root / f"corpus/doc{i}.txt", f"document {i}\n")
        write(root / "rules/count.yaml", """
            name: count
            version: 1
            reads: [task.corpus]
            inputs: [task.corpus, task.examples]
            outputs: [count.txt]
            shell: echo count >> runs.log; if [ -f slow.flag ]; then echo partial > "$KOLM_OUT/count.txt"; touch started.flag; sleep 60; fi; ls "$KOLM_IN_TASK_CORPUS" | wc -l > "$KOLM_OUT/count.txt"
        """)
        write(root / "rules/joined.yaml", """
            name: joined
            version: 1
            after: [count]
            inputs: [task.eval]
            outputs: [joined.txt]
            shell: echo joined >> runs.log; cat "$KOLM_UP_COUNT_COUNT_TXT" "$KOLM_IN_TASK_EVAL" > "$KOLM_OUT/joined.txt"
        """)
        write(root / "rules/echo.yaml", """
            name: echo
            version: 1
            reads: [backend.name, gates.K_min]
            inputs: [task.examples]
            outputs: [echo.txt]
            shell: echo echo >> runs.log; cp "$KOLM_IN_TASK_EXAMPLES" "$KOLM_OUT/echo.txt"
        """)

    def runs(self) -> list[str]:
        log = self.root / "runs.log"
        return log.read_text().split() if log.exists() else []

    def reset_runs(self) -> None:
        (self.root / "runs.log").unlink(missing_ok=True)

    def kolmbuild(self, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ)
        return subprocess.run([*KOLMBUILD, *args], cwd=self.root, capture_output=True, text=True, env=env,
                              timeout=120, **kw)  # type: ignore[call-overload]

    def invoke(self, *args: str):  # in-process, click's runner
        from kolmbuild.cli.main import cli

        return CliRunner().invoke(cli, ["-C", str(self.root), *args], catch_exceptions=False)


@pytest.fixture
def shell_project(tmp_path: Path) -> ShellProject:
    return ShellProject(tmp_path / "proj")
