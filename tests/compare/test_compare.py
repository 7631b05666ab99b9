from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from kolmbuild.compare import compare_records, eval_endpoint, load_eval, parse_eval, percentile
from kolmbuild.errors import DataError, KolmError, UserInputError


def _cli(*args: str):
    from kolmbuild.cli.main import cli

    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_percentile_matches_linear_interpolation() -> None:
    assert percentile([], 50) == 0.0
    assert percentile([5.0], 95) == 5.0
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile(list(range(1, 101)), 95) == pytest.approx(95.05)


def test_compare_matches_cases_by_input(eval_pair: tuple[Path, Path]) -> None:
    a, b = (load_eval(p) for p in eval_pair)
    cmp = compare_records(a, b)
    assert cmp.matched == 5 and not cmp.only_a and not cmp.only_b
    assert [c.input for c in cmp.fixed] == [
        "capital of France",
        "dup",
    ]  # second "dup" pairs with second "dup"
    assert [c.input for c in cmp.regressed] == [{"q": "x", "lang": "en"}]  # key order does not matter
    assert (cmp.both_passed, cmp.both_failed) == (2, 0)
    rows = {m: (va, vb, d) for m, va, vb, d in cmp.metrics()}
    assert rows["passed"] == (3, 4, 1)
    assert rows["pass_rate"][2] == pytest.approx(0.2)
    assert rows["p50_ms"] == (10.0, 100.0, 90.0)
    j = cmp.to_json()
    assert (
        j["delta"]["passed"] == 1
        and j["regressed"][0]["a_output"] == "X"
        and j["regressed"][0]["b_output"] == "Y"
    )


def test_unmatched_cases_are_listed(make_record) -> None:
    a = parse_eval(make_record("a", [("x", "1", "1", True, 1.0), ("y", "2", "0", False, 1.0)]), source="a")
    b = parse_eval(make_record("b", [("y", "2", "2", True, 3.0), ("z", "3", "3", True, 3.0)]), source="b")
    cmp = compare_records(a, b)
    assert (
        cmp.matched == 1 and [c.input for c in cmp.only_a] == ["x"] and [c.input for c in cmp.only_b] == ["z"]
    )
    assert cmp.to_json()["only_b"] == [1]


def test_compare_cli_table_and_json(eval_pair: tuple[Path, Path]) -> None:
    a, b = eval_pair
    r = _cli("compare", str(a), str(b))
    assert r.exit_code == 0, r.output
    assert "pass_rate" in r.output and "60.0%" in r.output and "80.0%" in r.output and "+20.0 pp" in r.output
    assert "2 fixed (fail → pass), 1 regressed (pass → fail)" in r.output
    assert 'regressed: input={"q": "x", "lang": "en"}' in r.output
    r = _cli("compare", str(a), str(b), "--json")
    data = json.loads(r.output)
    assert data["kind"] == "kolm-compare" and data["a"]["passed"] == 3 and data["b"]["pass_rate"] == 0.8


def test_bad_records_exit_2(tmp_path: Path, eval_pair: tuple[Path, Path]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "kolm-eval", "version": 1, "subject": "x", "cases": [{"id": 0}], "summary": {}}')
    with pytest.raises(UserInputError, match=r"bad.json: not an eval record: cases.0.input: Field required"):
        load_eval(bad)
    r = _cli("compare", str(bad), str(eval_pair[1]))
    assert r.exit_code == 2 and "not an eval record" in r.output
    (tmp_path / "nj.json").write_text("{oops")
    with pytest.raises(UserInputError, match="nj.json:1: not JSON"):
        load_eval(tmp_path / "nj.json")
    rec = json.loads(eval_pair[0].read_text())
    rec["summary"]["n"] = 9
    with pytest.raises(UserInputError, match="summary.n is 9 but there are 5 cases"):
        parse_eval(rec, source="x.json")


def test_eval_endpoint_against_fake_server(
    tmp_path: Path, fake_openai, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, handler = fake_openai
    handler.answers.update({"2+2": " 4\n", "capital of France": "Lyon", '{"q": "json?"}': '{"a": 1}'})
    monkeypatch.setenv("KOLM_EVAL_TOKEN", "sekret-token")
    ex = tmp_path / "eval.jsonl"
    ex.write_text("\n".join(json.dumps(x) for x in [
        {"input": "2+2", "output": "4"},
        {"input": "capital of France", "output": "Paris"},
        {"input": {"q": "json?"}, "output": {"a": 1}},
        {"input": "boom", "output": "x"},
    ]) + "\n")  # fmt: skip
    rec = eval_endpoint(url, ex, "fake-1")
    parsed = parse_eval(rec, source="endpoint")  # same shape as kolmbuild eval --json
    assert [c.passed for c in parsed.cases] == [True, False, True, False]
    assert parsed.cases[2].output == {"a": 1}
    assert parsed.cases[3].route == "error" and rec["cases"][3]["error"] == "HTTP 500"
    assert parsed.summary.passed == 2 and parsed.summary.pass_rate == 0.5
    assert all(c.latency_ms > 0 for c in parsed.cases)
    assert handler.seen[0]["model"] == "fake-1" and handler.seen[0]["messages"][-1]["content"] == "2+2"
    assert handler.auth[0] == "Bearer sekret-token"
    assert "sekret" not in json.dumps(rec)

    # model=None takes the first listed model; a verifier decides pass/fail when given
    class Lenient:  # the pinned Verifier.check: a bool
        def check(self, input, output, reference=None) -> bool:  # noqa: A002
            return output is not None and str(reference).lower() in ("4", "paris")

    rec2 = eval_endpoint(url, ex, None, verifier=Lenient())
    assert rec2["subject"].endswith("model=fake-1")
    assert [c["passed"] for c in rec2["cases"]] == [True, True, False, False]

    # and it compares with an artifact's record
    cmp = compare_records(parsed, parse_eval(rec2, source="b"))
    assert [c.input for c in cmp.fixed] == ["capital of France"] and [c.input for c in cmp.regressed] == [
        {"q": "json?"}
    ]


def test_eval_endpoint_errors(tmp_path: Path) -> None:
    ex = tmp_path / "e.jsonl"
    ex.write_text('{"input": "a", "output": "b"}\nnot json\n{"input": 1}\n')
    with pytest.raises(DataError) as err:
        eval_endpoint("http://127.0.0.1:9/v1", ex, "m")
    assert "e.jsonl:2: not JSON" in str(err.value) and "e.jsonl:3: expected an object" in str(err.value)
    ex.write_text('{"input": "a", "output": "b"}\n')
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(KolmError, match="endpoint unreachable"):
        eval_endpoint(f"http://127.0.0.1:{port}/v1", ex, "m", timeout_s=2)
    for bad in ("ftp://127.0.0.1/v1", "http:///v1", "127.0.0.1:8000"):  # refused before any request
        with pytest.raises(UserInputError, match="not an http\\(s\\) URL"):
            eval_endpoint(bad, ex, "m")
