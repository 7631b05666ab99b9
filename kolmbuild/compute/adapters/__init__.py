"""One adapter per backend; ``adapter_for`` maps a backend spec to its class (by ``adapter:`` or name)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kolmbuild.compute.adapters.base import Adapter
from kolmbuild.compute.ledger import Ledger
from kolmbuild.compute.settings import adapter_key
from kolmbuild.config.models import BackendSpec
from kolmbuild.errors import ConfigError

# backend name (or a conf's `adapter:` field) -> "module:Class"; imported only when used
ADAPTERS: dict[str, str] = {
    "local": "kolmbuild.compute.adapters.direct:DirectAdapter",
    "remote-ssh": "kolmbuild.compute.adapters.direct:RemoteSSHAdapter",
    "lambda": "kolmbuild.compute.adapters.lambda_cloud:LambdaAdapter",
    "vast": "kolmbuild.compute.adapters.vast:VastAdapter",
    "runpod": "kolmbuild.compute.adapters.runpod:RunPodAdapter",
    "together": "kolmbuild.compute.adapters.together:TogetherAdapter",
    "replicate": "kolmbuild.compute.adapters.replicate_trainings:ReplicateAdapter",
    "fal": "kolmbuild.compute.adapters.fal_queue:FalAdapter",
    "modal": "kolmbuild.compute.adapters.modal_functions:ModalAdapter",
}


def adapter_for(spec: BackendSpec, *, ledger: Ledger | None = None, environ: Mapping[str, str] | None = None,
                workdir: Path | None = None, **kw: Any) -> Adapter:
    key = adapter_key(spec)
    target = ADAPTERS.get(key)
    if target is None:
        raise ConfigError(
            f"backend {spec.name!r}: no adapter {key!r}",
            hint=f"set `adapter:` in its conf to one of: {', '.join(sorted(ADAPTERS))}",
        )
    module, cls = target.split(":")
    klass = getattr(importlib.import_module(module), cls)
    return klass(spec, ledger=ledger, environ=environ, workdir=workdir, **kw)  # type: ignore[no-any-return]
