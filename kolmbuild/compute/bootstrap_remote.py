"""The far side of the bootstrap, shipped as ``kolm_bootstrap.py``: standard library only (Python 3.8+).

``python3 kolm_bootstrap.py bootstrap.json -- ARGS…`` makes sure this machine has

1. (``mode: full``) a virtualenv with kolmbuild's dependencies, pinned to the versions of the machine
   that sent the job, with the torch build that fits this machine (CUDA when an NVIDIA driver is
   here, else CPU), made once per lock: ``DIR/env-<digest of the lock>``;
2. the shipped kolmbuild wheel, installed once per wheel: ``DIR/kolmbuild-<sha256 of the wheel>``;

then replaces itself (``exec``) with ``ENV_PYTHON ARGS…`` with that wheel first on ``PYTHONPATH``.
Each folder is made under an exclusive lock and is used only once its ``.ready`` file exists, so two
builds on one machine, or one killed half-way, never use a half-made environment. One line
``::kolm-bootstrap::{json}`` tells the caller what it did and how long it took.
"""

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

REPORT_PREFIX = "::kolm-bootstrap::"
READY = ".ready"


def say(text):
    sys.stdout.write("bootstrap: " + text + "\n")
    sys.stdout.flush()


def variant():
    """``cuda`` when this machine has an NVIDIA driver, else ``cpu``."""
    if os.path.exists("/dev/nvidia0") or os.path.exists("/dev/nvidiactl") or shutil.which("nvidia-smi"):
        return "cuda"
    return "cpu"


def pip(python, args, what):
    cmd = [python, "-m", "pip", "--disable-pip-version-check", "install", "--no-input", "--no-compile", "-q"] + args
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        sys.stdout.write(proc.stdout[-4000:])
        raise SystemExit("kolmbuild bootstrap: pip failed while installing " + what + " (exit "
                         + str(proc.returncode) + ")")


def make_env(spec, folder, kind):
    """A fresh virtualenv in ``folder`` with the locked requirements."""
    if os.path.isdir(folder):
        shutil.rmtree(folder)  # a half-made one from an interrupted bootstrap
    subprocess.run([sys.executable, "-m", "venv", folder], check=True)
    python = os.path.join(folder, "bin", "python")
    reqs = os.path.join(folder, "requirements.txt")
    cons = os.path.join(folder, "constraints.txt")
    with open(reqs, "w") as fh:
        fh.write("".join(r + "\n" for r in spec["requirements"]))
    with open(cons, "w") as fh:
        fh.write("".join(c + "\n" for c in spec["constraints"]))
    index = (spec.get("torch_index") or {}).get(kind) or ""
    extra = ["--extra-index-url", index] if index else []
    say("installing kolmbuild's dependencies (" + str(len(spec["requirements"])) + " requirements, " + kind
        + " torch) into " + folder)
    pip(python, extra + ["-c", cons, "-r", reqs], "the dependencies")
    if spec.get("no_deps"):
        pip(python, ["--no-deps"] + list(spec["no_deps"]), ", ".join(spec["no_deps"]))
    return python


def ensure(folder, make):
    """Run ``make()`` unless ``folder/.ready`` exists; True when it was already there."""
    if os.path.exists(os.path.join(folder, READY)):
        return True
    make()
    with open(os.path.join(folder, READY), "w") as fh:
        fh.write(str(time.time()) + "\n")
    return False


def main(argv):
    if len(argv) < 3 or argv[2] != "--":
        sys.stderr.write("usage: python3 kolm_bootstrap.py bootstrap.json -- ARGS...\n")
        return 2
    started = time.monotonic()
    with open(argv[1]) as fh:
        spec = json.load(fh)
    here = os.path.dirname(os.path.abspath(argv[1]))
    base = os.path.abspath(os.path.expanduser(spec["dir"]))
    os.makedirs(base, exist_ok=True)
    kind = variant()
    lock = open(os.path.join(base, ".lock"), "a+")
    fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # one bootstrap at a time on this machine
    reused = True
    python = sys.executable
    env_dir = None
    if spec["mode"] == "full":
        digest = hashlib.sha256(json.dumps({
            "requirements": spec["requirements"], "constraints": spec["constraints"],
            "no_deps": spec.get("no_deps") or [], "variant": kind,
            "index": (spec.get("torch_index") or {}).get(kind) or "",
            "python": list(sys.version_info[:3]),
        }, sort_keys=True).encode()).hexdigest()[:16]
        env_dir = os.path.join(base, "env-" + digest)
        python = os.path.join(env_dir, "bin", "python")
        reused = ensure(env_dir, lambda: make_env(spec, env_dir, kind)) and reused
    layer = os.path.join(base, "kolmbuild-" + spec["wheel_sha256"][:16])
    wheel = os.path.join(here, spec["wheel"])

    def install_wheel():
        if os.path.isdir(layer):
            shutil.rmtree(layer)
        say("installing " + spec["wheel"])
        pip(python, ["--no-deps", "--target", layer, wheel], spec["wheel"])

    reused = ensure(layer, install_wheel) and reused
    fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
    lock.close()
    report = {"setup_s": round(time.monotonic() - started, 3), "reused": reused, "variant": kind,
              "mode": spec["mode"], "env": env_dir, "layer": layer}
    sys.stdout.write(REPORT_PREFIX + json.dumps(report, sort_keys=True) + "\n")
    sys.stdout.flush()
    env = dict(os.environ)
    env["PYTHONPATH"] = layer + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    os.execve(python, [python] + argv[3:], env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv))
