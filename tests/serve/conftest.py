"""A live server on 127.0.0.1 (random port) over a Predictor with the real SmolLM2 base."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from kolmbuild.models import bundled_smollm2
from kolmbuild.runtime import Predictor, RuntimeOptions, RuntimeParts
from kolmbuild.serve import KolmHTTPServer, ServeOptions, Service, make_server

TASK: dict[str, Any] = {
    "name": "helper",
    "description": "Answer the question in one short sentence.",
    "shape": {"input": "text", "output": "text", "max_output_tokens": 24},
}


class Lookup:
    """Pinned RecipePack API, exact-match lookups (the recipe route without the recipes package)."""

    def __init__(self, table: dict[str, Any]) -> None:
        self.table = table
        self.drafts = None

    def answer(self, value: Any) -> Any:
        return self.table.get(value)

    def answer_batch(self, values: list[Any]) -> list[Any]:
        return [self.answer(v) for v in values]


RECIPES = {"hello recipe": "recipe says hi", "give json": {"a": 1}}


@pytest.fixture(scope="module")
def predictor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Predictor]:
    parts = RuntimeParts(
        target="helper",
        task=TASK,
        recipes=Lookup(RECIPES),
        base_gguf=bundled_smollm2(),
        drift_log=tmp_path_factory.mktemp("drift") / "helper.jsonl",
        options=RuntimeOptions(n_ctx=1024, n_threads=1),
    )
    with Predictor.from_parts(parts) as p:
        yield p


def _serve(predictor: Predictor, lorax: bool) -> Iterator[KolmHTTPServer]:
    server = make_server(Service(predictor), ServeOptions(port=0, lorax_compat=lorax))
    server.start_background()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server(predictor: Predictor) -> Iterator[KolmHTTPServer]:
    yield from _serve(predictor, lorax=True)


@pytest.fixture(scope="module")
def openai_only(predictor: Predictor) -> Iterator[KolmHTTPServer]:
    yield from _serve(predictor, lorax=False)
