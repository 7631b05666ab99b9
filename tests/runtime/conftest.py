"""Runtime test helpers: artifacts written with kolmbuild.artifact, the bundled SmolLM2 base."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from kolmbuild.artifact import write_artifact
from kolmbuild.models import bundled_smollm2
from kolmbuild.models.resolve import file_sha256

LABEL_TASK: dict[str, Any] = {
    "name": "sentiment",
    "description": "Classify the sentiment of the review.",
    "shape": {"input": "text", "output": "label", "labels": ["positive", "negative"]},
}


@pytest.fixture(autouse=True)
def _state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path_factory.mktemp("kolm-state")
    monkeypatch.setenv("KOLM_STATE_DIR", str(state))
    return state


@pytest.fixture(scope="session")
def smollm2() -> Path:
    return bundled_smollm2()


@pytest.fixture(scope="session")
def smollm2_sha(smollm2: Path) -> str:
    return file_sha256(smollm2)


class TablePack:
    """A stand-in with the pinned RecipePack API for from_parts tests: exact-input lookups plus a
    draft table of (text so far → continuation) pairs."""

    def __init__(self, table: Mapping[str, Any], drafts: Mapping[str, str] | None = None) -> None:
        self.table = dict(table)
        self.drafts = _Drafts(drafts or {})
        self.batch_calls = 0

    def answer(self, value: Any) -> Any:
        return self.table.get(value) if isinstance(value, str) else None

    def answer_batch(self, values: Sequence[Any]) -> list[Any]:
        self.batch_calls += 1
        return [self.answer(v) for v in values]


class _Drafts:
    def __init__(self, pairs: Mapping[str, str]) -> None:
        self.pairs = dict(pairs)
        self.asked: list[str] = []

    def propose(self, text_so_far: str) -> str:
        self.asked.append(text_so_far)
        return self.pairs.get(text_so_far, "")


def tamper_manifest(path: Path, old: bytes, new: bytes) -> None:
    """Rewrite ``path`` with ``old`` replaced by ``new`` inside manifest.json (signatures kept)."""
    import zipfile

    with zipfile.ZipFile(path) as zf:
        members = [(info, zf.read(info)) for info in zf.infolist()]
    with zipfile.ZipFile(path, "w") as zf:
        for info, data in members:
            if info.filename == "manifest.json":
                assert old in data
                data = data.replace(old, new)
            zf.writestr(info, data)


MakeArtifact = Callable[..., Path]


@pytest.fixture
def make_artifact(tmp_path: Path) -> MakeArtifact:
    def make(
        name: str = "art.kolm",
        *,
        task: Mapping[str, Any] = LABEL_TASK,
        components: Mapping[str, bytes | Path] | None = None,
        base: Mapping[str, Any] | None = None,
        target: str = "demo",
    ) -> Path:
        dest = tmp_path / name
        write_artifact(dest, target=target, version="0.1.0", task=task, components=dict(components or {}), base=base,
                       toolchain_info={})
        return dest

    return make
