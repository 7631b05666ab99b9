"""The local-cuda path: the axolotl config generated from the task spec (axolotl itself is never
installed here; its run is covered only on a GPU machine)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from kolmbuild.config.models import ShapeSpec, TrainSpec
from kolmbuild.errors import BuildFailed
from kolmbuild.train.axolotl import (
    AxolotlInputs,
    GpuInfo,
    attention_implementation,
    axolotl_available,
    axolotl_config,
    last_logged_state,
    run_axolotl,
    write_preference_dataset,
    write_sft_dataset,
)
from kolmbuild.train.settings import settings_from_spec

A100 = GpuInfo("NVIDIA A100-SXM4-80GB", 80.0, (8, 0))
T4 = GpuInfo("Tesla T4", 15.0, (7, 5))
SMALL = GpuInfo("GeForce GTX 1650", 4.0, (7, 5))


def _inputs(tmp_path: Path, n_params: int = 135_000_000, model_type: str = "llama") -> AxolotlInputs:
    hidden, layers = (4096, 32) if n_params > 1e9 else (576, 30)  # an 8B llama, or SmolLM2-135M
    return AxolotlInputs(tmp_path / "base", model_type, n_params, hidden, layers, tmp_path / "sft.jsonl", tmp_path / "out")


@pytest.mark.parametrize("preset", ["none", "neftune", "loraplus", "dora", "rslora", "quality"])
def test_each_preset_maps_to_its_axolotl_keys(tmp_path: Path, preset: str) -> None:
    spec = TrainSpec(preset=preset, rank=16, alpha=32, lr=1e-4, epochs=2, batch_size=8, seed=7,  # type: ignore[arg-type]
                     checkpoint_every=25, target_modules=["q_proj", "k_proj", "v_proj"])
    cfg = axolotl_config(settings_from_spec(spec), _inputs(tmp_path), A100)
    assert (cfg["lora_r"], cfg["lora_alpha"], cfg["learning_rate"], cfg["num_epochs"]) == (16, 32, 1e-4, 2)
    assert (cfg["micro_batch_size"], cfg["seed"], cfg["save_steps"]) == (8, 7, 25)
    assert cfg["lora_target_modules"] == ["q_proj", "k_proj", "v_proj"]
    assert cfg["adapter"] == "lora" and cfg["auto_resume_from_checkpoints"] is True
    assert ("neftune_noise_alpha" in cfg) is (preset in ("neftune", "quality"))
    assert ("loraplus_lr_ratio" in cfg) is (preset in ("loraplus", "quality"))
    assert cfg["peft_use_dora"] is (preset == "dora")
    assert cfg["peft_use_rslora"] is (preset in ("rslora", "quality"))
    assert "rl" not in cfg and cfg["datasets"][0]["type"] == "chat_template"
    assert cfg["datasets"][0]["roles_to_train"] == ["assistant"]
    assert yaml.safe_load(yaml.safe_dump(cfg)) == cfg  # serializable as the YAML axolotl reads


def test_max_steps_only_when_set(tmp_path: Path) -> None:
    assert "max_steps" not in axolotl_config(settings_from_spec(TrainSpec()), _inputs(tmp_path), A100)
    assert axolotl_config(settings_from_spec(TrainSpec(max_steps=30)), _inputs(tmp_path), A100)["max_steps"] == 30


def test_qlora_nf4_when_vram_is_tight(tmp_path: Path) -> None:
    settings = settings_from_spec(TrainSpec())
    roomy = axolotl_config(settings, _inputs(tmp_path, n_params=8_000_000_000), A100)
    assert roomy["adapter"] == "lora" and roomy["load_in_4bit"] is False and "bnb_config_kwargs" not in roomy
    assert roomy["gradient_checkpointing"] is False  # 16 GB of weights + 17 GB of activations fit in 80 GB
    tight = axolotl_config(settings, _inputs(tmp_path, n_params=8_000_000_000), T4)  # 16 GB of bf16 weights on 15 GB
    assert tight["adapter"] == "qlora" and tight["load_in_4bit"] is True and tight["gradient_checkpointing"] is True
    assert tight["bnb_config_kwargs"]["bnb_4bit_quant_type"] == "nf4"
    small = axolotl_config(settings, _inputs(tmp_path), SMALL)  # 135M fits, its activations (1024 tokens x 4) do not
    assert small["adapter"] == "lora" and small["gradient_checkpointing"] is True
    assert axolotl_config(settings, _inputs(tmp_path), A100)["gradient_checkpointing"] is False


def test_precision_attention_and_liger_follow_the_gpu(tmp_path: Path) -> None:
    settings = settings_from_spec(TrainSpec())
    ampere = axolotl_config(settings, _inputs(tmp_path), A100, flash_attn_installed=True)
    assert ampere["bf16"] is True and ampere["fp16"] is False
    assert ampere["attn_implementation"] == "flash_attention_2"
    assert ampere["plugins"] == ["axolotl.integrations.liger.LigerPlugin"] and ampere["liger_fused_linear_cross_entropy"]
    turing = axolotl_config(settings, _inputs(tmp_path), T4, flash_attn_installed=True)
    assert turing["bf16"] is False and turing["fp16"] is True and turing["attn_implementation"] == "sdpa"
    assert attention_implementation(A100, flash_attn_installed=False) == "sdpa"
    unknown_arch = axolotl_config(settings, _inputs(tmp_path, model_type="gpt_neox"), A100)
    assert "plugins" not in unknown_arch


def test_rl_configs_and_their_datasets(tmp_path: Path) -> None:
    shape = ShapeSpec()
    pairs = [("2+2?", "4", "5")]
    dpo = axolotl_config(settings_from_spec(TrainSpec(preference="dpo")), _inputs(tmp_path), A100, rl="dpo",
                         lora_model_dir=tmp_path / "run-sft")
    assert dpo["rl"] == "dpo" and dpo["rl_beta"] == 0.1 and dpo["lora_model_dir"] == str(tmp_path / "run-sft")
    assert dpo["datasets"][0]["type"] == "chat_template.default" and dpo["datasets"][0]["field_chosen"] == "chosen"
    orpo = axolotl_config(settings_from_spec(TrainSpec(preference="orpo")), _inputs(tmp_path), A100, rl="orpo")
    assert orpo["rl"] == "orpo" and orpo["orpo_alpha"] == 0.1 and orpo["datasets"][0]["type"] == "chat_template.argilla"
    with pytest.raises(ValueError):
        axolotl_config(settings_from_spec(TrainSpec()), _inputs(tmp_path), A100, rl="ppo")

    row = json.loads(write_preference_dataset(tmp_path / "d.jsonl", "Add.", shape, pairs, "dpo").read_text())
    assert row["messages"][-1] == {"role": "user", "content": "2+2?"}
    assert row["chosen"] == {"role": "assistant", "content": "4"} and row["rejected"]["content"] == "5"
    row = json.loads(write_preference_dataset(tmp_path / "o.jsonl", "Add.", shape, pairs, "orpo").read_text())
    assert row["prompt"] == "2+2?" and row["chosen"][-1]["content"] == "4" and row["rejected"][0]["role"] == "system"
    sft = json.loads(write_sft_dataset(tmp_path / "s.jsonl", "Add.", shape, [("1+1?", "2")]).read_text())
    assert [m["role"] for m in sft["messages"]] == ["system", "user", "assistant"]


def test_the_runner_says_it_needs_the_cuda_extra(tmp_path: Path) -> None:
    assert not axolotl_available()  # never installed here or in CI
    with pytest.raises(BuildFailed, match=r"kolmbuild\[cuda\]"):
        run_axolotl({"base_model": "x"}, tmp_path / "cfg.yml")
    assert not (tmp_path / "cfg.yml").exists()


def test_steps_and_loss_come_from_the_newest_trainer_state(tmp_path: Path) -> None:
    for step, loss in ((10, 1.5), (20, 0.75)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "trainer_state.json").write_text(json.dumps(
            {"global_step": step, "log_history": [{"loss": 9.0, "step": 1}, {"loss": loss, "step": step}, {"train_runtime": 3}]}))
    state = last_logged_state(tmp_path)
    assert (state.steps, state.final_loss) == (20, 0.75)
    assert last_logged_state(tmp_path / "nothing").steps == 0
