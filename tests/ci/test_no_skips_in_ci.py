"""Under CI=true a skip is a failure that carries the skip's reason; outside CI a skip stays a skip."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

INNER = '''
import pytest

def test_needs_a_tool():
    pytest.skip("frobnicator is not installed: apt-get install frobnicator")

@pytest.mark.skipif(True, reason="no user namespaces here")
def test_marked():
    pass

def test_imports():
    pytest.importorskip("kolm_no_such_module_xyz")

@pytest.mark.xfail(reason="a known bug", strict=False)
def test_known_bug():
    assert False

def test_fine():
    pass
'''


def _run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str | None) -> pytest.RunResult:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    pytester.makeconftest("from tests.conftest import pytest_runtest_makereport  # noqa: F401\n")
    pytester.makepyfile(test_inner=INNER)
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", "-rA")


@pytest.mark.parametrize("ci", ["true", "TRUE", "1"])
def test_a_skip_fails_under_ci_with_its_reason(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    result = _run(pytester, monkeypatch, ci)
    result.assert_outcomes(failed=2, errors=1, passed=1, xfailed=1)  # a skipif mark fails in setup: an error
    out = result.stdout.str()
    assert "skipped under CI=true, where no test may skip: frobnicator is not installed: apt-get install frobnicator" in out
    assert "no user namespaces here" in out and "kolm_no_such_module_xyz" in out
    assert result.ret != 0


def test_outside_ci_a_skip_is_a_skip(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _run(pytester, monkeypatch, None)
    result.assert_outcomes(skipped=3, passed=1, xfailed=1)
    assert result.ret == 0
