"""Render a sweep record as one self-contained HTML page: summary, two inline SVG charts, a table.

The first chart puts each run's measured cost (compute billed + teacher labels) against its K-score
and marks the Pareto front: the runs no other run beats on both (cheaper or as cheap, and K as high
or higher). The second shows each run's measured build time. No scripts, no stylesheets, fonts or
images from anywhere: the page opens offline and from a mail attachment alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from kolmbuild.report.model import SweepRecord, SweepRun
from kolmbuild.report.svg import Bar, Point, colors, hbars, scatter

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 4px} .sub{color:#666;margin:0 0 16px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin-bottom:16px}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:120px}
.card b{display:block;font-size:18px}
.charts{display:flex;gap:16px;flex-wrap:wrap}
table{border-collapse:collapse;margin-top:16px;font-size:13px}
th,td{border-bottom:1px solid #e5e5e5;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f6f6} td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.failed td.status{color:#b00020;font-weight:600} tr.refused td.status{color:#9a6700;font-weight:600}
tr.ok td.status{color:#1a7f37;font-weight:600} tr.best{background:#f0fff4}
code{font-size:12px} .msg{max-width:360px;color:#555}
svg.chart{border:1px solid #eee;border-radius:6px;background:#fff}
svg .plot-bg{fill:#fafafa} svg .grid{stroke:#e3e3e3;stroke-width:1}
svg text{font-family:system-ui,sans-serif} svg .tick{font-size:11px;fill:#555}
svg .axis-label{font-size:12px;fill:#333} svg .chart-title{font-size:13px;font-weight:600;fill:#222}
svg .point-label{font-size:11px;fill:#333} svg .empty{font-size:13px;fill:#888}
svg .front-line{fill:none;stroke:#111;stroke-width:1.5;stroke-dasharray:5 3}
svg .front-mark{fill:none;stroke:#111;stroke-width:2}
"""


def _num(v: float | None, fmt: str) -> str:
    return "—" if v is None else format(v, fmt)


def _usd(v: float | None) -> str:
    return "—" if v is None else f"{v:.4f}"


def best_run(runs: Sequence[SweepRun]) -> int | None:
    """Index of the ok run with the highest K-score (ties: cheaper, then faster)."""
    scored = [(i, r) for i, r in enumerate(runs) if r.status == "ok" and r.k_score is not None]
    if not scored:
        return None
    return max(scored, key=lambda ir: (ir[1].k_score, -ir[1].cost_usd, -ir[1].measured_s))[0]


def pareto_front(runs: Sequence[SweepRun]) -> set[int]:
    """Indexes of the ok runs no other ok run dominates on (measured cost: lower, K: higher). A run
    whose cost is not fully known is left out: it cannot be compared."""
    cand = [(i, r.cost_usd, r.k_score) for i, r in enumerate(runs)
            if r.status == "ok" and r.k_score is not None and r.cost_known]
    front = set()
    for i, c, k in cand:
        beaten = any(c2 <= c and k2 >= k and (c2 < c or k2 > k) for j, c2, k2 in cand if j != i)
        if not beaten:
            front.add(i)
    return front


def _point_title(i: int, r: SweepRun) -> str:
    cost = f"${r.cost_usd:.4f}" + ("" if r.cost_known else " + unknown")
    parts = f" (compute ${r.compute_cost_usd or 0:.4f} + teacher ${r.teacher_cost_usd or 0:.4f})" \
        if r.compute_cost_usd is not None or r.teacher_cost_usd is not None else ""
    return (f"#{i + 1} {r.target} on {r.backend}: K={r.k_score:.3f}, {cost}{parts}, "
            f"built in {r.measured_s:.1f} s measured")


