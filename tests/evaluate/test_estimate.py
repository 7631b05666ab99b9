"""The reference-machine model: deterministic latency and cost from routes, lengths and sizes."""

from __future__ import annotations

import pytest

from kolmbuild.evaluate import estimate as est


def test_tokens_counts_four_chars_per_token() -> None:
    assert est.tokens(None) == 0
    assert est.tokens("") == 0
    assert est.tokens("abcd") == 1
    assert est.tokens("abcde") == 2
    assert est.tokens({"a": 1}) == 2  # '{"a":1}' is 7 characters


def test_recipe_calls_cost_a_fixed_tiny_time() -> None:
    m = est.ModelProfile()
    assert est.call_ms("recipe", "x" * 1000, "y" * 1000, m) == est.RECIPE_MS
    assert est.call_ms("none", "x", None, m) == est.RECIPE_MS


def test_model_call_scales_with_weights_and_tokens() -> None:
    m = est.ModelProfile(weight_bytes=100_000_000)  # 100 MB: 10 ms per decoded token at 10 GB/s
    assert m.decode_ms_per_token == pytest.approx(10.0)
    ms = est.call_ms("model", "x" * 40, "y" * 20, m)  # prompt 32 + 10 tokens, output 5 + 1
    assert ms == pytest.approx(est.RECIPE_MS + est.MODEL_OVERHEAD_MS + 42 * 10.0 / 8 + 6 * 10.0)
    longer = est.call_ms("model", "x" * 40, "y" * 400, m)
    bigger = est.call_ms("model", "x" * 40, "y" * 20, est.ModelProfile(weight_bytes=400_000_000))
    assert longer > ms and bigger > ms


def test_model_call_with_recall_context() -> None:
    ctx = est.recall_context_tokens(top_k=4, chunk_chars=800)
    assert ctx == 800
    plain = est.ModelProfile(weight_bytes=80_000_000)
    grounded = est.ModelProfile(weight_bytes=80_000_000, context_tokens=ctx, recall=True)
    diff = est.call_ms("model", "q", "a", grounded) - est.call_ms("model", "q", "a", plain)
    assert diff == pytest.approx(est.RECALL_MS + ctx * 8.0 / 8)


def test_a_model_call_without_output_assumes_the_longest_answer() -> None:
    m = est.ModelProfile(weight_bytes=10_000_000, max_output_tokens=64)
    assert est.call_ms("model", "", None, m) == pytest.approx(
        est.RECIPE_MS + est.MODEL_OVERHEAD_MS + 32 * 1.0 / 8 + 64 * 1.0
    )


def test_local_cost_is_energy() -> None:
    # one second at 15 W is 15 J = 1/240000 kWh, at 0.15 USD/kWh
    assert est.local_call_usd(1000.0) == pytest.approx(15 / 3.6e6 * 0.15)


def test_teacher_price_from_task_or_default() -> None:
    task = est.teacher_price(3.0, 15.0, system_prompt="x" * 40)
    assert (task.source, task.price_in, task.price_out, task.system_tokens) == ("task", 3.0, 15.0, 10)
    # 10 system + 25 input tokens in, 5 out
    assert task.call_usd("i" * 100, "o" * 20) == pytest.approx((35 * 3.0 + 5 * 15.0) / 1e6)
    for free in (est.teacher_price(0.0, 0.0), est.teacher_price(None, None)):
        assert free.source == "default"
        assert (free.price_in, free.price_out) == (est.DEFAULT_TEACHER_PRICE_IN, est.DEFAULT_TEACHER_PRICE_OUT)
