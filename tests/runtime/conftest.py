"""Runtime test fixtures: artifacts written with kolmbuild.artifact, the bundled SmolLM2 base."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from runtime_helpers import LABEL_TASK, MakeArtifact

from kolmbuild.artifact import write_artifact
from kolmbuild.models import bundled_smollm2
from kolmbuild.models.resolve import file_sha256


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
