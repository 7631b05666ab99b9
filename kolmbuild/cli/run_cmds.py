"""``kolmbuild run FILE.kolm "input"`` and ``kolmbuild run FILE.kolm --file in.jsonl [--json]``.

The artifact's signature is verified before anything runs (exit 2 when it fails). Output: the
answer alone (JSON for JSON outputs), or with ``--json`` one object per input
``{"input","output","route","latency_ms"}``, in input order.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import Any

import click

from kolmbuild.errors import KolmError

BATCH = 256


def _emit(value: Any, pred: Any, as_json: bool) -> None:
    if as_json:
        row = {"input": value, "output": pred.output, "route": pred.route, "latency_ms": round(pred.latency_ms, 3)}
        click.echo(json.dumps(row, ensure_ascii=False))
    elif pred.output is None:
        click.echo("")
    elif isinstance(pred.output, str):
        click.echo(pred.output)
    else:
        click.echo(json.dumps(pred.output, ensure_ascii=False))


@click.command("run")
@click.argument("artifact", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("text", metavar="[INPUT]", required=False)
@click.option("--file", "in_file", type=click.Path(dir_okay=False, path_type=Path), help="JSON lines of inputs ('-' for stdin).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per input: input, output, route, latency_ms.")
@click.option("--pubkey", type=click.Path(dir_okay=False, path_type=Path), help="Require this signer's public key (PEM).")
@click.option("--hmac-key-env", default=None, metavar="VAR", help="Also check the HMAC signature with the key in $VAR.")
@click.option("--threads", type=click.IntRange(1), default=None, help="llama.cpp threads (default: all cores).")
@click.option("--no-drift", is_flag=True, help="Do not append uncovered inputs to the drift log.")
def run(
    artifact: Path,
    text: str | None,
    in_file: Path | None,
    as_json: bool,
    pubkey: Path | None,
    hmac_key_env: str | None,
    threads: int | None,
    no_drift: bool,
) -> None:
    """Answer INPUT (or every line of --file) with ARTIFACT, offline."""
    import dataclasses
    import os

    from kolmbuild.errors import UserInputError
    from kolmbuild.runtime import Predictor, RuntimeOptions
    from kolmbuild.runtime.inputs import iter_inputs, parse_line
    from kolmbuild.runtime.shape import parse_input

    if (text is None) == (in_file is None):
        raise UserInputError("run: give either an INPUT argument or --file FILE, not both or neither")
    if not artifact.is_file():
        raise UserInputError(f"{artifact}: no such file")
    hmac_key = None
    if hmac_key_env:
        hmac_key = os.environ.get(hmac_key_env)
        if not hmac_key:
            raise UserInputError(f"--hmac-key-env: ${hmac_key_env} is not set")
    options = RuntimeOptions.from_env()
    if threads:
        options = dataclasses.replace(options, n_threads=threads)
    with Predictor.open(artifact, pubkey=str(pubkey) if pubkey else None, hmac_key=hmac_key, options=options,
                        drift=not no_drift) as predictor:
        shape = predictor.task.shape
        if text is not None:
            value = parse_input(text, shape, where="INPUT")
            pred = predictor.predict(value)
            _emit(value, pred, as_json)
            if pred.route == "none" and not as_json:
                raise KolmError("no recipe covers this input and the artifact has no model")
            return
        assert in_file is not None
        if str(in_file) == "-":
            values: Any = (parse_line(line, shape, f"<stdin>:{i}") for i, line in enumerate(sys.stdin, 1) if line.strip())
        else:
            values = iter_inputs(in_file, shape)
        progress = _progress(predictor.has_model)
        try:
            while chunk := list(itertools.islice(values, BATCH)):
                for value, pred in zip(chunk, predictor.predict_batch(chunk), strict=True):
                    _emit(value, pred, as_json)
                    progress.advance(1)
        finally:
            progress.close()


class _NoBar:
    def advance(self, amount: float = 1.0) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(has_model: bool) -> Any:
    """A rich bar on a terminal when a model answers (recipe-only batches finish too fast to need one)."""
    if not has_model:
        return _NoBar()
    from kolmbuild.engine.ui import BuildUI, StageProgress

    bar = StageProgress(BuildUI(), "run")
    bar.start("answering inputs", None)
    return bar
