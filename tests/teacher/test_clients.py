"""The OpenAI and Anthropic adapters against a scripted local server: retries, faults, keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from kolm_fake_teacher import ScriptedTeacher

from kolmbuild.config.models import TeacherSpec
from kolmbuild.errors import ConfigError
from kolmbuild.teacher import ChatRequest, Message, Teacher, TeacherError

SECRET = "sk-test-SECRET-0123456789"


def spec(url: str, provider: str = "openai", **kw: object) -> TeacherSpec:
    base = f"{url}/v1" if provider == "openai" else url
    fields: dict[str, object] = {"provider": provider, "model": "teach-1", "base_url": base, "api_key_env": "KOLM_TEST_TEACHER_TOKEN",
                                 "price_in_per_mtok": 1.0, "price_out_per_mtok": 2.0, "k": 1, "max_retries": 3, "timeout_s": 5.0}
    fields.update(kw)
    return TeacherSpec.model_validate(fields)


def req(text: str = "hello", sample: int = 0, provider: str = "openai") -> ChatRequest:
    return ChatRequest(provider, "teach-1", "Be brief.", (Message("user", text),), 0.5, 32, sample)


class Logs:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def start(self, description: str, total: float | None = None) -> None:
        self.lines.append(description)

    def advance(self, amount: float = 1.0, **fields: object) -> None:
        self.lines.append(repr(fields))

    def log(self, message: str) -> None:
        self.lines.append(message)


def run_one(sp: TeacherSpec, tmp_path: Path, request: ChatRequest, sleeps: list[float] | None = None, progress: Logs | None = None):
    teacher = Teacher(sp, tmp_path / "cache", backoff_s=0.01, sleep=(sleeps.append if sleeps is not None else lambda s: None), progress=progress)
    return teacher.run([request])


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOLM_TEST_TEACHER_TOKEN", SECRET)


def test_openai_retries_429_and_5xx_then_answers(scripted: tuple[ScriptedTeacher, str], tmp_path: Path) -> None:
    server, url = scripted
    server.faults = ["429", "500", "503"]
    server.answer = lambda body: "pong:" + body["messages"][-1]["content"]
    sleeps: list[float] = []
    replies, stats = run_one(spec(url), tmp_path, req("ping"), sleeps)
    assert replies[0].text == "pong:ping"
    assert server.count == 4
    assert (stats.calls, stats.attempts, stats.retries) == (1, 4, 3)
    assert sleeps[0] == 0.0  # the 429 said Retry-After: 0
    assert all(0 < s <= 0.01 * 2**i for i, s in enumerate(sleeps[1:], 1))  # our own backoff for the 5xx
    body = server.seen[0].body
    assert body["model"] == "teach-1" and body["seed"] == 0 and body["max_tokens"] == 32
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert server.seen[0].headers["authorization"] == f"Bearer {SECRET}"
    assert server.seen[0].path == "/v1/chat/completions"


def test_timeout_is_retried(scripted: tuple[ScriptedTeacher, str], tmp_path: Path) -> None:
    server, url = scripted
    server.faults, server.slow_s = ["timeout"], 3.0
    replies, stats = run_one(spec(url, timeout_s=1.0), tmp_path, req())
    assert replies[0].text == "ok"
    assert server.count == 2 and stats.retries == 1


def test_garbage_json_is_retried_then_gives_up(scripted: tuple[ScriptedTeacher, str], tmp_path: Path) -> None:
    server, url = scripted
    server.faults = ["garbage"]
    replies, stats = run_one(spec(url), tmp_path, req("a"))
    assert replies[0].text == "ok" and stats.retries == 1

    server.faults = ["garbage"] * 10
    before = server.count
    with pytest.raises(TeacherError, match="gave up after 3 attempts: .*malformed response"):
        run_one(spec(url, max_retries=2), tmp_path, req("b"))
    assert server.count - before == 3


def test_auth_failure_is_not_retried_and_never_shows_the_key(scripted: tuple[ScriptedTeacher, str], tmp_path: Path) -> None:
    server, url = scripted
    server.faults = ["401"]
    logs = Logs()
    with pytest.raises(TeacherError) as info:
        run_one(spec(url), tmp_path, req(), progress=logs)
    assert server.count == 1
    assert "KOLM_TEST_TEACHER_TOKEN" in str(info.value)
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)


def test_key_never_reaches_logs_or_cache(scripted: tuple[ScriptedTeacher, str], tmp_path: Path) -> None:
    server, url = scripted
    server.faults = ["429", "garbage"]
    logs = Logs()
    run_one(spec(url), tmp_path, req(), progress=logs)
    assert logs.lines and not any(SECRET in line for line in logs.lines)
    files = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert files and not any(SECRET.encode() in p.read_bytes() for p in files)


def test_anthropic_messages_api(scripted: tuple[ScriptedTeacher, str], tmp_path: Path) -> None:
    server, url = scripted
    server.faults = ["429"]
    server.answer = lambda body: body["system"].upper()
    replies, stats = run_one(spec(url, provider="anthropic"), tmp_path, req(provider="anthropic"))
    assert replies[0].text == "BE BRIEF."
    assert (replies[0].input_tokens, replies[0].output_tokens) == (100, 10)
    assert stats.retries == 1
    seen = server.seen[-1]
    assert seen.path == "/v1/messages"
    # the SDK sends the key as x-api-key (older releases) or a bearer token (newer ones)
    assert SECRET in (seen.headers.get("x-api-key"), seen.headers.get("authorization", "").removeprefix("Bearer "))
    assert "anthropic-version" in seen.headers
    assert seen.body["messages"] == [{"role": "user", "content": "hello"}]
    assert seen.body["max_tokens"] == 32 and "seed" not in seen.body


def test_messages_never_show_credentials_in_the_url(tmp_path: Path) -> None:
    sp = spec("http://user:hunter2@127.0.0.1:9")  # nothing listens on port 9: connection refused
    with pytest.raises(TeacherError) as info:
        Teacher(sp.model_copy(update={"max_retries": 1}), tmp_path, backoff_s=0.0, sleep=lambda s: None).run([req()])
    assert "connection failed" in str(info.value) and "127.0.0.1:9/v1" in str(info.value)
    assert "hunter2" not in str(info.value) and SECRET not in str(info.value)


def test_missing_key_is_a_config_error_naming_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KOLM_TEST_TEACHER_TOKEN")
    remote = spec("https://teacher.invalid")
    with pytest.raises(ConfigError, match="KOLM_TEST_TEACHER_TOKEN is not set"):
        run_one(remote, tmp_path, req())


def test_loopback_endpoint_needs_no_key(scripted: tuple[ScriptedTeacher, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server, url = scripted
    monkeypatch.delenv("KOLM_TEST_TEACHER_TOKEN")
    replies, _ = run_one(spec(url), tmp_path, req())
    assert replies[0].text == "ok" and server.count == 1
