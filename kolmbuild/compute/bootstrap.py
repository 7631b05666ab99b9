"""Make a stock machine able to run a kolmbuild stage: ship this kolmbuild as a wheel, install it there.

Near side (here): build the exact wheel of the running kolmbuild (from its source tree with
hatchling's builder, or, for an installed kolmbuild, repacked from the files pip installed), and
pin its dependencies (``Requires-Dist`` of the wheel, with the extras the stage needs) to the
versions installed here, as a pip constraints file; torch's local build label (``+cpu``) is dropped
so the far side picks the build that fits its own device. Far side: ``kolm_bootstrap.py``
(:mod:`kolmbuild.compute.bootstrap_remote`) makes the environment once per machine and the wheel's
folder once per wheel, then ``exec``\\ s the stage runner. Its report line carries the setup time,
which is kept per backend in the state folder and used by later quotes as the cold-start's setup
term (:func:`measured_setup`).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.metadata as md
import io
import json
import shutil
import tempfile
import time
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kolmbuild.atomic import write_text_atomic
from kolmbuild.compute.settings import BootstrapSettings
from kolmbuild.errors import ComputeError

SCRIPT_NAME = "kolm_bootstrap.py"
SPEC_NAME = "bootstrap.json"
REPORT_PREFIX = "::kolm-bootstrap::"
STATE_FILE = "bootstrap.json"


@dataclass(frozen=True)
class BootstrapPlan:
    """What to ship, and the command prefix that runs ``ARGS`` in the bootstrapped interpreter."""

    files: tuple[Path, ...]
    prefix: tuple[str, ...]
    wheel_sha256: str

    def command(self, args: Sequence[str]) -> tuple[str, ...]:
        return (*self.prefix, *args)


def _source_tree() -> Path | None:
    """The project folder when the running kolmbuild is imported from its source tree."""
    import kolmbuild

    root = Path(kolmbuild.__file__).resolve().parent.parent
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and 'name = "kolmbuild"' in pyproject.read_text(encoding="utf-8"):
        return root
    return None


def build_wheel(dest: Path) -> Path:
    """The wheel of the running kolmbuild in ``dest`` (reproducible: hatchling fixes timestamps)."""
    dest.mkdir(parents=True, exist_ok=True)
    root = _source_tree()
    if root is None:
        return repack_installed(md.distribution("kolmbuild"), dest)
    try:
        from hatchling.builders.wheel import WheelBuilder
    except ImportError:
        raise ComputeError("bootstrapping a remote machine from a source checkout needs hatchling here",
                           hint="pip install hatchling (it is in kolmbuild's `cloud` extra)") from None
    paths = list(WheelBuilder(str(root)).build(directory=str(dest), versions=["standard"]))
    return Path(paths[0])


def repack_installed(dist: Any, dest: Path) -> Path:
    """A wheel from an installed distribution's files (``RECORD``), for a kolmbuild installed by pip."""
    files = [f for f in (dist.files or []) if not str(f).startswith("..") and "__pycache__" not in str(f)
             and not str(f).endswith(".pyc")]
    info = next((f.parent for f in files if f.name == "METADATA"), None)
    if info is None or any(f.name == "direct_url.json" and "editable" in (f.read_text() or "") for f in files):
        raise ComputeError("the running kolmbuild is neither a source checkout nor an installed wheel: "
                           "cannot ship it to the far side")
    skip = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
    name = f"kolmbuild-{dist.version}-py3-none-any.whl"
    out = dest / name
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(files, key=str):
            if f.parent == info and f.name in skip:
                continue
            data = Path(str(f.locate())).read_bytes()
            z.writestr(zipfile.ZipInfo(str(f), date_time=(2020, 2, 2, 0, 0, 0)), data)
            digest = hashlib.sha256(data).digest()
            writer.writerow([str(f), "sha256=" + base64.urlsafe_b64encode(digest).decode().rstrip("="), len(data)])
        writer.writerow([f"{info}/RECORD", "", ""])
        z.writestr(zipfile.ZipInfo(f"{info}/RECORD", date_time=(2020, 2, 2, 0, 0, 0)), record.getvalue())
    return out


