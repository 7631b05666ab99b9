"""What a GGUF file says about itself: architecture, shape hyperparameters, weight precision."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from kolmbuild.errors import UserInputError

# Nominal bits per weight of each GGML tensor type family (what "int8" / "int4" compare against).
_NOMINAL_BITS: dict[str, int] = {
    "F64": 64, "F32": 32, "F16": 16, "BF16": 16,
    "Q8_0": 8, "Q8_1": 8, "Q8_K": 8, "I8": 8,
    "Q6_K": 6, "Q5_0": 5, "Q5_1": 5, "Q5_K": 5,
    "Q4_0": 4, "Q4_1": 4, "Q4_K": 4, "IQ4_NL": 4, "IQ4_XS": 4, "MXFP4": 4,
    "Q3_K": 3, "IQ3_XXS": 3, "IQ3_S": 3, "Q2_K": 2, "IQ2_XXS": 2, "IQ2_XS": 2, "IQ2_S": 2,
    "IQ1_S": 1, "IQ1_M": 1, "TQ1_0": 2, "TQ2_0": 2,
}


@dataclass(frozen=True)
class GGUFInfo:
    architecture: str
    block_count: int
    head_count: int
    head_count_kv: int
    weight_type: str  # the most common type among 2-D weight tensors, e.g. "Q4_1"
    weight_bits: int  # its nominal bits per weight
    tensor_names: frozenset[str]


def _field(reader: object, key: str) -> object | None:
    field = reader.fields.get(key)  # type: ignore[attr-defined]
    return None if field is None else field.contents()


def read_gguf_info(path: Path) -> GGUFInfo:
    """Read the header of a GGUF model. Raises UserInputError naming the file when it is not one."""
    import gguf

    try:
        reader = gguf.GGUFReader(path)
    except Exception as exc:  # gguf raises ValueError/struct errors on garbage
        raise UserInputError(f"{path}: not a readable GGUF file ({exc})") from exc
    arch = _field(reader, "general.architecture")
    if not isinstance(arch, str):
        raise UserInputError(f"{path}: GGUF has no general.architecture")
    blocks = _field(reader, f"{arch}.block_count")
    heads = _field(reader, f"{arch}.attention.head_count")
    heads_kv = _field(reader, f"{arch}.attention.head_count_kv")
    types = Counter(t.tensor_type.name for t in reader.tensors if len(t.shape) >= 2)
    weight_type = types.most_common(1)[0][0] if types else "F32"
    return GGUFInfo(
        architecture=arch,
        block_count=int(blocks) if isinstance(blocks, int) else 0,
        head_count=int(heads) if isinstance(heads, int) else 0,
        head_count_kv=int(heads_kv) if isinstance(heads_kv, int) else int(heads) if isinstance(heads, int) else 0,
        weight_type=weight_type,
        weight_bits=_NOMINAL_BITS.get(weight_type, 32),
        tensor_names=frozenset(t.name for t in reader.tensors),
    )
