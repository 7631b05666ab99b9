"""The evaluate stage inside a real build: the gate blocks a bad build, a good one ships with its K.

The project replaces the stages before evaluate with shell rules that copy fixture files (the real
ingest/distill/decompose/train have their own tests); evaluate and package are the built-in ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kolmbuild.cli.main import cli
from tests.conftest import write

PHONES = [(f"call {i} at 555-01{i:02d} today", f"call {i} at [PHONE] today") for i in range(8)]


class FixtureProject:
    """kolmfile + task + shell rules for ingest/recall/distill/decompose/train reading fx/."""

    def __init__(self, root: Path) -> None:
        self.root = root
        write(root / "kolmfile.yaml", """
            version: 1
            defaults:
              backend: local-cpu
            targets:
              phones:
                task: phones
        """)
        write(root / "conf/task/phones.yaml", """
            name: phones
            description: Replace phone numbers with [PHONE].
            examples: data/train.jsonl
            eval: data/eval.jsonl
        """)
        write(root / "conf/gates/tiny.yaml", "K_min: 0.1\nsize_mb_max: 0.000001\n")
        rows = "".join(json.dumps({"id": i, "input": a, "output": b}) + "\n" for i, (a, b) in enumerate(PHONES))
        write(root / "data/train.jsonl", rows)
        write(root / "data/eval.jsonl", rows)
        from kolmbuild.verifier import Verifier

        self.fixture("verifier.json", Verifier(mode="exact").to_json())
        self.fixture("train.json", {"trained": False, "reason": "fixture", "base": None})
        rules = {
            "ingest": ('[task.examples, task.eval]', "[train.jsonl, heldout.jsonl, ingest.json]",
                       'cp "$KOLM_IN_TASK_EXAMPLES" "$KOLM_OUT/train.jsonl"; cp "$KOLM_IN_TASK_EVAL" "$KOLM_OUT/heldout.jsonl"; echo "{}" > "$KOLM_OUT/ingest.json"'),
            "recall": ("[]", "[recall.json]", 'echo "{}" > "$KOLM_OUT/recall.json"'),
            "distill": ("[]", "[verifier.json, distill.json]",
                        'cp fx/verifier.json "$KOLM_OUT/"; echo "{}" > "$KOLM_OUT/distill.json"'),
            "decompose": ("[]", '["recipes.json?", decompose.json]',
                          'if [ -f fx/recipes.json ]; then cp fx/recipes.json "$KOLM_OUT/"; fi; echo "{}" > "$KOLM_OUT/decompose.json"'),
            "train": ("[]", "[train.json]", 'cp fx/train.json "$KOLM_OUT/"'),
        }  # fmt: skip
        after = {"recall": "[]", "ingest": "[]", "distill": "[ingest, recall]", "decompose": "[ingest, distill]",
                 "train": "[ingest, distill, decompose]"}  # fmt: skip
        for name, (inputs, outputs, shell) in rules.items():
            write(root / f"rules/{name}.yaml", f"name: {name}\nversion: 1\nafter: {after[name]}\ninputs: {inputs}\n"
                  f"outputs: {outputs}\nshell: {json.dumps(shell)}\n")  # fmt: skip

    def fixture(self, name: str, doc: Any) -> None:
        write(self.root / "fx" / name, json.dumps(doc))

    @property
    def artifact(self) -> Path:
        return self.root / "artifacts/phones-0.1.0.kolm"

    def build(self, *args: str):
        return CliRunner().invoke(cli, ["-C", str(self.root), *args])


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FixtureProject:
    monkeypatch.setenv("KOLM_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    return FixtureProject(tmp_path / "proj")


def test_the_gate_blocks_a_build_whose_recipes_answer_nothing(project: FixtureProject) -> None:
    r = project.build()
    assert r.exit_code == 1, r.output
    assert "failed its gate" in r.stderr and "short: A, V" in r.stderr, r.stderr
    assert "A (accuracy) 0.0000 < 0.70" in r.stderr and "K 0.4500 < K_min 0.70" in r.stderr
    assert "failing held-out ids: 0, 1, 2" in r.stderr
    assert "Traceback" not in r.output
    assert not project.artifact.exists()
    assert not list(project.root.glob("artifacts/*"))  # nothing half-written either


def test_a_size_limit_fails_the_gate_by_name(project: FixtureProject) -> None:
    r = project.build("gates=tiny")  # K_min 0.1 is met (K = 0.45); the 1-byte size limit is not
    assert r.exit_code == 1, r.output
    assert "short: size_mb_max" in r.stderr and "> size_mb_max 1e-06" in r.stderr, r.stderr
    assert not project.artifact.exists()



def recipe_pack(rows: list[tuple[str, str]], kind: str) -> dict[str, Any]:
    """A recipe pack of one kind learned (pinned API) from ``rows``."""
    from kolmbuild.config.models import RecipesSpec, ShapeSpec
    from kolmbuild.data import Example
    from kolmbuild.recipes import learn
    from kolmbuild.verifier import Verifier

    ex = [Example(i, a, b) for i, (a, b) in enumerate(rows)]
    spec = RecipesSpec.model_validate({"kinds": [kind], "drafts": False})
    return learn(ex, ex, Verifier(mode="exact"), spec, ShapeSpec()).to_json()


def oneline(text: str) -> str:
    """The build log with rich's line wrapping undone."""
    return " ".join(text.split())




