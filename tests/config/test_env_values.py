"""Values from ``${oc.env:…}`` are used by the build and recorded nowhere: not in cache/ (state.db,
key documents, objects), not in the artifact, not on stdout/stderr — a teacher's API key included."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from kolmbuild.cli.main import cli
from tests.conftest import REPO, write

sys.path.insert(0, str(REPO / "tests" / "teacher"))
from kolm_fake_teacher import ScriptedTeacher, Serving, input_of  # noqa: E402

from tests.stages.test_distill_cli import CAPITALS, make_project  # noqa: E402

SECRET = "sk-oc-env-SECRET-7731"


def _kolm(root: Path, *args: str):
    r = CliRunner().invoke(cli, ["-C", str(root), *args], catch_exceptions=False)
    return r


def _bytes_under(*roots: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for root in roots if root.exists() for p in root.rglob("*") if p.is_file()}


def _assert_nowhere(secret: str, files: dict[Path, bytes], *outputs: str) -> None:
    needles = [secret.encode(), secret.encode("utf-16-le"), hashlib.sha256(secret.encode()).hexdigest().encode()]
    for path, data in files.items():
        for needle in needles:
            assert needle not in data, f"{path} holds the secret (or its sha256)"
        if path.suffix == ".kolm":
            with zipfile.ZipFile(path) as z:  # members are deflated: look inside too
                for name in z.namelist():
                    assert secret.encode() not in z.read(name), f"{path}!{name} holds the secret"
    for text in outputs:
        assert secret not in text


@pytest.fixture
def teacher() -> Iterator[tuple[ScriptedTeacher, str]]:
    t = ScriptedTeacher(answer=lambda body: CAPITALS[input_of(body)])
    with Serving(t) as serving:
        yield t, serving.url


def _teacher_project(root: Path, url: str, api_key: str) -> None:
    """test_distill_cli's project (distill after a shell ingest), its key given as ``api_key``."""
    make_project(root, url, budget=1.0)
    task = root / "conf/task/caps.yaml"
    text = task.read_text().replace("api_key_env: KOLM_CLI_TEST_TOKEN", f"api_key: {api_key}")
    task.write_text(text.replace("corpus: docs\n", ""))  # no recall index: this test is about the key


def test_a_teachers_api_key_from_oc_env_is_sent_and_recorded_nowhere(tmp_path: Path, teacher, monkeypatch) -> None:
    fake, url = teacher
    root = tmp_path / "proj"
    _teacher_project(root, url, "${oc.env:KOLM_T_OPENAI_API_KEY}")
    monkeypatch.setenv("KOLM_T_OPENAI_API_KEY", SECRET)
    monkeypatch.delenv("KOLM_TEACHER_TOKEN", raising=False)

    r = _kolm(root)
    assert r.exit_code == 0, r.output
    assert fake.seen and all(s.headers["authorization"] == f"Bearer {SECRET}" for s in fake.seen)

    cfg = _kolm(root, "--cfg")
    status = _kolm(root, "status", "--json")
    assert "api_key: ${oc.env:KOLM_T_OPENAI_API_KEY}" in cfg.output
    _assert_nowhere(SECRET, _bytes_under(root), r.output, cfg.output, status.output)

    # the fingerprint still notices a new key: distill reruns (its teacher calls come from the cache)
    monkeypatch.setenv("KOLM_T_OPENAI_API_KEY", SECRET + "-rotated")
    st = _kolm(root, "status")
    assert "config from env task.teacher.api_key changed" in st.output, st.output
    calls = len(fake.seen)
    assert _kolm(root).exit_code == 0
    assert len(fake.seen) == calls
    _assert_nowhere(SECRET + "-rotated", _bytes_under(root))


def test_a_literal_api_key_in_config_is_refused(tmp_path: Path, teacher) -> None:
    _, url = teacher
    root = tmp_path / "proj"
    _teacher_project(root, url, SECRET)
    r = _kolm(root, "status")
    assert r.exit_code == 2
    assert "conf/task/caps.yaml:" in r.output and "task.teacher.api_key: write the key as ${oc.env:NAME}" in r.output
    assert SECRET not in r.output
    r = _kolm(root, "status", f"task.teacher.api_key={SECRET}")
    assert r.exit_code == 2 and "override 'task.teacher.api_key=…': task.teacher.api_key: write the key" in r.output
    assert SECRET not in r.output  # a credential typed on the command line is not echoed back


def test_a_value_from_the_environment_is_never_quoted_in_an_error(tmp_path: Path, teacher, monkeypatch) -> None:
    _, url = teacher
    root = tmp_path / "proj"
    _teacher_project(root, url, "${oc.env:KOLM_T_OPENAI_API_KEY}")
    monkeypatch.setenv("KOLM_T_OPENAI_API_KEY", SECRET)
    for override in ("task.teacher.k=${oc.env:KOLM_T_OPENAI_API_KEY}", "task.train.seed=${oc.env:KOLM_T_BIG}"):
        monkeypatch.setenv("KOLM_T_BIG", "9" * 30)
        r = _kolm(root, "status", override)
        assert r.exit_code == 2, r.output
        assert SECRET not in r.output and "9" * 30 not in r.output, r.output


def test_env_values_in_the_task_never_reach_the_manifest_state_or_output(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "proj"
    shutil.copytree(REPO / "examples" / "phi-redactor", root / "examples" / "phi-redactor")
    write(root / "kolmfile.yaml", """
        targets:
          phi:
            task: phi-redactor
            overrides: ["task.description=Redact for ${oc.env:KOLM_T_REGION,eu}: ${oc.env:KOLM_T_SECRET_TOKEN}"]
    """)
    monkeypatch.setenv("KOLM_T_SECRET_TOKEN", SECRET)
    r = _kolm(root)
    assert r.exit_code == 0, r.output
    artifact = root / "artifacts" / "phi-0.1.0.kolm"
    manifest = json.loads(zipfile.ZipFile(artifact).read("manifest.json"))
    assert manifest["task"]["description"] == "Redact for ${oc.env:KOLM_T_REGION,eu}: ${oc.env:KOLM_T_SECRET_TOKEN}"
    verify = _kolm(root, "verify", str(artifact))
    assert verify.exit_code == 0, verify.output
    _assert_nowhere(SECRET, _bytes_under(root / "cache", root / "artifacts"), r.output, verify.output)

    # a new value rebuilds what reads it, even through the stdlib-only no-op fast path
    env = {**os.environ, "KOLM_T_SECRET_TOKEN": SECRET + "-2", "PYTHONPATH": str(REPO)}
    p = subprocess.run([sys.executable, "-m", "kolmbuild", "-C", str(root)], capture_output=True, text=True, env=env,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    assert "package" in p.stdout + p.stderr and "up to date" not in (p.stdout + p.stderr).splitlines()[-1]
    _assert_nowhere(SECRET + "-2", _bytes_under(root / "cache", root / "artifacts"), p.stdout, p.stderr)
