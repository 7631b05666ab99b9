"""Ship a job's folder to a machine, run its command, bring ``out/`` back.

``LocalTransport`` runs in a temp folder on this machine (local backends, and any backend whose conf
says ``transport: local``). ``SSHTransport`` uses paramiko: SFTP up, ``exec_command`` with streamed
output, SFTP down, remote folder removed in ``close``. Host keys are checked against known_hosts
(``KOLM_REMOTE_KNOWN_HOSTS``, then ``~/.ssh/known_hosts``); an unknown host is refused.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from kolmbuild.errors import ComputeError, UserInputError
from kolmbuild.secretnames import is_secret_name

OnLine = Callable[[str], None]


class Transport(Protocol):
    def upload(self, files: Sequence[Path]) -> None: ...

    def run(self, command: Sequence[str], on_line: OnLine) -> int: ...

    def download(self, names: Sequence[str], dest: Path) -> list[Path]: ...

    def fetch(self, name: str, dest: Path) -> None:
        """Copy the job folder's file ``name`` to ``dest`` here, while the command still runs."""
        ...

    def abort(self) -> None: ...

    def close(self) -> None: ...


class LocalTransport:
    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="kolm-job-"))
        self._proc: subprocess.Popen[str] | None = None

    def upload(self, files: Sequence[Path]) -> None:
        for f in files:
            shutil.copyfile(f, self.workdir / f.name)

    def run(self, command: Sequence[str], on_line: OnLine) -> int:
        env = {k: v for k, v in os.environ.items() if not is_secret_name(k)}
        proc = subprocess.Popen(
            list(command), cwd=self.workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=env, start_new_session=True,
        )
        self._proc = proc
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                on_line(line.rstrip("\n"))
            return proc.wait()
        finally:
            self._kill()

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()

    def abort(self) -> None:
        self._kill()

    def download(self, names: Sequence[str], dest: Path) -> list[Path]:
        got = []
        for name in names:
            src = self.workdir / name
            if src.is_dir():
                shutil.copytree(src, dest / name, dirs_exist_ok=True)
                got.append(dest / name)
            elif src.is_file():
                dest.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dest / name)
                got.append(dest / name)
        return got

    def fetch(self, name: str, dest: Path) -> None:
        shutil.copyfile(self.workdir / name, dest)

    def close(self) -> None:
        self._kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass(frozen=True)
class SSHTarget:
    user: str
    host: str
    port: int = 22
    key_file: str | None = None
    known_hosts: str | None = None
    # a machine just rented from a provider has a host key nobody has seen: trust it for this session
    # only (never written to known_hosts); your own hosts (remote-ssh) must be in known_hosts
    accept_new_host_key: bool = False

    @classmethod
    def parse(cls, text: str, *, default_user: str | None = None, key_file: str | None = None,
              known_hosts: str | None = None) -> SSHTarget:
        """``user@host[:port]`` (IPv6 as ``user@[::1]:port``)."""
        user, sep, rest = text.rpartition("@")
        if not sep:
            user, rest = default_user or os.environ.get("USER", "root"), text
        port = 22
        if rest.startswith("["):
            host, _, tail = rest[1:].partition("]")
            if tail.startswith(":"):
                port = _port(tail[1:], text)
        elif rest.count(":") == 1:
            host, p = rest.split(":")
            port = _port(p, text)
        else:
            host = rest
        if not host or not user:
            raise UserInputError(f"KOLM_REMOTE_HOST={text!r}: expected user@host[:port]")
        return cls(user, host, port, key_file, known_hosts)


