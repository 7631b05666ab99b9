"""`.ci/run` stops, saying what is missing, when it cannot install what the tests drive for real —
it never carries on to a test run in which those tests would skip (or, under CI=true, fail late)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

BASH = shutil.which("bash") or "/bin/bash"


def _sandbox(tmp_path: Path, apt_get: str | None) -> tuple[Path, dict[str, str]]:
    """A checkout holding only .ci/run, and a PATH with the few tools the script needs but none of
    the system packages (and, when given, a fake apt-get)."""
    repo = tmp_path / "repo"
    (repo / ".ci").mkdir(parents=True)
    shutil.copy(REPO / ".ci" / "run", repo / ".ci" / "run")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname", "id", "cat"):
        os.symlink(shutil.which(tool) or f"/usr/bin/{tool}", bin_dir / tool)
    if apt_get is not None:
        fake = bin_dir / "apt-get"
        fake.write_text(f"#!{BASH}\necho \"apt-get $*\" >> {tmp_path / 'apt.log'}\n{apt_get}\n")
        fake.chmod(0o755)
    env = {"HOME": str(tmp_path), "KOLM_CI_PATH": str(bin_dir), "KOLM_CI_SYSTEM_PYTHON": str(tmp_path / "no-python3")}
    return repo, env


@pytest.mark.parametrize(
    ("apt_get", "message"),
    [
        (None, "ci: no apt-get to install openssh-server chromium util-linux iproute2 python3"),
        ('[ "$1" = update ] && exit 0; exit 100', "ci: could not install openssh-server chromium util-linux iproute2 python3"),
        ("exit 100", "ci: apt-get update failed"),
        ("exit 0", "but sshd, chromium, unshare, nsenter, ip or a Python 3.11 with sqlite extension loading is still missing"),
    ],
    ids=["no-apt-get", "install-fails", "update-fails", "installed-but-missing"],
)
def test_ci_run_stops_when_it_cannot_install_the_system_packages(tmp_path: Path, apt_get: str | None, message: str) -> None:
    repo, env = _sandbox(tmp_path, apt_get)
    r = subprocess.run([BASH, str(repo / ".ci" / "run")], cwd=repo, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert message in r.stderr, r.stderr
    assert "ci: sshd is missing" in r.stderr
    assert not (repo / ".venv").exists()  # it never went on to install or test


def test_ci_run_installs_every_package_the_tests_drive(tmp_path: Path) -> None:
    repo, env = _sandbox(tmp_path, '[ "$1" = update ] && exit 0; exit 100')
    subprocess.run([BASH, str(repo / ".ci" / "run")], cwd=repo, env=env, capture_output=True, text=True, timeout=60)
    calls = (tmp_path / "apt.log").read_text().splitlines()
    assert calls[0] == "apt-get update -qq"
    assert calls[1] == "apt-get install -y -qq openssh-server chromium util-linux iproute2 python3"


def test_ci_run_sets_ci_so_no_test_may_skip() -> None:
    text = (REPO / ".ci" / "run").read_text()
    assert "export CI=true" in text and "set -euo pipefail" in text
    assert "|| echo" not in text  # no failure is turned into a warning


def test_a_hung_test_fails_after_at_most_five_minutes() -> None:
    import tomllib

    options = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert 0 < int(options["timeout"]) <= 300
    assert "timeout" not in (REPO / ".ci" / "run").read_text().split(".venv/bin/pytest", 1)[1]  # not raised again in CI
