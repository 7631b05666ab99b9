"""Score a remote OpenAI-compatible endpoint on an examples file, as an eval record.

The record has the same shape as ``kolmbuild eval --json`` (so ``kolmbuild compare`` can put an
artifact and a hosted model side by side). Each example is one chat completion (input as the user
message: text as-is, JSON serialized); a case passes when the verifier says so, or without one when
the answer equals the expected output (text: ignoring surrounding whitespace; JSON: parsed equality).
The API key comes from ``$KOLM_EVAL_TOKEN`` (never logged or written into the record).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Protocol

from kolmbuild.compare.records import summarize
from kolmbuild.errors import DataError, KolmError, UserInputError

TOKEN_ENV = "KOLM_EVAL_TOKEN"


class Judge(Protocol):
    """What judges an answer: ``kolmbuild.verifier.Verifier`` (an artifact's own verifier) fits."""

    def check(self, input: Any, output: Any, reference: Any = None) -> bool: ...


def check_endpoint_url(url: str) -> str:
    """``url`` when it is an http(s) URL with a host; a UserInputError otherwise."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserInputError(f"--endpoint {url}: not an http(s) URL", hint="e.g. http://127.0.0.1:8000/v1")
    return url


def read_jsonl_examples(path: Path) -> list[dict[str, Any]]:
    """``{"input","output"}`` lines; every bad line is named in one DataError."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UserInputError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    out: list[dict[str, Any]] = []
    bad: list[str] = []
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            bad.append(f"{path}:{no}: not JSON ({exc.msg})")
            continue
        if not isinstance(obj, dict) or "input" not in obj or "output" not in obj:
            bad.append(f"{path}:{no}: expected an object with 'input' and 'output'")
            continue
        out.append({"input": obj["input"], "output": obj["output"], "line": no})
    if bad:
        raise DataError("\n".join(bad[:20]) + (f"\n… and {len(bad) - 20} more" if len(bad) > 20 else ""))
    if not out:
        raise DataError(f"{path}: no examples")
    return out


def _as_message(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _parse_like(expected: Any, text: str | None) -> Any:
    """The answer as the expected output's kind: text, or parsed JSON when the reference is JSON."""
    if text is None or isinstance(expected, str):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _default_passed(expected: Any, output: Any) -> bool:
    if isinstance(expected, str) and isinstance(output, str):
        return output.strip() == expected.strip()
    return output == expected


def eval_endpoint(
    url: str,
    examples_path: Path,
    model: str | None,
    verifier: Judge | None = None,
    *,
    timeout_s: float = 60.0,
    max_tokens: int = 512,
    system_prompt: str | None = None,
) -> dict[str, Any]:
    """Score ``model`` at ``url`` (an OpenAI-compatible base URL, e.g. ``http://host:8000/v1``).

    ``model=None`` takes the first model the endpoint lists; ``verifier`` (when given) judges each
    answer against the expected output. A URL that is not http(s) raises UserInputError, an unreachable endpoint raises
    :class:`KolmError`; a failed request for one case fails that case (route ``"error"``).
    """
    check_endpoint_url(url)
    try:
        import openai
    except ModuleNotFoundError as exc:  # pragma: no cover - openai is in the teacher extra
        raise KolmError(
            "scoring an endpoint needs the package 'openai'", hint="pip install 'kolmbuild[teacher]'"
        ) from exc
    examples = read_jsonl_examples(Path(examples_path))
    client = openai.OpenAI(
        base_url=url, api_key=os.environ.get(TOKEN_ENV) or "unused", timeout=timeout_s, max_retries=1
    )
    try:
        if model is None:
            listed = [m.id for m in client.models.list()]
            if not listed:
                raise UserInputError(f"{url}: the endpoint lists no models", hint="pass the model name")
            model = listed[0]
        cases: list[dict[str, Any]] = []
        for i, ex in enumerate(examples):
            messages = [{"role": "user", "content": _as_message(ex["input"])}]
            if system_prompt:
                messages.insert(0, {"role": "system", "content": system_prompt})
            t0 = time.perf_counter()
            route, error = "endpoint", None
            try:
                resp = client.chat.completions.create(model=model, messages=messages, max_tokens=max_tokens)  # type: ignore[arg-type]
                text = resp.choices[0].message.content if resp.choices else None
            except (openai.AuthenticationError, openai.PermissionDeniedError):
                raise
            except openai.APIStatusError as exc:
                text, route, error = None, "error", f"HTTP {exc.status_code}"
            latency = (time.perf_counter() - t0) * 1000.0
            output = _parse_like(ex["output"], text)
            if text is None:
                passed = False
            elif verifier is not None:
                passed = bool(verifier.check(ex["input"], output, reference=ex["output"]))
            else:
                passed = _default_passed(ex["output"], output)
            case: dict[str, Any] = {
                "id": i,
                "input": ex["input"],
                "expected": ex["output"],
                "output": output,
                "passed": passed,
                "latency_ms": round(latency, 3),
                "route": route,
            }
            if error:
                case["error"] = error
            cases.append(case)
    except openai.APIConnectionError as exc:
        raise KolmError(
            f"{url}: endpoint unreachable ({type(exc).__name__})", hint="check the URL (…/v1)"
        ) from exc
    except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
        raise KolmError(f"{url}: the endpoint refused the key (set ${TOKEN_ENV})") from exc
    finally:
        client.close()
    return {
        "kind": "kolm-eval",
        "version": 1,
        "subject": f"{url} model={model}",
        "examples": str(examples_path),
        "cases": cases,
        "summary": summarize(cases),
    }
