"""PEFT adapter → GGUF LoRA: metadata, names, shapes/orientation, q/k permutation, refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from kolmbuild.errors import UserInputError
from kolmbuild.train.export_gguf import ArchSpec, ExportError, export_lora_gguf, permute_rows

HIDDEN, HEADS, KV_HEADS, HEAD_DIM, R = 64, 4, 2, 16, 4
KV = KV_HEADS * HEAD_DIM
ARCH = ArchSpec("llama", 2, HEADS, KV_HEADS, frozenset(
    f"blk.{i}.{t}.weight" for i in range(2) for t in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_up")))
OUT = {"q_proj": HIDDEN, "k_proj": KV, "v_proj": KV, "o_proj": HIDDEN}


def _adapter(folder: Path, modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj"), *, extra: dict[str, Any] | None = None,
             drop: str | None = None, **config: Any) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    state: dict[str, torch.Tensor] = {}
    for layer in range(2):
        for m in modules:
            key = f"base_model.model.model.layers.{layer}.self_attn.{m}"
            state[f"{key}.lora_A.weight"] = torch.randn(R, HIDDEN)
            state[f"{key}.lora_B.weight"] = torch.randn(OUT[m], R)
    if drop:
        del state[drop]
    state.update(extra or {})
    folder.mkdir(parents=True, exist_ok=True)
    save_file(state, str(folder / "adapter_model.safetensors"))
    cfg = {"peft_type": "LORA", "r": R, "lora_alpha": 8, "target_modules": list(modules), **config}
    (folder / "adapter_config.json").write_text(json.dumps(cfg))
    return state


def _read(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    import gguf

    reader = gguf.GGUFReader(path)
    fields = {k: f.contents() for k, f in reader.fields.items() if not k.startswith("GGUF.")}
    tensors = {t.name: t for t in reader.tensors}
    return fields, tensors


def test_metadata_names_and_orientation(tmp_path: Path) -> None:
    state = _adapter(tmp_path / "a")
    n = export_lora_gguf(tmp_path / "a", ARCH, tmp_path / "adapter.gguf", name="demo-lora")
    assert n == 6
    fields, tensors = _read(tmp_path / "adapter.gguf")
    assert fields["general.architecture"] == "llama" and fields["general.type"] == "adapter"
    assert fields["adapter.type"] == "lora" and fields["adapter.lora.alpha"] == 8.0
    assert fields["general.name"] == "demo-lora"
    assert sorted(tensors) == sorted(f"blk.{i}.attn_{t}.weight.lora_{s}" for i in range(2) for t in "qkv" for s in "ab")
    # llama.cpp: a.ne = [in, r], b.ne = [r, out] (GGUF dims are numpy's reversed)
    assert list(tensors["blk.0.attn_q.weight.lora_a"].shape) == [HIDDEN, R]
    assert list(tensors["blk.0.attn_q.weight.lora_b"].shape) == [R, HIDDEN]
    assert list(tensors["blk.1.attn_k.weight.lora_b"].shape) == [R, KV]
    # A unchanged; v's B unchanged; q's and k's B rows permuted like the base's q/k weights
    prefix = "base_model.model.model.layers.1.self_attn"
    a = np.asarray(tensors["blk.1.attn_q.weight.lora_a"].data).reshape(R, HIDDEN)
    assert np.array_equal(a, state[f"{prefix}.q_proj.lora_A.weight"].numpy())
    v_b = np.asarray(tensors["blk.1.attn_v.weight.lora_b"].data).reshape(KV, R)
    assert np.array_equal(v_b, state[f"{prefix}.v_proj.lora_B.weight"].numpy())
    q_b = np.asarray(tensors["blk.1.attn_q.weight.lora_b"].data).reshape(HIDDEN, R)
    assert np.array_equal(q_b, permute_rows(state[f"{prefix}.q_proj.lora_B.weight"].numpy(), HEADS))
    k_b = np.asarray(tensors["blk.1.attn_k.weight.lora_b"].data).reshape(KV, R)
    assert np.array_equal(k_b, permute_rows(state[f"{prefix}.k_proj.lora_B.weight"].numpy(), KV_HEADS))
    assert not np.array_equal(q_b, state[f"{prefix}.q_proj.lora_B.weight"].numpy())


def test_permutation_is_what_transformers_undoes_when_it_loads_a_gguf() -> None:
    from transformers.modeling_gguf_pytorch_utils import LlamaTensorProcessor

    rows = np.arange(HIDDEN * 3, dtype=np.float32).reshape(HIDDEN, 3)
    undo = LlamaTensorProcessor(config={"num_attention_heads": HEADS, "num_key_value_heads": HEADS})
    assert np.array_equal(undo._reverse_permute_weights(permute_rows(rows, HEADS), HEADS, HEADS), rows)
    kv_rows = rows[:KV]
    assert np.array_equal(undo._reverse_permute_weights(permute_rows(kv_rows, KV_HEADS), HEADS, KV_HEADS), kv_rows)


def test_no_permutation_for_other_architectures(tmp_path: Path) -> None:
    state = _adapter(tmp_path / "a", ("q_proj",))
    export_lora_gguf(tmp_path / "a", ArchSpec("qwen2", 2, HEADS, KV_HEADS), tmp_path / "q.gguf")
    _, tensors = _read(tmp_path / "q.gguf")
    assert np.array_equal(np.asarray(tensors["blk.0.attn_q.weight.lora_b"].data).reshape(HIDDEN, R),
                          state["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"].numpy())


def test_rslora_alpha_keeps_the_scale(tmp_path: Path) -> None:
    _adapter(tmp_path / "a", use_rslora=True)
    export_lora_gguf(tmp_path / "a", ARCH, tmp_path / "r.gguf")
    fields, _ = _read(tmp_path / "r.gguf")
    # llama.cpp scales by alpha / r; peft's rsLoRA by alpha / sqrt(r): 8 / 2 = 16 / 4
    assert fields["adapter.lora.alpha"] == pytest.approx(16.0)


def test_export_is_deterministic(tmp_path: Path) -> None:
    _adapter(tmp_path / "a")
    export_lora_gguf(tmp_path / "a", ARCH, tmp_path / "1.gguf")
    export_lora_gguf(tmp_path / "a", ARCH, tmp_path / "2.gguf")
    assert (tmp_path / "1.gguf").read_bytes() == (tmp_path / "2.gguf").read_bytes()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"use_dora": True}, "DoRA"),
        ({"extra": {"base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector": torch.ones(HIDDEN)}}, "DoRA"),
        ({"drop": "base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight"}, "lora_A without lora_B"),
        ({"alpha_pattern": {"q_proj": 32}}, "per-module"),
        ({"peft_type": "IA3"}, "only LORA"),
        ({"modules": ("o_proj", "q_proj"), "arch": ArchSpec("llama", 2, HEADS, KV_HEADS, frozenset({"blk.0.attn_q.weight"}))},
         "has no tensor"),
    ],
)
def test_adapters_llama_cpp_cannot_run_are_refused(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    arch = kwargs.pop("arch", ARCH)
    modules = kwargs.pop("modules", ("q_proj", "k_proj", "v_proj"))
    _adapter(tmp_path / "a", modules, **kwargs)
    with pytest.raises(ExportError, match=message) as err:
        export_lora_gguf(tmp_path / "a", arch, tmp_path / "x.gguf")
    assert isinstance(err.value, UserInputError)
    assert not (tmp_path / "x.gguf").exists() and not list(tmp_path.glob(".x.gguf.*"))  # no temp left


def test_missing_or_malformed_adapter_files(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="adapter_config.json"):
        export_lora_gguf(tmp_path, ARCH, tmp_path / "x.gguf")
    _adapter(tmp_path / "a")
    (tmp_path / "a" / "adapter_config.json").write_text("{\n  not json")
    with pytest.raises(ExportError, match=r"adapter_config.json:2"):
        export_lora_gguf(tmp_path / "a", ARCH, tmp_path / "x.gguf")