def _wheel_requires(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        text = z.read(meta).decode("utf-8")
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Requires-Dist:")]


def _public_version(version: str) -> str:
    return version.split("+", 1)[0]  # 2.13.0+cpu -> 2.13.0: the far side picks its own build


def lock(wheel: Path, extras: Iterable[str]) -> tuple[list[str], list[str]]:
    """(requirements, constraints): the wheel's requirements for ``extras`` (markers resolved here),
    and ``name==version`` for every distribution of their closure installed in this environment."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    wanted = [""] + list(extras)
    requirements: list[str] = []
    todo: list[tuple[str, frozenset[str]]] = []
    for raw in _wheel_requires(wheel):
        req = Requirement(raw)
        if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in wanted):
            continue
        req.marker = None
        requirements.append(str(req))
        todo.append((req.name, frozenset(req.extras)))
    pins: dict[str, str] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extra = todo.pop()
        key = (canonicalize_name(name), extra)
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue  # not installed here: the far side resolves it from the requirement alone
        pins[key[0]] = _public_version(dist.version)
        for raw in dist.requires or []:
            req = Requirement(raw)
            envs = [{"extra": e} for e in (extra or {""})]
            if req.marker is None or any(req.marker.evaluate(env) for env in envs):
                todo.append((req.name, frozenset(req.extras)))
    return sorted(requirements), [f"{n}=={v}" for n, v in sorted(pins.items())]


def prepare(settings: BootstrapSettings, python: str, dest: Path) -> BootstrapPlan | None:
    """Write the wheel, the far-side script and its spec into ``dest``; None when ``mode: off``."""
    if settings.mode == "off":
        return None
    from importlib.resources import files

    dest.mkdir(parents=True, exist_ok=True)
    wheel = build_wheel(Path(tempfile.mkdtemp(prefix="wheel-", dir=dest)))
    shipped = dest / wheel.name
    shutil.move(str(wheel), shipped)
    shutil.rmtree(wheel.parent, ignore_errors=True)
    sha = hashlib.sha256(shipped.read_bytes()).hexdigest()
    requirements, constraints = lock(shipped, settings.extras) if settings.mode == "full" else ([], [])
    no_deps = []
    for name in settings.packages:
        try:
            no_deps.append(f"{name}=={_public_version(md.version(name))}")
        except md.PackageNotFoundError:
            no_deps.append(name)
    spec = {"mode": settings.mode, "dir": settings.dir, "wheel": shipped.name, "wheel_sha256": sha,
            "requirements": requirements, "constraints": constraints,
            "no_deps": no_deps if settings.mode == "full" else [],
            "torch_index": {"cpu": settings.torch_index_cpu, "cuda": settings.torch_index_cuda}}
    (dest / SPEC_NAME).write_text(json.dumps(spec, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    script = dest / SCRIPT_NAME
    script.write_bytes(files("kolmbuild.compute").joinpath("bootstrap_remote.py").read_bytes())
    return BootstrapPlan((script, dest / SPEC_NAME, shipped), (python, SCRIPT_NAME, SPEC_NAME, "--"), sha)


def parse_report(line: str) -> dict[str, Any] | None:
    """The far side's bootstrap report, or None for any other line."""
    if not line.startswith(REPORT_PREFIX):
        return None
    try:
        doc = json.loads(line[len(REPORT_PREFIX):])
    except ValueError:
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("setup_s"), (int, float)) else None


def _state(state_dir: Path) -> dict[str, Any]:
    try:
        doc = json.loads((state_dir / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def record_setup(state_dir: Path, backend: str, report: dict[str, Any]) -> None:
    """Keep the last measured setup time of ``backend`` (a cache of measurements: rewritten whole)."""
    doc = _state(state_dir)
    doc[backend] = {"setup_s": float(report["setup_s"]), "reused": bool(report.get("reused")),
                    "variant": str(report.get("variant") or ""), "measured_at": time.time()}
    write_text_atomic(state_dir / STATE_FILE, json.dumps(doc, indent=1, sort_keys=True) + "\n")


def measured_setup(state_dir: Path, backend: str) -> float | None:
    """The setup time last measured on ``backend``'s machines, or None when none was measured."""
    row = _state(state_dir).get(backend)
    value = row.get("setup_s") if isinstance(row, dict) else None
    return float(value) if isinstance(value, (int, float)) and value >= 0 else None
