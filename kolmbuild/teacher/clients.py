"""Adapters from a :class:`ChatRequest` to the real SDKs: ``openai`` (any OpenAI-compatible chat
endpoint, via ``base_url``) and ``anthropic`` (the Messages API). The SDKs' own retries are off:
failures are sorted here into :class:`Transient` (retried by the caller) and :class:`TeacherError`.

The API key comes from the environment variable the task names (``task.teacher.api_key_env``) and
is handed to the SDK only; it is never part of a message, a log line or a cache entry.
"""

from __future__ import annotations

import inspect
import ipaddress
import os
from typing import Any, Protocol
from urllib.parse import urlsplit

from kolmbuild.config.models import TeacherSpec
from kolmbuild.errors import ConfigError
from kolmbuild.teacher.errors import TeacherError, Transient
from kolmbuild.teacher.request import ChatRequest, Reply

_RETRY_STATUS = {408, 409, 425, 429}
LOCAL_KEY = "local-no-key"


class ChatClient(Protocol):
    def complete(self, request: ChatRequest) -> Reply: ...


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_key(spec: TeacherSpec) -> str:
    """``task.teacher.api_key`` (from ${oc.env:…}), else the key from ``spec.api_key_env``; a local
    endpoint (loopback) may go without one."""
    if spec.api_key:
        return spec.api_key
    value = os.environ.get(spec.api_key_env, "")
    if value:
        return value
    if spec.base_url and is_loopback(spec.base_url):
        return LOCAL_KEY
    raise ConfigError(
        f"task.teacher.api_key_env: the environment variable {spec.api_key_env} is not set "
        f"(the {spec.provider} teacher needs a key)",
        hint=f"export {spec.api_key_env}=... or point task.teacher.base_url at a local server",
    )


def endpoint_label(spec: TeacherSpec, default_host: str) -> str:
    """``teacher MODEL at HOST[:PORT]/PATH`` for messages: never the URL's user or password."""
    if not spec.base_url:
        return f"teacher {spec.model} at {default_host}"
    parts = urlsplit(spec.base_url)
    host = parts.hostname or "?"
    if parts.port:
        host += f":{parts.port}"
    return f"teacher {spec.model} at {parts.scheme}://{host}{parts.path}"


def _retry_after(response: Any) -> float | None:
    headers = getattr(response, "headers", None) or {}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            return float(raw) * scale
        except ValueError:
            continue  # an HTTP date: fall back to our own backoff
    return None


def _sort_sdk_error(exc: Exception, where: str, key_env: str) -> Exception:
    """Our error for an SDK exception: Transient to retry, TeacherError to stop."""
    status = getattr(exc, "status_code", None)
    name = type(exc).__name__
    if isinstance(status, int):
        if status in _RETRY_STATUS or status >= 500:
            return Transient(f"{where}: HTTP {status} ({name})", _retry_after(getattr(exc, "response", None)))
        if status in (401, 403):
            return TeacherError(f"{where}: HTTP {status}: the endpoint refused the key from ${key_env}")
        return TeacherError(f"{where}: HTTP {status} ({name}): {_short(exc)}")
    if "Timeout" in name:
        return Transient(f"{where}: timed out")
    if "Connection" in name:
        return Transient(f"{where}: connection failed ({_short(exc)})")
    if "ResponseValidation" in name:
        return Transient(f"{where}: malformed response ({_short(exc)})")
    return TeacherError(f"{where}: {name}: {_short(exc)}")


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200]


