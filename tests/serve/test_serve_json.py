"""JSON edge cases on every reader of a request: a 400 (LoRAX: 422) in the API's error shape, and the
connection stays usable; never a dropped connection or a 500."""

from __future__ import annotations

import json

import httpx
import pytest

from kolmbuild.serve import KolmHTTPServer
from kolmbuild.serve.protocol import MAX_DEPTH, BadRequest, load_json

CHAT = "/v1/chat/completions"


def _msg(content: str) -> str:
    return '{"model": "helper", "messages": [{"role": "user", "content": ' + content + "}]}"


BAD_BODIES = [
    pytest.param(b'{"messages": [{"role": "user", "content": "caf\xe9"}]}', "not UTF-8", id="latin-1-bytes"),
    pytest.param(b"\xff\xfe{\x00}\x00", "not JSON", id="utf-16-bom"),
    pytest.param(_msg('"\\ud83d"').encode(), "unpaired surrogate", id="lone-high-surrogate"),
    pytest.param(_msg('"x\\udc00y"').encode(), "unpaired surrogate", id="lone-low-surrogate"),
    pytest.param(b'{"messages": [{"role": "user", "content": "x"}], "temperature": NaN}', "NaN is not a JSON number",
                 id="nan"),
    pytest.param(b'{"messages": [{"role": "user", "content": "x"}], "temperature": -Infinity}', "-Infinity",
                 id="infinity"),
    pytest.param(b'{"messages": [{"role": "user", "content": "x"}], "temperature": 1e999}', "out of range",
                 id="float-overflow"),
    pytest.param(b'{"messages": [{"role": "user", "content": "x"}], "seed": ' + b"9" * 5000 + b"}",
                 "out of range", id="5000-digit-int"),
    pytest.param(b'{"messages": [{"role": "user", "content": "x"}], "seed": 99999999999999999999999}',
                 "seed: Input should be less than or equal to", id="int-beyond-int64"),
    pytest.param(b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": 4294967296}',
                 "max_tokens: Input should be less than or equal to", id="int-beyond-int32"),
    pytest.param(b'{"messages": [{"role": "user", "content": "x"}], "temperature": 1e308}',
                 "temperature: Input should be less than or equal to 2", id="huge-float"),
    pytest.param(b'{"a": ' + b"[" * 100000 + b"]" * 100000 + b"}", f"deeper than {MAX_DEPTH}", id="deep-100000"),
    pytest.param(b'{"a": ' + b'{"b": ' * 80 + b"1" + b"}" * 80 + b"}", f"deeper than {MAX_DEPTH}", id="deep-80"),
    pytest.param(b'{"messages": [{"role": "user", "content": [' + b"[" * 200 + b"]" * 200 + b"]}]}",
                 f"deeper than {MAX_DEPTH}", id="deep-in-content"),
]


@pytest.mark.parametrize(("raw", "says"), BAD_BODIES)
def test_openai_routes_answer_400_with_the_error_shape(server: KolmHTTPServer, raw: bytes, says: str) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        r = client.post(CHAT, content=raw, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert err["type"] == "invalid_request_error" and says in err["message"]
        # the same keep-alive connection still answers
        assert client.post(CHAT, json={"messages": [{"role": "user", "content": "hello recipe"}]}).status_code == 200


@pytest.mark.parametrize(("parameters", "field"), [
    ({"temperature": 1e308}, "parameters.temperature"),
    ({"top_k": 2**40}, "parameters.top_k"),
    ({"seed": -1}, "parameters.seed"),
    ({"max_new_tokens": 2**31}, "parameters.max_new_tokens"),
])
def test_lorax_routes_answer_422_validation(server: KolmHTTPServer, parameters: dict[str, object], field: str) -> None:
    r = httpx.post(server.url + "/generate", json={"inputs": "x", "parameters": parameters}, timeout=30)
    assert r.status_code == 422 and r.json()["error_type"] == "validation" and field in r.json()["error"]


def test_a_lone_surrogate_on_a_lorax_route_is_refused_before_it_is_echoed(server: KolmHTTPServer) -> None:
    raw = b'{"inputs": "\\ud800", "parameters": {"return_full_text": true}}'
    r = httpx.post(server.url + "/generate", content=raw, timeout=30)
    assert r.status_code == 400 and "unpaired surrogate" in r.json()["error"]["message"]


def test_edge_values_that_are_valid_still_work(server: KolmHTTPServer) -> None:
    """Negative and 64-bit seeds are valid for OpenAI (an int64); they reach llama.cpp as a uint32."""
    for seed in (-1, 2**63 - 1):
        r = httpx.post(server.url + CHAT, json={"messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 2,
                                                "seed": seed, "temperature": 0.7}, timeout=60)
        assert r.status_code == 200, r.text
    nested = {"messages": [{"role": "user", "content": "hello recipe"}], "metadata": json.loads("[" * 40 + "]" * 40)}
    assert httpx.post(server.url + CHAT, json=nested, timeout=30).status_code == 200


def test_load_json_names_what_it_reads() -> None:
    with pytest.raises(BadRequest, match="^the input is not JSON"):
        load_json("{", "the input")
    assert load_json(b'{"a": [1, 2.5, "\\u00e9\\ud83d\\ude00"]}') == {"a": [1, 2.5, "é😀"]}
