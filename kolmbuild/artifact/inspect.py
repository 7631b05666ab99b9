"""A human summary of a .kolm file (``kolmbuild inspect``), built from its manifest only."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from kolmbuild.artifact.reader import Artifact
from kolmbuild.errors import printable

K_TERMS = ("A", "S", "L", "C", "V")


def summary(art: Artifact) -> dict[str, Any]:
    """The fields ``inspect`` shows, as plain JSON values (stable: nothing depends on now)."""
    m = art.manifest
    metrics = m.get("metrics") or {}
    terms = metrics.get("terms") if isinstance(metrics.get("terms"), dict) else {}
    return {
        "target": m["target"],
        "version": m["version"],
        "format": m["format"],
        "created": m["created"],
        "manifest_cid": art.manifest_cid,
        "shape": _dict(_dict(m.get("task")).get("shape")),
        "base": m.get("base"),
        "K": metrics.get("K"),
        "terms": {t: terms[t] for t in K_TERMS if t in terms},
        "components": {n: {"path": c.path, "size": c.size, "cid": c.cid} for n, c in art.components.items()},
        "absent": m["absent"],
        "compute": m.get("compute") or {},
        "gates": m.get("gates") or {},
        "toolchain": m.get("toolchain") or {},
        "signer": m["signer"]["fingerprint"],
        "signatures": sorted(n.rsplit("/", 1)[-1] for n in art.member_names if n.startswith("signatures/")),
        "stages": [_dict(r).get("stage") for r in m.get("receipts") or []],
    }


def _dict(v: Any) -> dict[str, Any]:
    """``v`` when it is a JSON object, else ``{}`` (free-form manifest blocks are not trusted to be well shaped)."""
    return v if isinstance(v, dict) else {}


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def _compute_fields(compute: dict[str, Any]) -> list[tuple[str, Any]]:
    """Top-level scalars, then the scalars of the cost blocks (estimate, actual, price) as ``block.key``."""
    fields = [(k, v) for k, v in sorted(compute.items()) if not isinstance(v, dict | list) and v not in ("", None)]
    for block in ("price", "estimate", "actual"):
        sub = compute.get(block)
        if isinstance(sub, dict):
            fields += [(f"{block}.{k}", v) for k, v in sorted(sub.items()) if not isinstance(v, dict | list)]
    return fields


def _fmt(v: Any) -> str:
    """A manifest value as console text: markup in it is shown literally, never interpreted, and
    control characters (an unverified manifest may hold ESC sequences) are shown as escapes."""
    if isinstance(v, float):
        return f"{v:.3f}"
    return "—" if v is None else escape(printable(str(v), keep=""))


def render(s: dict[str, Any], console: Console) -> None:
    console.print(f"[bold]{_fmt(s['target'])}[/bold] {_fmt(s['version'])}  ({_fmt(s['format'])}, built {_fmt(s['created'])})")
    console.print(f"manifest  {s['manifest_cid']}")
    shape = s.get("shape") or {}
    if shape:
        console.print(f"shape     {_fmt(shape.get('input', '?'))} → {_fmt(shape.get('output', '?'))}")
    base = s.get("base")
    if base:
        sha = (base.get("sha256") or "")[:16]
        console.print(f"base      {_fmt(base.get('name'))}" + (f"  sha256 {_fmt(sha)}…" if sha else ""))
    terms = "  ".join(f"{k}={_fmt(v)}" for k, v in s["terms"].items())
    console.print(f"K-score   [bold]{_fmt(s['K'])}[/bold]" + (f"   ({terms})" if terms else ""))
    gates = s.get("gates") or {}
    if gates:
        console.print("gates     " + "  ".join(f"{_fmt(k)}={_fmt(v)}" for k, v in sorted(gates.items())))

    table = Table(title="components", show_edge=False, title_justify="left")
    table.add_column("name")
    table.add_column("size", justify="right")
    table.add_column("cid", overflow="fold")
    for name, c in s["components"].items():
        table.add_row(name, _size(c["size"]), _fmt(c["cid"]))
    console.print(table)
    if s["absent"]:
        console.print("absent    " + ", ".join(_fmt(a) for a in s["absent"]))
    compute = s.get("compute") or {}
    if compute:
        console.print("compute   " + "  ".join(f"{_fmt(k)}={_fmt(v)}" for k, v in _compute_fields(compute)))
    tc = s.get("toolchain") or {}
    if tc:
        pk = "  ".join(f"{_fmt(k)} {_fmt(v)}" for k, v in sorted(_dict(tc.get("packages")).items()))
        console.print(f"toolchain kolmbuild {_fmt(tc.get('kolmbuild'))}  python {_fmt(tc.get('python'))}" + (f"  {pk}" if pk else ""))
    console.print(f"signed    key {_fmt(s['signer'][:16])}…  ({', '.join(s['signatures']) or 'no signatures'})")
    if s["stages"]:
        console.print("stages    " + " → ".join(_fmt(x) for x in s["stages"]))
