"""A label-task project for the compile-loop tests: 20 gold examples, a gold test set, unlabelled
inputs, and a scripted OpenAI-compatible teacher on 127.0.0.1 that knows each message's queue
(the support-router generator's) — optionally noisy on some inputs."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "teacher"))
from kolm_fake_teacher import ScriptedTeacher, Serving, input_of  # noqa: E402

from kolmbuild.cli.main import cli  # noqa: E402
from tests.conftest import REPO, write  # noqa: E402

__all__ = ["LoopProject", "ScriptedTeacher", "Serving"]
LABELS = ["account", "billing", "shipping", "technical"]


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("router_gen", REPO / "examples/support-router/generate.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    return gen


def jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


class LoopProject:
    """Targets ``router`` (teacher + unlabelled inputs) and ``router-gold`` (the same gold rows, no
    teacher, nothing unlabelled). Recipes only: ``train.enabled: never``; an open gate."""

    def __init__(self, root: Path, teacher_url: str, *, n_gold: int = 20, n_unlabeled: int = 200, n_test: int = 100) -> None:
        self.root = root
        gen = _generator()
        self.gold = gen.generate(n_gold, seed=11)
        seen = {r["input"] for r in self.gold}
        self.test = gen.generate(n_test, seed=12, exclude=seen)
        seen |= {r["input"] for r in self.test}
        self.pool = gen.generate(n_unlabeled, seed=13, exclude=seen)
        self.truth = {r["input"]: r["output"] for r in self.gold + self.test + self.pool}
        jsonl(root / "data/gold.jsonl", self.gold)
        jsonl(root / "data/test.jsonl", self.test)
        jsonl(root / "data/unlabeled.jsonl", [{"input": r["input"]} for r in self.pool])
        write(root / "kolmfile.yaml", """
            version: 1
            defaults:
              backend: local-cpu
              gates: open
            targets:
              router:
                task: router
              router-gold:
                task: router-gold
        """)
        write(root / "conf/gates/open.yaml", "K_min: 0.0\n")
        common = """
            description: Route a customer support message to one of the queues billing, technical, account, shipping.
            shape:
              input: text
              output: label
              labels: [account, billing, shipping, technical]
            examples: data/gold.jsonl
            eval: data/test.jsonl
            recipes:
              kinds: [lookup, classifier]
              min_accuracy: 0.8
            train:
              enabled: never
        """
        write(root / "conf/task/router-gold.yaml", "name: router-gold\n" + _dedent(common))
        write(root / "conf/task/router.yaml", "name: router\n" + _dedent(common) + _dedent(f"""
            unlabeled: data/unlabeled.jsonl
            teacher:
              model: router-teacher
              base_url: {teacher_url}/v1
              k: 3
              max_tokens: 8
              concurrency: 4
              max_retries: 1
              price_in_per_mtok: 0.1
              price_out_per_mtok: 0.4
        """))

    def answer(self, noisy: set[str] | None = None) -> Any:
        """The teacher: the right queue; on inputs in ``noisy``, a different queue per sample."""
        noisy = noisy or set()

        def reply(body: dict[str, Any]) -> str:
            text = input_of(body)
            right = self.truth[text]
            if text in noisy:
                return LABELS[(LABELS.index(right) + int(body["seed"])) % len(LABELS)]
            return right

        return reply

    def kolm(self, *args: str) -> Result:
        return CliRunner().invoke(cli, ["-C", str(self.root), *args], catch_exceptions=False)

    def artifact(self, target: str) -> Path:
        return self.root / f"artifacts/{target}-0.1.0.kolm"

    def eval_json(self, target: str) -> dict[str, Any]:
        from kolmbuild.artifact import open_artifact

        with open_artifact(self.artifact(target)) as art:
            return json.loads(art.read("eval"))

    def stage_output(self, target: str, stage: str, name: str) -> Path:
        status = self.kolm("status", target, "--json")
        outputs = next(s["outputs"] for s in json.loads(status.output) if s["stage"] == stage)
        from kolmbuild.engine.store import Store

        return Store(self.root / "cache").path_of(outputs[name])


def _dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(text).lstrip()
