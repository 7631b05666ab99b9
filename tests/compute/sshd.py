"""A real OpenSSH server on a loopback port with a throwaway key, for remote-ssh and SSH transports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)


@dataclass
class SSHServer:
    port: int
    user: str
    key: Path
    known_hosts: Path
    proc: subprocess.Popen[bytes]

    @property
    def host(self) -> str:
        return f"{self.user}@127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {"KOLM_REMOTE_HOST": self.host, "KOLM_REMOTE_KEY": str(self.key),
                "KOLM_REMOTE_KNOWN_HOSTS": str(self.known_hosts), "KOLM_SSH_KEY": str(self.key)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sshd(tmp: Path, far_env: dict[str, str] | None = None) -> SSHServer:
    """An sshd on a free loopback port. ``far_env``: variables every session on it gets (sshd's
    ``SetEnv``), e.g. a separate HOME, so the far side is a machine of its own."""
    assert SSHD is not None
    tmp.mkdir(parents=True, exist_ok=True)
    os.chmod(tmp, 0o700)
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / name)], check=True)
    (tmp / "authorized_keys").write_text((tmp / "client_key.pub").read_text())
    os.chmod(tmp / "authorized_keys", 0o600)
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    port = _free_port()
    user = os.environ.get("USER") or subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    sftp = next((p for p in ("/usr/lib/openssh/sftp-server", "/usr/libexec/sftp-server") if Path(p).exists()),
                "internal-sftp")
    (tmp / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {tmp / 'host_key'}\nPidFile {tmp / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {tmp / 'authorized_keys'}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        f"PubkeyAuthentication yes\nStrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\n"
        f"Subsystem sftp {sftp}\nLogLevel ERROR\n"
        + (("SetEnv " + " ".join(f"{k}={v}" for k, v in far_env.items()) + "\n") if far_env else "")
    )
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(tmp / "sshd_config")], stdout=subprocess.DEVNULL,
                            stderr=open(tmp / "sshd.log", "wb"))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited: {(tmp / 'sshd.log').read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    host_pub = (tmp / "host_key.pub").read_text().split()
    (tmp / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    return SSHServer(port, user, tmp / "client_key", tmp / "known_hosts", proc)
