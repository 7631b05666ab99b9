"""The far side of a remote stage: ``python3 -m kolmbuild.compute.stage_runner stage.json``.

Run in the job folder a transport made on the backend's machine, next to ``stage.json`` (the
description) and ``stage.tar`` (inputs, upstream outputs and a project-local action module). It
checks the archive's sha256, unpacks it safely, rebuilds the :class:`StageContext`, resolves the
rule's action (or shell command) exactly as the engine does and runs it with ``out/`` as its outdir.
Progress goes to stdout as ``::kolm-progress::`` JSON lines, which the caller turns back into calls on
its own Progress. It writes ``result.json`` (metrics and summary, or the error) and exits 0, or 1
when the stage failed (one line on stderr, the traceback in ``result.json``), or 2 when the bundle
itself is bad.

With ``--hangup`` (given over SSH) it kills its process group when its stdin closes, i.e. when the
caller's connection goes away, so an interrupted build leaves nothing running on the host.

Needs kolmbuild importable by the interpreter that runs it (``python:`` in the backend's conf).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import tarfile
import threading
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, TextIO

from kolmbuild.atomic import write_text_atomic
from kolmbuild.compute.checkpoints import PREFIX, REMOTE_ENV

__all__ = ["REMOTE_ENV", "main", "run_bundle"]

BUNDLE_FORMAT = 1
DESCRIPTION = "stage.json"
ARCHIVE = "stage.tar"
OUT_DIR = "out"
RESULT = "result.json"
PROGRESS_PREFIX = PREFIX
RUNNER_PREFIX = "kolmbuild stage runner: "  # its own error lines (the caller reads result.json instead)
# REMOTE_ENV: set on the far side to the backend's name, for actions that care
EXIT_STAGE_FAILED = 1
EXIT_BAD_BUNDLE = 2


class BadBundle(Exception):
    """The description or archive is malformed or does not match its digest."""


@dataclass(frozen=True)
class LineProgress:
    """The Progress protocol as JSON lines on a stream (stdout, read back by the caller)."""

    stream: TextIO

    def _emit(self, doc: Mapping[str, Any]) -> None:
        self.stream.write(PROGRESS_PREFIX + json.dumps(doc, default=str, sort_keys=True) + "\n")
        self.stream.flush()

    def start(self, description: str, total: float | None = None) -> None:
        self._emit({"op": "start", "description": description, "total": total})

    def advance(self, amount: float = 1.0, **fields: Any) -> None:
        self._emit({"op": "advance", "amount": amount, "fields": fields})

    def log(self, message: str) -> None:
        self._emit({"op": "log", "message": message})


def parse_progress(line: str) -> dict[str, Any] | None:
    """The progress call a line encodes, or None for an ordinary output line."""
    if not line.startswith(PROGRESS_PREFIX):
        return None
    try:
        doc = json.loads(line[len(PROGRESS_PREFIX):])
    except ValueError:
        return None
    return doc if isinstance(doc, dict) and doc.get("op") in ("start", "advance", "log") else None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _safe_members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """Only plain files and folders, with relative paths that stay inside the destination."""
    members = []
    for m in tar.getmembers():
        parts = PurePosixPath(m.name).parts
        if m.name.startswith("/") or ".." in parts or not (m.isfile() or m.isdir()):
            raise BadBundle(f"{ARCHIVE}: refusing member {m.name!r} (links, devices and paths outside are not allowed)")
        members.append(m)
    return members


def unpack(description: Mapping[str, Any], folder: Path, dest: Path) -> None:
    archive = folder / str(description["archive"]["name"])
    if sha256_file(archive) != description["archive"]["sha256"]:
        raise BadBundle(f"{archive.name}: sha256 does not match {DESCRIPTION}")
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r") as tar:
        members = _safe_members(tar)
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, members=members, filter="data")
        else:  # pragma: no cover (Python < 3.11.4)
            tar.extractall(dest, members=members)


def _rel(base: Path, rel: str | None) -> Path | None:
    return None if rel is None else base / rel


def build_context(description: Mapping[str, Any], work: Path, outdir: Path, progress: Any) -> Any:
    from kolmbuild.engine.stage import StageContext, StageReceipt

    receipts = {
        name: StageReceipt(stage=r["stage"], version=int(r["version"]), key=r["key"], outputs=dict(r["outputs"]),
                           metrics=dict(r.get("metrics") or {}))
        for name, r in (description.get("receipts") or {}).items()
    }
    project = work / "project"
    project.mkdir(exist_ok=True)
    cache = work / "cache"
    cache.mkdir(exist_ok=True)
    return StageContext(
        target=str(description["target"]), stage=str(description["stage"]), key=str(description["key"]),
        project_dir=project, outdir=outdir, cache_dir=cache, params=dict(description["params"]),
        inputs={k: _rel(work, v) for k, v in description["inputs"].items()},
        upstream={s: {n: work / p for n, p in outs.items()} for s, outs in description["upstream"].items()},
        receipts=receipts, progress=progress,
    )


def _write_json(path: Path, doc: Mapping[str, Any]) -> None:
    write_text_atomic(path, json.dumps(doc, sort_keys=True) + "\n")


def read_description(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BadBundle(f"{path.name}: cannot read: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != BUNDLE_FORMAT:
        raise BadBundle(f"{path.name}: not a kolmbuild stage bundle of format {BUNDLE_FORMAT}")
    missing = [k for k in ("target", "stage", "key", "params", "inputs", "upstream", "archive") if k not in doc]
    if missing:
        raise BadBundle(f"{path.name}: missing {', '.join(missing)}")
    return doc


def raised_at(exc: BaseException) -> str:
    """``file.py:LINE in function`` of the frame that raised (the file's name only: no remote paths)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "?"
    last = frames[-1]
    return f"{Path(last.filename).name}:{last.lineno} in {last.name}"


def run_bundle(desc_path: Path, stdout: TextIO) -> int:
    """Run the stage a description names; write ``result.json`` next to it; return the exit code."""
    folder = desc_path.resolve().parent
    result_path = folder / RESULT
    try:
        description = read_description(desc_path)
        unpack(description, folder, folder / "work")
    except BadBundle as exc:
        _write_json(result_path, {"error": {"type": "BadBundle", "message": str(exc)}})
        sys.stderr.write(f"{RUNNER_PREFIX}{exc}\n")
        return EXIT_BAD_BUNDLE
    for name, value in (description.get("env") or {}).items():
        os.environ[str(name)] = str(value)
    os.environ[REMOTE_ENV] = str(description.get("backend") or "remote")
    outdir = folder / OUT_DIR
    outdir.mkdir(exist_ok=True)
    cache = None
    try:
        from kolmbuild.engine.execute import resolve_action, run_shell
        from kolmbuild.engine.stage import StageResult

        if description.get("remote_cache"):  # inputs by reference: fetched from the remote cache
            from kolmbuild.compute.stage_cache import FarCache, fetch_upstream

            cache = FarCache.from_json(description["remote_cache"])
            remote = cache.open(folder / "work")
            fetched = fetch_upstream(remote, description.get("upstream_cache") or {}, folder / "work")
            for stage, outs in fetched.items():
                description["upstream"].setdefault(stage, {}).update(outs)
        ctx = build_context(description, folder / "work", outdir, LineProgress(stdout))
        if description.get("action"):
            result = resolve_action(str(description["action"]), ctx.project_dir)(ctx) or StageResult()
        else:
            result = run_shell(str(description.get("shell") or ""), ctx)
        doc = {"metrics": dict(result.metrics), "summary": result.summary}
        json.dumps(doc)  # metrics must be JSON: fail here, on the far side, with the stage named
        if cache is not None and cache.push_outputs:  # outputs go to the cache, not back over the link
            from kolmbuild.compute.stage_cache import push_outputs

            doc["remote_outputs"] = push_outputs(remote, outdir)
    except BaseException as exc:  # noqa: BLE001 — everything goes back to the caller as the stage's error
        where = raised_at(exc)
        sys.stderr.write(f"{RUNNER_PREFIX}{type(exc).__name__} at {where}: {exc}\n")
        sys.stderr.flush()
        _write_json(result_path, {"error": {"type": type(exc).__name__, "message": str(exc), "where": where,
                                            "traceback": traceback.format_exc()}})
        return EXIT_STAGE_FAILED
    _write_json(result_path, doc)
    return 0


def hang_up_with_stdin(fd: int) -> threading.Thread:
    """Kill this process group when file descriptor ``fd`` (stdin) closes: over SSH that is the caller
    going away (Ctrl+C, a killed build, a dropped network), and a stage must not run on unwatched.
    Raw ``os.read``: a daemon thread blocked in a buffered read would abort interpreter shutdown."""

    def watch() -> None:
        try:
            while os.read(fd, 4096):
                pass
        except OSError:
            pass
        os.killpg(os.getpgrp(), signal.SIGKILL)

    try:
        os.setsid()  # our own group, so children (shell rules, data loaders) go too
    except OSError:
        pass  # already a session leader (sshd makes one per session)
    thread = threading.Thread(target=watch, name="kolm-hangup", daemon=True)
    thread.start()
    return thread


def main(argv: list[str]) -> int:
    args = argv[1:]
    hangup = "--hangup" in args
    args = [a for a in args if a != "--hangup"]
    if len(args) != 1:
        sys.stderr.write(f"usage: python3 -m kolmbuild.compute.stage_runner [--hangup] {DESCRIPTION}\n")
        return EXIT_BAD_BUNDLE
    if hangup:
        hang_up_with_stdin(sys.stdin.fileno())
    return run_bundle(Path(args[0]), sys.stdout)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
