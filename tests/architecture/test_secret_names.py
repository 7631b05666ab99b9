"""One word list decides which names hold credentials: :mod:`kolmbuild.secretnames`.

Three copies of the list (engine, compute, config) and a fourth, narrower rule (the local job
transport's suffix check) drifted apart before; a word added to one did not protect the others.
This test reads every module with :mod:`ast` and fails on a string constant that is one of the
list's words (``"TOKEN"``, ``"_API_KEY"``, …) anywhere but kolmbuild/secretnames.py. Full names of
real variables (``KOLM_VAST_TOKEN``) and lower-case JSON keys (``"key"``) are not words of the list.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from kolmbuild.secretnames import SECRET_WORDS, is_secret_name
from tests.conftest import REPO

HOME = "kolmbuild/secretnames.py"


def word_constants(path: Path) -> list[str]:
    words = {*SECRET_WORDS, "API_KEY"}
    return [f"{n.lineno}: {n.value!r}" for n in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value.strip("_") in words]


def test_the_secret_words_live_in_one_module() -> None:
    copies = {}
    for path in sorted((REPO / "kolmbuild").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel != HOME and (found := word_constants(path)):
            copies[rel] = found
    assert not copies, f"ask kolmbuild.secretnames.is_secret_name instead of a list of your own: {copies}"
    assert word_constants(REPO / HOME)  # the checker does see the list where it lives


def test_the_checker_sees_a_copy(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text("W = ('TOKEN', 'SECRET')\ndef f(n):\n    return n.endswith('_API_KEY') or n == 'KOLM_X_TOKEN'\n"
                   "d = {'key': 1, 'token': 2}\n")
    assert word_constants(src) == ["1: 'TOKEN'", "1: 'SECRET'", "3: '_API_KEY'"]


@pytest.mark.parametrize(("name", "secret"), [
    ("KOLM_VAST_TOKEN", True), ("OPENAI_API_KEY", True), ("AWS_SECRET_ACCESS_KEY", True),
    ("KOLM_SIGNING_KEY_FILE", True), ("db_password", True), ("GOOGLE_APPLICATION_CREDENTIALS", True),
    ("HOME", False), ("PATH", False), ("KOLM_REMOTE_CACHE", False),
])
def test_is_secret_name(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_the_local_job_transport_keeps_secrets_out_of_the_job_env(monkeypatch: pytest.MonkeyPatch) -> None:
    from kolmbuild.compute.transport import LocalTransport

    monkeypatch.setenv("KOLM_TEST_PASSPHRASE", "hunter2-passphrase")  # the old suffix rule let this through
    monkeypatch.setenv("KOLM_TEST_PLAIN", "visible")
    lines: list[str] = []
    transport = LocalTransport()
    try:
        code = transport.run(["sh", "-c", "env"], lines.append)
    finally:
        transport.close()
    assert code == 0
    env = "\n".join(lines)
    assert "KOLM_TEST_PLAIN=visible" in env and "hunter2-passphrase" not in env