def test_a_good_build_ships_its_k_score_and_eval_reproduces_it(project: FixtureProject) -> None:
    project.fixture("recipes.json", recipe_pack(PHONES, "span"))
    r = project.build()
    assert r.exit_code == 0, r.output
    assert "K 1.0000 (A 1.000 S 1.000 L 1.000 C 1.000 V 1.000) 8/8 passed, gate passed" in oneline(r.stderr)
    from kolmbuild.artifact import open_artifact

    with open_artifact(project.artifact) as art:
        shipped = json.loads(art.read("eval"))
        assert art.manifest["metrics"]["K"] == 1.0
        assert art.manifest["metrics"]["terms"] == {"A": 1, "S": 1, "L": 1, "C": 1, "V": 1}
    assert shipped["passed"] is True and shipped["cases"]["by_route"] == {"recipe": {"n": 8, "passed": 8}}
    assert shipped["size"]["external_bytes"] == 0 and set(shipped["size"]["components"]) == {"heldout", "recipes", "verifier"}
    # re-scoring the artifact on its own held-out set gives the very same K-score document
    ev = CliRunner().invoke(cli, ["eval", str(project.artifact), "--examples", str(project.root / "data/eval.jsonl"), "--json"])
    assert ev.exit_code == 0, ev.output
    assert json.loads(ev.stdout)["kscore"] == shipped
    # and a rebuild from an empty cache writes byte-identical eval.json (no clocks in it)
    import shutil

    shutil.rmtree(project.root / "cache")
    assert project.build().exit_code == 0
    with open_artifact(project.artifact) as art:
        assert json.loads(art.read("eval")) == shipped


def test_recipes_that_miss_cases_lower_accuracy_and_coverage(project: FixtureProject) -> None:
    # a lookup table of the first five rows: the other three go unanswered
    project.fixture("recipes.json", recipe_pack(PHONES[:5], "lookup"))
    r = project.build("gates=lenient")
    assert r.exit_code == 0, r.output
    assert "K 0.7938 (A 0.625 S 1.000 L 1.000 C 1.000 V 0.625) 5/8 passed, gate passed" in oneline(r.stderr)
    strict = project.build("gates=default")  # K 0.7938 >= 0.70 passes too; strict's 0.90 does not
    assert strict.exit_code == 0
    r = project.build("gates=strict")
    assert r.exit_code == 1 and "short: A, V" in r.stderr, r.stderr

@pytest.mark.slow
def test_the_gate_blocks_a_build_whose_model_fails(project: FixtureProject) -> None:
    """No recipes; train.json names the bundled SmolLM2 (untrained), so every case goes to the
    model, which does not know the task: accuracy is short, the build fails, nothing ships."""
    pytest.importorskip("llama_cpp")
    rows = "".join(json.dumps({"id": i, "input": a, "output": b}) + "\n" for i, (a, b) in enumerate(PHONES[:4]))
    write(project.root / "data/eval.jsonl", rows)
    from kolmbuild.models.resolve import bundled_smollm2, file_sha256

    gguf = bundled_smollm2()
    base = {"name": "smollm2", "sha256": file_sha256(gguf)}
    project.fixture("train.json", {"trained": False, "reason": "fixture", "base": base})
    write(project.root / "conf/task/phones.yaml", """
        name: phones
        description: Replace phone numbers with [PHONE].
        examples: data/train.jsonl
        eval: data/eval.jsonl
        shape:
          max_output_tokens: 16
    """)
    r = project.build()
    assert r.exit_code == 1, r.output
    assert "failed its gate" in r.stderr and "short: A" in r.stderr, r.stderr
    assert "S (size)" in r.stderr  # the 98 MB base the artifact would need counts against S
    assert not project.artifact.exists()
