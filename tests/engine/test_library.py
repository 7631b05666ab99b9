"""The engine as a library, without click: it holds the cache lock itself, checks the budget
before any stage (or provider) runs, and takes its compute pieces as hooks."""

from __future__ import annotations

import ast
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kolmbuild.engine.hooks import EngineHooks
from kolmbuild.engine.results import BuildOptions
from kolmbuild.engine.stage import StageResult
from kolmbuild.errors import BudgetExceeded, LockTimeout
from kolmbuild.resources import builtin_dir
from kolmbuild.sweep import run_sweep
from kolmbuild.wiring import check_budget, engine_hooks
from tests.compute.fakes import FakeLambda
from tests.conftest import REPO, write
from tests.engine.conftest import ARTIFACT, open_engine

LOCK_PROBE = ('python3 -c "import fcntl,os; fd=os.open(\'cache/lock\', os.O_RDWR)\n'
              'try: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB); print(\'free\')\n'
              'except BlockingIOError: print(\'held\')"')


def test_build_holds_the_cache_lock_while_its_stages_run(shell_project) -> None:
    write(shell_project.root / "rules/echo.yaml", f"""
        name: echo
        version: 1
        outputs: [echo.txt]
        shell: |
          {LOCK_PROBE.replace(chr(10), chr(10) + "          ")} > "$KOLM_OUT/echo.txt"
    """)
    engine, targets = open_engine(shell_project.root)
    with engine:
        [outcome] = engine.build(targets)
        assert outcome.status == "built", outcome.error
        assert not engine.lock.held  # released when the call returns
        echo = engine.store.path_of(outcome.receipts["echo"].outputs["echo.txt"])
    assert echo.read_text() == "held\n"


def test_every_cache_call_waits_for_another_holder(packed) -> None:
    assert packed.kolmbuild().returncode == 0
    holder, _ = open_engine(packed.root)
    engine, targets = open_engine(packed.root, lock_timeout_s=0.3)
    with holder, engine, holder.holding_lock():
        for call in (lambda: engine.build(targets), lambda: engine.status(targets), lambda: engine.clean(targets),
                     lambda: engine.gc(targets), engine.verify_cache):
            with pytest.raises(LockTimeout, match="another kolmbuild held the cache"):
                call()
    assert (packed.root / ARTIFACT).is_file()  # clean never ran
    engine, targets = open_engine(packed.root)
    with engine:
        assert [p.status for p in engine.status(targets)] == ["up-to-date"] * 4


