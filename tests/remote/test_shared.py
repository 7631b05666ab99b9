"""Stage-private caches shared through the remote: teacher replies (paid for once, on any machine) and
embeddings (the real MiniLM embedder). The teacher is tests/teacher/kolm_fake_teacher.py on loopback,
which counts every request it receives."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.remote.conftest import Machine

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "teacher"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "stages"))
from kolm_fake_teacher import ScriptedTeacher, Serving, input_of  # noqa: E402
from test_distill_cli import CAPITALS, make_project  # noqa: E402

TOKEN = {"KOLM_CLI_TEST_TOKEN": "sk-shared-cache-test-token"}


@pytest.fixture
def teacher() -> Iterator[tuple[ScriptedTeacher, str]]:
    fake = ScriptedTeacher(answer=lambda body: CAPITALS[input_of(body)] if body["seed"] == 1 else "Atlantis")
    with Serving(fake) as serving:
        yield fake, serving.url


def _machine(tmp_path: Path, name: str, url: str) -> Machine:
    root = tmp_path / name
    make_project(root, url, budget=1.0)
    return Machine(root, tmp_path / f"config-{name}")


def _with(m: Machine, key: str, value: object) -> None:
    task = m.root / "conf/task/caps.yaml"
    text = task.read_text()
    task.write_text(text.replace("teacher:\n", f"teacher:\n  {key}: {value}\n", 1) if key == "min_agreement"
                    else text + f"recall:\n  {key}: {value}\n")


def test_teacher_calls_and_embeddings_made_on_one_machine_are_not_made_again(tmp_path, teacher, monkeypatch):
    from kolmbuild.recall.embedder import TransformerEmbedder

    embedded: list[str] = []
    real_embed = TransformerEmbedder.embed

    def counting_embed(self, texts):  # the real MiniLM; the corpus chunks it embeds are counted
        embedded.extend(t for t in texts if t.startswith("# Atlas"))  # (distill embeds its queries too)
        return real_embed(self, texts)

    monkeypatch.setattr(TransformerEmbedder, "embed", counting_embed)
    fake, url = teacher
    remote = tmp_path / "remote"
    a = _machine(tmp_path, "a", url)
    first = a.build("--remote", str(remote), "--push", env=TOKEN)
    assert sorted(first["ran"]) == ["distill", "ingest", "recall"]
    paid = fake.count
    assert paid == 12  # 4 inputs, k = 3
    assert len(list((remote / "teacher").glob("*.json"))) == 12
    assert len(list((remote / "embeddings").glob("*.json"))) == len(embedded) == 1

    # b: every stage comes from the remote; no teacher call, no key needed
    b = _machine(tmp_path, "b", url)
    b.trust(a)
    second = b.build("--remote", str(remote))
    assert second["ran"] == [] and sorted(second["pulled"]) == ["distill", "ingest", "recall"]
    assert fake.count == paid

    # c: distill must run here (another min_agreement: a new key, the same requests), and recall too
    # (another top_k): the teacher's replies and the embeddings come from the remote's shared entries
    c = _machine(tmp_path, "c", url)
    c.trust(a)
    _with(c, "min_agreement", 0.9)
    _with(c, "top_k", 2)
    embedded.clear()
    out = c.build("--remote", str(remote), env=TOKEN)
    assert sorted(out["ran"]) == ["distill", "recall"] and out["pulled"] == ["ingest"]
    assert fake.count == paid  # zero teacher calls on the third machine
    assert embedded == []  # and the corpus was not embedded again: its vector came from a

    # d trusts nobody: the shared entries are ignored, so it pays
    d = _machine(tmp_path, "d", url)
    _with(d, "min_agreement", 0.9)
    r = d.invoke("build", "--remote", str(remote), env=TOKEN)
    assert r.exit_code == 0, r.output
    assert fake.count == paid + 12 and embedded  # it paid, and embedded the corpus itself


def test_a_shared_reply_for_another_request_is_not_used(tmp_path, teacher):
    """A trusted signer's entry renamed to another request's CID: the request inside must match."""
    fake, url = teacher
    remote = tmp_path / "remote"
    a = _machine(tmp_path, "a", url)
    a.build("--remote", str(remote), "--push", env=TOKEN)
    entries = sorted((remote / "teacher").glob("*.json"))
    swapped = entries[0].read_bytes()
    for e in entries[1:]:
        e.write_bytes(swapped)  # every name now holds the first request's reply
    c = _machine(tmp_path, "c", url)
    c.trust(a)
    _with(c, "min_agreement", 0.9)
    before = fake.count
    r = c.invoke("build", "--json", "--remote", str(remote), env=TOKEN)
    assert r.exit_code == 0, r.output
    assert fake.count == before + 11  # only the entry under its own name was used
    labels = json.loads(r.stdout)[0]
    assert labels["status"] == "built"


def test_the_shared_caches_keep_working_when_the_remote_goes_away(tmp_path, teacher):
    fake, url = teacher
    remote = tmp_path / "remote"
    a = _machine(tmp_path, "a", url)
    a.build("--remote", str(remote), "--push", env=TOKEN)
    shutil.rmtree(remote)
    c = _machine(tmp_path, "c", url)
    out = c.build("--remote", str(remote), env=TOKEN)
    assert sorted(out["ran"]) == ["distill", "ingest", "recall"] and fake.count == 24
