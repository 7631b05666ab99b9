"""Remote cache fixtures: two "machines" (checkouts with their own cache and config folder, so their
own signing keys), a moto S3 server on loopback, a folder served over loopback HTTP.

Every fixture here fails loudly when what it needs is missing: no test of this area may skip.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from tests.conftest import KOLMBUILD, ShellProject, write
from tests.engine.conftest import add_pack_rule
from tests.remote.proxy import CountingProxy

ARTIFACT = "artifacts/demo-0.1.0.kolm"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Machine:
    """A checkout of a project with its own cache/ and its own config folder (its own signing key)."""

    root: Path
    config: Path

    def invoke(self, *args: str, env: dict[str, str] | None = None) -> Result:
        from kolmbuild.cli.main import cli

        full = {"KOLM_CONFIG_DIR": str(self.config), **(env or {})}
        return CliRunner().invoke(cli, ["-C", str(self.root), *args], env=full, catch_exceptions=False)

    def spawn(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """A real ``kolmbuild`` process for this machine (its own interpreter: Hydra is process-global)."""
        full = {**os.environ, "KOLM_CONFIG_DIR": str(self.config), **(env or {})}
        return subprocess.Popen([*KOLMBUILD, "-C", str(self.root), *args], env=full, cwd=self.root,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def build(self, *args: str, env: dict[str, str] | None = None, code: int = 0) -> dict[str, Any]:
        r = self.invoke("build", "--json", *args, env=env)
        assert r.exit_code == code, r.output
        return json.loads(r.stdout)[0]

    def runs(self) -> list[str]:
        log = self.root / "runs.log"
        return log.read_text().split() if log.exists() else []

    @property
    def public_key(self) -> Path:
        return self.config / "keys" / "kolm-signing.pub"

    def trust(self, other: Machine) -> None:
        """Trust ``other``'s signing key the way a repository does: a committed .pub in cache.trust."""
        dest = self.root / "keys" / f"{other.root.name}.pub"
        dest.parent.mkdir(exist_ok=True)
        shutil.copy(other.public_key, dest)
        self.set_cache(trust=[f"keys/{dest.name}"])

    def set_cache(self, **fields: Any) -> None:
        kf = self.root / "kolmfile.yaml"
        doc = yaml.safe_load(kf.read_text())
        doc["cache"] = {**doc.get("cache", {}), **fields}
        kf.write_text(yaml.safe_dump(doc, sort_keys=False))

    def outputs(self) -> dict[str, dict[str, str]]:
        from tests.engine.conftest import stage_outputs

        return stage_outputs(self.root)

    def objects(self) -> set[str]:
        folder = self.root / "cache" / "objects"
        return {p.name for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")} if folder.is_dir() \
            else set()


def two_machines(tmp_path: Path) -> tuple[Machine, Machine]:
    """The packed shell project (count -> joined, echo -> pack, installed) checked out twice."""
    a_root = tmp_path / "a"
    add_pack_rule(ShellProject(a_root))
    b_root = tmp_path / "b"
    shutil.copytree(a_root, b_root)
    return Machine(a_root, tmp_path / "config-a"), Machine(b_root, tmp_path / "config-b")


@pytest.fixture
def machines(tmp_path: Path) -> tuple[Machine, Machine]:
    return two_machines(tmp_path)


# ------------------------------------------------------------------------------- S3 (moto)
@dataclass
class S3:
    url: str  # the endpoint
    port: int
    env: dict[str, str]
    server: Any

    def reset(self) -> None:
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")).read()


def start_moto() -> S3:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:  # pragma: no cover - the test extra has it
        raise RuntimeError("moto[server] is not installed: pip install 'kolmbuild[test]'") from exc
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL_S3": url}
    return S3(url, port, env, server)


@pytest.fixture(scope="module")
def moto_server() -> Iterator[S3]:
    s3 = start_moto()
    yield s3
    s3.server.stop()


@pytest.fixture
def s3(moto_server: S3, monkeypatch: pytest.MonkeyPatch) -> S3:
    """The module's moto server, emptied, with the AWS environment a machine would have."""
    moto_server.reset()
    for k, v in moto_server.env.items():
        monkeypatch.setenv(k, v)
    import boto3

    boto3.client("s3", endpoint_url=moto_server.url, region_name="us-east-1").create_bucket(Bucket="team")
    return moto_server


# ------------------------------------------------------------------------------- http (read-only)
class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_folder(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served read-only on loopback HTTP (python's http.server): (folder, base URL)."""
    folder = tmp_path / "served"
    folder.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


__all__ = ["ARTIFACT", "CountingProxy", "Machine", "S3", "free_port", "start_moto", "two_machines", "write"]
