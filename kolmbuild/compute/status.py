"""``compute status``: the ledger's live rentals, plus orphans found by listing each provider."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from kolmbuild.compute.ledger import Ledger
from kolmbuild.compute.registry import Registry
from kolmbuild.errors import ComputeError, UserInputError


def rental_status(registry: Registry, *, include_released: bool = False, ask_providers: bool = True,
                  ledger: Ledger | None = None) -> dict[str, Any]:
    from kolmbuild.compute.adapters import adapter_for
    from kolmbuild.compute.detect import detect

    led = ledger or Ledger()
    rentals = led.all()
    shown = [r for r in rentals if include_released or r.live]
    by_label = {r.label: r for r in rentals}
    orphans: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    if ask_providers:
        for spec in registry:
            if spec.kind in ("local", "self-hosted") or not detect(spec).available:
                continue
            try:
                adapter = adapter_for(spec, ledger=led)
                listed = adapter.list_instances()
            except (ComputeError, UserInputError, OSError) as exc:
                errors.append({"backend": spec.name, "error": str(exc).splitlines()[0]})
                continue
            for inst in listed:
                known = by_label.get(inst.label)
                if inst.status != "gone" and (known is None or not known.live):
                    orphans.append({"backend": spec.name, "instance_id": inst.instance_id, "label": inst.label,
                                    "status": inst.status})
    return {"rentals": [_row(asdict(r)) for r in sorted(shown, key=lambda r: r.started_at)],
            "orphans": orphans, "errors": errors, "ledger": str(led.path)}


def _row(r: dict[str, Any]) -> dict[str, Any]:
    return {k: r[k] for k in ("run_id", "backend", "state", "instance_id", "label", "estimate_usd", "actual_usd",
                              "note", "started_at", "updated_at")}
