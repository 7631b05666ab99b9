"""Base-model quantization with llama.cpp's own quantizer (``llama_model_quantize``).

``task.base.quantize`` is an upper bound on the base's bits per weight, not a target to reach at
any price:

* ``none``: ship the base as it is;
* ``int8``: weights at most 8 bits. A F32/F16/BF16 base becomes Q8_0; a base already at 8 bits or
  fewer (the bundled SmolLM2 is Q4_1) ships unchanged: re-quantizing Q4_1 "up" to Q8_0 would
  double the file and bring back none of the precision already lost;
* ``int4``: weights at most 4 bits. Anything wider becomes Q4_K_M (an 8-bit base is re-quantized,
  which llama.cpp allows explicitly); a 4-bit base ships unchanged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kolmbuild.atomic import atomic_path
from kolmbuild.errors import BuildFailed
from kolmbuild.models.gguf_info import read_gguf_info

Quantize = Literal["none", "int8", "int4"]

# target -> (max nominal bits, llama_ftype name, llama_ftype value)
_TARGETS: dict[str, tuple[int, str, int]] = {
    "int8": (8, "Q8_0", 7),  # LLAMA_FTYPE_MOSTLY_Q8_0
    "int4": (4, "Q4_K_M", 15),  # LLAMA_FTYPE_MOSTLY_Q4_K_M
}


@dataclass(frozen=True)
class QuantizeDecision:
    quantize: bool
    ftype_name: str | None  # what the output will be, when quantize
    ftype: int | None
    reason: str


def decide_quantization(source_type: str, source_bits: int, target: Quantize) -> QuantizeDecision:
    """Whether a base whose weights are ``source_type`` (``source_bits`` nominal bits) must be
    quantized to satisfy ``target``."""
    if target == "none":
        return QuantizeDecision(False, None, None, "task.base.quantize is none: base shipped as is")
    max_bits, name, ftype = _TARGETS[target]
    if source_bits <= max_bits:
        return QuantizeDecision(
            False, None, None, f"base is already {source_type} ({source_bits}-bit weights), within {target}: shipped as is"
        )
    return QuantizeDecision(True, name, ftype, f"base {source_type} ({source_bits}-bit) quantized to {name} for {target}")


def quantize_gguf(src: Path, dst: Path, decision: QuantizeDecision, *, threads: int | None = None) -> None:
    """Write ``src`` quantized per ``decision`` to ``dst`` (:func:`kolmbuild.atomic.atomic_path`)."""
    if not decision.quantize or decision.ftype is None:
        raise ValueError("quantize_gguf called with a decision that keeps the base")
    import ctypes

    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = decision.ftype
    params.nthread = threads or max(1, (os.cpu_count() or 1))
    params.allow_requantize = read_gguf_info(src).weight_bits < 16
    with atomic_path(dst) as tmp:
        rc = llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(), ctypes.byref(params))
        if rc != 0:
            raise BuildFailed(f"llama.cpp could not quantize {src.name} to {decision.ftype_name} (code {rc})")
