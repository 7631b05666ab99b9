"""``kolmbuild eval``: score a .kolm file (or a served endpoint) on an examples file.

    kolmbuild eval FILE.kolm --examples F.jsonl [--json] [--gates NAME|FILE] [--check]
    kolmbuild eval --endpoint URL --examples F.jsonl [--model NAME] [FILE.kolm] [--json]

``--json`` prints the ``kolm-eval`` v1 record that ``kolmbuild compare`` reads. With an endpoint
and a .kolm file, the artifact's verifier judges the endpoint's answers (the same cases, the same
judge). Bad input (a missing or malformed file, a bad gate) exits 2.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from kolmbuild.errors import ConfigError, GateFailed, UserInputError


def _root(ctx: click.Context) -> Path:
    obj = ctx.find_root().obj or {}
    return Path(obj.get("directory") or ".").resolve()


def _existing(path: Path, what: str) -> Path:
    if not path.exists():
        raise UserInputError(f"{path}: no such {what}")
    if not path.is_file():
        raise UserInputError(f"{path}: not a file ({what})")
    return path


def load_gates(spec: str, root: Path) -> Any:
    """A gate by conf/gates name (the project's, then the built-in ones) or a YAML file path."""
    import yaml

    from kolmbuild.evaluate.profile import gates_of
    from kolmbuild.resources import builtin_dir

    candidates = [Path(spec)] if spec.endswith((".yaml", ".yml")) else [
        root / "conf" / "gates" / f"{spec}.yaml", builtin_dir("conf") / "gates" / f"{spec}.yaml"
    ]  # fmt: skip
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise ConfigError(f"--gates {spec}: no such gate (looked in {', '.join(str(p) for p in candidates)})")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a gate must be a mapping (K_min, p50_ms_max, size_mb_max)")
    return gates_of(raw, where=str(path))


@dataclass
class _Verdict:
    passed: bool


class _EndpointJudge:
    """compare.endpoint reads ``check(...).passed``; the pinned Verifier.check returns a bool."""

    def __init__(self, verifier: Any) -> None:
        self._verifier = verifier

    def check(self, input: Any, output: Any, reference: Any = None) -> _Verdict:
        return _Verdict(bool(self._verifier.check(input, output, reference)))


def _artifact_verifier(path: Path, pubkey: Path | None) -> Any:
    from kolmbuild.artifact import open_artifact
    from kolmbuild.evaluate.rescore import verifier_of

    with open_artifact(path, verify=True, pubkey=pubkey) as art:
        return verifier_of(art, str(path))


def _emit(record: dict[str, Any], as_json: bool, output: Path | None) -> None:
    text = json.dumps(record, indent=2, ensure_ascii=False)
    if output is not None:
        from kolmbuild.atomic import write_text_atomic

        try:
            write_text_atomic(output, text + "\n")
        except OSError as exc:
            raise UserInputError(f"-o {output}: cannot write the record ({exc.strerror or exc})") from None
    if as_json:
        click.echo(text)


def _short(v: object, n: int = 50) -> str:
    s = json.dumps(v, ensure_ascii=False)
    return s if len(s) <= n else s[: n - 1] + "…"


def _print_human(record: dict[str, Any], show: int) -> None:
    s = record["summary"]
    click.echo(f"{record['subject']} on {record['examples']}")
    click.echo(f"  cases    {s['n']}, passed {s['passed']} ({s['pass_rate']:.1%})")
    routes: dict[str, list[int]] = {}
    for c in record["cases"]:
        slot = routes.setdefault(c["route"], [0, 0])
        slot[0] += 1
        slot[1] += int(c["passed"])
    click.echo("  routes   " + ", ".join(f"{r} {p}/{n} passed" for r, (n, p) in sorted(routes.items())))
    click.echo(f"  measured p50 {s['p50_ms']:.3f} ms, p95 {s['p95_ms']:.3f} ms (wall clock, this machine)")
    ks = record.get("kscore")
    if ks:
        t = ks["terms"]
        click.echo(
            f"  K        {ks['K']:.4f} = 0.40·A {t['A']:.3f} + 0.15·S {t['S']:.3f} + 0.15·L {t['L']:.3f}"
            f" + 0.15·C {t['C']:.3f} + 0.15·V {t['V']:.3f}"
        )
        lat = ks["latency"]
        click.echo(f"  estimate p50 {lat['p50_ms']:g} ms on {lat['model']} (budget {lat['budget_ms']:g} ms)")
        g = ks["gate"]
        limits = ", ".join(f"{k} {v:g}" for k, v in g.items() if v is not None)
        click.echo(f"  gate     {limits}: {'passed' if ks['passed'] else 'FAILED'}")
        for sf in ks["shortfalls"]:
            click.echo(f"    - {sf['text']}")
    failed = [c for c in record["cases"] if not c["passed"]]
    for c in failed[:show]:
        err = f" error={c['error']}" if c.get("error") else ""
        click.echo(f"  failed id {c['id']} ({c['route']}): input={_short(c['input'])} expected={_short(c['expected'])} "
                   f"got={_short(c['output'])}{err}")  # fmt: skip
    if len(failed) > show:
        click.echo(f"  … {len(failed) - show} more failing cases (--json lists all)")


@click.command("eval")
@click.argument("artifact", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--examples", "-e", "examples", required=True, type=click.Path(path_type=Path),
              help="JSONL of {input, output} cases to score on.")  # fmt: skip
@click.option("--endpoint", help="Score an OpenAI-compatible endpoint (base URL, e.g. http://host:8000/v1).")
@click.option("--model", help="With --endpoint: the model name (default: the first one the endpoint lists).")
@click.option("--system", "system_prompt", help="With --endpoint: a system prompt for every request.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
              help="With --endpoint: seconds per request.")  # fmt: skip
@click.option("--gates", "gates_spec", help="Check this gate (conf/gates name or YAML file), not the artifact's own.")
@click.option("--pubkey", type=click.Path(dir_okay=False, path_type=Path), help="Verify the signature with this key.")
@click.option("--check", is_flag=True, help="Exit 1 when the artifact falls below the gate.")
@click.option("--json", "as_json", is_flag=True, help="Print the kolm-eval record as JSON.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Also write the record to FILE.")
@click.option("--show", type=click.IntRange(min=0), default=10, show_default=True, help="How many failing cases to list.")
@click.pass_context
def eval_(ctx: click.Context, artifact: Path | None, examples: Path, endpoint: str | None, model: str | None,
          system_prompt: str | None, timeout_s: float, gates_spec: str | None, pubkey: Path | None, check: bool,
          as_json: bool, output: Path | None, show: int) -> None:  # fmt: skip
    """Score a .kolm file (or, with --endpoint, a served model) on an examples file."""
    _existing(examples, "examples file")
    if pubkey is not None:
        _existing(pubkey, "public key file")
    if artifact is not None:
        _existing(artifact, ".kolm file")
    if endpoint is not None:
        from urllib.parse import urlsplit

        from kolmbuild.compare.endpoint import eval_endpoint

        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UserInputError(f"--endpoint {endpoint}: not an http(s) URL", hint="e.g. http://127.0.0.1:8000/v1")

        if gates_spec or check:
            raise UserInputError("--gates and --check score an artifact; an endpoint has no K-score")
        judge = _EndpointJudge(_artifact_verifier(artifact, pubkey)) if artifact is not None else None
        record = eval_endpoint(endpoint, examples, model, judge, timeout_s=timeout_s, system_prompt=system_prompt)
        _emit(record, as_json, output)
        if not as_json:
            _print_human(record, show)
        return
    if artifact is None:
        raise UserInputError("give a .kolm file to score, or --endpoint URL", hint="kolmbuild eval FILE.kolm --examples F.jsonl")
    from kolmbuild.engine.ui import BuildUI, StageProgress
    from kolmbuild.evaluate.rescore import rescore_artifact

    gates = load_gates(gates_spec, _root(ctx)) if gates_spec else None
    progress = StageProgress(BuildUI(quiet=as_json), "eval")
    try:
        res = rescore_artifact(artifact, examples, gates=gates, pubkey=pubkey, progress=progress)
    finally:
        progress.close()
    _emit(res.record, as_json, output)
    if not as_json:
        _print_human(res.record, show)
    if check and not res.kscore.ok:
        raise GateFailed(
            f"{artifact}: below its gate on {examples} (K = {res.kscore.K:.4f}): "
            + "; ".join(s.text for s in res.kscore.shortfalls)
        )
