"""PEFT LoRA adapter → GGUF LoRA adapter that llama.cpp loads (``Llama(model, lora_path=...)``).

What llama.cpp expects of an adapter (llama-adapter.cpp):

* ``general.architecture`` equal to the base's, ``general.type = "adapter"``,
  ``adapter.type = "lora"``, ``adapter.lora.alpha`` (float);
* per adapted weight ``W`` named ``blk.N.attn_q.weight`` in the base, two tensors
  ``blk.N.attn_q.weight.lora_a`` and ``.lora_b``. With GGUF dims ``ne`` (reversed numpy shape),
  ``a.ne[0] == W.ne[0]`` (in features), ``b.ne[1] == W.ne[1]`` (out features) and
  ``a.ne[1] == b.ne[0]`` (rank): exactly PEFT's ``lora_A.weight`` [r, in] and ``lora_B.weight``
  [out, r] as numpy arrays, no transpose;
* the delta is scaled by ``alpha / rank`` (rank read from the tensors), so an rsLoRA adapter,
  whose scale is ``alpha / sqrt(r)``, is written with ``alpha * sqrt(r)``.

The llama architecture stores q/k projection rows in an interleaved rotary order (llama.cpp's
converter permutes them and transformers un-permutes them when it loads a GGUF). The LoRA delta
``B @ A`` lives in the HF order, so ``lora_b`` of q/k gets the same row permutation as the base.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kolmbuild.atomic import atomic_path
from kolmbuild.errors import UserInputError
from kolmbuild.models import BaseModel
from kolmbuild.models.gguf_info import read_gguf_info

# Hugging Face model_type -> llama.cpp architecture, for bases given as a HF folder.
_HF_TO_GGUF_ARCH = {"llama": "llama", "mistral": "llama", "qwen2": "qwen2", "qwen3": "qwen3", "phi3": "phi3",
                    "gemma": "gemma", "gemma2": "gemma2", "gemma3": "gemma3"}
# Architectures whose converter permutes the q/k rows for rotary embeddings.
_PERMUTED_QK = frozenset({"llama"})
_PEFT_PREFIX = "base_model.model."


class ExportError(UserInputError):
    """The adapter cannot be expressed as a llama.cpp GGUF LoRA (e.g. DoRA, per-module alpha)."""


@dataclass(frozen=True)
class ArchSpec:
    """What the export needs to know about the base."""

    architecture: str
    block_count: int
    head_count: int
    head_count_kv: int
    tensor_names: frozenset[str] = frozenset()  # the base's tensors, when known (GGUF bases)


def arch_of(base: BaseModel) -> ArchSpec:
    """The base's llama.cpp architecture: from its GGUF header, or its HF config.json."""
    if base.gguf_path is not None:
        info = read_gguf_info(base.gguf_path)
        return ArchSpec(info.architecture, info.block_count, info.head_count, info.head_count_kv, info.tensor_names)
    assert base.hf_dir is not None
    config = json.loads((base.hf_dir / "config.json").read_text())
    model_type = config.get("model_type", "")
    if model_type not in _HF_TO_GGUF_ARCH:
        raise ExportError(f"task.base.name: no GGUF LoRA export for model_type {model_type!r} (known: {sorted(_HF_TO_GGUF_ARCH)})")
    heads = int(config["num_attention_heads"])
    return ArchSpec(_HF_TO_GGUF_ARCH[model_type], int(config["num_hidden_layers"]), heads,
                    int(config.get("num_key_value_heads") or heads))


