"""Predictor: recipe route, model route (real SmolLM2 via llama.cpp), constraints, drafts, drift log."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from runtime_helpers import LABEL_TASK, MakeArtifact, TablePack, tamper_manifest

from kolmbuild.errors import ArtifactError
from kolmbuild.runtime import Predictor, RuntimeOptions, RuntimeParts
from kolmbuild.runtime.drift import drift_log_path, read_drift

OPTS = RuntimeOptions(n_ctx=1024, n_threads=1)


def parts(**kw: object) -> RuntimeParts:
    base: dict[str, object] = {"target": "demo", "task": LABEL_TASK, "options": OPTS}
    base.update(kw)
    return RuntimeParts(**base)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ recipes


def test_recipe_route_answers_covered_inputs_and_none_without_a_model(tmp_path: Path) -> None:
    log = tmp_path / "drift.jsonl"
    pack = TablePack({"great film": "positive", "awful": "negative"})
    with Predictor.from_parts(parts(recipes=pack, drift_log=log)) as p:
        hit = p.predict("great film")
        miss = p.predict("no idea")
    assert (hit.output, hit.route) == ("positive", "recipe")
    assert hit.latency_ms >= 0
    assert (miss.output, miss.route) == (None, "none")
    rows = read_drift(log)
    assert [(r["input"], r["route"], r["target"]) for r in rows] == [("no idea", "none", "demo")]


def test_batch_keeps_input_order_and_uses_the_batch_api(tmp_path: Path) -> None:
    pack = TablePack({"a": "positive", "c": "negative"})
    with Predictor.from_parts(parts(recipes=pack)) as p:
        preds = p.predict_batch(["a", "b", "c", "a"])
    assert [x.output for x in preds] == ["positive", None, "negative", "positive"]
    assert [x.route for x in preds] == ["recipe", "none", "recipe", "recipe"]
    assert pack.batch_calls == 1


def test_from_parts_without_drift_log_writes_nothing(_state_dir: Path) -> None:
    with Predictor.from_parts(parts(recipes=TablePack({}))) as p:
        assert p.predict("uncovered").route == "none"
    assert not any(_state_dir.rglob("*.jsonl"))


def test_bad_task_block_names_the_key() -> None:
    with pytest.raises(ArtifactError, match=r"task.shape.output"):
        Predictor.from_parts(parts(task={"name": "x", "shape": {"output": "poem"}}))


# ------------------------------------------------------------------------------------ open


def test_open_model_artifact_resolves_the_named_base_and_logs_drift(
    make_artifact: MakeArtifact, smollm2_sha: str
) -> None:
    art = make_artifact(base={"name": "smollm2", "sha256": smollm2_sha})
    with Predictor.open(art, options=OPTS) as p:
        assert p.has_model
        pred = p.predict("This was the worst meal I ever had. Terrible, rude staff.")
    assert pred.route == "model"
    assert pred.output in ("positive", "negative")  # the label grammar allows nothing else
    rows = read_drift(drift_log_path("demo"))
    assert len(rows) == 1 and rows[0]["route"] == "model" and rows[0]["artifact"].startswith("b")


def test_open_refuses_a_base_with_another_digest(make_artifact: MakeArtifact) -> None:
    art = make_artifact(base={"name": "smollm2", "sha256": "0" * 64})
    with pytest.raises(ArtifactError, match="not the one the artifact was built with"):
        Predictor.open(art)


def test_open_refuses_a_tampered_artifact(make_artifact: MakeArtifact) -> None:
    art = make_artifact(base={"name": "smollm2"})
    tamper_manifest(art, b"Classify the sentiment", b"Classify the sentimenT")
    with pytest.raises(ArtifactError, match="verification failed"):
        Predictor.open(art)


def test_open_refuses_another_signer(make_artifact: MakeArtifact, tmp_path: Path) -> None:
    from kolmbuild.artifact.keys import generate_keypair

    _, other_pub = generate_keypair(tmp_path / "other")
    art = make_artifact(base={"name": "smollm2"})
    with pytest.raises(ArtifactError, match="verification failed"):
        Predictor.open(art, pubkey=str(other_pub))


# ------------------------------------------------------------------------------------ model route


def test_json_schema_output_is_parsed_and_valid(smollm2: Path) -> None:
    task = {
        "name": "person",
        "description": "Extract the person's name and age.",
        "shape": {
            "output": "json",
            "schema": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                "required": ["name", "age"],
                "additionalProperties": False,
            },
            "max_output_tokens": 48,
        },
    }
    with Predictor.from_parts(parts(task=task, base_gguf=smollm2)) as p:
        pred = p.predict("Alice is 31 years old.")
    assert pred.route == "model"
    assert isinstance(pred.output, dict) and set(pred.output) == {"name", "age"}
    assert isinstance(pred.output["name"], str) and isinstance(pred.output["age"], int)


def test_output_regex_constrains_the_text(smollm2: Path) -> None:
    task = {"name": "code", "description": "Invent a product code.", "output_regex": r"[A-Z]{3}-\d{4}"}
    with Predictor.from_parts(parts(task=task, base_gguf=smollm2)) as p:
        out = p.predict("a red shoe").output
    assert re.fullmatch(r"[A-Z]{3}-\d{4}", out)


def test_recipe_drafts_are_used_and_do_not_change_greedy_output(smollm2: Path) -> None:
    task = {"name": "t", "description": "Reply with a JSON object with a key 'city'.", "shape": {"output": "json", "max_output_tokens": 24}}
    value = "Where is the Eiffel tower?"
    with Predictor.from_parts(parts(task=task, base_gguf=smollm2, options=RuntimeOptions(n_ctx=1024, n_threads=1, drafts=False))) as plain:
        expected = plain.generate(value).text
    # the table proposes exactly what greedy decoding produces: the draft must be asked and accepted
    drafts = {expected[:i]: expected[i:] for i in range(0, len(expected), 3)}
    pack = TablePack({}, drafts)
    with Predictor.from_parts(parts(task=task, base_gguf=smollm2, recipes=pack)) as drafted:
        got = drafted.generate(value).text
        stats = drafted.runner().draft
        assert stats is not None and stats.proposed_total > 0
    assert got == expected
    # llama.cpp asks the draft after each accepted step: accepted proposals mean far fewer asks than tokens
    asked = pack.drafts.asked
    assert asked and asked[0] == expected[: len(asked[0])]
    assert len(asked) < len(expected) // 3


def test_recall_hits_go_into_the_prompt(smollm2: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kolmbuild.recall import Hit

    class Idx:
        def search(self, text: str, k: int) -> list[Hit]:
            return [Hit("Paris is the capital of France.", "geo.md", 0.9)][:k]

        def close(self) -> None:
            pass

    monkeypatch.setattr("kolmbuild.recall.open_index", lambda path: Idx())
    db = tmp_path / "index.sqlite"
    db.write_bytes(b"")
    with Predictor.from_parts(parts(index=db, base_gguf=smollm2)) as p:
        msgs = p.messages("capital?")
    assert msgs[1]["content"] == "Context:\n[1] (geo.md) Paris is the capital of France.\n\ncapital?"
    assert "positive, negative" in msgs[0]["content"]


def test_drift_lines_are_canonical_json(tmp_path: Path) -> None:
    log = tmp_path / "d.jsonl"
    with Predictor.from_parts(parts(recipes=TablePack({}), drift_log=log)) as p:
        p.predict_batch(["x", "y"])
    lines = log.read_bytes().splitlines()
    assert [json.loads(line)["input"] for line in lines] == ["x", "y"]


def test_recall_from_a_real_index_inside_an_artifact(make_artifact: MakeArtifact, smollm2_sha: str, tmp_path: Path) -> None:
    from kolmbuild.config.models import RecallSpec
    from kolmbuild.recall import build_index

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "hours.md").write_text("The Lisbon office opens at 9:00 and closes at 17:30 on weekdays.")
    (corpus / "pets.md").write_text("Cats sleep for most of the day and hunt at dusk.")
    db = tmp_path / "index.sqlite"
    build_index(sorted(corpus.iterdir()), db, RecallSpec(), tmp_path / "cache")
    task = {**LABEL_TASK, "recall": {"top_k": 1}}
    art = make_artifact(task=task, components={"index": db}, base={"name": "smollm2", "sha256": smollm2_sha})
    with Predictor.open(art, options=OPTS, drift=False) as p:
        msgs = p.messages("When does the office in Lisbon close?")
    assert msgs[1]["content"].startswith("Context:\n[1] (hours.md) The Lisbon office opens at 9:00")
    assert "Cats" not in msgs[1]["content"]
