"""A Predibase export, end to end: import, compile with the real pipeline, evaluate the artifact.

The fixture is shaped like a real export of a routing task (a Ludwig ``llm`` config with a text
input and a category output, a CSV with a ``split`` column, a downloaded PEFT adapter folder).
Its data is the support-router example's, so the compile is the real one: a classifier recipe
where it verifies, the bundled SmolLM2 (label-constrained) for the rest.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from click.testing import CliRunner

from kolmbuild.cli.main import cli
from tests.conftest import REPO
from tests.migrate.conftest import ADAPTER_CONFIG, write, write_adapter

LUDWIG_ROUTER = """
model_type: llm
base_model: HuggingFaceTB/SmolLM2-135M-Instruct
input_features:
  - name: message
    type: text
output_features:
  - name: queue
    type: category
prompt:
  template: "Route this support message: {message}"
adapter:
  type: lora
  r: 8
  alpha: 16
trainer:
  type: finetune
  epochs: 1
  learning_rate: 0.0002
  batch_size: 4
"""


def _export(tmp_path: Path) -> tuple[Path, Path]:
    ds = tmp_path / "export" / "dataset"
    ds.mkdir(parents=True)
    router = REPO / "examples" / "support-router"
    with (ds / "tickets.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["message", "queue", "split"])
        for split, name in (("train", "train.jsonl"), ("evaluation", "eval.jsonl")):
            for line in (router / name).read_text().splitlines():
                row = json.loads(line)
                w.writerow([row["input"], row["output"], split])
    adapter = write_adapter(tmp_path / "export" / "router-v1", LUDWIG_ROUTER,
                            {**ADAPTER_CONFIG, "base_model_name_or_path": "HuggingFaceTB/SmolLM2-135M-Instruct", "r": 8})
    return ds, adapter


def test_predibase_export_imports_compiles_and_evaluates(tmp_path: Path) -> None:
    ds, adapter = _export(tmp_path)
    proj = tmp_path / "proj"
    proj.mkdir()
    run = CliRunner().invoke
    r = run(cli, ["-C", str(proj), "import", "predibase", "--dataset", str(ds), "--adapter", str(adapter),
                  "--name", "router", "--json"])
    assert r.exit_code == 0, r.output
    task = (proj / "conf/task/router.yaml").read_text()
    assert "label" in task and "HuggingFaceTB/SmolLM2-135M-Instruct" in task
    write(proj / "kolmfile.yaml", """
        targets:
          router:
            task: router
            # the export's base is a hub id, and builds never download: run on the bundled copy
            overrides: ["task.base.name=smollm2", "task.train.enabled=never"]
    """)
    r = run(cli, ["-C", str(proj)])
    assert r.exit_code == 0, r.output
    art = proj / "artifacts/router-0.1.0.kolm"
    assert art.is_file()
    eval_file = next((proj / "data").rglob("eval.jsonl"))
    r = run(cli, ["eval", str(art), "--examples", str(eval_file), "--json", "--check"])
    assert r.exit_code == 0, r.output
    record = json.loads(r.stdout)
    assert record["kind"] == "kolm-eval" and record["summary"]["n"] == 60
    assert record["summary"]["pass_rate"] >= 0.9
    routes = {c["route"] for c in record["cases"]}
    assert "recipe" in routes  # the classifier answers most; the model the rest
