"""Pure pieces of the trainer: schedule, truncation, masking, losses, presets, auto decision."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from kolmbuild.config.models import ShapeSpec, TrainSpec
from kolmbuild.errors import UserInputError
from kolmbuild.train.decision import decide
from kolmbuild.train.encoding import IGNORE, encode_example, fit
from kolmbuild.train.losses import answer_logps, dpo_loss, orpo_loss, sft_loss
from kolmbuild.train.schedule import build_schedule, phase_batches
from kolmbuild.train.settings import settings_from_spec

from .conftest import CharChatML

# ------------------------------------------------------------------ schedule


def test_each_epoch_visits_every_row_once_in_a_seeded_order() -> None:
    steps = phase_batches("sft", 10, 6, 4, seed=3)  # 3 batches per epoch (4, 4, 2), two epochs
    assert [len(s.indices) for s in steps] == [4, 4, 2, 4, 4, 2]
    for epoch in (steps[:3], steps[3:]):
        assert sorted(i for s in epoch for i in s.indices) == list(range(10))
    assert steps[:3] != steps[3:]  # a fresh permutation per epoch
    assert phase_batches("sft", 10, 6, 4, seed=3) == steps  # deterministic
    assert phase_batches("sft", 10, 6, 4, seed=4) != steps


def test_schedule_lengths_and_phases() -> None:
    assert len(build_schedule(10, 0, preference="none", epochs=2, batch_size=4, max_steps=None, seed=0)) == 5
    assert len(build_schedule(10, 0, preference="none", epochs=2, batch_size=4, max_steps=7, seed=0)) == 7
    dpo = build_schedule(8, 4, preference="dpo", epochs=1, batch_size=4, max_steps=None, seed=0)
    assert [s.phase for s in dpo] == ["sft", "sft", "dpo"]
    orpo = build_schedule(8, 4, preference="orpo", epochs=1, batch_size=2, max_steps=None, seed=0)
    assert [s.phase for s in orpo] == ["orpo", "orpo"]
    # asked for a preference but no pairs: supervised only
    assert {s.phase for s in build_schedule(8, 0, preference="orpo", epochs=1, batch_size=4, max_steps=None, seed=0)} == {"sft"}
    assert build_schedule(0, 0, preference="none", epochs=1, batch_size=4, max_steps=None, seed=0) == []


def test_fit_keeps_the_answer_and_cuts_the_prompt_start() -> None:
    p, a = fit(list(range(10)), [100, 101, 102], 8)
    assert a == [100, 101, 102] and p == list(range(5, 10))
    p, a = fit([1, 2], list(range(20)), 8)  # long answer: it keeps at least half of the budget
    assert len(p) + len(a) == 8 and a == list(range(6)) and p == [1, 2]
    assert fit([1], [2], 8) == ([1], [2])


# ------------------------------------------------------------------ masking with a ChatML tokenizer




def test_only_the_answer_and_its_end_of_turn_carry_loss() -> None:
    ex = encode_example(CharChatML(), "Shout it.", ShapeSpec(), "hi", "HI", 4096)
    answer = "".join(chr(t) for t, lab in zip(ex.input_ids, ex.labels, strict=True) if lab != IGNORE)
    assert answer == "HI<|im_end|>\n"
    prompt = "".join(chr(t) for t, lab in zip(ex.input_ids, ex.labels, strict=True) if lab == IGNORE)
    assert prompt.startswith("<|im_start|>system\nShout it.") and "<|im_start|>user\nhi<|im_end|>" in prompt
    # a JSON answer is rendered as the runtime decodes it: sorted keys
    js = encode_example(CharChatML(), "", ShapeSpec(output="json"), {"q": 1}, {"b": 2, "a": 1}, 4096)
    assert "".join(chr(t) for t, lab in zip(js.input_ids, js.labels, strict=True) if lab != IGNORE).startswith('{"a": 1, "b": 2}')


def test_a_tokenizer_without_chat_template_is_refused() -> None:
    tok = CharChatML()
    tok.chat_template = None  # type: ignore[assignment]
    with pytest.raises(UserInputError, match="chat template"):
        encode_example(tok, "", ShapeSpec(), "a", "b", 64)


# ------------------------------------------------------------------ losses


def _logits_and_labels() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    labels = torch.tensor([[IGNORE, IGNORE, 3, 4, 1], [IGNORE, 2, 2, IGNORE, IGNORE]])
    return logits, labels


def test_sft_loss_is_cross_entropy_on_answer_tokens_only() -> None:
    logits, labels = _logits_and_labels()
    expected = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 7), labels[:, 1:].reshape(-1), ignore_index=IGNORE)
    assert torch.allclose(sft_loss(logits, labels), expected)
    total, count = answer_logps(logits, labels)
    assert count.tolist() == [3, 2]


def test_dpo_loss() -> None:
    zero = torch.zeros(3)
    assert math.isclose(dpo_loss(zero, zero, zero, zero, 0.1).item(), math.log(2), rel_tol=1e-6)  # policy == reference
    better = dpo_loss(torch.full((3,), 2.0), torch.full((3,), -2.0), zero, zero, 0.1)
    worse = dpo_loss(torch.full((3,), -2.0), torch.full((3,), 2.0), zero, zero, 0.1)
    assert better.item() < math.log(2) < worse.item()


def test_orpo_loss_prefers_a_more_likely_chosen_answer() -> None:
    counts = torch.tensor([4, 4])
    good = orpo_loss(torch.tensor([-1.0, -1.0]), counts, torch.tensor([-12.0, -12.0]), counts, 0.1)
    bad = orpo_loss(torch.tensor([-12.0, -12.0]), counts, torch.tensor([-1.0, -1.0]), counts, 0.1)
    assert torch.isfinite(good) and torch.isfinite(bad) and good.item() < bad.item()
    # the supervised part is the chosen answers' mean NLL per token
    no_odds = orpo_loss(torch.tensor([-2.0, -6.0]), counts, torch.tensor([-2.0, -6.0]), counts, 0.0)
    assert math.isclose(no_odds.item(), 1.0, rel_tol=1e-6)


# ------------------------------------------------------------------ presets and decision


@pytest.mark.parametrize(
    ("preset", "neftune", "loraplus", "dora", "rslora"),
    [
        ("none", False, False, False, False),
        ("neftune", True, False, False, False),
        ("loraplus", False, True, False, False),
        ("dora", False, False, True, False),
        ("rslora", False, False, False, True),
        ("quality", True, True, False, True),
    ],
)
def test_presets(preset: str, neftune: bool, loraplus: bool, dora: bool, rslora: bool) -> None:
    s = settings_from_spec(TrainSpec(preset=preset, rank=16, alpha=32))  # type: ignore[arg-type]
    assert (s.neftune_alpha is not None, s.loraplus_lr_ratio is not None, s.lora.use_dora, s.lora.use_rslora) == (
        neftune, loraplus, dora, rslora)
    assert s.lora.scale == (32 / 4 if rslora else 2.0)


@pytest.mark.parametrize(
    ("enabled", "report", "min_acc", "train"),
    [
        ("never", {"coverage": 0.1, "accuracy": 0.1}, 0.95, False),
        ("always", {"coverage": 1.0, "accuracy": 1.0}, 0.95, True),
        ("auto", {"coverage": 0.97, "accuracy": 0.99}, 0.95, False),
        ("auto", {"coverage": 0.95, "accuracy": 0.95}, 0.95, False),  # the boundary skips
        ("auto", {"coverage": 0.94, "accuracy": 1.0}, 0.95, True),
        ("auto", {"coverage": 1.0, "accuracy": 0.90}, 0.95, True),  # covered but below min_accuracy
        ("auto", {"coverage": 1.0, "accuracy": 0.90}, 0.85, False),
        ("auto", {"recipes": []}, 0.95, True),
        ("auto", {"coverage": 0.0, "accuracy": None}, 0.95, True),  # decompose writes null when nothing is covered
        ("auto", {"coverage": 1.0, "accuracy": None}, 0.95, True),
        ("auto", None, 0.95, True),
    ],
)
def test_auto_skip_decision(enabled: str, report: dict[str, Any] | None, min_acc: float, train: bool) -> None:
    decision = decide(enabled, report, min_acc)
    assert decision.train is train and decision.reason
