"""The train stage's decisions and refusals, none of which loads a model."""

from __future__ import annotations

import json

import pytest

from kolmbuild.config.models import BaseModelSpec
from kolmbuild.errors import BuildFailed, ComputeError, ConfigError, UserInputError
from kolmbuild.models import resolve_base
from kolmbuild.stages import train as stage

from .conftest import MakeCtx


def _record(ctx) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(ctx.output("train.json").read_text())


@pytest.mark.parametrize(
    ("train", "decompose", "reason"),
    [
        ({"enabled": "never"}, {"coverage": 0.1, "accuracy": 0.1}, "never"),
        ({"enabled": "auto"}, {"coverage": 0.98, "accuracy": 1.0}, "no model needed"),
    ],
)
def test_skips_write_only_the_record(make_ctx: MakeCtx, train: dict, decompose: dict, reason: str) -> None:
    ctx = make_ctx(train=train, decompose=decompose)
    result = stage.run(ctx)
    record = _record(ctx)
    assert record["trained"] is False and reason in record["reason"]
    assert record["base"] == {"name": "smollm2", "sha256": resolve_base(BaseModelSpec()).sha256}
    assert (record["steps"], record["final_loss"], record["trainable_params"], record["seed"]) == (0, None, 0, 0)
    assert dict(result.metrics) == record
    assert sorted(p.name for p in ctx.outdir.iterdir()) == ["train.json"]


def test_a_skip_needs_no_base_on_this_machine(make_ctx: MakeCtx) -> None:
    ctx = make_ctx(train={"enabled": "never"}, base={"name": "org/not-downloaded"})
    stage.run(ctx)
    assert _record(ctx)["base"] == {"name": "org/not-downloaded", "sha256": None}


def test_remote_backends_are_not_trained_in_process(make_ctx: MakeCtx, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KOLM_REMOTE_STAGE", raising=False)
    ctx = make_ctx(train={"enabled": "always"}, backend={"name": "lambda", "kind": "cloud-marketplace"})
    with pytest.raises(ComputeError, match="lambda"):
        stage.run(ctx)
    assert not ctx.output("train.json").exists()


def test_on_a_remote_backends_machine_the_device_is_what_is_there() -> None:
    vast = {"name": "vast", "kind": "cloud-marketplace"}
    assert stage._device(vast, {"KOLM_REMOTE_STAGE": "vast"}) == ("cpu", False)  # torch finds no GPU here
    assert stage._device({**vast, "device": "cuda"}, {"KOLM_REMOTE_STAGE": "vast"}) == ("cuda", False)
    # the catalog's descriptive device names the machine, not a torch device: torch decides there
    assert stage._device({**vast, "device": "A100-80GB"}, {"KOLM_REMOTE_STAGE": "vast"}) == ("cpu", False)
    assert stage._device({"name": "remote-ssh", "kind": "self-hosted", "device": "remote"},
                         {"KOLM_REMOTE_STAGE": "remote-ssh"}) == ("cpu", False)
    assert stage._device({"name": "local-cuda", "kind": "local", "device": "cuda"}, {}) == ("cuda", True)
    assert stage._device({"name": "local-cpu", "kind": "local"}, {}) == ("cpu", False)


def test_dora_is_refused_before_any_work(make_ctx: MakeCtx) -> None:
    ctx = make_ctx(train={"enabled": "always", "preset": "dora"})
    with pytest.raises(UserInputError, match="task.train.preset"):
        stage.run(ctx)


def test_no_verified_labels(make_ctx: MakeCtx) -> None:
    ctx = make_ctx(train={"enabled": "always"}, labels=[])
    with pytest.raises(UserInputError, match="no verified labels"):
        stage.run(ctx)


def test_malformed_train_section_names_the_key(make_ctx: MakeCtx) -> None:
    ctx = make_ctx(train={"enabled": "always", "rank": 0})
    with pytest.raises(ConfigError, match=r"task\.train\.rank"):
        stage.run(ctx)


def test_local_cuda_without_a_gpu_says_so(make_ctx: MakeCtx) -> None:
    ctx = make_ctx(train={"enabled": "always"}, backend={"name": "local-cuda", "kind": "local", "device": "cuda"})
    with pytest.raises(BuildFailed, match="no CUDA GPU"):
        stage.run(ctx)


def test_unsupported_local_device(make_ctx: MakeCtx) -> None:
    ctx = make_ctx(train={"enabled": "always"}, backend={"name": "local-mlx", "kind": "local", "device": "mlx"})
    with pytest.raises(BuildFailed, match="mlx"):
        stage.run(ctx)
