"""CI type-checks the package: ``python -m mypy kolmbuild`` with the ``[tool.mypy]`` config of
pyproject.toml (not strict: see the comment there) must report no error.

mypy comes with the ``test`` extra; a missing mypy fails here (ModuleNotFoundError in the output),
it does not skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


def _mypy(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mypy", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=1200, env=env)


# a cold run reads ~230 modules and the stubs of their dependencies: minutes on a loaded 2-core
# machine (2 min 20 s measured here); later runs reuse .mypy_cache
@pytest.mark.timeout(1300)
def test_mypy_passes_on_the_package() -> None:
    res = _mypy("kolmbuild")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Success: no issues found" in res.stdout


def test_the_config_is_the_one_ci_uses_and_it_catches_errors(tmp_path: Path) -> None:
    """The same config (pyproject's, named explicitly) reports a wrong type in an unannotated function
    (``check_untyped_defs``) and an import of a kolmbuild module that does not exist (missing modules
    are errors, untyped third-party packages are not), so the gate is not a no-op."""
    (tmp_path / "bad.py").write_text("from kolmbuild.compute.gone import thing\n"
                                     "def f():\n    x: int = 'text'\n    return x, thing\n")
    res = _mypy("--config-file", str(REPO / "pyproject.toml"), "--cache-dir", str(tmp_path / "cache"),
                str(tmp_path / "bad.py"), cwd=tmp_path, env={**os.environ, "MYPYPATH": str(REPO)})
    assert res.returncode == 1, res.stdout + res.stderr
    assert 'Incompatible types in assignment (expression has type "str", variable has type "int")' in res.stdout
    # "Cannot find implementation ..." or, where kolmbuild is also pip-installed, "Skipping analyzing ..."
    assert 'bad.py:1: error:' in res.stdout and '"kolmbuild.compute.gone"' in res.stdout
