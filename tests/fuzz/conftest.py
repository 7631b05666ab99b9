"""Property-based fuzzing of every reader of untrusted input: the property is always "exit 0 or 2,
never a traceback, never a hang".

Settings are reproducible in CI: derandomized (the examples are a function of the test), no example
database, and bounded so each test stays well under a minute on a CI machine. ``KOLM_FUZZ_EXAMPLES``
raises the count for a longer local run.
"""

from __future__ import annotations

import os

from click.testing import CliRunner, Result
from hypothesis import HealthCheck, settings

from kolmbuild.cli.main import cli

FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,  # a hang is caught by the per-example wall-clock check below and pytest-timeout
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
    print_blob=True,
)
SCALE = float(os.environ.get("KOLM_FUZZ_EXAMPLES", "1"))
TIMEOUT = int(300 * max(SCALE, 1))  # per test, for pytest.mark.timeout: grows with KOLM_FUZZ_EXAMPLES
PER_EXAMPLE_S = 20.0  # far above what any input needs; a slower one is a hang


def fuzz(n: int) -> settings:
    """The shared settings with ``n`` examples (times ``KOLM_FUZZ_EXAMPLES``)."""
    return settings(FUZZ, max_examples=max(1, int(n * SCALE)))


def invoke(*args: str, input: bytes | None = None) -> Result:
    """The CLI in-process; asserts the property: exit 0 or 2 and no exception escaped."""
    import time

    started = time.monotonic()
    r = CliRunner().invoke(cli, list(args), input=input)
    took = time.monotonic() - started
    assert took < PER_EXAMPLE_S, f"{args[:3]} took {took:.1f} s"
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise AssertionError(f"traceback for {args!r}: {r.exception!r}\n{r.output}") from r.exception
    assert r.exit_code in (0, 2), f"exit {r.exit_code} for {args!r}:\n{r.output}"
    assert "Traceback" not in r.output
    return r
