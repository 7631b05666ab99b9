"""Check a GGUF LoRA against its base before llama.cpp sees it.

llama.cpp trusts an adapter's header: a truncated file or mismatched tensor shapes can crash the
process instead of raising. So the runtime reads both headers in Python first (gguf's reader,
memory-mapped) and refuses, naming what is wrong, unless the adapter is a LoRA for the base's
architecture whose every ``<weight>.lora_a`` / ``.lora_b`` pair targets a base weight with
matching dimensions (``a.ne[0] == W.ne[0]``, ``b.ne[1] == W.ne[1]``, ``a.ne[1] == b.ne[0]``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kolmbuild.errors import ArtifactError


def _reader(path: Path, what: str) -> Any:
    import gguf

    try:
        return gguf.GGUFReader(path)
    except Exception as exc:  # gguf raises ValueError / struct.error / IndexError on garbage
        raise ArtifactError(f"{what} {path.name}: not a readable GGUF file ({type(exc).__name__}: {exc})") from exc


def _str_field(reader: Any, key: str) -> str | None:
    field = reader.fields.get(key)
    if field is None:
        return None
    value = field.contents()
    return value if isinstance(value, str) else None


def check_adapter(adapter: Path, base: Path) -> int:
    """Raise ArtifactError unless ``adapter`` is a loadable LoRA for ``base``; returns the number of
    adapted weights."""
    a = _reader(adapter, "adapter")
    if _str_field(a, "general.type") != "adapter" or _str_field(a, "adapter.type") != "lora":
        raise ArtifactError(f"adapter {adapter.name}: not a GGUF LoRA (general.type=adapter, adapter.type=lora)")
    b = _reader(base, "base")
    arch_a, arch_b = _str_field(a, "general.architecture"), _str_field(b, "general.architecture")
    if arch_a != arch_b:
        raise ArtifactError(f"adapter {adapter.name}: made for architecture {arch_a!r}, the base is {arch_b!r}")
    weights = {t.name: tuple(int(x) for x in t.shape) for t in b.tensors}
    pairs: dict[str, dict[str, tuple[int, ...]]] = {}
    for t in a.tensors:
        target, _, side = t.name.rpartition(".")
        if side not in ("lora_a", "lora_b"):
            raise ArtifactError(f"adapter {adapter.name}: tensor {t.name!r} is not a .lora_a/.lora_b matrix")
        pairs.setdefault(target, {})[side] = tuple(int(x) for x in t.shape)
    if not pairs:
        raise ArtifactError(f"adapter {adapter.name}: holds no LoRA tensors")
    for target, ab in sorted(pairs.items()):
        w = weights.get(target)
        if w is None:
            raise ArtifactError(f"adapter {adapter.name}: {target!r} is not a weight of the base")
        if set(ab) != {"lora_a", "lora_b"}:
            raise ArtifactError(f"adapter {adapter.name}: {target!r} lacks its lora_a or lora_b")
        la, lb = ab["lora_a"], ab["lora_b"]
        if len(la) != 2 or len(lb) != 2 or la[0] != w[0] or lb[1] != w[1] or la[1] != lb[0]:
            raise ArtifactError(
                f"adapter {adapter.name}: {target!r} has lora_a {la} and lora_b {lb}, which do not fit the base weight {w}"
            )
    return len(pairs)
