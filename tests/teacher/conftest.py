from __future__ import annotations

from collections.abc import Iterator

import pytest
from kolm_fake_teacher import ScriptedTeacher, Serving


@pytest.fixture
def scripted() -> Iterator[tuple[ScriptedTeacher, str]]:
    teacher = ScriptedTeacher()
    with Serving(teacher) as serving:
        yield teacher, serving.url