def _port(text: str, whole: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise UserInputError(f"KOLM_REMOTE_HOST={whole!r}: port {text!r} is not a number") from None
    if not 0 < port < 65536:
        raise UserInputError(f"KOLM_REMOTE_HOST={whole!r}: port {port} out of range")
    return port


class SSHUnreachable(ComputeError):
    """The SSH port did not answer (yet): a machine that just booted may still be starting sshd."""


class SSHTransport:
    """One SSH connection and one remote temp folder per job."""

    def __init__(self, target: SSHTarget, connect_timeout: float = 15.0) -> None:
        import paramiko

        self.target = target
        self.client = paramiko.SSHClient()
        self.client.load_system_host_keys()
        user_known = Path.home() / ".ssh" / "known_hosts"
        for kh in (str(user_known) if user_known.is_file() else None, target.known_hosts):
            if kh:
                try:
                    self.client.load_host_keys(kh)
                except OSError as exc:
                    raise UserInputError(f"{kh}: cannot read known_hosts: {exc.strerror or exc}") from exc
        self.client.set_missing_host_key_policy(
            _session_trust_policy() if target.accept_new_host_key else paramiko.RejectPolicy())
        try:
            self.client.connect(
                target.host, port=target.port, username=target.user, key_filename=target.key_file,
                timeout=connect_timeout, banner_timeout=connect_timeout, auth_timeout=connect_timeout,
                allow_agent=target.key_file is None, look_for_keys=target.key_file is None,
            )
        except paramiko.SSHException as exc:
            self.client.close()
            raise ComputeError(f"ssh {target.user}@{target.host}:{target.port}: {exc}") from exc
        except OSError as exc:
            self.client.close()
            raise SSHUnreachable(f"ssh {target.host}:{target.port}: {exc.strerror or exc}") from exc
        transport = self.client.get_transport()
        if transport is not None:
            transport.set_keepalive(15)  # notice a dead network instead of waiting on it forever
        self.sftp: Any = self.client.open_sftp()
        code, out = self._exec_capture("mktemp -d /tmp/kolm-job-XXXXXXXX")
        if code != 0:
            self.close()
            raise ComputeError(f"ssh {target.host}: mktemp failed: {out.strip()}")
        self.remote_dir = out.strip()

    def _exec_capture(self, cmd: str) -> tuple[int, str]:
        _, stdout, _ = self.client.exec_command(cmd)
        text = stdout.read().decode("utf-8", "replace")
        return stdout.channel.recv_exit_status(), text

    def upload(self, files: Sequence[Path]) -> None:
        for f in files:
            self.sftp.put(str(f), f"{self.remote_dir}/{f.name}")

    def run(self, command: Sequence[str], on_line: OnLine) -> int:
        line = f"cd {shlex.quote(self.remote_dir)} && exec {shlex.join(command)}"
        transport = self.client.get_transport()
        if transport is None:
            raise ComputeError(f"ssh {self.target.host}: the connection is closed")
        chan = transport.open_session()
        chan.set_combine_stderr(True)
        chan.exec_command(line)
        buf = b""
        while True:
            try:
                data = chan.recv(4096)
            except (OSError, EOFError) as exc:  # the machine or the network went away mid-run
                raise ComputeError(f"ssh {self.target.host}:{self.target.port}: the connection was lost while "
                                   f"the job ran ({exc or type(exc).__name__})") from None
            if not data:
                break
            buf += data
            *lines, buf = buf.split(b"\n")
            for raw in lines:
                on_line(raw.decode("utf-8", "replace"))
        if buf:
            on_line(buf.decode("utf-8", "replace"))
        code = int(chan.recv_exit_status())
        chan.close()
        if code == -1:  # the channel closed without an exit status: the far side was killed
            raise ComputeError(f"ssh {self.target.host}:{self.target.port}: the job ended without an exit status "
                               "(the far side was killed or the connection dropped)")
        return code

    def abort(self) -> None:
        self.client.close()

    def fetch(self, name: str, dest: Path) -> None:
        # its own SFTP session: the main one may be busy, and paramiko's SFTPClient is not thread-safe
        sftp = self.client.open_sftp()
        try:
            sftp.get(f"{self.remote_dir}/{name}", str(dest))
        finally:
            sftp.close()

    def download(self, names: Sequence[str], dest: Path) -> list[Path]:
        import stat as st

        got: list[Path] = []

        def pull(remote: str, local: Path) -> None:
            attrs = self.sftp.stat(remote)
            if st.S_ISDIR(attrs.st_mode or 0):
                local.mkdir(parents=True, exist_ok=True)
                for entry in self.sftp.listdir_attr(remote):
                    pull(f"{remote}/{entry.filename}", local / entry.filename)
            else:
                local.parent.mkdir(parents=True, exist_ok=True)
                self.sftp.get(remote, str(local))

        for name in names:
            try:
                pull(f"{self.remote_dir}/{name}", dest / name)
            except FileNotFoundError:
                continue
            got.append(dest / name)
        return got

    def close(self) -> None:
        try:
            if getattr(self, "remote_dir", None):
                self._exec_capture(f"rm -rf {shlex.quote(self.remote_dir)}")
        except Exception:  # the connection may already be gone; the host keeps a temp folder
            pass
        finally:
            self.client.close()


def _session_trust_policy() -> Any:
    """Accept an unseen host key for this connection only (paramiko's AutoAddPolicy would write it
    to the loaded known_hosts file, i.e. the user's own)."""
    import paramiko

    class TrustThisSession(paramiko.MissingHostKeyPolicy):  # type: ignore[misc]
        def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
            client.get_host_keys().add(hostname, key.get_name(), key)

    return TrustThisSession()
