"""The server driven by the real ``openai`` SDK (and raw HTTP for the edges)."""

from __future__ import annotations

import json
import threading
import time

import httpx
import openai
import pytest

from kolmbuild.serve import KolmHTTPServer

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
    "required": ["city", "country"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def client(server: KolmHTTPServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=120)


def ask(client: openai.OpenAI, text: str, **kw: object) -> object:
    return client.chat.completions.create(model="helper", messages=[{"role": "user", "content": text}], **kw)


def test_models_and_health(client: openai.OpenAI, server: KolmHTTPServer) -> None:
    assert [m.id for m in client.models.list().data] == ["helper"]
    health = httpx.get(server.url + "/health").json()
    assert health == {"status": "ok", "model": "helper", "recipes": True, "llm": True}


def test_chat_non_stream_uses_the_model(client: openai.OpenAI) -> None:
    r = ask(client, "What is the capital of France?", max_tokens=16)
    msg = r.choices[0].message.content
    assert r.model == "helper" and msg.strip()
    assert r.choices[0].finish_reason in ("stop", "length")
    assert r.usage.prompt_tokens > 10 and 0 < r.usage.completion_tokens <= 16
    assert r.system_fingerprint == "kolm-model"


def test_chat_stream_matches_non_stream(client: openai.OpenAI) -> None:
    q = "Name a large animal."
    whole = ask(client, q, max_tokens=12).choices[0].message.content
    stream = ask(client, q, max_tokens=12, stream=True, stream_options={"include_usage": True})
    pieces, reasons, usage = [], [], None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for ch in chunk.choices:
            pieces.append(ch.delta.content or "")
            reasons.append(ch.finish_reason)
    assert "".join(pieces) == whole
    assert reasons[-1] in ("stop", "length") and all(r is None for r in reasons[:-1])
    assert usage is not None and usage.completion_tokens > 0


def test_response_format_json_schema(client: openai.OpenAI) -> None:
    r = ask(client, "Where is the Eiffel tower?", max_tokens=40,
            response_format={"type": "json_schema", "json_schema": {"name": "place", "schema": SCHEMA, "strict": True}})
    doc = json.loads(r.choices[0].message.content)
    assert set(doc) == {"city", "country"} and all(isinstance(v, str) for v in doc.values())


def test_response_format_json_object_streamed(client: openai.OpenAI) -> None:
    stream = ask(client, "Describe a cat as JSON.", max_tokens=40, stream=True, response_format={"type": "json_object"})
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:  # the token limit may cut the object; it must still start as one
        assert text.lstrip().startswith("{")
    else:
        assert isinstance(doc, dict)


def test_recipe_route_answers_without_the_model(client: openai.OpenAI) -> None:
    r = ask(client, "hello recipe")
    assert r.choices[0].message.content == "recipe says hi"
    assert r.system_fingerprint == "kolm-recipe" and r.usage.completion_tokens == 0
    structured = ask(client, "give json", response_format={"type": "json_object"})
    assert json.loads(structured.choices[0].message.content) == {"a": 1}
    chunks = list(ask(client, "hello recipe", stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "recipe says hi"
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_uncovered_inputs_reach_the_drift_log(client: openai.OpenAI, predictor: object) -> None:
    from kolmbuild.runtime.drift import read_drift

    ask(client, "Is drift logged?", max_tokens=2)
    ask(client, "hello recipe")
    rows = read_drift(predictor.parts.drift_log)  # type: ignore[attr-defined]
    assert rows[-1]["input"] == "Is drift logged?" and rows[-1]["route"] == "model"
    assert all(r["input"] != "hello recipe" for r in rows)


def test_completions_endpoint_stream_and_not(client: openai.OpenAI) -> None:
    r = client.completions.create(model="helper", prompt="What color is the sky?", max_tokens=10)
    text = r.choices[0].text
    assert text.strip() and r.object == "text_completion"
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model="helper", prompt="What color is the sky?", max_tokens=10, stream=True))
    assert streamed == text


def test_bad_requests_are_400_with_the_field(client: openai.OpenAI, server: KolmHTTPServer) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        ask(client, "x", response_format={"type": "yaml"})
    assert "response_format" in str(err.value)
    with pytest.raises(openai.BadRequestError, match="Unrecognized schema"):
        ask(client, "x", response_format={"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "bogus"}}})
    with pytest.raises(openai.BadRequestError, match="no user message"):
        client.chat.completions.create(model="helper", messages=[{"role": "system", "content": "hi"}])
    raw = httpx.post(server.url + "/v1/chat/completions", content=b"{not json", headers={"Content-Type": "application/json"})
    assert raw.status_code == 400 and "not JSON" in raw.json()["error"]["message"]
    assert httpx.get(server.url + "/nope").status_code == 404


def test_lorax_routes_are_off_without_the_flag(openai_only: KolmHTTPServer) -> None:
    assert httpx.post(openai_only.url + "/generate", json={"inputs": "hello recipe"}).status_code == 404


def test_abandoned_stream_frees_the_model(server: KolmHTTPServer, client: openai.OpenAI) -> None:
    body = {"model": "helper", "messages": [{"role": "user", "content": "Count from one to fifty."}],
            "max_tokens": 200, "stream": True}
    with httpx.stream("POST", server.url + "/v1/chat/completions", json=body, timeout=60) as resp:
        for line in resp.iter_lines():
            if line.startswith("data: ") and '"content": "' in line and '"content": ""' not in line:
                break  # one token in, hang up
    t0 = time.perf_counter()
    r = ask(client, "Say hi.", max_tokens=4)
    assert r.choices[0].message.content is not None
    assert time.perf_counter() - t0 < 30


def test_health_answers_while_a_generation_runs(server: KolmHTTPServer, client: openai.OpenAI) -> None:
    done = threading.Event()

    def long_one() -> None:
        ask(client, "Write a long story about a dragon.", max_tokens=80)
        done.set()

    t = threading.Thread(target=long_one)
    t.start()
    time.sleep(0.3)
    assert httpx.get(server.url + "/health", timeout=5).status_code == 200
    assert ask(client, "hello recipe").choices[0].message.content == "recipe says hi"
    t.join(120)
    assert done.is_set()


def test_a_prompt_longer_than_the_context_gets_an_error_status_when_streamed(server: KolmHTTPServer) -> None:
    """The context check fails on the stream's first step: the client still gets a status and a message."""
    long_prompt = "word " * 3000  # the fixture's context holds 1024 tokens
    for path, body in (("/v1/completions", {"prompt": long_prompt, "max_tokens": 4, "stream": True}),
                       ("/generate_stream", {"inputs": long_prompt, "parameters": {"max_new_tokens": 4}})):
        r = httpx.post(server.url + path, json=body, timeout=60)
        assert r.status_code == 500, (path, r.status_code)
        assert "the context holds 1024" in r.json()["error"]["message"]
    assert httpx.get(server.url + "/health", timeout=5).status_code == 200


def test_an_oversized_body_is_refused_and_the_connection_closed(server: KolmHTTPServer) -> None:
    """413 without reading the body: the server must hang up, not parse the body as the next request."""
    import socket

    host, port = server.server_address[:2]
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100000000\r\n\r\n" + b"GET /health HTTP/1.1\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 413") and data.count(b"HTTP/1.1 ") == 1


def test_a_chunked_request_body_is_refused_and_the_connection_closed(server: KolmHTTPServer) -> None:
    import socket

    host, port = server.server_address[:2]
    body = b'{"model": "helper", "messages": [{"role": "user", "content": "hello recipe"}]}'
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 411") and b"Content-Length" in data and data.count(b"HTTP/1.1 ") == 1
