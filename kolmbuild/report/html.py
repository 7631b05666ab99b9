"""Render a sweep record as one self-contained HTML page: summary, two inline SVG charts, a table.

No scripts, no stylesheets, fonts or images from anywhere: the page opens offline and from a mail
attachment alike.
"""

from __future__ import annotations

from collections import defaultdict
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
"""


def _num(v: float | None, fmt: str) -> str:
    return "—" if v is None else format(v, fmt)


def _duration_bar(backend: str, runs: list[SweepRun]) -> Bar:
    """Mean duration of the runs that ran (refused runs never started, so they do not count)."""
    ran = [r for r in runs if r.status != "refused"]
    refused = len(runs) - len(ran)
    if not ran:
        return Bar(backend, 0.0, f"{refused} refused", backend)
    note = f"mean of {len(ran)} run{'s' * (len(ran) != 1)}" + (f", {refused} refused" if refused else "")
    return Bar(backend, sum(r.duration_s for r in ran) / len(ran), note, backend)


def best_run(runs: list[SweepRun]) -> int | None:
    """Index of the ok run with the highest K-score (ties: cheaper, then faster)."""
    scored = [(i, r) for i, r in enumerate(runs) if r.status == "ok" and r.k_score is not None]
    if not scored:
        return None
    return max(scored, key=lambda ir: (ir[1].k_score, -ir[1].cost_usd, -ir[1].duration_s))[0]


def render_html(record: SweepRecord, *, title: str) -> str:
    runs = record.runs
    best = best_run(runs)
    counts = {s: sum(1 for r in runs if r.status == s) for s in ("ok", "failed", "refused")}
    total_cost = sum(r.cost_usd for r in runs)
    total_time = sum(r.duration_s for r in runs)

    points = [
        Point(
            r.cost_usd,
            r.k_score,
            r.backend,
            f"#{i + 1}",
            f"#{i + 1} {r.target} on {r.backend}: K={r.k_score:.3f}, ${r.cost_usd:.4f}, {r.duration_s:.1f} s",
        )
        for i, r in enumerate(runs)
        if r.k_score is not None
    ]
    unscored = len(runs) - len(points)
    by_backend: dict[str, list[SweepRun]] = defaultdict(list)
    for r in runs:
        by_backend[r.backend].append(r)
    bars = [_duration_bar(name, rs) for name, rs in by_backend.items()]
    palette = colors(list(by_backend))
    plot1 = scatter(
        points, x_label="cost (USD)", y_label="K-score", title="Cost vs K-score (each run)", palette=palette
    )
    plot2 = hbars(bars, title="Build duration per backend", unit="s", palette=palette)

    rows = []
    for i, r in enumerate(runs):
        cls = r.status + (" best" if i == best else "")
        rows.append(
            f'<tr class="{cls}"><td class="num">{i + 1}</td><td>{escape(r.target)}</td>'
            f"<td><code>{escape(' '.join(r.overrides)) or '—'}</code></td><td>{escape(r.backend)}</td>"
            f'<td>{escape(r.gates) or "—"}</td><td class="status">{escape(r.status)}</td>'
            f'<td class="num">{_num(r.k_score, ".3f")}</td><td class="num">{r.cost_usd:.4f}</td>'
            f'<td class="num">{r.duration_s:.1f}</td><td><code>{escape(r.artifact or "—")}</code></td>'
            f'<td class="msg">{escape(r.message)}</td></tr>'
        )
    best_text = "—"
    if best is not None:
        b = runs[best]
        best_text = f"#{best + 1} {escape(b.backend)} K={b.k_score:.3f}"
    note = (
        f'<p class="sub">{unscored} run{"s" * (unscored != 1)} without a K-score not plotted.</p>'
        if unscored
        else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{CSS}</style></head>
<body>
<h1>{escape(title)}</h1>
<p class="sub">created {escape(record.created)} · {len(runs)} run{"s" * (len(runs) != 1)}</p>
<div class="cards">
<div class="card">ok<b id="n-ok">{counts["ok"]}</b></div>
<div class="card">failed<b id="n-failed">{counts["failed"]}</b></div>
<div class="card">refused<b id="n-refused">{counts["refused"]}</b></div>
<div class="card">total cost<b>${total_cost:.4f}</b></div>
<div class="card">total time<b>{total_time:.1f} s</b></div>
<div class="card">best<b>{best_text}</b></div>
</div>
<div class="charts">{plot1}{plot2}</div>
{note}
<table id="runs"><thead><tr><th>#</th><th>target</th><th>overrides</th><th>backend</th><th>gates</th>
<th>status</th><th>K</th><th>cost $</th><th>time s</th><th>artifact</th><th>message</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table>
</body></html>
"""