def permute_rows(rows: Any, n_head: int) -> Any:
    """llama.cpp's q/k permutation on the output dimension: within each head, HF's [first half;
    second half] rotary layout becomes interleaved pairs."""
    out = rows.shape[0]
    return rows.reshape(n_head, 2, out // n_head // 2, *rows.shape[1:]).swapaxes(1, 2).reshape(rows.shape)


def gguf_alpha(config: dict[str, Any]) -> float:
    """The ``adapter.lora.alpha`` that makes llama.cpp's alpha/rank equal peft's scale."""
    if config.get("use_dora"):
        raise ExportError("task.train.preset 'dora': llama.cpp has no DoRA, so a DoRA adapter cannot become a GGUF LoRA")
    if config.get("alpha_pattern") or config.get("rank_pattern"):
        raise ExportError("adapter uses per-module rank/alpha patterns, which a GGUF LoRA (one alpha) cannot express")
    alpha, rank = float(config["lora_alpha"]), int(config["r"])
    return alpha * math.sqrt(rank) if config.get("use_rslora") else alpha


def _module_of(key: str) -> tuple[str, str] | None:
    """('model.layers.0.self_attn.q_proj', 'A'|'B') for a peft LoRA key; None for other keys."""
    name = key[len(_PEFT_PREFIX):] if key.startswith(_PEFT_PREFIX) else key
    for side in ("A", "B"):
        suffix = f".lora_{side}.weight"
        if name.endswith(suffix):
            return name[: -len(suffix)], side
    return None


def lora_tensors(state: dict[str, Any], arch: ArchSpec) -> list[tuple[str, Any, Any]]:
    """(gguf weight name, lora_a [r, in], lora_b [out, r]) per adapted weight, sorted by name,
    as float32 numpy arrays with the architecture's q/k permutation applied to ``lora_b``."""
    import gguf
    import numpy as np

    by_arch = {name: enum for enum, name in gguf.MODEL_ARCH_NAMES.items()}
    if arch.architecture not in by_arch:
        raise ExportError(f"gguf does not know the architecture {arch.architecture!r}")
    names = gguf.TensorNameMap(by_arch[arch.architecture], arch.block_count)
    pairs: dict[str, dict[str, Any]] = {}
    for key, tensor in state.items():
        found = _module_of(key)
        if found is None:
            if "lora_magnitude_vector" in key:
                raise ExportError("task.train.preset 'dora': llama.cpp has no DoRA, so a DoRA adapter cannot become a GGUF LoRA")
            raise ExportError(f"adapter tensor {key!r} is not a LoRA A/B matrix; only LoRA on linear layers exports to GGUF")
        module, side = found
        target = names.get_name(module + ".weight", try_suffixes=(".weight",))
        if target is None:
            raise ExportError(f"task.train.target_modules: {module!r} has no llama.cpp tensor in architecture {arch.architecture!r}")
        if arch.tensor_names and target not in arch.tensor_names:
            raise ExportError(f"task.train.target_modules: the base GGUF has no tensor {target!r} (from {module!r})")
        pairs.setdefault(target, {})[side] = np.ascontiguousarray(tensor, dtype=np.float32)
    out: list[tuple[str, Any, Any]] = []
    for target in sorted(pairs):
        ab = pairs[target]
        if set(ab) != {"A", "B"}:
            raise ExportError(f"adapter has lora_A without lora_B (or the reverse) for {target!r}")
        a, b = ab["A"], ab["B"]
        if a.shape[0] != b.shape[1]:
            raise ExportError(f"{target!r}: lora_A {a.shape} and lora_B {b.shape} disagree on the rank")
        if arch.architecture in _PERMUTED_QK and ".attn_q." in target:
            b = permute_rows(b, arch.head_count)
        elif arch.architecture in _PERMUTED_QK and ".attn_k." in target:
            b = permute_rows(b, arch.head_count_kv)
        out.append((target, a, np.ascontiguousarray(b)))
    if not out:
        raise ExportError("the adapter holds no LoRA tensors")
    return out


def read_peft_adapter(adapter_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(adapter_config.json, float32 numpy tensors of adapter_model.safetensors)."""
    from safetensors.torch import load_file

    config_path, weights_path = adapter_dir / "adapter_config.json", adapter_dir / "adapter_model.safetensors"
    for path in (config_path, weights_path):
        if not path.is_file():
            raise ExportError(f"{path}: missing; a PEFT adapter folder holds adapter_config.json and adapter_model.safetensors")
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as exc:
        raise ExportError(f"{config_path}:{exc.lineno}: not JSON ({exc.msg})") from exc
    if config.get("peft_type") != "LORA":
        raise ExportError(f"{config_path}: peft_type is {config.get('peft_type')!r}, only LORA adapters export to GGUF")
    state = {k: v.float().numpy() for k, v in load_file(str(weights_path)).items()}
    return config, state


def export_lora_gguf(adapter_dir: Path, arch: ArchSpec, dst: Path, *, name: str = "kolmbuild-lora") -> int:
    """Write the GGUF LoRA for the PEFT adapter in ``adapter_dir`` to ``dst`` (whole or not at
    all: :func:`kolmbuild.atomic.atomic_path`). Returns the number of adapted weights."""
    import gguf

    config, state = read_peft_adapter(adapter_dir)
    alpha = gguf_alpha(config)
    tensors = lora_tensors(state, arch)
    with atomic_path(dst) as tmp:
        writer = gguf.GGUFWriter(tmp, arch=arch.architecture)
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_name(name)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        for target, a, b in tensors:
            writer.add_tensor(target + ".lora_a", a)
            writer.add_tensor(target + ".lora_b", b)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return len(tensors)
