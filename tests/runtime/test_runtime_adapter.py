"""base + GGUF LoRA from an artifact: llama.cpp loads the adapter and it changes the answer.

The adapter is a synthetic PEFT LoRA (random A/B on every q_proj/v_proj of SmolLM2) exported with
the train package's own GGUF exporter, so this checks the runtime's half of the contract: the
artifact's ``adapter.gguf`` reaches ``Llama(lora_path=…)`` on top of the named base.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from runtime_helpers import MakeArtifact

from kolmbuild.config.models import BaseModelSpec
from kolmbuild.errors import ArtifactError
from kolmbuild.models import resolve_base
from kolmbuild.runtime import Predictor, RuntimeOptions, RuntimeParts

TASK = {"name": "qa", "description": "Answer the question.", "shape": {"output": "text", "max_output_tokens": 8}}
OPTS = RuntimeOptions(n_ctx=512, n_threads=1)


def _synthetic_adapter(tmp: Path) -> Path:
    from safetensors.numpy import save_file

    from kolmbuild.train.export_gguf import arch_of, export_lora_gguf

    rng = np.random.default_rng(0)
    rank, hidden, kv = 4, 576, 192
    state = {}
    for layer in range(30):
        for proj, out in (("q_proj", hidden), ("v_proj", kv)):
            key = f"base_model.model.model.layers.{layer}.self_attn.{proj}"
            state[f"{key}.lora_A.weight"] = rng.normal(0, 0.5, (rank, hidden)).astype(np.float32)
            state[f"{key}.lora_B.weight"] = rng.normal(0, 0.5, (out, rank)).astype(np.float32)
    peft = tmp / "peft"
    peft.mkdir()
    save_file(state, str(peft / "adapter_model.safetensors"))
    (peft / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": rank, "lora_alpha": 8}))
    dst = tmp / "adapter.gguf"
    export_lora_gguf(peft, arch_of(resolve_base(BaseModelSpec(name="smollm2"))), dst)
    return dst


def test_adapter_changes_the_answer(make_artifact: MakeArtifact, smollm2: Path, smollm2_sha: str, tmp_path: Path) -> None:
    adapter = _synthetic_adapter(tmp_path)
    question = "What is the capital of France?"
    with Predictor.from_parts(RuntimeParts("qa", TASK, base_gguf=smollm2, options=OPTS)) as plain:
        base_answer = plain.predict(question).output
    art = make_artifact(task=TASK, components={"adapter_gguf": adapter}, base={"name": "smollm2", "sha256": smollm2_sha})
    with Predictor.open(art, options=OPTS, drift=False) as tuned:
        assert tuned.parts.adapter_gguf is not None and tuned.parts.adapter_gguf.name == "adapter.gguf"
        pred = tuned.predict(question)
    assert pred.route == "model" and isinstance(pred.output, str)
    assert pred.output != base_answer


def test_a_broken_adapter_is_an_artifact_error(make_artifact: MakeArtifact, smollm2_sha: str) -> None:
    art = make_artifact(task=TASK, components={"adapter_gguf": b"GGUF\x03\x00\x00\x00 not really"},
                        base={"name": "smollm2", "sha256": smollm2_sha})
    with Predictor.open(art, options=OPTS, drift=False) as p, pytest.raises(ArtifactError, match="not a readable GGUF"):
        p.predict("hi")


def test_an_adapter_for_other_shapes_is_refused_before_llama_cpp(tmp_path: Path, smollm2: Path) -> None:
    import gguf

    bad = tmp_path / "adapter.gguf"
    w = gguf.GGUFWriter(bad, arch="llama")
    w.add_type(gguf.GGUFType.ADAPTER)
    w.add_string(gguf.Keys.Adapter.TYPE, "lora")
    w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, 8.0)
    w.add_tensor("blk.0.attn_q.weight.lora_a", np.zeros((4, 100), dtype=np.float32))  # base in-features: 576
    w.add_tensor("blk.0.attn_q.weight.lora_b", np.zeros((576, 4), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    parts = RuntimeParts("qa", TASK, base_gguf=smollm2, adapter_gguf=bad, options=OPTS)
    with Predictor.from_parts(parts) as p, pytest.raises(ArtifactError, match="do not fit the base weight"):
        p.predict("hi")
