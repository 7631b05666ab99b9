"""The request cache, the USD budget and bounded concurrency, against a counting local server."""

from __future__ import annotations

from pathlib import Path

import pytest
from kolm_fake_teacher import ScriptedTeacher

from kolmbuild.config.models import TaskSpec, TeacherSpec
from kolmbuild.errors import BudgetExceeded
from kolmbuild.teacher import ChatRequest, Message, Teacher, estimate_cost
from kolmbuild.teacher.budget import Prices
from kolmbuild.teacher.cost import request_tokens


def spec(url: str, **kw: object) -> TeacherSpec:
    fields: dict[str, object] = {"model": "teach-1", "base_url": f"{url}/v1", "k": 1, "price_in_per_mtok": 1.0,
                                 "price_out_per_mtok": 10.0, "budget_usd": 1.0, "concurrency": 2}
    fields.update(kw)
    return TeacherSpec.model_validate(fields)


def requests(n: int, tag: str = "q") -> list[ChatRequest]:
    return [ChatRequest("openai", "teach-1", "sys", (Message("user", f"{tag}{i}"),), 0.7, 50, 0) for i in range(n)]


def echo(body: dict) -> str:
    return "A:" + body["messages"][-1]["content"]


def teacher(sp: TeacherSpec, cache: Path) -> Teacher:
    return Teacher(sp, cache, backoff_s=0.0, sleep=lambda s: None)


def test_a_rebuild_makes_zero_calls(scripted: tuple[ScriptedTeacher, str], tmp_path: Path) -> None:
    server, url = scripted
    server.answer = echo
    replies, stats = teacher(spec(url), tmp_path).run(requests(6))
    assert [r.text for r in replies] == [f"A:q{i}" for i in range(6)]
    assert (stats.calls, stats.cached, server.count) == (6, 0, 6)
    assert stats.spent_usd == pytest.approx(6 * Prices(1.0, 10.0).cost(100, 10))

    again, stats2 = teacher(spec(url), tmp_path).run(requests(6))
    assert [r.text for r in again] == [r.text for r in replies]
    assert (stats2.calls, stats2.cached, stats2.spent_usd, server.count) == (0, 6, 0.0, 6)
    assert stats2.labels_cost_usd == pytest.approx(stats.spent_usd)  # what the labels cost, once


def test_another_target_with_the_same_request_pays_nothing(scripted: tuple[ScriptedTeacher, str], tmp_path: Path) -> None:
    server, url = scripted
    teacher(spec(url), tmp_path).run(requests(3))
    # a second target: other budget, concurrency and endpoint settings, same requests
    _, stats = teacher(spec(url, budget_usd=5.0, concurrency=1, timeout_s=9), tmp_path).run(requests(4))
    assert (stats.calls, stats.cached, server.count) == (1, 3, 4)


def test_changed_request_is_a_miss(scripted: tuple[ScriptedTeacher, str], tmp_path: Path) -> None:
    server, url = scripted
    teacher(spec(url), tmp_path).run(requests(2))
    other = [ChatRequest("openai", "teach-1", "sys", (Message("user", "q0"),), 0.7, 50, 1)]  # sample 1
    _, stats = teacher(spec(url), tmp_path).run(other)
    assert stats.calls == 1 and server.count == 3


def test_budget_stops_before_the_call_that_could_exceed_it(scripted: tuple[ScriptedTeacher, str], tmp_path: Path) -> None:
    server, url = scripted
    reqs = requests(10)
    prices = Prices(1.0, 10.0)
    worst = prices.worst_case(reqs[0])
    actual = prices.cost(100, 10)
    assert actual < worst
    # room for exactly three calls at their worst case, with one at a time: the 4th would not fit
    budget = 3 * actual + worst - actual / 2
    with pytest.raises(BudgetExceeded) as info:
        teacher(spec(url, budget_usd=budget, concurrency=1), tmp_path).run(reqs)
    assert info.value.exit_code == 2
    assert "task.teacher.budget_usd" in str(info.value)
    assert server.count == 3
    # what was paid for is cached: a bigger budget resumes without paying twice
    _, stats = teacher(spec(url, budget_usd=1.0, concurrency=1), tmp_path).run(reqs)
    assert (stats.cached, stats.calls, server.count) == (3, 7, 10)


def test_budget_holds_with_concurrent_calls(scripted: tuple[ScriptedTeacher, str], tmp_path: Path) -> None:
    server, url = scripted
    server.delay_s = 0.05
    reqs = requests(12)
    worst = Prices(1.0, 10.0).worst_case(reqs[0])
    budget = 4.5 * worst
    with pytest.raises(BudgetExceeded):
        teacher(spec(url, budget_usd=budget, concurrency=3), tmp_path).run(reqs)
    paid = server.count * Prices(1.0, 10.0).cost(100, 10)
    assert 0 < server.count < 12 and paid <= budget


def test_concurrency_is_bounded(scripted: tuple[ScriptedTeacher, str], tmp_path: Path) -> None:
    server, url = scripted
    server.delay_s = 0.25
    teacher(spec(url, concurrency=3), tmp_path).run(requests(9))
    assert server.max_active == 3


def test_zero_budget_with_free_teacher_still_runs(scripted: tuple[ScriptedTeacher, str], tmp_path: Path) -> None:
    server, url = scripted
    _, stats = teacher(spec(url, budget_usd=0.0, price_in_per_mtok=0.0, price_out_per_mtok=0.0), tmp_path).run(requests(2))
    assert stats.calls == 2 and stats.spent_usd == 0.0


def _task(**teacher: object) -> TaskSpec:
    t: dict[str, object] = {"model": "m", "price_in_per_mtok": 3.0, "price_out_per_mtok": 15.0, "k": 4, "max_tokens": 100}
    t.update(teacher)
    return TaskSpec.model_validate({"name": "t", "examples": "x.jsonl", "description": "Say it.", "teacher": t})


def test_estimate_cost_follows_prices_k_and_examples() -> None:
    task = _task()
    tokens_in, tokens_out = request_tokens(task)
    assert tokens_out == 100
    one = (tokens_in * 3.0 + tokens_out * 15.0) / 1e6
    assert estimate_cost(task, 10) == pytest.approx(10 * 4 * one)
    assert estimate_cost(_task(k=8), 10) == pytest.approx(2 * estimate_cost(task, 10))
    assert estimate_cost(task, 0) == 0.0
    no_teacher = TaskSpec.model_validate({"name": "t", "examples": "x.jsonl"})
    assert estimate_cost(no_teacher, 100) == 0.0


def test_estimate_cost_counts_recalled_passages() -> None:
    plain = _task()
    grounded = plain.model_copy(update={"corpus": "docs"})
    extra_in = request_tokens(grounded)[0] - request_tokens(plain)[0]
    assert extra_in == pytest.approx(plain.recall.top_k * plain.recall.chunk_chars / 3, abs=1)
    assert estimate_cost(grounded, 5) > estimate_cost(plain, 5)
