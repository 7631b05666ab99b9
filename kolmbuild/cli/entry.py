"""Console-script entry: the stdlib-only no-op fast path first, then the full CLI."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    from kolmbuild.engine import fastpath

    code = fastpath.try_noop(args)
    if code is not None:
        return code
    from kolmbuild.cli.main import main as full_main

    return full_main(args)
