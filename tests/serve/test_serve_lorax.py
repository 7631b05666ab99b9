"""LoRAX compatibility driven by the official ``lorax-client`` (it posts to ``/``) and raw HTTP."""

from __future__ import annotations

import json

import httpx
import pytest
from lorax import Client
from lorax.errors import ValidationError as LoraxValidationError

from kolmbuild.serve import KolmHTTPServer


@pytest.fixture(scope="module")
def lorax(server: KolmHTTPServer) -> Client:
    return Client(server.url, timeout=120)


def test_generate_recipe_route(lorax: Client) -> None:
    r = lorax.generate("hello recipe", adapter_id="helper")
    assert r.generated_text == "recipe says hi"
    assert r.details is not None and r.details.finish_reason == "eos_token"


def test_generate_model_route_with_details(lorax: Client) -> None:
    r = lorax.generate("What is two plus two?", max_new_tokens=8)
    assert r.generated_text.strip()
    d = r.details
    assert d is not None and d.prompt_tokens > 0
    assert d.generated_tokens == len(d.tokens) <= 8
    assert "".join(t.text for t in d.tokens) == r.generated_text
    assert all(t.logprob <= 0.0 for t in d.tokens)
    if d.finish_reason == "length":
        assert d.generated_tokens == 8


def test_generate_stream_tokens_add_up(lorax: Client) -> None:
    events = list(lorax.generate_stream("Name three colors.", max_new_tokens=10))
    final = events[-1]
    assert final.generated_text is not None and final.details is not None
    assert "".join(e.token.text for e in events) == final.generated_text
    assert all(e.generated_text is None for e in events[:-1])
    whole = lorax.generate("Name three colors.", max_new_tokens=10).generated_text
    assert final.generated_text == whole


def test_generate_and_generate_stream_routes(server: KolmHTTPServer) -> None:
    r = httpx.post(server.url + "/generate", json={"inputs": "hello recipe", "parameters": {"max_new_tokens": 5}})
    assert r.status_code == 200 and r.json()["generated_text"] == "recipe says hi"
    root = httpx.post(server.url + "/", json={"inputs": "hello recipe"})
    assert isinstance(root.json(), list) and root.json()[0]["generated_text"] == "recipe says hi"
    with httpx.stream("POST", server.url + "/generate_stream", json={"inputs": "Say yes.", "parameters": {"max_new_tokens": 4}}) as s:
        assert s.headers["content-type"] == "text/event-stream"
        data = [json.loads(line[5:]) for line in s.iter_lines() if line.startswith("data:")]
    assert data[-1]["details"]["generated_tokens"] <= 4 and data[-1]["generated_text"] is not None


def test_lorax_errors(server: KolmHTTPServer, lorax: Client) -> None:
    r = httpx.post(server.url + "/generate", json={"inputs": ""})
    assert r.status_code == 422 and r.json()["error_type"] == "validation" and "inputs" in r.json()["error"]
    bad = httpx.post(server.url + "/generate", json={"inputs": "x", "parameters": {"response_format": {"type": "xml"}}})
    assert bad.status_code == 422
    with pytest.raises(LoraxValidationError, match="Unrecognized schema"):
        lorax.generate("x", response_format={"type": "json_object", "schema": {"type": "bogus"}})
