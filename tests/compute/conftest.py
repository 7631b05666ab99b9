"""Compute fixtures: an isolated state dir, a project whose conf/ points backends at local fakes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from kolmbuild.resources import builtin_dir

FAST = {"poll_seconds": 0.05, "ready_timeout_seconds": 20, "max_poll_failures": 3,
        "terminate_backoff_seconds": [0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0, 1.0], "http_timeout_seconds": 2}


@pytest.fixture(autouse=True)
def _state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "state"
    monkeypatch.setenv("KOLM_STATE_DIR", str(state))
    for var in ("KOLM_VAST_TOKEN", "KOLM_LAMBDA_TOKEN", "KOLM_RUNPOD_TOKEN", "KOLM_TOGETHER_TOKEN",
                "KOLM_REPLICATE_TOKEN", "KOLM_FAL_TOKEN", "MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET",
                "KOLM_REMOTE_HOST", "VAST_URL", "RUNPOD_API_BASE_URL", "REPLICATE_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    return state


class Project:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / "data").mkdir()
        rows = [{"input": f"call me at 555-01{i:02d}", "output": "call me at [PHONE]"} for i in range(40)]
        (root / "data/train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (root / "data/eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:10]))
        self.write("kolmfile.yaml", {"version": 1, "defaults": {"backend": "local-cpu"},
                                     "targets": {"redact": {"task": "redact"}}})
        self.write("conf/task/redact.yaml", {"name": "redact", "examples": "data/train.jsonl",
                                             "eval": "data/eval.jsonl"})

    def write(self, rel: str, doc: Any) -> Path:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(yaml.safe_dump(doc, sort_keys=False))
        return p

    def override_backend(self, name: str, **changes: Any) -> Path:
        """A user's own conf/backend/NAME.yaml: the built-in one with some fields changed."""
        base = yaml.safe_load((builtin_dir("conf") / "backend" / f"{name}.yaml").read_text())
        return self.write(f"conf/backend/{name}.yaml", {**base, **changes})

    def invoke(self, *args: str, input: str | None = None) -> Any:
        from kolmbuild.cli.main import cli

        return CliRunner().invoke(cli, ["-C", str(self.root), *args], input=input, catch_exceptions=False)

    def spawn(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        full = {**os.environ, **(env or {})}
        return subprocess.Popen([sys.executable, "-m", "kolmbuild", "-C", str(self.root), *args], cwd=self.root,
                                env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path / "proj")


RENTED = ("vast", "lambda", "runpod")  # machines reached over a transport (tests: local, or the loopback sshd)


def point_at(project: Project, name: str, url: str, **more: Any) -> None:
    transport = {"transport": "local", "bootstrap": {"mode": "off"}} if name in RENTED else {}
    project.override_backend(name, **{"base_url": url, **transport, **FAST, **more})
