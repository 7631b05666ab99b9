from __future__ import annotations

import pytest
from kolm_recall_helpers import Counting

from kolmbuild.recall.embedder import Embedder, load_embedder


@pytest.fixture(scope="session")
def minilm() -> Embedder:
    return load_embedder("all-MiniLM-L6-v2")


@pytest.fixture
def counting(minilm: Embedder) -> Counting:
    return Counting(minilm)
