"""Evaluate test helpers: small artifacts written with kolmbuild.artifact, examples files."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from kolmbuild.artifact import write_artifact
from kolmbuild.config.models import TaskSpec
from tests.compare.conftest import fake_openai  # noqa: F401  (the loopback OpenAI-compatible server)

TEXT_TASK: dict[str, Any] = TaskSpec(
    name="phone-redactor", description="Replace phone numbers with [PHONE].", examples="train.jsonl"
).model_dump(mode="json", by_alias=True)


@pytest.fixture(autouse=True)
def _state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path_factory.mktemp("kolm-state")
    monkeypatch.setenv("KOLM_STATE_DIR", str(state))  # the runtime's drift log stays in the test
    return state


def exact_verifier() -> dict[str, Any]:
    from kolmbuild.verifier import Verifier

    return Verifier(mode="exact").to_json()


def write_examples(path: Path, rows: Sequence[tuple[Any, Any]]) -> Path:
    path.write_text("".join(json.dumps({"input": i, "output": o}) + "\n" for i, o in rows))
    return path


MakeArtifact = Callable[..., Path]


@pytest.fixture
def make_artifact(tmp_path: Path) -> MakeArtifact:
    def make(
        name: str = "art.kolm",
        *,
        components: Mapping[str, bytes | Path] | None = None,
        gates: Mapping[str, Any] | None = None,
        task: Mapping[str, Any] = TEXT_TASK,
        base: Mapping[str, Any] | None = None,
    ) -> Path:
        comps: dict[str, bytes | Path] = {"verifier": json.dumps(exact_verifier()).encode()}
        comps.update(components or {})
        dest = tmp_path / name
        write_artifact(dest, target="phones", version="0.1.0", task=task, components=comps,
                       gates=gates or {"K_min": 0.7}, base=base, toolchain_info={})  # fmt: skip
        return dest

    return make
