"""A real Ray cluster for tests and benches, in namespaces of its own: loopback only, ended with it.

Ray 2.60 binds to and connects over the machine's external interface, and probes a public resolver
address to find it, even with ``--node-ip-address 127.0.0.1``. In a network namespace whose only
interface is loopback it uses 127.0.0.1 and reaches nothing else. The head runs under
``unshare -rnpf --mount-proc --kill-child``: a user namespace (no privilege needed), a network
namespace (``ip link set lo up``: loopback only), and a PID namespace whose first process is
``ray start --head --block``. Stopping kills that process; the kernel then ends every process of the
namespace (GCS, raylet, workers, what they started), so a test never leaves Ray behind and never
touches another Ray on the machine (``ray stop`` would end every Ray process of the user).
Commands that must reach the cluster (the sweep) run inside with ``nsenter``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

RAY = Path(sys.executable).with_name("ray")
PORT = 6379  # the namespace's own port space: nothing else listens there
TOOLS = ("unshare", "nsenter", "ip")


def _tool(name: str) -> str:
    return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") or name


def missing_tools() -> list[str]:
    """What this machine lacks to run a namespaced cluster (util-linux, iproute2, the ray CLI)."""
    gone = [t for t in TOOLS if _tool(t) == t]  # not found: the bare name came back
    return gone + ([] if RAY.is_file() else [str(RAY)])


def in_namespaces(cmd: Sequence[str]) -> list[str]:
    """``cmd`` as the first process of new user, network (loopback only) and PID namespaces: when it
    ends, the kernel ends every process it left in them."""
    return ["unshare", "-rnpf", "--mount-proc", "--kill-child", "sh", "-c",
            f'{_tool("ip")} link set lo up && exec "$0" "$@"', *cmd]


def head_command(num_cpus: int, temp: Path, *, block: bool) -> list[str]:
    """``ray start --head`` on 127.0.0.1:PORT with ``num_cpus`` CPUs, no GPU, no dashboard, a small
    object store (the sweep ships only small results through it), its files under ``temp``."""
    return [str(RAY), "start", "--head", *(["--block"] if block else []), "--num-cpus", str(num_cpus),
            "--num-gpus", "0", "--node-ip-address", "127.0.0.1", "--port", str(PORT), "--include-dashboard",
            "false", "--disable-usage-stats", "--object-store-memory", str(200 * 1024 * 1024),
            "--temp-dir", str(temp)]


class RayCluster:
    """``ray start --head --num-cpus N`` in namespaces of its own (see the module's doc)."""

    def __init__(self, env: Mapping[str, str], num_cpus: int = 2) -> None:
        self.env = dict(env)
        self.num_cpus = num_cpus
        # Ray's sockets live under its temp folder, whose path must stay short (AF_UNIX: 107 bytes)
        self.temp = Path(tempfile.mkdtemp(prefix="kray-", dir="/tmp"))
        self.log = self.temp / "head.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.inner_pid: int | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{PORT}"

    def start(self, timeout_s: float = 300.0) -> RayCluster:
        env = {**self.env, "RAY_USAGE_STATS_ENABLED": "0"}
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(in_namespaces(head_command(self.num_cpus, self.temp / "ray", block=True)),
                                         env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace")
            if "Ray runtime started" in text and self._inner() is not None:
                self.inner_pid = self._inner()
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"the Ray head did not start within {timeout_s:.0f} s:\n{self.log.read_text()[-3000:]}")

    def _inner(self) -> int | None:
        """The namespace's first process (the head), as this machine numbers it: unshare's child."""
        assert self.proc is not None
        try:
            kids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            return None
        return int(kids[0]) if kids else None

    def command(self, cmd: Sequence[str]) -> list[str]:
        """``cmd`` run inside the cluster's namespaces."""
        assert self.inner_pid is not None, "the cluster is not started"
        return ["nsenter", "-t", str(self.inner_pid), "-U", "-n", "-p", "-m", "--preserve-credentials", "--", *cmd]

    def run(self, cmd: Sequence[str], env: Mapping[str, str], timeout_s: float = 600.0,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(cmd), env=dict(env), cwd=cwd, capture_output=True, text=True,
                              timeout=timeout_s)

    def stop(self) -> None:
        """Kill the head; the kernel ends the rest of the namespace with it."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # unshare and its session; --kill-child takes the namespace
            self.proc.wait(timeout=60)
        shutil.rmtree(self.temp, ignore_errors=True)

    def __enter__(self) -> RayCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
