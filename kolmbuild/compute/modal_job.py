"""One job in a fresh folder, as the Modal function runs it (kolmbuild.compute.modal_app), and its
outputs unpacked on this side. No ``modal`` import here: both halves are tested without Modal."""

from __future__ import annotations

import base64
import io
import subprocess
import tarfile
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any


def run_job(payload: dict[str, Any]) -> dict[str, Any]:
    """Write the payload's files, run its command there, pack its declared outputs (a gzipped tar)."""
    with tempfile.TemporaryDirectory(prefix="kolm-job-") as tmp:
        folder = Path(tmp)
        for name, data in payload["files"].items():
            if PurePosixPath(name).name != name or name in (".", ".."):
                raise ValueError(f"job file {name!r}: plain names only")
            (folder / name).write_bytes(base64.b64decode(data))
        proc = subprocess.run(list(payload["command"]), cwd=folder, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for name in payload.get("outputs") or []:
                if (folder / name).exists():
                    tar.add(folder / name, arcname=name)
        return {"run_id": payload.get("run_id"), "exit_code": proc.returncode,
                "log_tail": proc.stdout.splitlines()[-20:],
                "outputs_tgz": base64.b64encode(buf.getvalue()).decode()}


def unpack_outputs(result: dict[str, Any], dest: Path) -> list[Path]:
    """The outputs a job sent back, unpacked into ``dest`` (plain files and folders inside it only)."""
    data = result.get("outputs_tgz")
    if not isinstance(data, str):
        return []
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(data)), mode="r:gz") as tar:
        members = [m for m in tar.getmembers() if (m.isfile() or m.isdir()) and not m.name.startswith("/")
                   and ".." not in PurePosixPath(m.name).parts]
        tar.extractall(dest, members=members, filter="data")
        return sorted({dest / PurePosixPath(m.name).parts[0] for m in members})
