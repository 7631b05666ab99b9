"""``kolmbuild eval``: score a .kolm file (or a served endpoint) on an examples file.

    kolmbuild eval FILE.kolm --examples F.jsonl [--json] [--gates NAME|FILE] [--check]
    kolmbuild eval --endpoint URL --examples F.jsonl [--model NAME] [FILE.kolm] [--json]

``--json`` prints the ``kolm-eval`` v1 record that ``kolmbuild compare`` reads. With an endpoint
and a .kolm file, the artifact's verifier judges the endpoint's answers (the same cases, the same
judge). Bad input (a missing or malformed file, a bad gate) exits 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from kolmbuild.cli.state import CliState, pass_state
from kolmbuild.errors import GateFailed, UserInputError


def _existing(path: Path, what: str) -> Path:
    if not path.exists():
        raise UserInputError(f"{path}: no such {what}")
    if not path.is_file():
        raise UserInputError(f"{path}: not a file ({what})")
    return path


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
@pass_state
def eval_(state: CliState, artifact: Path | None, examples: Path, endpoint: str | None, model: str | None,
          system_prompt: str | None, timeout_s: float, gates_spec: str | None, pubkey: Path | None, check: bool,
          as_json: bool, output: Path | None, show: int) -> None:  # fmt: skip
    """Score a .kolm file (or, with --endpoint, a served model) on an examples file."""
    _existing(examples, "examples file")
    if pubkey is not None:
        _existing(pubkey, "public key file")
    if artifact is not None:
        _existing(artifact, ".kolm file")
    if endpoint is not None:
        from kolmbuild.compare.endpoint import check_endpoint_url
        from kolmbuild.evaluate.rescore import score_endpoint

        check_endpoint_url(endpoint)
        if gates_spec or check:
            raise UserInputError("--gates and --check score an artifact; an endpoint has no K-score")
        record = score_endpoint(endpoint, examples, model=model, artifact=artifact, pubkey=pubkey,
                                timeout_s=timeout_s, system_prompt=system_prompt)
        _emit(record, as_json, output)
        if not as_json:
            _print_human(record, show)
        return
    if artifact is None:
        raise UserInputError("give a .kolm file to score, or --endpoint URL", hint="kolmbuild eval FILE.kolm --examples F.jsonl")
    from kolmbuild.engine.ui import BuildUI, StageProgress
    from kolmbuild.evaluate.profile import load_gates
    from kolmbuild.evaluate.rescore import rescore_artifact

    gates = load_gates(gates_spec, state.root) if gates_spec else None
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
