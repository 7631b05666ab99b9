"""``kolmbuild`` through the engine with the built-in recall and distill rules: the teacher's
budget stops the build with exit 2 and no traceback, a resumed build pays only for the rest, and
a rebuild is a no-op. (The project replaces ``ingest`` with a shell rule so this test depends
only on the stages under test.)"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "teacher"))
from kolm_fake_teacher import ScriptedTeacher, Serving, input_of  # noqa: E402

from kolmbuild.cli.main import cli  # noqa: E402

CAPITALS = {"France": "Paris", "Japan": "Tokyo", "Italy": "Rome", "Peru": "Lima"}
SECRET = "sk-cli-SECRET-4242"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())


def make_project(root: Path, url: str, budget: float) -> None:
    write(root / "kolmfile.yaml", """
        pipeline: [distill]
        defaults:
          backend: box
        targets:
          caps:
            task: caps
    """)
    write(root / "conf/backend/box.yaml", "name: box\nkind: local\n")
    write(root / "conf/gates/default.yaml", "K_min: 0.7\n")
    write(root / "conf/task/caps.yaml", f"""
        name: caps
        description: Name the capital city of the country.
        examples: data/train.jsonl
        corpus: docs
        teacher:
          model: teach-1
          base_url: {url}/v1
          api_key_env: KOLM_CLI_TEST_TOKEN
          k: 3
          max_tokens: 16
          price_in_per_mtok: 2.0
          price_out_per_mtok: 8.0
          budget_usd: {budget}
          concurrency: 1
          max_retries: 1
    """)
    write(root / "rules/ingest.yaml", """
        name: ingest
        version: 1
        inputs: [task.examples]
        outputs: [train.jsonl]
        shell: cp "$KOLM_IN_TASK_EXAMPLES" "$KOLM_OUT/train.jsonl"
    """)
    rows = [json.dumps({"id": i, "input": k, "output": v}) for i, (k, v) in enumerate(CAPITALS.items(), 1)]
    write(root / "data/train.jsonl", "\n".join(rows) + "\n")
    write(root / "docs/atlas.md", "# Atlas\n\nParis, Tokyo, Rome and Lima are capital cities.\n")
    write(root / "docs/logo.png", "\x89PNG")


@pytest.fixture
def server() -> Iterator[tuple[ScriptedTeacher, str]]:
    teacher = ScriptedTeacher(answer=lambda body: CAPITALS[input_of(body)] if body["seed"] == 1 else "Atlantis")
    with Serving(teacher) as serving:
        yield teacher, serving.url


def kolm(root: Path, *args: str):
    return CliRunner().invoke(cli, ["-C", str(root), *args])


def test_budget_stop_exit_2_resume_and_noop(tmp_path: Path, server: tuple[ScriptedTeacher, str], monkeypatch: pytest.MonkeyPatch) -> None:
    fake, url = server
    monkeypatch.setenv("KOLM_CLI_TEST_TOKEN", SECRET)
    root = tmp_path / "proj"
    make_project(root, url, budget=0.003)

    stopped = kolm(root)
    assert stopped.exit_code == 2, stopped.output
    assert "task.teacher.budget_usd" in stopped.output and "Traceback" not in stopped.output
    assert SECRET not in stopped.output
    paid = fake.count
    assert 0 < paid < 12

    make_project(root, url, budget=1.0)
    done = kolm(root)
    assert done.exit_code == 0, done.output
    assert fake.count == 12  # only the unpaid requests were made
    assert SECRET not in done.output

    noop = kolm(root)
    assert noop.exit_code == 0, noop.output
    assert fake.count == 12
    for path in (root / "cache").rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
