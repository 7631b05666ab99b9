"""``compute status``: the ledger's live rentals, plus orphans found by listing each provider."""

from __future__ import annotations

from collections.abc import Callable
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


def reap(registry: Registry, *, ask: Callable[[str], bool] | None, yes: bool = False,
         ledger: Ledger | None = None, on_line: Callable[[str], None] = lambda s: None) -> list[dict[str, Any]]:
    """End orphaned rentals: live ledger rows whose kolmbuild is gone (or whose release failed), and
    instances a provider lists with a kolmbuild label this ledger does not hold. Each is confirmed
    through ``ask`` unless ``yes``; a row with no instance is just closed. Returns what was done."""
    from kolmbuild.compute.adapters import adapter_for
    from kolmbuild.compute.adapters.base import RunHandle
    from kolmbuild.compute.ledger import Rental

    led = ledger or Ledger()
    done: list[dict[str, Any]] = []
    report = rental_status(registry, ledger=led)
    rentals = {r.run_id: r for r in led.all()}
    todo: list[Rental] = [r for r in rentals.values() if r.live and not r.held()]
    for o in report["orphans"]:
        row = Rental(run_id=f"orphan-{o['backend']}-{o['instance_id']}", backend=o["backend"],
                     state="release-failed", instance_id=o["instance_id"], label=o["label"],
                     note="found by listing the provider", pid=-1)
        led.put(row)
        todo.append(led.get(row.run_id) or row)
    for r in todo:
        if r.instance_id is None:
            led.update(r.run_id, state="released", note="nothing was created (closed by reap)")
            done.append({"run_id": r.run_id, "backend": r.backend, "instance_id": None, "action": "closed"})
            continue
        question = f"terminate {r.backend} instance {r.instance_id} ({r.label or r.run_id}, {r.state})?"
        if not yes and (ask is None or not ask(question)):
            done.append({"run_id": r.run_id, "backend": r.backend, "instance_id": r.instance_id, "action": "kept"})
            continue
        try:
            spec = registry.get(r.backend)
            adapter_for(spec, ledger=led).teardown(RunHandle(r.run_id, r.backend, r.instance_id))
        except (ComputeError, UserInputError, OSError) as exc:
            on_line(f"{r.backend} instance {r.instance_id}: {str(exc).splitlines()[0]}")
            done.append({"run_id": r.run_id, "backend": r.backend, "instance_id": r.instance_id, "action": "failed",
                         "error": str(exc).splitlines()[0]})
            continue
        done.append({"run_id": r.run_id, "backend": r.backend, "instance_id": r.instance_id, "action": "terminated"})
    return done
