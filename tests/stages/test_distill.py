"""Stage ``distill`` against a scripted local teacher: labels, verifier choice among k, cache,
budget, reporting of examples with no passing sample, grounding on the recall index."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "teacher"))
from kolm_fake_teacher import ScriptedTeacher, Serving, input_of  # noqa: E402

from kolmbuild.config.models import RecallSpec  # noqa: E402
from kolmbuild.data import read_jsonl, write_jsonl  # noqa: E402
from kolmbuild.engine.stage import StageContext  # noqa: E402
from kolmbuild.errors import BudgetExceeded  # noqa: E402
from kolmbuild.recall import build_index, list_corpus  # noqa: E402
from kolmbuild.stages import distill  # noqa: E402
from kolmbuild.teacher.budget import Prices  # noqa: E402
from kolmbuild.verifier import Verifier  # noqa: E402

CAPITALS = {"France": "Paris", "Japan": "Tokyo", "Italy": "Rome", "Peru": "Lima", "Kenya": "Nairobi"}


class Logs:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def start(self, description: str, total: float | None = None) -> None:
        pass

    def advance(self, amount: float = 1.0, **fields: object) -> None:
        pass

    def log(self, message: str) -> None:
        self.lines.append(message)


class Project:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.cache = root / "cache"
        self.train = root / "up" / "train.jsonl"
        write_jsonl(self.train, [{"id": i, "input": k, "output": v} for i, (k, v) in enumerate(CAPITALS.items(), 1)])
        self.index: Path | None = None
        self.unlabeled: Path | None = None
        self.runs = 0
        self.logs = Logs()

    def ctx(self, teacher: dict[str, Any] | None) -> StageContext:
        self.runs += 1
        out = self.root / f"out{self.runs}"
        out.mkdir()
        return StageContext(
            target="t", stage="distill", key="k", project_dir=self.root, outdir=out, cache_dir=self.cache,
            params={"task.teacher": teacher, "task.shape": {"input": "text", "output": "text"},
                    "task.verifier": {"kind": "auto", "path": None}, "task.recall": {"top_k": 2},
                    "task.description": "Name the capital city of the country."},
            inputs={"task.verifier.path": None},
            upstream={"ingest": {"train.jsonl": self.train, **({"unlabeled.jsonl": self.unlabeled} if self.unlabeled else {})},
                      "recall": {"index.sqlite": self.index} if self.index else {}},
            receipts={}, progress=self.logs,
        )


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)


@pytest.fixture
def server() -> Iterator[tuple[ScriptedTeacher, str]]:
    teacher = ScriptedTeacher()
    with Serving(teacher) as serving:
        yield teacher, serving.url


def teacher_cfg(url: str, **kw: Any) -> dict[str, Any]:
    cfg = {"provider": "openai", "model": "teach-1", "base_url": f"{url}/v1", "k": 4, "max_tokens": 16,
           "price_in_per_mtok": 2.0, "price_out_per_mtok": 8.0, "budget_usd": 1.0, "concurrency": 3, "max_retries": 2}
    cfg.update(kw)
    return cfg


def right_on_seed(seed: int):
    def answer(body: dict[str, Any]) -> str:
        country = input_of(body)
        return CAPITALS[country] if body["seed"] == seed else f"{country}ville"
    return answer


def outputs(ctx: StageContext) -> dict[str, Any]:
    return {p.name: p for p in ctx.outdir.iterdir()}


def test_without_teacher_labels_are_the_gold_rows(project: Project) -> None:
    ctx = project.ctx(None)
    result = distill.run(ctx)
    assert sorted(outputs(ctx)) == ["distill.json", "labels.jsonl", "verifier.json"]
    rows = read_jsonl(ctx.output("labels.jsonl"))
    assert rows == [{"id": i, "input": k, "output": v, "source": "gold", "verified": True} for i, (k, v) in enumerate(CAPITALS.items(), 1)]
    verifier = Verifier.from_json(json.loads(ctx.output("verifier.json").read_text()))
    assert verifier.check("France", "paris", "Paris") and not verifier.check("France", "Lyon", "Paris")
    report = json.loads(ctx.output("distill.json").read_text())
    assert report == dict(result.metrics)  # no unlabelled inputs: the report is the metrics
    assert report["teacher"] is None and report["teacher_cost_usd"] == 0.0 and report["sources"] == {"gold": 5, "teacher": 0}


def test_teacher_labels_pick_the_verified_sample_and_a_rebuild_makes_zero_calls(project: Project, server: tuple[ScriptedTeacher, str]) -> None:
    fake, url = server
    fake.answer = right_on_seed(2)
    first = project.ctx(teacher_cfg(url))
    metrics = distill.run(first).metrics
    rows = read_jsonl(first.output("labels.jsonl"))
    assert [(r["output"], r["source"], r["verified"]) for r in rows] == [(v, "teacher", True) for v in CAPITALS.values()]
    prefs = read_jsonl(first.output("preferences.jsonl"))
    assert {(p["input"], p["chosen"], p["rejected"]) for p in prefs} == {(k, v, f"{k}ville") for k, v in CAPITALS.items()}
    assert fake.count == 20
    paid = 20 * Prices(2.0, 8.0).cost(100, 10)
    t = metrics["teacher"]
    assert (t["model"], t["k"], t["calls"], t["cached"], t["input_tokens"], t["output_tokens"]) == ("teach-1", 4, 20, 0, 2000, 200)
    assert metrics["teacher_cost_usd"] == pytest.approx(paid) and t["labels_cost_usd"] == pytest.approx(paid)
    assert metrics["no_passing_sample"] == {"count": 0, "ids": []}

    again = project.ctx(teacher_cfg(url, concurrency=1, budget_usd=0.0))  # a rebuild pays nothing, so no budget is needed
    metrics2 = distill.run(again).metrics
    assert fake.count == 20
    assert (metrics2["teacher"]["calls"], metrics2["teacher"]["cached"], metrics2["teacher_cost_usd"]) == (0, 20, 0.0)
    for name in ("labels.jsonl", "preferences.jsonl", "verifier.json"):
        assert again.output(name).read_bytes() == first.output(name).read_bytes()


def test_budget_exhaustion_stops_cleanly_and_a_bigger_budget_resumes(project: Project, server: tuple[ScriptedTeacher, str]) -> None:
    fake, url = server
    fake.answer = right_on_seed(0)
    ctx = project.ctx(teacher_cfg(url, budget_usd=0.004, concurrency=1))
    with pytest.raises(BudgetExceeded, match="task.teacher.budget_usd") as info:
        distill.run(ctx)
    assert info.value.exit_code == 2
    assert list(ctx.outdir.iterdir()) == []  # nothing half-written
    paid_calls = fake.count
    assert 0 < paid_calls < 20
    assert paid_calls * Prices(2.0, 8.0).cost(100, 10) <= 0.004

    resumed = project.ctx(teacher_cfg(url))
    metrics = distill.run(resumed).metrics
    assert (metrics["teacher"]["cached"], metrics["teacher"]["calls"], fake.count) == (paid_calls, 20 - paid_calls, 20)


def test_examples_with_no_passing_sample_are_reported_not_kept(project: Project, server: tuple[ScriptedTeacher, str]) -> None:
    fake, url = server
    fake.answer = lambda body: CAPITALS[input_of(body)] if input_of(body) in ("France", "Italy") else "Atlantis"
    ctx = project.ctx(teacher_cfg(url, k=2))
    metrics = distill.run(ctx).metrics
    rows = {r["input"]: r for r in read_jsonl(ctx.output("labels.jsonl"))}
    assert {k for k, r in rows.items() if r["source"] == "teacher"} == {"France", "Italy"}
    assert all(r["output"] == CAPITALS[k] for k, r in rows.items())  # no unverified teacher answer is kept
    assert metrics["no_passing_sample"] == {"count": 3, "ids": [2, 4, 5]}
    assert sum("no teacher sample passed" in line for line in project.logs.lines) == 3
    prefs = read_jsonl(ctx.output("preferences.jsonl"))
    assert {(p["input"], p["chosen"], p["rejected"]) for p in prefs} == {(k, CAPITALS[k], "Atlantis") for k in ("Japan", "Peru", "Kenya")}


def test_samples_are_grounded_on_recalled_passages(project: Project, server: tuple[ScriptedTeacher, str], minilm_cached: Path) -> None:
    """A teacher that only knows what the passages say answers right only if recall put them there."""
    fake, url = server
    corpus = project.root / "corpus"
    corpus.mkdir()
    facts = {"Freedonia": "Zorblat", "Sylvania": "Quuxton"}
    for country, capital in facts.items():
        (corpus / f"{country.lower()}.txt").write_text(f"{capital} is the capital city of {country}.")
    (corpus / "weather.txt").write_text("Rain is expected on Tuesday across the northern valleys.")
    project.index = project.root / "index.sqlite"
    build_index(list_corpus(str(corpus), project.root), project.index, RecallSpec(top_k=2), minilm_cached)
    write_jsonl(project.train, [{"id": i, "input": k, "output": v} for i, (k, v) in enumerate(facts.items(), 1)])

    def from_passages(body: dict[str, Any]) -> str:
        prompt = body["messages"][-1]["content"]
        first = prompt.split("[1] (", 1)[1]
        return first.split(") ", 1)[1].split(" is the capital", 1)[0]

    fake.answer = from_passages
    ctx = project.ctx(teacher_cfg(url, k=1))
    distill.run(ctx)
    rows = read_jsonl(ctx.output("labels.jsonl"))
    assert [(r["output"], r["source"]) for r in rows] == [("Zorblat", "teacher"), ("Quuxton", "teacher")]
    last = fake.seen[-1].body["messages"][-1]["content"]
    assert "Passages that may help:" in last and "weather.txt" not in last.split("[2]")[0]


MORE = {"Chile": "Santiago", "Egypt": "Cairo", "Ghana": "Accra", "Nepal": "Kathmandu"}


def with_unlabeled(project: Project, countries: list[str]) -> None:
    project.unlabeled = project.root / "up" / "unlabeled.jsonl"
    write_jsonl(project.unlabeled, [{"id": 100 + i, "input": c, "line": i + 1} for i, c in enumerate(countries)])


def test_unlabelled_inputs_get_teacher_labels_by_clear_majority(project: Project, server: tuple[ScriptedTeacher, str]) -> None:
    """Without a reference, the k samples must agree; disagreeing samples are rejected and said why."""
    fake, url = server
    truth = {**CAPITALS, **MORE}

    def answer(body: dict[str, Any]) -> str:
        country, seed = input_of(body), body["seed"]
        if country == "Ghana":  # a noisy teacher on this one: every sample says something else
            return ["Accra", "Kumasi", "Tamale", "Accra"][seed]
        if country == "Nepal":
            return "Kathmandu" if seed < 3 else "Pokhara"  # 3 of 4 agree
        return truth[country]

    fake.answer = answer
    with_unlabeled(project, list(MORE))
    ctx = project.ctx(teacher_cfg(url, k=4))
    metrics = distill.run(ctx).metrics
    assert fake.count == 4 * (5 + 4)
    rows = read_jsonl(ctx.output("labels.jsonl"))
    teacher_rows = {r["input"]: r for r in rows if r["id"] >= 100}
    assert teacher_rows == {c: {"id": 100 + i, "input": c, "output": MORE[c], "source": "teacher", "verified": True}
                            for i, c in enumerate(MORE) if c != "Ghana"}  # fmt: skip
    assert metrics["unlabeled"] == {"inputs": 4, "kept": 3, "rejected": 1, "why_rejected": {"no clear majority": 1}}
    assert metrics["sources"] == {"gold": 0, "teacher": 8}
    report = json.loads(ctx.output("distill.json").read_text())
    lines = {r["line"]: r for r in report["unlabeled"]["per_input"]}
    assert lines[3] == {"id": 102, "line": 3, "kept": False, "agreement": 0.5, "votes": 2, "valid": 4, "k": 4,
                        "reason": "no clear majority: the top answer has 2 of 4 samples, next 1 (agreement 0.50 < 0.60)"}  # fmt: skip
    assert lines[4]["kept"] and lines[4]["agreement"] == 0.75
    assert "per_input" not in metrics["unlabeled"]  # the receipt (and so the manifest) holds counts only
    prefs = {(p["input"], p["rejected"]) for p in read_jsonl(ctx.output("preferences.jsonl")) if p["input"] in MORE}
    assert prefs == {("Nepal", "Pokhara")}  # pairs from the rejected samples of kept inputs
    # shots are gold examples; the unlabelled input is asked last
    asked = next(x.body for x in fake.seen if input_of(x.body) == "Chile")
    assert [m["content"] for m in asked["messages"][1:-1]] == ["Input:\nFrance", "Paris", "Input:\nJapan", "Tokyo"]


def test_unlabelled_inputs_share_the_budget_and_the_cache(project: Project, server: tuple[ScriptedTeacher, str]) -> None:
    fake, url = server
    fake.answer = lambda body: {**CAPITALS, **MORE}[input_of(body)]
    with_unlabeled(project, list(MORE))
    cost = Prices(2.0, 8.0).cost(100, 10)
    ctx = project.ctx(teacher_cfg(url, k=2, concurrency=1, budget_usd=12 * cost))
    with pytest.raises(BudgetExceeded):
        distill.run(ctx)
    assert list(ctx.outdir.iterdir()) == [] and 0 < fake.count < 18
    paid = fake.count
    done = distill.run(project.ctx(teacher_cfg(url, k=2))).metrics
    assert (done["teacher"]["cached"], fake.count, done["unlabeled"]["kept"]) == (paid, 18, 4)


def test_without_a_teacher_unlabelled_inputs_stay_unlabelled(project: Project) -> None:
    with_unlabeled(project, list(MORE))
    ctx = project.ctx(None)
    result = distill.run(ctx)
    assert [r["source"] for r in read_jsonl(ctx.output("labels.jsonl"))] == ["gold"] * 5
    assert result.metrics["unlabeled"] == {"inputs": 4, "kept": 0, "rejected": 0, "not_labelled": 4}
    assert any("no teacher" in line for line in project.logs.lines) and "(no teacher)" in result.summary


def test_one_huge_example_is_never_a_shot(project: Project, server: tuple[ScriptedTeacher, str]) -> None:
    """16 item 6: a 1 MB example is labelled like any other, but not copied into every request."""
    fake, url = server
    huge = "Atlantis " * 120_000
    rows = [{"id": 1, "input": huge, "output": "Poseidonia"}] + [
        {"id": i, "input": k, "output": v} for i, (k, v) in enumerate(CAPITALS.items(), 2)]
    write_jsonl(project.train, rows)
    fake.answer = lambda body: "Poseidonia" if input_of(body) == huge else CAPITALS.get(input_of(body), "?")
    ctx = project.ctx(teacher_cfg(url, k=1, max_tokens=8))
    distill.run(ctx)
    sizes = sorted(len(json.dumps(x.body)) for x in fake.seen)
    assert sizes[-2] < 10_000 and sizes[-1] > 1_000_000  # only its own request carries it
    assert {r["source"] for r in read_jsonl(ctx.output("labels.jsonl"))} == {"teacher"}


@pytest.fixture(scope="module")
def minilm_cached(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("emb")
