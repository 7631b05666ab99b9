"""The no-op fast path: answer "nothing to do" from a stamp, importing only the standard library.

``kolmbuild`` and ``kolmbuild status`` with nothing changed must answer in well under a second on
projects with thousands of input files, so the console entry point calls :func:`try_noop` before it
imports click, Hydra, pydantic or doit. Any doubt (no stamp, a moved stat, a missing object, another
flag) returns None and the full engine decides.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

_GROUP_OPTS_WITH_VALUE = ("-C", "-f")
_VERBS = ("build", "status")


def _parse(args: list[str]) -> tuple[str, str | None, str | None] | None:
    """(verb, -C dir, -f file) for argv the fast path may answer; None for anything else."""
    directory = kolmfile = None
    rest = list(args)
    while rest and rest[0] in _GROUP_OPTS_WITH_VALUE:
        if len(rest) < 2:
            return None
        opt, value = rest.pop(0), rest.pop(0)
        if opt == "-C":
            directory = value
        else:
            kolmfile = value
    verb = "build"
    if rest and rest[0] in _VERBS:
        verb = rest.pop(0)
    for tok in rest:
        if tok.startswith("-"):  # -n, -m, --json, --cfg, -j, ...: the full CLI handles them
            return None
    return verb, directory, kolmfile


def try_noop(args: list[str]) -> int | None:
    parsed = _parse(args)
    if parsed is None:
        return None
    verb, directory, kolmfile = parsed
    try:
        from kolmbuild.engine.stamp import (
            STAMP_VERSION,
            dir_sig,
            env_print,
            file_sig,
            normalize_args,
            stamp_key,
            stamp_path,
        )

        root = Path(directory or ".").resolve()
        if kolmfile:
            kf = Path(kolmfile) if os.path.isabs(kolmfile) else root / kolmfile
            root = kf.resolve().parent
        path = stamp_path(root / "cache", stamp_key(os.getcwd(), normalize_args(args)))
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if doc.get("v") != STAMP_VERSION or doc.get("python") != sys.executable:
            return None
        if doc.get("env") != env_print(doc.get("env_names", ())):
            return None
        for p, sig in doc["files"].items():
            if file_sig(Path(p)) != sig:
                return None
        for p in doc["objects"]:
            if not os.path.isfile(p):
                return None
        for p, sig in doc["dirs"].items():
            if dir_sig(Path(p)) != sig:
                return None
    except Exception:  # the fast path never fails a build: the full engine decides instead
        return None
    out = sys.stdout
    if verb == "status":
        out.write("\n".join(doc["status_lines"]) + "\n")
    else:
        sys.stderr.write(doc["build_message"] + "\n")
    return 0