def test_the_lock_is_taken_in_turn_by_two_threads_building_at_once(packed) -> None:
    results: list[str] = []
    engines = [open_engine(packed.root) for _ in range(2)]  # composing (Hydra) is not thread-safe

    def build(engine, targets) -> None:
        with engine:
            results.extend(o.status for o in engine.build(targets))

    threads = [threading.Thread(target=build, args=e) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(results) == ["built", "up-to-date"]
    assert sorted(packed.runs()) == ["count", "echo", "joined", "pack"]  # once, not twice


def test_a_sweep_holds_the_lock_across_its_points(shell_project) -> None:
    engine, _ = open_engine(shell_project.root)
    with engine:
        result = run_sweep(engine, [], ["backend=box-a,box-b"], BuildOptions())
        assert not engine.lock.held
    assert [r["backend"] for r in result.summary["runs"]] == ["box-a", "box-b"] and result.exit_code == 0
    assert json.loads(result.summary_path.read_text()) == result.summary


# ------------------------------------------------------------------------------- hooks and budget


def _remote_echo_on_lambda(project, url: str, budget: float) -> None:
    write(project.root / "rules/echo.yaml", """
        name: echo
        version: 1
        outputs: [echo.txt]
        remote: true
        shell: echo echo >> runs.log; echo remote > "$KOLM_OUT/echo.txt"
    """)
    base = yaml.safe_load((builtin_dir("conf") / "backend" / "lambda.yaml").read_text())
    (project.root / "conf/backend/lambda.yaml").write_text(
        yaml.safe_dump({**base, "base_url": url, "transport": "local"}))
    kf = project.root / "kolmfile.yaml"
    kf.write_text(kf.read_text().replace("backend: box-a", f"backend: lambda\nbudget:\n  usd: {budget}"))


class Spy:
    def __init__(self, project) -> None:
        self.project = project
        self.calls: list[str] = []

    def budget(self, config, root: Path) -> None:
        self.calls.append(f"budget (stages run so far: {len(self.project.runs())})")
        check_budget(config, root)

    def remote(self, ctx, spec, config, staging: Path) -> StageResult:
        self.calls.append(f"remote {spec.name} on {config.backend.name}")
        (ctx.outdir / "echo.txt").write_text("ran remotely\n")
        return StageResult()


@pytest.fixture
def lambda_fake(shell_project, monkeypatch) -> Iterator[FakeLambda]:
    monkeypatch.setenv("KOLM_STATE_DIR", str(shell_project.root.parent / "state"))
    with FakeLambda() as fake:
        monkeypatch.setenv("KOLM_LAMBDA_TOKEN", fake.token)
        yield fake


def test_a_python_caller_is_refused_over_budget_with_no_provider_call(shell_project, lambda_fake) -> None:
    fake = lambda_fake
    _remote_echo_on_lambda(shell_project, fake.url, budget=0.0001)
    spy = Spy(shell_project)
    engine, targets = open_engine(shell_project.root, hooks=EngineHooks(spy.budget, spy.remote))
    with engine:
        [outcome] = engine.build(targets)
    assert outcome.status == "refused" and isinstance(outcome.error, BudgetExceeded)
    assert "exceeds budget $0.0001" in str(outcome.error)
    assert spy.calls == ["budget (stages run so far: 0)"]
    assert shell_project.runs() == []  # not even the local stages ran
    assert fake.requests == []
    # the standard hooks (what the CLI wires) refuse the same way
    engine, targets = open_engine(shell_project.root, hooks=engine_hooks())
    with engine:
        [outcome] = engine.build(targets)
    assert outcome.status == "refused" and fake.requests == []


def test_within_budget_the_remote_hook_runs_the_stage_after_the_check(shell_project, lambda_fake) -> None:
    _remote_echo_on_lambda(shell_project, lambda_fake.url, budget=1000)
    spy = Spy(shell_project)
    engine, targets = open_engine(shell_project.root, hooks=EngineHooks(spy.budget, spy.remote))
    with engine:
        [outcome] = engine.build(targets)
    assert outcome.status == "built", outcome.error
    assert spy.calls == ["budget (stages run so far: 0)", "remote echo on lambda"]
    assert "echo" not in shell_project.runs()  # its shell ran "remotely" (the hook), not here


def test_without_hooks_a_remote_stage_fails_and_rents_nothing(shell_project) -> None:
    with FakeLambda() as fake:
        _remote_echo_on_lambda(shell_project, fake.url, budget=1000)
        engine, targets = open_engine(shell_project.root)
        with engine:
            [outcome] = engine.build(targets)
        assert outcome.status == "failed"
        assert "runs on backend 'lambda', but this engine was made without a remote runner" in str(outcome.error)
        assert fake.requests == []


def test_a_remote_runner_without_a_budget_check_is_not_accepted() -> None:
    with pytest.raises(ValueError, match="a remote runner needs a budget check"):
        EngineHooks(run_remote=lambda ctx, spec, config, staging: StageResult())


def test_the_engine_never_imports_the_compute_layer() -> None:
    """Not at module level, not inside a function: dependencies point down."""
    offenders = []
    for path in sorted((REPO / "kolmbuild/engine").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            offenders += [f"{path.name}:{node.lineno} {n}" for n in names
                          if n == "kolmbuild.compute" or n.startswith("kolmbuild.compute.") or n == "kolmbuild.wiring"]
    assert offenders == []
