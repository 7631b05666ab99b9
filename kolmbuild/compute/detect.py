"""Is a backend usable here? ok / not detected / no token — never an exception.

Local accelerators are probed through the library the backend runs on (torch.cuda, torch.backends.mps,
torch.version.hip, mlx, torch_directml), imported lazily and only where the hardware could exist
(an NVIDIA/AMD device node, macOS, an installed torch_directml): a CPU machine answers "not detected"
in microseconds without importing torch. Cloud backends are "ok" when their token variables are set;
detection never calls a provider.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kolmbuild.compute.settings import settings_for
from kolmbuild.config.models import BackendSpec

Status = Literal["ok", "not detected", "no token"]


@dataclass(frozen=True)
class Detection:
    backend: str
    status: Status
    detail: str
    memory_gb: float | None = None  # accelerator memory (RAM for local-cpu), when known

    @property
    def available(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict[str, object]:
        return {"backend": self.backend, "status": self.status, "detail": self.detail, "memory_gb": self.memory_gb}


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _ram_gb() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def _torch() -> object | None:
    if not _has("torch"):
        return None
    try:
        return importlib.import_module("torch")
    except Exception:  # a broken torch install is "not detected", not a crash
        return None


def detect_cpu(spec: BackendSpec) -> Detection:
    return Detection(spec.name, "ok", f"{os.cpu_count() or 1} CPU cores", _ram_gb())


def detect_cuda(spec: BackendSpec) -> Detection:
    if not (Path("/proc/driver/nvidia").exists() or Path("/dev/nvidia0").exists() or sys.platform == "win32"):
        return Detection(spec.name, "not detected", "no NVIDIA driver on this machine")
    torch = _torch()
    if torch is None:
        return Detection(spec.name, "not detected", "torch is not installed")
    try:
        if not torch.cuda.is_available() or getattr(torch.version, "hip", None):  # type: ignore[attr-defined]
            return Detection(spec.name, "not detected", "torch.cuda.is_available() is False")
        props = torch.cuda.get_device_properties(0)  # type: ignore[attr-defined]
        return Detection(spec.name, "ok", str(props.name), round(props.total_memory / 2**30, 1))
    except Exception as exc:
        return Detection(spec.name, "not detected", f"torch.cuda: {type(exc).__name__}")


def detect_rocm(spec: BackendSpec) -> Detection:
    if not Path("/dev/kfd").exists():
        return Detection(spec.name, "not detected", "no ROCm device (/dev/kfd)")
    torch = _torch()
    if torch is None:
        return Detection(spec.name, "not detected", "torch is not installed")
    try:
        if getattr(torch.version, "hip", None) and torch.cuda.is_available():  # type: ignore[attr-defined]
            props = torch.cuda.get_device_properties(0)  # type: ignore[attr-defined]
            return Detection(spec.name, "ok", f"{props.name} (HIP {torch.version.hip})",  # type: ignore[attr-defined]
                             round(props.total_memory / 2**30, 1))
        return Detection(spec.name, "not detected", "torch.version.hip is None (not a ROCm build of torch)")
    except Exception as exc:
        return Detection(spec.name, "not detected", f"torch (ROCm): {type(exc).__name__}")


def detect_mps(spec: BackendSpec) -> Detection:
    if sys.platform != "darwin":
        return Detection(spec.name, "not detected", "MPS needs macOS")
    torch = _torch()
    if torch is None:
        return Detection(spec.name, "not detected", "torch is not installed")
    try:
        if torch.backends.mps.is_available():
            return Detection(spec.name, "ok", "Apple GPU (torch.backends.mps)", _ram_gb())
        return Detection(spec.name, "not detected", "torch.backends.mps.is_available() is False")
    except Exception as exc:
        return Detection(spec.name, "not detected", f"torch.backends.mps: {type(exc).__name__}")


def detect_mlx(spec: BackendSpec) -> Detection:
    if not _has("mlx"):
        return Detection(spec.name, "not detected", "mlx is not installed")
    try:
        core = importlib.import_module("mlx.core")
        return Detection(spec.name, "ok", f"mlx default device {core.default_device()}", _ram_gb())
    except Exception as exc:
        return Detection(spec.name, "not detected", f"mlx: {type(exc).__name__}")


def detect_directml(spec: BackendSpec) -> Detection:
    if not _has("torch_directml"):
        return Detection(spec.name, "not detected", "torch_directml is not installed")
    try:
        dml = importlib.import_module("torch_directml")
        if dml.device_count() > 0:
            return Detection(spec.name, "ok", str(dml.device_name(0)))
        return Detection(spec.name, "not detected", "torch_directml.device_count() == 0")
    except Exception as exc:
        return Detection(spec.name, "not detected", f"torch_directml: {type(exc).__name__}")


def detect_token(spec: BackendSpec, environ: Mapping[str, str]) -> Detection:
    missing = [v for v in spec.auth if not environ.get(v)]
    if missing:
        return Detection(spec.name, "no token", f"set {' and '.join(missing)} to enable")
    module = settings_for(spec).requires_module
    if module and not _has(str(module)):
        return Detection(spec.name, "not detected", f"the {module} package is not installed "
                                                    f"(pip install {str(module).replace('_', '-')})")
    shown = ", ".join(spec.auth) if spec.auth else "no credentials needed"
    return Detection(spec.name, "ok", f"{shown} set", spec.vram_cap_gb or None)


LOCAL_PROBES: dict[str, Callable[[BackendSpec], Detection]] = {
    "cpu": detect_cpu, "cuda": detect_cuda, "rocm": detect_rocm, "mps": detect_mps,
    "mlx": detect_mlx, "directml": detect_directml,
}


def detect(spec: BackendSpec, environ: Mapping[str, str] | None = None) -> Detection:
    env = os.environ if environ is None else environ
    if spec.kind == "local":
        device = settings_for(spec).device or "cpu"
        probe = LOCAL_PROBES.get(device)
        if probe is None:
            return Detection(spec.name, "not detected", f"unknown local device {device!r}")
        return probe(spec)
    return detect_token(spec, env)
