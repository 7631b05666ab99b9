from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from kolmbuild.config.models import TaskSpec
from kolmbuild.errors import ConfigError, UserInputError
from kolmbuild.migrate import import_predibase


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _cli(*args: str):
    from kolmbuild.cli.main import cli

    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_csv_export_imports_and_task_validates(tmp_path: Path, csv_export: tuple[Path, Path]) -> None:
    ds, adapter = csv_export
    root = tmp_path / "proj"
    root.mkdir()
    res = import_predibase(ds, adapter, root=root)

    assert res.name == "summarizer-v3"
    assert res.task_path == root / "conf/task/summarizer-v3.yaml"
    assert res.written == {"train": 4, "eval": 2}
    reasons = sorted(s.reason for s in res.skipped)
    assert reasons == ["empty 'completion'", "split 'holdout' is not train/evaluation/test"]
    assert {s.line for s in res.skipped} == {6, 10}  # header is line 1; the multi-line record spans 4-5

    train = _jsonl(res.train_path)
    assert train[2] == {"input": "Summarize: The server rebooted twice,\nthen recovered at noon.",
                        "output": "Server recovered at noon."}  # fmt: skip
    assert _jsonl(res.eval_path)[0] == {
        "input": "Summarize: Budget approved for Q3.",
        "output": "Q3 budget approved.",
    }

    spec = TaskSpec.model_validate(yaml.safe_load(res.task_path.read_text()))
    assert spec.examples == "data/summarizer-v3/train.jsonl" and (root / spec.examples).is_file()
    assert spec.eval == "data/summarizer-v3/eval.jsonl"
    assert spec.base.name == "mistralai/Mistral-7B-v0.1" and spec.base.quantize == "int4"
    assert (spec.train.rank, spec.train.alpha, spec.train.epochs, spec.train.lr) == (16, 32, 3.0, 0.0002)
    assert spec.train.batch_size == 1 and spec.train.target_modules == ["q_proj", "v_proj"]
    assert spec.shape.input == "text" and spec.shape.output == "text" and spec.shape.max_output_tokens == 64
    assert "trainer.gradient_accumulation_steps" in res.ignored
    assert "input_features[0] 'prompt'.preprocessing" in res.ignored
    assert any("hub id" in n for n in res.notes)
    # nothing but the three outputs was left behind (no temp files)
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == [
        "conf/task/summarizer-v3.yaml", "data/summarizer-v3/eval.jsonl", "data/summarizer-v3/train.jsonl",
    ]  # fmt: skip


def test_parquet_per_split_files_category_output_and_template(
    tmp_path: Path, parquet_export: tuple[Path, Path]
) -> None:
    ds, adapter = parquet_export
    res = import_predibase(ds, adapter, root=tmp_path, out=Path("conf/task/router.yaml"))
    assert res.name == "router"
    assert res.written == {"train": 4, "eval": 2}
    assert [str(s).split(": ", 1)[1] for s in res.skipped] == ["empty 'subject'"]
    assert res.skipped[0].path.name == "train.parquet" and res.skipped[0].line == 5
    spec = TaskSpec.model_validate(yaml.safe_load(res.task_path.read_text()))
    assert spec.shape.input == "json" and spec.shape.output == "label"
    assert spec.shape.labels == ["billing", "tech"]
    assert spec.train.rank == 8 and spec.train.alpha == 16 and spec.train.epochs == 2.0
    assert spec.train.batch_size == 4  # "auto" is not carried over: the default stays
    assert "trainer.batch_size='auto'" in res.ignored
    assert "Route this support ticket" in spec.description
    assert _jsonl(res.train_path)[0] == {
        "input": {"subject": "Refund", "body": "Charged twice"},
        "output": "billing",
    }


def test_adapter_config_wins_over_ludwig_config_with_a_note(
    tmp_path: Path, csv_export: tuple[Path, Path]
) -> None:
    ds, adapter = csv_export
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    cfg.update(r=32, base_model_name_or_path="mistralai/Mistral-7B-Instruct-v0.2", use_dora=True)
    (adapter / "adapter_config.json").write_text(json.dumps(cfg))
    res = import_predibase(ds, adapter, root=tmp_path)
    assert res.task["train"]["rank"] == 32 and res.task["train"]["preset"] == "dora"
    assert res.task["base"]["name"] == "mistralai/Mistral-7B-Instruct-v0.2"
    assert any(n.startswith("rank: config says 16") for n in res.notes)
    assert any(n.startswith("base: config says") for n in res.notes)


def test_without_ludwig_config_uses_prompt_completion(tmp_path: Path, csv_export: tuple[Path, Path]) -> None:
    ds, adapter = csv_export
    (adapter / "config.yaml").unlink()
    res = import_predibase(ds, adapter, root=tmp_path, name="plain")
    assert res.written == {"train": 4, "eval": 2}
    assert res.task["train"] == {
        "rank": 16,
        "alpha": 32,
        "dropout": 0.05,
        "target_modules": ["q_proj", "v_proj"],
    }
    assert any("prompt -> completion" in n for n in res.notes)


