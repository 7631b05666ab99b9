"""Hand-written inline SVG charts (no JavaScript, no fonts or files to fetch).

Every mark carries a ``<title>`` so hovering shows its values in any browser, offline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    series: str
    label: str
    title: str
    front: bool = False  # on the Pareto front: ringed, and joined by the front's step line


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    note: str
    series: str


def colors(series: Sequence[str]) -> dict[str, str]:
    return {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(dict.fromkeys(series))}


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (1, 2, 5 × 10^k steps)."""
    if not math.isfinite(lo) or not math.isfinite(hi):
        return [0.0, 1.0]
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    t = start
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 10))
        t += step
    if ticks[-1] < hi:
        ticks.append(round(t, 10))
    return ticks


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 1:
        return f"{v:.2f}".rstrip("0").rstrip(".")
    return f"{v:.3f}".rstrip("0").rstrip(".")


def scatter(
    points: Sequence[Point],
    *,
    x_label: str,
    y_label: str,
    title: str,
    palette: dict[str, str] | None = None,
    width: int = 640,
    height: int = 380,
) -> str:
    left, right, top, bottom = 64, 150, 36, 52
    pw, ph = width - left - right, height - top - bottom
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-label="{escape(title)}">',
        f'<text x="{left}" y="20" class="chart-title">{escape(title)}</text>',
    ]
    if not points:
        parts.append(
            f'<text x="{left + pw / 2}" y="{top + ph / 2}" text-anchor="middle" class="empty">no data</text>'
        )
        parts.append("</svg>")
        return "".join(parts)
    xs, ys = [p.x for p in points], [p.y for p in points]
    xt = nice_ticks(min(0.0, min(xs)), max(xs) if max(xs) > 0 else 1.0)
    y_lo, y_hi = min(ys), max(ys)
    yt = nice_ticks(min(y_lo, max(0.0, y_hi - 0.1)), max(y_hi, y_lo + 0.05))
    x0, x1, y0, y1 = xt[0], xt[-1], yt[0], yt[-1]

    def sx(v: float) -> float:
        return left + (v - x0) / (x1 - x0) * pw

    def sy(v: float) -> float:
        return top + ph - (v - y0) / (y1 - y0) * ph

    parts.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" class="plot-bg"/>')
    for t in yt:
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" class="grid"/>')
        parts.append(
            f'<text x="{left - 6}" y="{sy(t) + 4:.1f}" text-anchor="end" class="tick">{_fmt(t)}</text>'
        )
    for t in xt:
        parts.append(f'<line x1="{sx(t):.1f}" x2="{sx(t):.1f}" y1="{top}" y2="{top + ph}" class="grid"/>')
        parts.append(
            f'<text x="{sx(t):.1f}" y="{top + ph + 16}" text-anchor="middle" class="tick">{_fmt(t)}</text>'
        )
    parts.append(
        f'<text x="{left + pw / 2}" y="{height - 10}" text-anchor="middle" class="axis-label">{escape(x_label)}</text>'
    )
    parts.append(
        f'<text x="16" y="{top + ph / 2}" text-anchor="middle" class="axis-label" '
        f'transform="rotate(-90 16 {top + ph / 2})">{escape(y_label)}</text>'
    )
    palette = {
        s: c
        for s, c in (palette or colors([p.series for p in points])).items()
        if s in {p.series for p in points}
    }
    front = sorted((p for p in points if p.front), key=lambda p: (p.x, p.y))
    if len(front) > 1:  # the front as a staircase: each step is "pay this much more, get this much K"
        path = [f"M{sx(front[0].x):.1f},{sy(front[0].y):.1f}"]
        for b in front[1:]:
            path.append(f"H{sx(b.x):.1f}V{sy(b.y):.1f}")
        parts.append(f'<path d="{"".join(path)}" class="front-line"/>')
    for p in points:
        cx, cy = sx(p.x), sy(p.y)
        ring = f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="10" class="front-mark"/>' if p.front else ""
        parts.append(
            f'<g class="point{" front" if p.front else ""}">{ring}<circle cx="{cx:.1f}" cy="{cy:.1f}" r="6" '
            f'fill="{palette[p.series]}" data-series="{escape(p.series)}"><title>{escape(p.title)}</title></circle>'
            f'<text x="{cx + 8:.1f}" y="{cy - 8:.1f}" class="point-label">{escape(p.label)}</text></g>'
        )
    parts.append(_legend(palette, left + pw + 16, top, front=bool(front)))
    parts.append("</svg>")
    return "".join(parts)


def hbars(
    bars: Sequence[Bar], *, title: str, unit: str, palette: dict[str, str] | None = None, width: int = 640
) -> str:
    left, right, top, row = 150, 150, 36, 28
    height = top + max(len(bars), 1) * row + 30
    pw = width - left - right
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-label="{escape(title)}">',
        f'<text x="16" y="20" class="chart-title">{escape(title)}</text>',
    ]
    if not bars:
        parts.append(
            f'<text x="{width / 2}" y="{top + 20}" text-anchor="middle" class="empty">no data</text></svg>'
        )
        return "".join(parts)
    hi = max(b.value for b in bars) or 1.0
    ticks = nice_ticks(0.0, hi, 4)
    scale = pw / ticks[-1]
    for t in ticks:
        x = left + t * scale
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top - 4}" y2="{top + len(bars) * row}" class="grid"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{top + len(bars) * row + 16}" text-anchor="middle" class="tick">{_fmt(t)}</text>'
        )
    palette = palette or colors([b.series for b in bars])
    for i, b in enumerate(bars):
        y = top + i * row + 4
        w = max(b.value * scale, 1.0)
        parts.append(
            f'<g class="bar"><text x="{left - 8}" y="{y + 15}" text-anchor="end" class="tick">{escape(b.label)}</text>'
            f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{row - 8}" fill="{palette[b.series]}">'
            f"<title>{escape(b.label)}: {_fmt(b.value)} {escape(unit)} ({escape(b.note)})</title></rect>"
            f'<text x="{left + w + 6:.1f}" y="{y + 15}" class="point-label">{_fmt(b.value)} {escape(unit)}'
            f" · {escape(b.note)}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _legend(palette: dict[str, str], x: float, y: float, *, front: bool = False) -> str:
    rows = ['<g class="legend">']
    for i, (name, color) in enumerate(palette.items()):
        ry = y + i * 20
        rows.append(
            f'<circle cx="{x + 6}" cy="{ry + 6}" r="6" fill="{color}"/>'
            f'<text x="{x + 18}" y="{ry + 10}" class="tick">{escape(name)}</text>'
        )
    if front:
        ry = y + len(palette) * 20
        rows.append(f'<circle cx="{x + 6}" cy="{ry + 6}" r="7" class="front-mark"/>'
                    f'<text x="{x + 18}" y="{ry + 10}" class="tick">Pareto front</text>')
    rows.append("</g>")
    return "".join(rows)
