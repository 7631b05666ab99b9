from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from kolmbuild.config.models import RecipesSpec, ShapeSpec, VerifierSpec
from kolmbuild.data import Example, load_examples
from kolmbuild.recipes import RecipePack, learn
from kolmbuild.verifier import Verifier, synthesize

REPO = Path(__file__).resolve().parents[2]
PHI = REPO / "examples" / "phi-redactor"


def load_example(name: str) -> ModuleType:
    """examples/phi-redactor/<name>.py as a module (the example folder is no package)."""
    spec = importlib.util.spec_from_file_location(f"phi_{name}", PHI / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_generator() -> ModuleType:
    return load_example("generate")


def as_examples(rows: list[dict[str, str]], start: int = 0) -> list[Example]:
    return [Example(start + i, r["input"], r["output"]) for i, r in enumerate(rows)]


class Phi:
    def __init__(self) -> None:
        self.shape = ShapeSpec()
        self.train = load_examples(PHI / "train.jsonl", self.shape)
        self.heldout = load_examples(PHI / "eval.jsonl", self.shape)
        self.verifier: Verifier = synthesize(self.train, self.shape, VerifierSpec(), PHI)
        self.pack: RecipePack = learn(self.train, self.heldout, self.verifier,
                                      RecipesSpec(kinds=["span", "lookup"]), self.shape)


