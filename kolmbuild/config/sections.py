"""Validate one section of a composed config (or of an artifact's task block) as its model.

Stages and the runtime read sections (``task.shape``, ``gates``…) from plain mappings: the
engine's params, an artifact's manifest. Each goes through the same pydantic model the kolmfile
was validated with, and a bad value is a user error naming where it came from and the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from kolmbuild.errors import ConfigError, UserInputError

M = TypeVar("M", bound=BaseModel)


def validate_section(
    model: type[M], raw: Any, *, key: str, where: str | None = None, error: type[UserInputError] = ConfigError
) -> M:
    """``raw`` validated as ``model`` (None or empty: the model's defaults); the first error is
    raised as ``error`` with the message ``where: key.loc: what``."""
    try:
        return model.model_validate(raw or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        dotted = f"{key}.{loc}" if loc else key
        raise error(f"{where}: {dotted}: {first['msg']}" if where else f"{dotted}: {first['msg']}") from exc


def section_of(block: Mapping[str, Any] | None, key: str, model: type[M], *, where: str | None = None,
               prefix: str = "", error: type[UserInputError] = ConfigError) -> M:
    """``block[key]`` validated as ``model``; ``prefix`` names the block in messages (``task.``)."""
    return validate_section(model, (block or {}).get(key), key=prefix + key, where=where, error=error)
