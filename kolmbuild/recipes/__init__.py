"""The recipe pack: span regexes (redaction and extraction), lookup tables, a classifier head, and the draft table.

    learn(train, heldout, verifier, spec, shape) -> RecipePack
    RecipePack.answer(input) -> Any | None ; RecipePack.answer_batch(inputs)
    RecipePack.drafts -> DraftTable ; DraftTable.propose(text_so_far) -> str
    RecipePack.to_json() / RecipePack.from_json(doc)
"""

from __future__ import annotations

from kolmbuild.recipes.classifier import ClassifierRecipe
from kolmbuild.recipes.drafts import DraftTable, learn_drafts
from kolmbuild.recipes.extract import ExtractRecipe
from kolmbuild.recipes.lookup import LookupRecipe
from kolmbuild.recipes.pack import RecipePack, Score, learn, score
from kolmbuild.recipes.span import SpanRecipe, SpanRule

__all__ = [
    "ClassifierRecipe",
    "DraftTable",
    "ExtractRecipe",
    "LookupRecipe",
    "RecipePack",
    "Score",
    "SpanRecipe",
    "SpanRule",
    "learn",
    "learn_drafts",
    "score",
]
