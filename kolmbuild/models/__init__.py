"""Base models: the bundled SmolLM2 GGUF, a GGUF path, or a local Hugging Face folder, offline."""

from kolmbuild.models.resolve import BaseModel, BaseModelError, bundled_smollm2, resolve_base

__all__ = ["BaseModel", "BaseModelError", "bundled_smollm2", "resolve_base"]
