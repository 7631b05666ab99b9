"""The verifier synthesized from a task's examples (pinned API in docs/architecture.md).

    synthesize(examples, shape, spec, base_dir) -> Verifier
    Verifier.check(input, output, reference=None) -> bool
    Verifier.to_json() / Verifier.from_json(doc)
    choose_winner(verifier, input, samples, reference=None) -> Winner | None
    consensus(verifiers, input, samples, min_agreement) -> Consensus   # no reference: self-consistency
"""

from __future__ import annotations

from kolmbuild.verifier.consensus import Consensus, consensus
from kolmbuild.verifier.core import Verifier, Winner, choose_winner, synthesize
from kolmbuild.verifier.schema import infer_schema, validate
from kolmbuild.verifier.shape import shape_regex

__all__ = ["Consensus", "Verifier", "Winner", "choose_winner", "consensus", "infer_schema", "shape_regex", "synthesize", "validate"]