def test_no_split_column_means_all_train_no_eval(tmp_path: Path, write_file) -> None:
    ds = write_file(tmp_path / "ds" / "data.csv", 'prompt,completion\n"a, b",c\nd,e\n').parent
    res = import_predibase(ds, None, root=tmp_path / "p", name="t")
    assert res.written == {"train": 2, "eval": 0} and res.eval_path is None
    assert "eval" not in res.task
    assert _jsonl(res.train_path)[0] == {"input": "a, b", "output": "c"}


def test_unsupported_ludwig_features_are_named_exit_2(
    tmp_path: Path, csv_export: tuple[Path, Path], make_adapter, unsupported_config: str
) -> None:
    ds, _ = csv_export
    adapter = make_adapter(tmp_path / "bad", unsupported_config)
    root = tmp_path / "proj"
    with pytest.raises(UserInputError) as err:
        import_predibase(ds, adapter, root=root)
    msg = str(err.value)
    assert "input_features[1] 'photo': image features are not supported" in msg
    assert "input_features[2] 'history': encoder ensembles are not supported" in msg
    assert not root.exists()

    r = _cli("-C", str(tmp_path), "import", "predibase", "--dataset", str(ds), "--adapter", str(adapter))
    assert r.exit_code == 2
    assert "image features are not supported" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "conf").exists()


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("model_type: gbm\ninput_features: [{name: prompt, type: text}]\noutput_features: [{name: completion, type: text}]\n",
         "model_type 'gbm' is not supported"),
        ("model_type: llm\ninput_features: [{name: prompt, type: text}]\noutput_features: [{name: completion, type: text}]\n"
         "adapter: {type: adalora}\n", "adapter type 'adalora' is not supported"),
        ("model_type: llm\ninput_features: [{name: clip, type: audio}]\n"
         "output_features: [{name: completion, type: text, decoder: {type: x}}, {name: box, type: vector}]\n",
         "audio features are not supported"),
        ("model_type: llm\ninput_features: [{name: prompt, type: text, features: [{name: a}]}]\n"
         "output_features: [{name: completion, type: text}]\n", "nested features (features) are not supported"),
    ],
)  # fmt: skip
def test_other_unsupported_configs(
    tmp_path: Path, csv_export: tuple[Path, Path], make_adapter, snippet: str, expected: str
) -> None:
    ds, _ = csv_export
    adapter = make_adapter(tmp_path / "a", snippet)
    with pytest.raises(UserInputError, match=re.escape(expected)):
        import_predibase(ds, adapter, root=tmp_path / "p")


def test_invalid_task_config_is_refused_before_writing(tmp_path: Path, csv_export: tuple[Path, Path]) -> None:
    ds, adapter = csv_export
    with pytest.raises(ConfigError, match="name"):
        import_predibase(ds, adapter, root=tmp_path / "p", name="has space")
    assert not (tmp_path / "p").exists()


def test_existing_task_needs_force(tmp_path: Path, csv_export: tuple[Path, Path]) -> None:
    ds, adapter = csv_export
    root = tmp_path / "p"
    first = import_predibase(ds, adapter, root=root)
    first.train_path.write_text("old\n")
    with pytest.raises(UserInputError, match="already exists"):
        import_predibase(ds, adapter, root=root)
    assert first.train_path.read_text() == "old\n"
    import_predibase(ds, adapter, root=root, force=True)
    assert len(_jsonl(first.train_path)) == 4


def test_cli_json_and_text(tmp_path: Path, csv_export: tuple[Path, Path]) -> None:
    ds, adapter = csv_export
    root = tmp_path / "proj"
    root.mkdir()
    r = _cli(
        "-C", str(root), "import", "predibase", "--dataset", str(ds), "--adapter", str(adapter), "--json"
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["written"] == {"train": 4, "eval": 2} and data["skipped"] == 2
    assert {row["reason"] for row in data["skipped_rows"]} == {
        "empty 'completion'", "split 'holdout' is not train/evaluation/test"}  # fmt: skip
    r = _cli("-C", str(root), "import", "predibase", "--dataset", str(ds), "--adapter", str(adapter),
             "--name", "again", "--data-dir", "seeds/again")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "train: 4 rows -> seeds/again/train.jsonl" in r.output
    assert "skipped: 2 rows" in r.output and "meeting_summaries.csv:line 6: empty 'completion'" in r.output
    assert (
        yaml.safe_load((root / "conf/task/again.yaml").read_text())["examples"] == "seeds/again/train.jsonl"
    )


def test_missing_column_names_the_file(tmp_path: Path, write_file) -> None:
    ds = write_file(tmp_path / "ds" / "train.csv", "question,answer\nq,a\n").parent
    with pytest.raises(UserInputError, match=r"train.csv: no column 'prompt' for the input"):
        import_predibase(ds, None, root=tmp_path / "p", name="t")
