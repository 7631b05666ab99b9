"""A StageContext for the train stage, with upstream outputs written as the distill and
decompose stages write them."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from kolmbuild.engine.stage import StageContext

COLOURS = [("red", "ROJO"), ("blue", "AZUL"), ("green", "VERDE"), ("white", "BLANCO")]
DESCRIPTION = "Translate the colour to Spanish in capitals."
LOCAL_CPU = {"name": "local-cpu", "kind": "local", "device": "cpu"}

MakeCtx = Callable[..., StageContext]


def write_colours_project(root: Path, train: str, rows: Sequence[tuple[str, str]]) -> Path:
    """A project whose one target, colours, builds up to the train stage (``train``: its YAML flow map)."""
    (root / "conf/task").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "kolmfile.yaml").write_text("pipeline: [train]\ndefaults: {backend: local-cpu}\ntargets:\n  colours:\n    task: colours\n")
    (root / "conf/task/colours.yaml").write_text(
        f"name: colours\ndescription: {DESCRIPTION}\nexamples: data/train.jsonl\ntrain: {train}\n")
    (root / "data/train.jsonl").write_text("".join(json.dumps({"input": i, "output": o}) + "\n" for i, o in rows))
    return root


class RecordingProgress:
    """The Progress protocol, recording every call: ("start", total), ("advance", amount, loss), ("log", text)."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def start(self, description: str, total: float | None = None) -> None:
        self.events.append(("start", total))

    def advance(self, amount: float = 1.0, **fields: Any) -> None:
        self.events.append(("advance", amount, fields.get("loss")))

    def log(self, message: str) -> None:
        self.events.append(("log", message))


class CharChatML:
    """A tokenizer whose tokens are characters, with a ChatML chat template."""

    chat_template: str | None = "chatml"

    def apply_chat_template(self, conversation: list[dict[str, str]], tokenize: bool = True,
                            add_generation_prompt: bool = False, **_: Any) -> list[int]:
        text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in conversation)
        if add_generation_prompt:
            text += "<|im_start|>assistant\n"
        return [ord(c) for c in text]


def _jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def make_ctx(tmp_path: Path) -> MakeCtx:
    def make(
        *,
        train: dict[str, Any] | None = None,
        base: dict[str, Any] | None = None,
        backend: dict[str, Any] | None = None,
        decompose: dict[str, Any] | None = None,
        labels: Sequence[tuple[Any, Any]] = COLOURS,
        preferences: Sequence[tuple[Any, Any, Any]] = (),
        name: str = "run",
        key: str = "k" * 64,
    ) -> StageContext:
        root = tmp_path / name
        up = root / "up"
        up.mkdir(parents=True)
        (root / "out").mkdir()
        upstream: dict[str, dict[str, Path]] = {"distill": {}, "decompose": {}}
        upstream["distill"]["labels.jsonl"] = _jsonl(up / "labels.jsonl", [
            {"id": i, "input": x, "output": y, "source": "gold", "verified": True} for i, (x, y) in enumerate(labels)
        ] + [{"id": 99, "input": "black", "output": "WRONG", "source": "teacher", "verified": False}])
        if preferences:
            upstream["distill"]["preferences.jsonl"] = _jsonl(
                up / "preferences.jsonl", [{"input": i, "chosen": c, "rejected": r} for i, c, r in preferences])
        if decompose is not None:
            (up / "decompose.json").write_text(json.dumps(decompose))
            upstream["decompose"]["decompose.json"] = up / "decompose.json"
        params = {
            "task.base": base or {"name": "smollm2"},
            "task.train": train or {},
            "task.shape": {"input": "text", "output": "text"},
            "task.description": DESCRIPTION,
            "task.recipes.min_accuracy": 0.95,
            "backend": backend or LOCAL_CPU,
        }
        return StageContext(target="colours", stage="train", key=key, project_dir=tmp_path, outdir=root / "out",
                            cache_dir=tmp_path / "cache", params=params, inputs={}, upstream=upstream, receipts={})

    return make
