"""Real training on the bundled SmolLM2-135M (Q4_1 GGUF, dequantized by transformers), loaded
once for the module: falling loss, plain-peft loading, GGUF export that llama.cpp runs and that
matches peft numerically, exact resume after an interruption, DPO/ORPO, and the stage end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from kolmbuild.config.models import BaseModelSpec, ShapeSpec, TrainSpec
from kolmbuild.models import resolve_base
from kolmbuild.runtime.prompt import build_messages
from kolmbuild.train.checkpoint import load_checkpoint
from kolmbuild.train.encoding import encode_examples, encode_pairs
from kolmbuild.train.export_gguf import arch_of, export_lora_gguf
from kolmbuild.train.settings import settings_from_spec
from kolmbuild.train.trainer import LoadedBase, TrainData, load_base, run_fingerprint, train_lora

from .conftest import COLOURS, DESCRIPTION, MakeCtx, RecordingProgress, write_colours_project

pytestmark = pytest.mark.slow
SHAPE = ShapeSpec()


class Interrupted(Exception):
    pass


@pytest.fixture(scope="module")
def loaded() -> LoadedBase:
    return load_base(resolve_base(BaseModelSpec()), "cpu")


@pytest.fixture(scope="module")
def colours(loaded: LoadedBase) -> TrainData:
    return TrainData(tuple(encode_examples(loaded.tokenizer, DESCRIPTION, SHAPE, COLOURS, 256)))


@pytest.fixture(scope="module")
def trained(loaded: LoadedBase, colours: TrainData, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path, RecordingProgress]:
    out = tmp_path_factory.mktemp("adapter")
    settings = settings_from_spec(TrainSpec(max_steps=3, lr=2e-3, batch_size=4, seed=1))
    progress = RecordingProgress()
    return train_lora(loaded, colours, settings, out, progress=progress), out, progress


def _greedy(gguf: Path, lora: Path | None, text: str) -> str:
    from llama_cpp import Llama

    kw: dict[str, Any] = {"lora_path": str(lora)} if lora else {}
    llm = Llama(str(gguf), n_ctx=512, n_threads=2, seed=0, verbose=False, **kw)
    out = llm.create_chat_completion(build_messages(DESCRIPTION, SHAPE, text), temperature=0, max_tokens=8)
    return str(out["choices"][0]["message"]["content"])


def test_loss_falls_and_the_record_is_complete(trained: tuple[Any, Path, RecordingProgress]) -> None:
    result, out, progress = trained
    assert result.steps == 3 and len(result.losses) == 3 and result.resumed_from == 0
    assert result.losses[-1] < 0.6 * result.losses[0], result.losses
    assert result.final_loss == result.losses[-1]
    assert progress.events == [("start", 3)] + [("advance", 1, loss) for loss in result.losses]  # a bar with the loss
    assert result.trainable_params == 30 * (8 * (576 + 576) + 8 * (576 + 192))  # r=8 on q_proj and v_proj
    assert sorted(p.name for p in out.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "smollm2" and config["target_modules"] == ["q_proj", "v_proj"]


def test_the_adapter_loads_in_plain_peft(loaded: LoadedBase, trained: tuple[Any, Path, RecordingProgress]) -> None:
    from peft import PeftModel

    ids = torch.tensor([loaded.tokenizer("red")["input_ids"]])
    with torch.no_grad():
        base_logits = loaded.model(ids).logits
    model = PeftModel.from_pretrained(loaded.model, str(trained[1]))
    try:
        with torch.no_grad():
            tuned_logits = model(ids).logits
    finally:
        model.unload()
    assert not torch.allclose(base_logits, tuned_logits, atol=1e-3)
    with torch.no_grad():
        assert torch.allclose(loaded.model(ids).logits, base_logits)  # the base is clean again


def test_gguf_adapter_changes_llama_cpp_output(loaded: LoadedBase, trained: tuple[Any, Path, Any], tmp_path: Path) -> None:
    gguf = loaded.base.gguf_path
    assert gguf is not None
    adapter = tmp_path / "adapter.gguf"
    assert export_lora_gguf(trained[1], arch_of(loaded.base), adapter) == 60  # 30 layers x (q, v)
    plain, tuned = _greedy(gguf, None, "red"), _greedy(gguf, adapter, "red")
    assert plain != tuned, (plain, tuned)


def test_llama_cpp_applies_the_adapter_as_peft_does(loaded: LoadedBase, tmp_path: Path) -> None:
    """A random LoRA on q, k and v: the change it makes to llama.cpp's logits must track the change
    it makes to peft's (correlation > 0.95). A wrong q/k row order or orientation breaks this
    (measured: about 0.15 to 0.5 without the q/k permutation)."""
    from llama_cpp import Llama
    from peft import LoraConfig, get_peft_model

    gguf = loaded.base.gguf_path
    assert gguf is not None
    ids = loaded.tokenizer("The capital of France is Paris. The capital of Spain is")["input_ids"]
    with torch.no_grad():
        base_hf = loaded.model(torch.tensor([ids])).logits[0].numpy()
    torch.manual_seed(0)
    model = get_peft_model(loaded.model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj"],
                                                   init_lora_weights=False))
    try:
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.data *= 1.5
        model.save_pretrained(tmp_path / "rand", save_embedding_layers=False)
        with torch.no_grad():
            lora_hf = model(torch.tensor([ids])).logits[0].numpy()
    finally:
        model.unload()
    export_lora_gguf(tmp_path / "rand", arch_of(loaded.base), tmp_path / "rand.gguf")

    def cpp_logits(lora: Path | None) -> np.ndarray:
        kw: dict[str, Any] = {"lora_path": str(lora)} if lora else {}
        llm = Llama(str(gguf), n_ctx=128, n_threads=2, logits_all=True, verbose=False, **kw)
        llm.eval(ids)
        return np.array(llm.scores[: len(ids)])

    d_cpp = cpp_logits(tmp_path / "rand.gguf") - cpp_logits(None)
    corr = np.corrcoef((lora_hf - base_hf).ravel(), d_cpp.ravel())[0, 1]
    assert corr > 0.95, corr


def test_an_interrupted_run_resumes_from_its_checkpoint(loaded: LoadedBase, colours: TrainData, tmp_path: Path) -> None:
    settings = settings_from_spec(TrainSpec(max_steps=2, checkpoint_every=1, lr=1e-3, batch_size=1, seed=5))
    straight = train_lora(loaded, colours, settings, tmp_path / "straight")

    ckpt = tmp_path / "ckpt"

    def stop_at_1(step: int, loss: float) -> None:
        if step == 1:
            raise Interrupted

    with pytest.raises(Interrupted):
        train_lora(loaded, colours, settings, tmp_path / "resumed", checkpoint_dir=ckpt, on_step=stop_at_1)
    assert not (tmp_path / "resumed").exists()
    saved = load_checkpoint(ckpt, run_fingerprint(loaded.base, settings, colours))
    assert saved is not None and saved.step == 1
    # a checkpoint belongs to one run: other settings (or data, or base) never resume from it
    other = settings_from_spec(TrainSpec(max_steps=2, checkpoint_every=1, lr=1e-3, batch_size=1, seed=6))
    assert load_checkpoint(ckpt, run_fingerprint(loaded.base, other, colours)) is None

    resumed = train_lora(loaded, colours, settings, tmp_path / "resumed", checkpoint_dir=ckpt)
    assert resumed.resumed_from == 1 and resumed.steps == 2
    assert resumed.losses == pytest.approx(straight.losses, abs=1e-5)
    assert not (ckpt / "checkpoint.pt").exists()  # removed once the run completes

    from safetensors.torch import load_file

    a = load_file(str(tmp_path / "straight" / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_dpo_and_orpo(loaded: LoadedBase, colours: TrainData, tmp_path: Path) -> None:
    pairs = [("red", "ROJO", "rojo es un color")]
    data = TrainData(colours.labels, tuple(encode_pairs(loaded.tokenizer, DESCRIPTION, SHAPE, pairs, 256)))
    dpo = train_lora(loaded, data, settings_from_spec(
        TrainSpec(preference="dpo", max_steps=1, lr=1e-3, batch_size=1)), tmp_path / "dpo")
    assert dpo.phases == {"sft": 1, "dpo": 1} and all(np.isfinite(dpo.losses))
    # DPO's reference is the supervised policy as the DPO phase begins, so the first DPO step sees
    # policy == reference (up to LoRA dropout): a zero margin, a loss of log 2
    assert dpo.losses[1] == pytest.approx(np.log(2), abs=0.05)
    orpo = train_lora(loaded, data, settings_from_spec(
        TrainSpec(preference="orpo", max_steps=2, lr=2e-3, batch_size=1)), tmp_path / "orpo")
    assert orpo.phases == {"orpo": 2} and orpo.losses[-1] < orpo.losses[0], orpo.losses


def test_stage_end_to_end(loaded: LoadedBase, make_ctx: MakeCtx, monkeypatch: pytest.MonkeyPatch) -> None:
    """auto with poor recipe coverage trains; outputs, record and bytes are reproducible."""
    import kolmbuild.train.trainer as trainer

    monkeypatch.setattr(trainer, "load_base", lambda base, device: loaded)  # one load per module
    from kolmbuild.stages import train as stage

    records, ggufs = [], []
    for name in ("first", "second"):
        ctx = make_ctx(train={"enabled": "auto", "max_steps": 1, "lr": 1e-3, "batch_size": 1}, decompose={"coverage": 0.5, "accuracy": 1.0},
                       name=name)
        result = stage.run(ctx)
        assert sorted(p.name for p in ctx.outdir.iterdir()) == [
            "adapter.gguf", "adapter_config.json", "adapter_model.safetensors", "train.json"]
        record = json.loads(ctx.output("train.json").read_text())
        assert dict(result.metrics) == record
        records.append(record)
        ggufs.append(ctx.output("adapter.gguf").read_bytes())
    record = records[0]
    assert record["trained"] is True and "50.0%" in record["reason"]
    assert record["base"] == {"name": "smollm2", "sha256": loaded.base.sha256, "quantize": "Q4_1"}  # int8 keeps Q4_1
    assert (record["steps"], record["seed"], record["device"], record["examples"]) == (1, 0, "cpu", 4)
    assert record["trainable_params"] == 460800 and isinstance(record["final_loss"], float)
    assert records[0] == records[1] and ggufs[0] == ggufs[1]


def test_a_local_hf_folder_base_trains_and_exports(loaded: LoadedBase, tmp_path: Path) -> None:
    """A base given as a Hugging Face folder: a tiny random llama with SmolLM2's tokenizer (and chat
    template) trains through the same path; its GGUF LoRA takes the architecture from config.json."""
    import gguf
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path / "tiny-llama"
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(loaded.tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
    LlamaForCausalLM(config).save_pretrained(folder)
    loaded.tokenizer.save_pretrained(folder)
    base = resolve_base(BaseModelSpec(name="tiny-llama"), base_dir=tmp_path)
    assert base.hf_dir == folder and base.gguf_path is None
    tiny = load_base(base, "cpu")
    data = TrainData(tuple(encode_examples(tiny.tokenizer, DESCRIPTION, SHAPE, COLOURS, 256)))
    result = train_lora(tiny, data, settings_from_spec(TrainSpec(max_steps=3, lr=1e-2, batch_size=4)), tmp_path / "a")
    assert result.losses[-1] < result.losses[0]
    assert export_lora_gguf(tmp_path / "a", arch_of(base), tmp_path / "a.gguf") == 4  # 2 layers x (q, v)
    reader = gguf.GGUFReader(tmp_path / "a.gguf")
    assert reader.fields["general.architecture"].contents() == "llama"
    assert list(reader.tensors[0].shape) == [32, 8]  # blk.0.attn_q.weight.lora_a: ne = [in, r]


def test_kolmbuild_build_runs_the_train_stage(loaded: LoadedBase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the real engine and the real stages before it (ingest, recall, distill, decompose):
    the rule's reads reach the action, the outputs land in the store, and a second build is a no-op."""
    from click.testing import CliRunner

    import kolmbuild.train.trainer as trainer
    from kolmbuild.cli.main import cli

    monkeypatch.setattr(trainer, "load_base", lambda base, device: loaded)  # one load per module
    more = [("black", "NEGRO"), ("yellow", "AMARILLO"), ("pink", "ROSA"), ("grey", "GRIS"), ("orange", "NARANJA")]
    write_colours_project(tmp_path, "{enabled: auto, max_steps: 1, batch_size: 1}", [*COLOURS, *more])

    first = CliRunner().invoke(cli, ["-C", str(tmp_path), "build", "--json"], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    doc = json.loads(first.output)[0]
    assert doc["status"] == "built" and doc["ran"][-1] == "train"
    record = next(json.loads(p.read_text()) for p in (tmp_path / "cache").rglob("*")
                  if p.is_file() and p.stat().st_size < 4096 and p.read_bytes().startswith(b'{"base"'))
    assert record["trained"] is True and record["reason"].startswith("auto: recipes cover 0.0%")
    assert record["steps"] == 1 and record["base"]["name"] == "smollm2"
    again = CliRunner().invoke(cli, ["-C", str(tmp_path), "build", "--json"], catch_exceptions=False)
    assert again.exit_code == 0 and "train" not in json.loads(again.output)[0]["ran"]