def render_html(record: SweepRecord, *, title: str) -> str:
    runs = record.runs
    best = best_run(runs)
    front = pareto_front(runs)
    counts = {s: sum(1 for r in runs if r.status == s) for s in ("ok", "failed", "refused")}
    spent = getattr(record, "spent_usd", None)
    total_cost = float(spent) if isinstance(spent, (int, float)) else sum(r.cost_usd for r in runs)
    wall = getattr(record, "wall_s", None)
    total_time = float(wall) if isinstance(wall, (int, float)) else sum(r.duration_s for r in runs)

    points = [
        Point(r.cost_usd, r.k_score, r.backend, f"#{i + 1} · {r.measured_s:.1f} s", _point_title(i, r), i in front)
        for i, r in enumerate(runs)
        if r.k_score is not None
    ]
    unscored = len(runs) - len(points)
    palette = colors([r.backend for r in runs])
    plot1 = scatter(points, x_label="measured cost (USD): compute billed + teacher", y_label="K-score",
                    title="Measured cost vs K-score (each run; ringed: Pareto front)", palette=palette)
    bars = [
        Bar(f"#{i + 1} {r.backend}", r.measured_s,
            "refused, never ran" if r.status == "refused" else
            (f"{r.backend_seconds:.1f} s on {r.backend}" if r.backend_seconds else "nothing on the backend")
            + ("" if r.stage_seconds is not None else " (this sweep's wall time)"),
            r.backend)
        for i, r in enumerate(runs)
    ]
    plot2 = hbars(bars, title="Measured build time per run (every stage, as timed when it ran)", unit="s",
                  palette=palette)

    rows = []
    for i, r in enumerate(runs):
        cls = r.status + (" best" if i == best else "") + (" front" if i in front else "")
        cid = f"<br><code>{escape(r.artifact_cid)}</code>" if r.artifact_cid else ""
        cost = _usd(r.cost_usd) + ("" if r.cost_known else " + ?")
        rows.append(
            f'<tr class="{cls}"><td class="num">{i + 1}</td><td>{escape(r.target)}</td>'
            f"<td><code>{escape(' '.join(r.overrides)) or '—'}</code></td><td>{escape(r.backend)}</td>"
            f'<td>{escape(r.gates) or "—"}</td><td class="status">{escape(r.status)}</td>'
            f'<td class="num">{_num(r.k_score, ".3f")}</td><td class="num">{cost}</td>'
            f'<td class="num">{_usd(r.compute_cost_usd)}</td><td class="num">{_usd(r.teacher_cost_usd)}</td>'
            f'<td class="num">{r.measured_s:.1f}</td><td class="num">{r.duration_s:.1f}</td>'
            f'<td>{"yes" if i in front else ""}</td>'
            f'<td><code>{escape(r.artifact or "—")}</code>{cid}</td>'
            f'<td class="msg">{escape(r.message)}</td></tr>'
        )
    best_text = "—"
    if best is not None:
        b = runs[best]
        best_text = f"#{best + 1} {escape(b.backend)} K={b.k_score:.3f}"
    notes = []
    if unscored:
        notes.append(f"{unscored} run{'s' * (unscored != 1)} without a K-score not plotted.")
    if not record.complete:
        notes.append("This sweep did not finish: the runs listed are the ones that did.")
    note = "".join(f'<p class="sub">{escape(n)}</p>' for n in notes)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{CSS}</style></head>
<body>
<h1>{escape(title)}</h1>
<p class="sub">created {escape(record.created)} · {len(runs)} run{"s" * (len(runs) != 1)} · costs and times
are measured (billed machine time, teacher labels, stage wall times), not estimated</p>
<div class="cards">
<div class="card">ok<b id="n-ok">{counts["ok"]}</b></div>
<div class="card">failed<b id="n-failed">{counts["failed"]}</b></div>
<div class="card">refused<b id="n-refused">{counts["refused"]}</b></div>
<div class="card">spent by this sweep<b id="spent">${total_cost:.4f}</b></div>
<div class="card">sweep time<b>{total_time:.1f} s</b></div>
<div class="card">Pareto front<b id="n-front">{len(front)}</b></div>
<div class="card">best K<b>{best_text}</b></div>
</div>
<div class="charts">{plot1}{plot2}</div>
{note}
<table id="runs"><thead><tr><th>#</th><th>target</th><th>overrides</th><th>backend</th><th>gates</th>
<th>status</th><th>K</th><th>cost $</th><th>compute $</th><th>teacher $</th><th>built in s</th><th>this sweep s</th>
<th>front</th><th>artifact, CID</th><th>message</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table>
</body></html>
"""
