"""Secrets named in a rule's env are fingerprinted, never stored: not in clear, not as one sha256."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.conftest import write


def _all_cache_bytes(cache: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(cache.rglob("*")) if p.is_file())


def test_secret_env_is_neither_stored_nor_cheaply_guessable(shell_project, monkeypatch) -> None:
    root = shell_project.root
    write(root / "rules/echo.yaml", """
        name: echo
        version: 1
        inputs: [task.examples]
        outputs: [echo.txt]
        env: [KOLM_TEST_TOKEN]
        shell: echo echo >> runs.log; cp "$KOLM_IN_TASK_EXAMPLES" "$KOLM_OUT/echo.txt"
    """)
    secret = "hunter2"
    monkeypatch.setenv("KOLM_TEST_TOKEN", secret)
    r = shell_project.kolmbuild()
    assert r.returncode == 0, r.stderr
    blob = _all_cache_bytes(root / "cache")
    assert secret.encode() not in blob
    assert hashlib.sha256(secret.encode()).hexdigest().encode() not in blob
    assert hashlib.sha256(f"KOLM_TEST_TOKEN={secret}\n".encode()).hexdigest().encode() not in blob

    # the fingerprint still notices a change: a new token reruns the stage that names it, only it
    shell_project.reset_runs()
    monkeypatch.setenv("KOLM_TEST_TOKEN", "another")
    r = shell_project.kolmbuild()
    assert r.returncode == 0, r.stderr
    assert shell_project.runs() == ["echo"]


def test_stage_keys_do_not_depend_on_the_cache(tmp_path: Path, monkeypatch) -> None:
    """Keys are receipt CIDs of reproducible artifacts: two caches, one key for the same inputs,
    secrets among them included."""
    import json

    from tests.conftest import ShellProject

    monkeypatch.setenv("KOLM_TEST_TOKEN", "same-secret")
    keys = []
    for name in ("a", "b"):
        proj = ShellProject(tmp_path / name)
        write(proj.root / "rules/echo.yaml", """
            name: echo
            version: 1
            inputs: [task.examples]
            outputs: [echo.txt]
            env: [KOLM_TEST_TOKEN]
            shell: cp "$KOLM_IN_TASK_EXAMPLES" "$KOLM_OUT/echo.txt"
        """)
        assert proj.kolmbuild().returncode == 0
        r = proj.kolmbuild("status", "--json")
        assert r.returncode == 0, r.stderr
        keys.append({(s["stage"], s["key"]) for s in json.loads(r.stdout)})
    assert len(keys[0]) == 3 and keys[0] == keys[1]
