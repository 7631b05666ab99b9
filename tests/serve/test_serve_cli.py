"""``kolmbuild serve`` as a real child process: it verifies the artifact, listens, answers the
openai SDK; a tampered artifact never starts a server (exit 2)."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from kolmbuild.artifact import write_artifact
from kolmbuild.models import bundled_smollm2
from kolmbuild.models.resolve import file_sha256

TASK = {"name": "sentiment", "description": "Classify the sentiment.",
        "shape": {"output": "label", "labels": ["positive", "negative"]}}


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    dest = tmp_path / "s.kolm"
    write_artifact(dest, target="sentiment", version="1", task=TASK, components={},
                   base={"name": "smollm2", "sha256": file_sha256(bundled_smollm2())}, toolchain_info={})
    return dest


def _serve(art: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "kolmbuild", "serve", str(art), "--port", "0", "--threads", "1", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def served(artifact: Path) -> Iterator[str]:
    proc = _serve(artifact, "--lorax-compat", "--no-drift")
    assert proc.stderr is not None
    try:
        line = proc.stderr.readline()
        m = re.search(r"serving sentiment \(OpenAI \+ LoRAX\) on (http://127\.0\.0\.1:\d+)", line)
        assert m, line + proc.stderr.read()
        yield m.group(1)
    finally:
        proc.terminate()
        proc.wait(30)


def test_serve_process_answers_openai(served: str) -> None:
    client = openai.OpenAI(base_url=served + "/v1", api_key="x", max_retries=0, timeout=60)
    r = client.chat.completions.create(model="sentiment", messages=[{"role": "user", "content": "I adore it!"}])
    assert r.choices[0].message.content in ("positive", "negative")


def test_serve_refuses_a_tampered_artifact(artifact: Path) -> None:
    with zipfile.ZipFile(artifact) as zf:
        members = [(i, zf.read(i)) for i in zf.infolist()]
    with zipfile.ZipFile(artifact, "w") as zf:
        for info, data in members:
            zf.writestr(info, data.replace(b"Classify", b"Clasify!") if info.filename == "manifest.json" else data)
    proc = _serve(artifact)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "verification failed" in err and "Traceback" not in err
