"""One section of a config, validated with its model: defaults when absent, a located user error when bad."""

from __future__ import annotations

import pytest

from kolmbuild.config.models import GatesSpec, ShapeSpec
from kolmbuild.config.sections import section_of, validate_section
from kolmbuild.errors import ArtifactError, ConfigError


def test_absent_section_takes_the_model_defaults() -> None:
    assert section_of({}, "gates", GatesSpec) == GatesSpec()
    assert section_of(None, "shape", ShapeSpec).output == "text"


def test_bad_value_names_where_and_the_dotted_key() -> None:
    with pytest.raises(ConfigError, match=r"^kolmfile.yaml: gates.K_min: Input should be less than or equal to 1"):
        validate_section(GatesSpec, {"K_min": 3}, key="gates", where="kolmfile.yaml")
    with pytest.raises(ArtifactError, match=r"^a.kolm: task.shape.output: Input should be"):
        section_of({"shape": {"output": "poem"}}, "shape", ShapeSpec, where="a.kolm", prefix="task.", error=ArtifactError)
