"""``kolmbuild bench --url``: generative mode against a live server."""

from __future__ import annotations

import json

from click.testing import CliRunner

from kolmbuild.cli.main import cli
from kolmbuild.serve import KolmHTTPServer


def test_generative_bench_record(server: KolmHTTPServer) -> None:
    res = CliRunner().invoke(cli, ["bench", "--url", server.url, "--input", "Name a fruit.", "-n", "2",
                                   "--warmup", "0", "--max-tokens", "6"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    rec = json.loads(res.stdout)
    assert rec["mode"] == "generative" and rec["n"] == 2
    assert 0 < rec["tokens"] <= 12 and rec["tokens_per_s"] > 0
    assert 0 < rec["ttft_ms_p50"] <= rec["ttft_ms_max"]


def test_generative_bench_unreachable_is_exit_2() -> None:
    res = CliRunner().invoke(cli, ["bench", "--url", "http://127.0.0.1:9", "--input", "x", "-n", "1", "--warmup", "0"])
    assert res.exit_code == 2 and "cannot reach the server" in res.stderr
