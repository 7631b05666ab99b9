"""Fixtures shaped like real Predibase exports.

Predibase fine-tunes from a Ludwig config (``model_type: llm``, ``input_features``/``output_features``,
``adapter: {type: lora, r, alpha, dropout}``, ``trainer: {type: finetune, epochs, learning_rate,
batch_size}``); its datasets are CSV/Parquet with the SFT columns ``prompt``/``completion`` and an
optional ``split`` column (``train``/``evaluation``). Downloaded adapters are PEFT folders:
``adapter_config.json`` + ``adapter_model.safetensors``.
"""

from __future__ import annotations

import csv
import json
import textwrap
from pathlib import Path

import pytest

LUDWIG_LLM = """
model_type: llm
base_model: mistralai/Mistral-7B-v0.1
input_features:
  - name: prompt
    type: text
    preprocessing:
      max_sequence_length: 1024
output_features:
  - name: completion
    type: text
prompt:
  template: "{prompt}"
adapter:
  type: lora
  r: 16
  alpha: 32
  dropout: 0.05
quantization:
  bits: 4
trainer:
  type: finetune
  epochs: 3
  learning_rate: 0.0002
  batch_size: 1
  gradient_accumulation_steps: 16
  learning_rate_scheduler:
    warmup_fraction: 0.03
generation:
  max_new_tokens: 64
backend:
  type: local
"""

ADAPTER_CONFIG = {
    "alpha_pattern": {},
    "auto_mapping": None,
    "base_model_name_or_path": "mistralai/Mistral-7B-v0.1",
    "bias": "none",
    "fan_in_fan_out": False,
    "inference_mode": True,
    "init_lora_weights": True,
    "lora_alpha": 32,
    "lora_dropout": 0.05,
    "modules_to_save": None,
    "peft_type": "LORA",
    "r": 16,
    "rank_pattern": {},
    "revision": None,
    "target_modules": ["q_proj", "v_proj"],
    "task_type": "CAUSAL_LM",
    "use_dora": False,
    "use_rslora": False,
}

# prompt, completion, split — one multi-line prompt, one empty completion, one unknown split value
CSV_ROWS = [
    ("Summarize: The meeting moved to Tuesday.", "Meeting now Tuesday.", "train"),
    ("Summarize: Invoice 1142 was paid in full.", "Invoice 1142 paid.", "train"),
    ("Summarize: The server rebooted twice,\nthen recovered at noon.", "Server recovered at noon.", "train"),
    ("Summarize: Shipping is delayed by a week.", "", "train"),
    ("Summarize: The new hire starts Monday.", "New hire starts Monday.", "train"),
    ("Summarize: Budget approved for Q3.", "Q3 budget approved.", "evaluation"),
    ("Summarize: The office closes at 5pm Friday.", "Office closes 5pm Friday.", "evaluation"),
    ("Summarize: Password reset emails are failing.", "Reset emails failing.", "holdout"),
]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def write_adapter(
    folder: Path, config_yaml: str | None = LUDWIG_LLM, adapter_cfg: dict | None = None
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_config.json").write_text(json.dumps(adapter_cfg or ADAPTER_CONFIG, indent=2))
    (folder / "adapter_model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    if config_yaml is not None:
        write(folder / "config.yaml", config_yaml)
    return folder


@pytest.fixture
def csv_export(tmp_path: Path) -> tuple[Path, Path]:
    """A single CSV with a split column (Predibase's shape) and a downloaded LoRA adapter folder."""
    ds = tmp_path / "export" / "dataset"
    ds.mkdir(parents=True)
    with (ds / "meeting_summaries.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["prompt", "completion", "split"])
        w.writerows(CSV_ROWS)
    adapter = write_adapter(tmp_path / "export" / "summarizer-v3")
    return ds, adapter


PARQUET_CONFIG = """
model_type: llm
base_model: meta-llama/Llama-3.2-1B-Instruct
input_features:
  - name: ticket
    type: text
output_features:
  - name: queue
    type: category
prompt:
  template: |
    Route this support ticket. Subject: {subject}
    Body: {body}
    Queue:
adapter:
  type: lora
  r: 8
trainer:
  type: finetune
  epochs: 2
  batch_size: auto
"""


@pytest.fixture
def parquet_export(tmp_path: Path) -> tuple[Path, Path]:
    """Per-split Parquet files, a two-column prompt template and a category output."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    ds = tmp_path / "tickets"
    ds.mkdir()
    train = {
        "subject": ["Refund", "Login fails", "Invoice copy", "2FA lost", None],
        "body": ["Charged twice", "Error 500 at login", "Need March invoice", "New phone", "Help"],
        "queue": ["billing", "tech", "billing", "tech", "tech"],
    }
    val = {"subject": ["Card declined", "App crash"], "body": ["Visa refused", "Crashes on start"],
           "queue": ["billing", "tech"]}  # fmt: skip
    pq.write_table(pa.table(train), ds / "train.parquet")
    pq.write_table(pa.table(val), ds / "validation.parquet")
    adapter = write_adapter(tmp_path / "ticket-router", PARQUET_CONFIG, {**ADAPTER_CONFIG, "r": 8, "lora_alpha": 16,
                            "base_model_name_or_path": "meta-llama/Llama-3.2-1B-Instruct"})  # fmt: skip
    return ds, adapter


UNSUPPORTED_CONFIG = """
model_type: llm
base_model: mistralai/Mistral-7B-v0.1
input_features:
  - name: prompt
    type: text
  - name: photo
    type: image
  - name: history
    type: text
    encoder:
      - type: parallel_cnn
      - type: rnn
output_features:
  - name: completion
    type: text
adapter:
  type: lora
"""


@pytest.fixture
def make_adapter():
    """write_adapter(folder, config_yaml=LUDWIG_LLM, adapter_cfg=None) -> folder."""
    return write_adapter


@pytest.fixture
def unsupported_config() -> str:
    return UNSUPPORTED_CONFIG


@pytest.fixture
def write_file():
    """write(path, text) -> path (dedented, parents created)."""
    return write
