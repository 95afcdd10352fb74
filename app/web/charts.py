"""Server-rendered SVG charts: no JavaScript, nothing loaded from elsewhere, readable by screen
readers through <title> elements and a table fallback on each page."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from markupsafe import Markup, escape

KIND_COLOURS = {
    "receive": "#2e9e5b",
    "issue": "#e07b24",
    "transfer": "#3b6fd4",
    "adjust": "#8a4fc7",
    "reversal": "#c23b3b",
}
WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 900, 220, 44, 24, 10


def stacked_bars(days: Sequence[str], series: dict[str, list[int]], labels: dict[str, str], title: str) -> Markup:
    """One bar per day, stacked by kind."""
    totals = [sum(values[i] for values in series.values()) for i in range(len(days))]
    top = max([*totals, 1])
    plot_w, plot_h = WIDTH - PAD_LEFT - 4, HEIGHT - PAD_BOTTOM - PAD_TOP
    step = plot_w / max(len(days), 1)
    parts = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{PAD_LEFT}" y1="{PAD_TOP + plot_h}" x2="{WIDTH}" y2="{PAD_TOP + plot_h}" stroke="#aab3c2"/>',
        f'<text x="{PAD_LEFT - 6}" y="{PAD_TOP + 8}" text-anchor="end" font-size="11" fill="#5d6677">{top}</text>',
        f'<text x="{PAD_LEFT - 6}" y="{PAD_TOP + plot_h}" text-anchor="end" font-size="11" fill="#5d6677">0</text>',
    ]
    for i, day in enumerate(days):
        x = PAD_LEFT + i * step + step * 0.15
        y: float = PAD_TOP + plot_h
        for kind, values in series.items():
            if not values[i]:
                continue
            h = values[i] / top * plot_h
            y -= h
            tip = f"{day} {labels.get(kind, kind)}: {values[i]}"
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" '
                f'fill="{KIND_COLOURS.get(kind, "#888")}"><title>{escape(tip)}</title></rect>'
            )
        if (i % 7 == 0 and i < len(days) - 3) or i == len(days) - 1:
            parts.append(
                f'<text x="{x + step * 0.35:.1f}" y="{HEIGHT - 6}" text-anchor="middle" font-size="11" '
                f'fill="#5d6677">{escape(day[5:])}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text part above went through escape()


def step_line(points: Sequence[tuple[datetime, Decimal]], title: str, label_format: str = "%m-%d") -> Markup:
    """On-hand balance over time as a step line (balances change at movements, not between them)."""
    if len(points) < 2:
        return Markup("")
    start, end = points[0][0].timestamp(), points[-1][0].timestamp()
    span = max(end - start, 1.0)
    top = max(max(float(v) for _, v in points), 1.0)
    plot_w, plot_h = WIDTH - PAD_LEFT - 4, HEIGHT - PAD_BOTTOM - PAD_TOP

    def xy(when: datetime, value: Decimal) -> tuple[float, float]:
        return PAD_LEFT + (when.timestamp() - start) / span * plot_w, PAD_TOP + plot_h - float(value) / top * plot_h

    path = []
    previous_y = None
    for when, value in points:
        x, y = xy(when, value)
        if previous_y is None:
            path.append(f"M{x:.1f},{y:.1f}")
        else:
            path.append(f"L{x:.1f},{previous_y:.1f} L{x:.1f},{y:.1f}")
        previous_y = y
    first, last = points[0][0], points[-1][0]
    return Markup(  # noqa: S704 - every text part below goes through escape()
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>"
        f'<line x1="{PAD_LEFT}" y1="{PAD_TOP + plot_h}" x2="{WIDTH}" y2="{PAD_TOP + plot_h}" stroke="#aab3c2"/>'
        f'<text x="{PAD_LEFT - 6}" y="{PAD_TOP + 8}" text-anchor="end" font-size="11" fill="#5d6677">{top:g}</text>'
        f'<text x="{PAD_LEFT - 6}" y="{PAD_TOP + plot_h}" text-anchor="end" font-size="11" fill="#5d6677">0</text>'
        f'<path d="{" ".join(path)}" fill="none" stroke="#1f5fbf" stroke-width="2"/>'
        f'<text x="{PAD_LEFT}" y="{HEIGHT - 6}" font-size="11" fill="#5d6677">'
        f"{escape(first.strftime(label_format))}</text>"
        f'<text x="{WIDTH - 4}" y="{HEIGHT - 6}" text-anchor="end" font-size="11" fill="#5d6677">'
        f"{escape(last.strftime(label_format))}</text></svg>"
    )
