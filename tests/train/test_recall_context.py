"""Train/serve skew: when the artifact ships a recall index, each training prompt carries the
passages the runtime adds for that input (a real sqlite-vec index and the MiniLM embedder)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kolmbuild.config.models import RecallSpec, ShapeSpec
from kolmbuild.recall import build_index
from kolmbuild.runtime.parts import RuntimeParts
from kolmbuild.runtime.predictor import Predictor
from kolmbuild.runtime.prompt import ContextHit, build_messages
from kolmbuild.stages import train as stage
from kolmbuild.train.axolotl import write_preference_dataset, write_sft_dataset
from kolmbuild.train.encoding import IGNORE, encode_examples, encode_pairs

from .conftest import DESCRIPTION, CharChatML, MakeCtx

DOCS = {
    "hours.md": "The Lisbon office opens at 9:00 and closes at 17:30 on weekdays.",
    "pets.md": "Cats sleep for most of the day and hunt at dusk.",
    "rain.md": "In Bergen it rains on more than two hundred days a year.",
}
ROWS = [("When does the Lisbon office close?", "17:30"), ("What do cats do at dusk?", "hunt"),
        ("How often does it rain in Bergen?", "often"), ("When does the Lisbon office close?", "17:30")]
PAIRS = [("What do cats do at dusk?", "hunt", "sleep")]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("recall")
    (root / "corpus").mkdir()
    for name, text in DOCS.items():
        (root / "corpus" / name).write_text(text)
    db = root / "index.sqlite"
    build_index(sorted((root / "corpus").iterdir()), db, RecallSpec(), root / "cache")
    return db


def _with_index(make_ctx: MakeCtx, index: Path | None, top_k: int) -> Any:
    ctx = make_ctx(labels=[(i, o) for i, o in ROWS])
    params = {**ctx.params, "task.recall": {"top_k": top_k}}
    upstream = {**ctx.upstream, "recall": {"index.sqlite": index} if index else {}}
    return type(ctx)(**{**ctx.__dict__, "params": params, "upstream": upstream})


def test_training_prompts_carry_the_passages_the_runtime_adds(make_ctx: MakeCtx, index: Path) -> None:
    ctx = _with_index(make_ctx, index, top_k=2)
    rows, pairs = [(i, o) for i, o in ROWS], list(PAIRS)
    row_ctx, pair_ctx = stage.training_contexts(ctx, rows, pairs)
    task = {"name": "qa", "description": DESCRIPTION, "shape": {"input": "text", "output": "text"}, "recall": {"top_k": 2}}
    with Predictor.from_parts(RuntimeParts(target="qa", task=task, index=index)) as runtime:
        for (value, _), hits in zip(rows, row_ctx, strict=True):
            assert build_messages(DESCRIPTION, ShapeSpec(), value, hits) == runtime.messages(value)
            assert len(hits) == 2
        assert build_messages(DESCRIPTION, ShapeSpec(), PAIRS[0][0], pair_ctx[0]) == runtime.messages(PAIRS[0][0])
    assert row_ctx[0][0].source == "hours.md" and row_ctx[1][0].source == "pets.md" and row_ctx[2][0].source == "rain.md"
    assert row_ctx[0] == row_ctx[3]  # the same input, the same passages

    # the encoded prompt (loss-free part) holds the passage; the answer carries the loss alone
    enc = encode_examples(CharChatML(), DESCRIPTION, ShapeSpec(), rows, 4096, row_ctx)
    prompt = "".join(chr(t) for t, lab in zip(enc[0].input_ids, enc[0].labels, strict=True) if lab == IGNORE)
    answer = "".join(chr(t) for t, lab in zip(enc[0].input_ids, enc[0].labels, strict=True) if lab != IGNORE)
    assert "Context:\n[1] (hours.md) The Lisbon office opens at 9:00" in prompt and answer == "17:30<|im_end|>\n"
    pair = encode_pairs(CharChatML(), DESCRIPTION, ShapeSpec(), PAIRS, 4096, pair_ctx)[0]
    for side in (pair.chosen, pair.rejected):  # both sides of a preference pair carry it
        assert "(pets.md) Cats sleep" in "".join(chr(t) for t in side.input_ids)


def test_without_an_index_prompts_carry_no_context(make_ctx: MakeCtx) -> None:
    ctx = _with_index(make_ctx, None, top_k=2)
    row_ctx, pair_ctx = stage.training_contexts(ctx, list(ROWS), list(PAIRS))
    assert row_ctx == [()] * len(ROWS) and pair_ctx == [()]
    enc = encode_examples(CharChatML(), DESCRIPTION, ShapeSpec(), list(ROWS), 4096, row_ctx)
    assert "Context:" not in "".join(chr(t) for t in enc[0].input_ids)
    with pytest.raises(ValueError, match="3 recall contexts for 4 rows"):
        encode_examples(CharChatML(), DESCRIPTION, ShapeSpec(), list(ROWS), 4096, row_ctx[:3])


def test_axolotl_datasets_carry_the_same_context(tmp_path: Path) -> None:
    hit = ContextHit("Cats sleep for most of the day and hunt at dusk.", "pets.md", 0.9)
    sft = write_sft_dataset(tmp_path / "sft.jsonl", DESCRIPTION, ShapeSpec(), [(PAIRS[0][0], "hunt")], [(hit,)])
    row = json.loads(sft.read_text().splitlines()[0])
    assert row["messages"][:2] == build_messages(DESCRIPTION, ShapeSpec(), PAIRS[0][0], [hit])
    for rl in ("dpo", "orpo"):
        pref = write_preference_dataset(tmp_path / f"{rl}.jsonl", DESCRIPTION, ShapeSpec(), PAIRS, rl, [(hit,)])
        doc = json.loads(pref.read_text().splitlines()[0])
        prompt = doc["messages"] if rl == "dpo" else doc["chosen"][:2]
        assert prompt == build_messages(DESCRIPTION, ShapeSpec(), PAIRS[0][0], [hit])
