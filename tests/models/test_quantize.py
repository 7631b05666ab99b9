"""The base quantization policy, GGUF header reading, and a real llama.cpp quantization."""

from __future__ import annotations

from pathlib import Path

import pytest

from kolmbuild.errors import UserInputError
from kolmbuild.models import bundled_smollm2
from kolmbuild.models.gguf_info import read_gguf_info
from kolmbuild.models.quantize import QuantizeDecision, decide_quantization, quantize_gguf


def test_bundled_header() -> None:
    info = read_gguf_info(bundled_smollm2())
    assert (info.architecture, info.block_count, info.head_count, info.head_count_kv) == ("llama", 30, 9, 3)
    assert info.weight_type == "Q4_1" and info.weight_bits == 4
    assert "blk.0.attn_q.weight" in info.tensor_names and "blk.29.ffn_down.weight" in info.tensor_names


@pytest.mark.parametrize(
    ("source", "bits", "target", "quantize", "ftype"),
    [
        ("Q4_1", 4, "int8", False, None),  # the bundled base: already under 8 bits, ships as is
        ("Q4_1", 4, "int4", False, None),
        ("Q4_1", 4, "none", False, None),
        ("F16", 16, "int8", True, "Q8_0"),
        ("BF16", 16, "int4", True, "Q4_K_M"),
        ("F32", 32, "none", False, None),
        ("Q8_0", 8, "int8", False, None),
        ("Q8_0", 8, "int4", True, "Q4_K_M"),
        ("Q6_K", 6, "int4", True, "Q4_K_M"),
    ],
)
def test_quantize_is_an_upper_bound_on_bits(source: str, bits: int, target: str, quantize: bool, ftype: str | None) -> None:
    decision = decide_quantization(source, bits, target)  # type: ignore[arg-type]
    assert decision.quantize is quantize and decision.ftype_name == ftype
    assert source in decision.reason or target == "none"


def test_not_a_gguf_is_a_user_error(tmp_path: Path) -> None:
    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"GGUF" + b"\xff" * 40)
    with pytest.raises(UserInputError) as err:
        read_gguf_info(bad)
    assert err.value.exit_code == 2 and str(bad) in str(err.value)


def test_llama_cpp_requantizes_and_the_result_loads(tmp_path: Path) -> None:
    """Real llama_model_quantize: the bundled Q4_1 base re-quantized to Q8_0 (allowed explicitly
    for an already-quantized source); llama.cpp then loads and runs the new file."""
    from llama_cpp import Llama

    dst = tmp_path / "base.gguf"
    quantize_gguf(bundled_smollm2(), dst, QuantizeDecision(True, "Q8_0", 7, "test"), threads=2)
    info = read_gguf_info(dst)
    assert info.weight_type == "Q8_0" and info.architecture == "llama"
    assert [p.name for p in tmp_path.iterdir()] == ["base.gguf"]  # no temp left
    llm = Llama(str(dst), n_ctx=128, n_threads=2, verbose=False)
    out = llm("The capital of France is", max_tokens=4, temperature=0)
    assert out["choices"][0]["text"].strip()


def test_quantize_refuses_a_keep_decision(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        quantize_gguf(bundled_smollm2(), tmp_path / "o.gguf", decide_quantization("Q4_1", 4, "int8"))
