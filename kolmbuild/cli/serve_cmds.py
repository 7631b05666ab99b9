"""``kolmbuild serve FILE.kolm`` (OpenAI / LoRAX compatible HTTP) and ``kolmbuild bench``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import click

from kolmbuild.errors import UserInputError


def _options(threads: int | None, ctx: int | None) -> Any:
    from kolmbuild.runtime import RuntimeOptions

    opts = RuntimeOptions.from_env()
    if threads:
        opts = dataclasses.replace(opts, n_threads=threads)
    if ctx:
        opts = dataclasses.replace(opts, n_ctx=ctx)
    return opts


def _needs_serve_extra(exc: ImportError) -> UserInputError:
    return UserInputError(f"serving needs the package {exc.name or exc}", hint="pip install 'kolmbuild[serve]'")


@click.command("serve")
@click.argument("artifact", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="0: any free port.")
@click.option("--lorax-compat", is_flag=True, help="Also answer LoRAX's /generate, /generate_stream and POST /.")
@click.option("--pubkey", type=click.Path(dir_okay=False, path_type=Path), help="Require this signer's public key (PEM).")
@click.option("--threads", type=click.IntRange(1), default=None, help="llama.cpp threads per context (default: all cores).")
@click.option("--ctx", type=click.IntRange(256), default=None, help="Context size in tokens (default 2048).")
@click.option("--parallel", type=click.IntRange(1, 64), default=1, show_default=True,
              help="llama.cpp contexts decoding at once (they share the memory-mapped weights).")
@click.option("--max-queue", type=click.IntRange(0, 4096), default=64, show_default=True,
              help="Requests that may wait for a context; past it: 503 with Retry-After.")
@click.option("--max-connections", type=click.IntRange(1), default=512, show_default=True,
              help="Open connections; a request on one past it: 503 with Retry-After, then close.")
@click.option("--backlog", type=click.IntRange(1), default=2048, show_default=True, help="Listen queue length.")
@click.option("--max-body", type=click.IntRange(0), default=8 * 1024**2, show_default=True,
              help="Largest request body in bytes (413 past it).")
@click.option("--header-timeout", type=click.FloatRange(0, min_open=True), default=10.0, show_default=True,
              help="Seconds for a request head to arrive (408 and close after).")
@click.option("--body-timeout", type=click.FloatRange(0, min_open=True), default=30.0, show_default=True,
              help="Seconds for a request body to arrive once its head is in (408 and close after).")
@click.option("--keep-alive", type=click.FloatRange(0, min_open=True), default=5.0, show_default=True,
              help="Seconds an idle keep-alive connection stays open.")
@click.option("--shutdown-timeout", type=click.FloatRange(0), default=5.0, show_default=True,
              help="On SIGINT/SIGTERM/SIGHUP: seconds in-flight answers get to finish before generations are ended.")
@click.option("--no-drift", is_flag=True, help="Do not append uncovered inputs to the drift log.")
@click.option("--access-log", is_flag=True, help="Log each request to stderr.")
def serve(artifact: Path, host: str, port: int, lorax_compat: bool, pubkey: Path | None, threads: int | None,
          ctx: int | None, parallel: int, max_queue: int, max_connections: int, backlog: int, max_body: int,
          header_timeout: float, body_timeout: float, keep_alive: float, shutdown_timeout: float, no_drift: bool,
          access_log: bool) -> None:
    """Serve ARTIFACT over HTTP until SIGINT, SIGTERM or SIGHUP (verifies it first), then shut down
    gracefully: in-flight answers get --shutdown-timeout seconds, the temp folder is removed, exit 0."""
    import logging

    try:
        from kolmbuild.serve import KolmHTTPServer, ServeOptions, serve_artifact
    except ImportError as exc:  # the serve extra is not installed
        raise _needs_serve_extra(exc) from None

    if not artifact.is_file():
        raise UserInputError(f"{artifact}: no such file")
    if access_log:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    options = ServeOptions(host=host, port=port, lorax_compat=lorax_compat, access_log=access_log, parallel=parallel,
                           max_queue=max_queue, max_connections=max_connections, backlog=backlog, max_body=max_body,
                           header_timeout=header_timeout, body_timeout=body_timeout, keep_alive=keep_alive,
                           shutdown_timeout=shutdown_timeout)

    def ready(server: KolmHTTPServer) -> None:
        routes = "OpenAI" + (" + LoRAX" if lorax_compat else "")
        target = server.service.model_id
        click.echo(f"serving {target} ({routes}) on {server.url}", err=True)

    serve_artifact(artifact, options, pubkey=str(pubkey) if pubkey else None, runtime=_options(threads, ctx),
                   drift=not no_drift, ready=ready)


@click.command("bench")
@click.argument("artifact", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option("--url", default=None, help="Generative mode: a serve endpoint (http://HOST:PORT).")
@click.option("--input", "texts", multiple=True, help="An input to time (repeatable).")
@click.option("--file", "in_file", type=click.Path(dir_okay=False, path_type=Path), help="JSON lines of inputs.")
@click.option("-n", "n", type=click.IntRange(1), default=None, help="Timed calls (pattern 10000, generative 5).")
@click.option("--warmup", type=click.IntRange(0), default=None, help="Untimed calls first (pattern 1000, generative 1).")
@click.option("--max-tokens", type=click.IntRange(1), default=128, show_default=True, help="Generative mode.")
@click.option("--threads", type=click.IntRange(1), default=None)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Also write the record here.")
def bench(artifact: Path | None, url: str | None, texts: tuple[str, ...], in_file: Path | None, n: int | None,
          warmup: int | None, max_tokens: int, threads: int | None, out: Path | None) -> None:
    """Pattern mode: calls/s and µs percentiles of ARTIFACT (on its held-out inputs unless --input or
    --file). Generative mode (--url): tokens/s and time to first token of a serve endpoint.

    Prints one JSON record (and writes it to --out)."""
    try:
        from kolmbuild.serve.bench import bench_artifact, bench_endpoint
    except ImportError as exc:
        raise _needs_serve_extra(exc) from None

    if url:
        record = bench_endpoint(url, texts, in_file, n=n or 5, warmup=1 if warmup is None else warmup,
                                max_tokens=max_tokens)
    else:
        if artifact is None:
            raise UserInputError("bench: give a .kolm file (pattern mode) or --url (generative mode)")
        record = bench_artifact(artifact, texts, in_file, n=n or 10000, warmup=1000 if warmup is None else warmup,
                                options=_options(threads, None))
    text = json.dumps(record, sort_keys=True)
    if out is not None:
        from kolmbuild.atomic import write_text_atomic

        try:
            write_text_atomic(out, text + "\n")
        except OSError as exc:
            raise UserInputError(f"--out {out}: cannot write the record: {exc.strerror or exc}") from exc
    click.echo(text)
