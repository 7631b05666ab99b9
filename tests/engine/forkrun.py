"""A warm process that runs ``kolmbuild`` in forked children, so a test can kill -9 many builds
without paying for a new interpreter and its imports each time (about a second of CPU apiece).

Each child is a real process running the real CLI (``kolmbuild.cli.main.main``) in its own
process group, with its own environment; a kill is ``killpg(SIGKILL)``: the build and any shell
it started die at once, as with ``kill -9``. Protocol: one JSON request per line on stdin, one
JSON reply per line on stdout::

    {"cwd": DIR, "args": [...], "env": {...}, "unset": [...], "log": FILE, "kill_after": SECONDS|null}
    -> {"code": EXIT CODE (negative: killed by that signal), "killed": BOOL, "seconds": FLOAT}

``killed`` is true only when the kill landed before the build finished on its own.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback


def _child(req: dict) -> int:
    os.setpgid(0, 0)  # its own group (the parent sets it too: no window where a kill misses it)
    fd = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.chdir(req["cwd"])
    os.environ.update(req.get("env", {}))
    for name in req.get("unset", []):
        os.environ.pop(name, None)
    from kolmbuild.cli.main import main

    return main(list(req["args"]))


def _run(req: dict) -> dict:
    sys.stdout.flush()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 99
        try:
            code = _child(req)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    try:
        os.setpgid(pid, pid)
    except OSError:  # the child did it first
        pass
    killed = False
    status = None
    kill_after = req.get("kill_after")
    if kill_after is not None:
        deadline = started + float(kill_after)
        while time.monotonic() < deadline:
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                status = st
                break
            time.sleep(0.001)
        if status is None:
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                status = st
            else:
                os.killpg(pid, signal.SIGKILL)
                killed = True
    if status is None:
        _, status = os.waitpid(pid, 0)
    try:  # whatever the build left running in its group (a stage's shell) goes too
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    return {"code": os.waitstatus_to_exitcode(status), "killed": killed,
            "seconds": round(time.monotonic() - started, 4)}


def main() -> None:
    # warm every module a build imports, so each fork starts at the build itself
    import doit.cmd_base  # noqa: F401
    import doit.doit_cmd  # noqa: F401
    import doit.task  # noqa: F401

    import kolmbuild.cli.build_cmds  # noqa: F401
    import kolmbuild.config.compose  # noqa: F401
    import kolmbuild.engine.build  # noqa: F401

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(_run(json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
