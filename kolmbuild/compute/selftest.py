"""``compute test NAME``: auth check, container provision, trainer dry run (no weights), receipt round-trip."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from kolmbuild.compute.job import Job
from kolmbuild.config.models import BackendSpec
from kolmbuild.errors import KolmError, UserInputError

SAMPLE = [{"input": "ping", "output": "pong"}, {"input": "2+2", "output": "4"}]
TINY_JOB = Job(name="self-test", model_params=1_000_000, train_tokens=64, epochs=1.0, eval_cases=1,
               eval_tokens_per_case=8, origin="self-test: 2 rows, no weights")


def self_test(spec: BackendSpec, root: Path, echo: Callable[[str], None], *, confirm: bool = False,
              ask: Callable[[str], bool] | None = None) -> list[dict[str, Any]]:
    """The four steps. A paid backend rents a real (small) machine: the same gates as ``rent``."""
    from kolmbuild.compute.adapters import adapter_for
    from kolmbuild.compute.ledger import Ledger, new_run_id
    from kolmbuild.compute.rent import RentRequest, rent

    steps: list[dict[str, Any]] = []

    def step(name: str, ok: bool, detail: str) -> bool:
        steps.append({"step": name, "ok": ok, "detail": detail})
        return ok

    ledger = Ledger()
    adapter = adapter_for(spec, ledger=ledger, workdir=root / "kolm-runs")
    det = adapter.detect()
    if not step("auth check", det.available, f"{det.status}: {det.detail}"):
        for name in ("container provision", "trainer dry run", "receipt round-trip"):
            step(name, False, "skipped: auth check failed")
        return steps
    run_id = new_run_id()
    with tempfile.TemporaryDirectory(prefix="kolm-selftest-") as tmp:
        data = Path(tmp) / "data.jsonl"
        data.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in SAMPLE))
        job = TINY_JOB if spec.train else replace(TINY_JOB, kind="infer",
                                                  inputs=tuple({"prompt": r["input"]} for r in SAMPLE))
        try:
            result = rent(adapter, RentRequest(job=job, confirm=confirm, data=data), run_id=run_id,
                          on_progress=echo, ask=ask).result
        except UserInputError:
            raise  # a gate said no (budget, token, confirmation): nothing was rented
        except KolmError as exc:
            step("container provision", False, str(exc).splitlines()[0])
            step("trainer dry run", False, "skipped")
            step("receipt round-trip", False, "skipped")
            return steps
        rental = ledger.get(run_id)
        where = f"instance {result.instance_id}" if result.instance_id else "job folder"
        released = rental is None or rental.state == "released"
        step("container provision", released, f"{where} provisioned and released" if released
             else f"{where}: ledger says {rental.state if rental else '?'}")
        step("trainer dry run", result.exit_code == 0, f"exit {result.exit_code}: {(result.log_tail or ('',))[-1]}")
        receipt = next((p / "receipt.json" for p in result.outputs if (p / "receipt.json").is_file()), None)
        if receipt is None:
            other = [p for p in result.outputs if p.is_file()]
            step("receipt round-trip", bool(other), f"{other[0].name} came back" if other else "no receipt came back")
            return steps
        doc = json.loads(receipt.read_text())
        want = hashlib.sha256(data.read_bytes()).hexdigest()
        ok = doc.get("run_id") == run_id and doc.get("data_sha256") == want and doc.get("weights_loaded") is False
        step("receipt round-trip", ok, f"run id and data sha256 {'match' if ok else 'differ'} ({doc.get('rows')} rows)")
    return steps