class OpenAIChat:
    """``POST {base_url}/chat/completions`` through the openai SDK."""

    def __init__(self, spec: TeacherSpec, key: str) -> None:
        try:
            import openai
        except ImportError as exc:
            raise ConfigError("task.teacher: the openai package is not installed", hint="pip install 'kolmbuild[teacher]'") from exc
        self._openai = openai
        self._spec = spec
        self._where = endpoint_label(spec, "api.openai.com")
        kwargs: dict[str, Any] = {"api_key": key, "timeout": spec.timeout_s, "max_retries": 0}
        if spec.base_url:
            kwargs["base_url"] = spec.base_url
        self._client = openai.OpenAI(**kwargs)

    def complete(self, request: ChatRequest) -> Reply:
        messages = [{"role": "system", "content": request.system}] if request.system else []
        messages += [{"role": m.role, "content": m.content} for m in request.messages]
        try:
            resp = self._client.chat.completions.create(
                model=request.model,
                messages=messages,  # type: ignore[arg-type]
                temperature=request.temperature,
                max_tokens=request.max_tokens,
                seed=request.sample,
            )
        except self._openai.OpenAIError as exc:
            raise _sort_sdk_error(exc, self._where, self._spec.api_key_env) from None
        except ValueError as exc:  # a 200 whose body is not JSON
            raise Transient(f"{self._where}: malformed response ({_short(exc)})") from None
        try:
            text = resp.choices[0].message.content
            if not isinstance(text, str):
                raise TypeError("no message content")
        except (AttributeError, IndexError, TypeError) as exc:
            raise Transient(f"{self._where}: malformed response ({exc})") from None
        usage = getattr(resp, "usage", None)
        tokens_in = getattr(usage, "prompt_tokens", None)
        tokens_out = getattr(usage, "completion_tokens", None)
        return Reply(
            text,
            int(tokens_in) if isinstance(tokens_in, int) else request.max_input_tokens(),
            int(tokens_out) if isinstance(tokens_out, int) else request.max_tokens,
            str(getattr(resp, "model", None) or request.model),
        )


class AnthropicChat:
    """``POST {base_url}/v1/messages`` through the anthropic SDK."""

    def __init__(self, spec: TeacherSpec, key: str) -> None:
        try:
            import anthropic
        except ImportError as exc:
            raise ConfigError("task.teacher: the anthropic package is not installed", hint="pip install 'kolmbuild[teacher]'") from exc
        self._anthropic = anthropic
        self._spec = spec
        self._where = endpoint_label(spec, "api.anthropic.com")
        kwargs: dict[str, Any] = {"api_key": key, "timeout": spec.timeout_s, "max_retries": 0}
        if spec.base_url:
            kwargs["base_url"] = spec.base_url
        self._client = anthropic.Anthropic(**kwargs)
        # Recent SDKs dropped sampling parameters from Messages.create; send temperature only where
        # the installed SDK still takes it.
        self._takes_temperature = "temperature" in inspect.signature(self._client.messages.create).parameters

    def complete(self, request: ChatRequest) -> Reply:
        kwargs: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_tokens,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        }
        if request.system:
            kwargs["system"] = request.system
        if self._takes_temperature:
            kwargs["temperature"] = request.temperature
        try:
            resp = self._client.messages.create(**kwargs)
        except self._anthropic.AnthropicError as exc:
            raise _sort_sdk_error(exc, self._where, self._spec.api_key_env) from None
        except ValueError as exc:
            raise Transient(f"{self._where}: malformed response ({_short(exc)})") from None
        try:
            blocks = [b for b in resp.content if getattr(b, "type", None) == "text"]
            if not blocks:
                raise TypeError("no text block")
            text = "".join(str(b.text) for b in blocks)
        except (AttributeError, TypeError) as exc:
            raise Transient(f"{self._where}: malformed response ({exc})") from None
        usage = getattr(resp, "usage", None)
        tokens_in = getattr(usage, "input_tokens", None)
        tokens_out = getattr(usage, "output_tokens", None)
        return Reply(
            text,
            int(tokens_in) if isinstance(tokens_in, int) else request.max_input_tokens(),
            int(tokens_out) if isinstance(tokens_out, int) else request.max_tokens,
            str(getattr(resp, "model", None) or request.model),
        )


def make_client(spec: TeacherSpec) -> ChatClient:
    key = api_key(spec)
    if spec.provider == "anthropic":
        return AnthropicChat(spec, key)
    return OpenAIChat(spec, key)
