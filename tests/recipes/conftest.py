from __future__ import annotations

from types import ModuleType

import pytest
from recipes_helpers import Phi, load_generator


@pytest.fixture(scope="session")
def phi() -> Phi:
    return Phi()


@pytest.fixture(scope="session")
def generator() -> ModuleType:
    return load_generator()
