"""Server-rendered SVG charts: no JavaScript, nothing loaded from elsewhere, readable by screen
readers through <title>/<desc> or an aria-label, with the figures also written out on each page.

The large charts have no viewBox: horizontal positions are percentages of the width the page
gives them and everything vertical is in CSS pixels, so the 12 px labels stay 12 px on a 360 px
phone and on a desktop alike (a scaled 900-wide drawing rendered them at 4 px on a phone). Only
the step line, which needs a path, is drawn in a nested SVG stretched to the width, its stroke
kept at two pixels by vector-effect. The small row charts (stock against the reorder point, a
count's variance) are fixed-size drawings without text.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import ROUND_CEILING, Decimal

from flask_babel import gettext as _
from markupsafe import Markup, escape

from app.web.i18n import format_quantity

KIND_COLOURS = {
    "receive": "#2e9e5b",
    "issue": "#e07b24",
    "transfer": "#3b6fd4",
    "adjust": "#8a4fc7",
    "reversal": "#c23b3b",
}
HEIGHT, PAD_TOP, PAD_BOTTOM, FONT = 200, 18, 24, 12
PLOT = HEIGHT - PAD_TOP - PAD_BOTTOM
INK, GRID, LINE, REORDER = "#5d6677", "#e3e7ee", "#1f5fbf", "#b3261e"
# Labels drawn over bars or the line keep a white halo, so they stay legible where they cross.
HALO = 'paint-order="stroke" stroke="#fff" stroke-width="3" stroke-linejoin="round"'
ROW_WIDTH, ROW_HEIGHT = 120, 14
QUANTUM = Decimal("0.001")


def nice_ticks(top: Decimal | int | float, count: int = 5, *, whole: bool = False) -> list[Decimal]:
    """Axis ticks from 0 in round steps (1, 2 or 5 times a power of ten; at least 1 when `whole`,
    for counts, else the 0.001 quantities are stored in), at most `count` steps, the last at or
    above `top`."""
    high = Decimal(str(top))
    if high <= 0:
        return [Decimal(0), Decimal(1)]
    raw = high / count
    power = Decimal(1).scaleb(raw.adjusted())
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    step = max(step, Decimal(1) if whole else QUANTUM)
    steps = int((high / step).to_integral_value(rounding=ROUND_CEILING))
    return [step * n for n in range(steps + 1)]


def _y(value: Decimal | float, axis_top: Decimal) -> float:
    return PAD_TOP + PLOT - float(value) / float(axis_top) * PLOT


def _text(x: str, y: float, label: str, anchor: str = "start", colour: str = INK) -> str:
    return (
        f'<text x="{x}" y="{y:.1f}" text-anchor="{anchor}" font-size="{FONT}" fill="{colour}" {HALO}>'
        f"{escape(label)}</text>"
    )


def _anchor(fraction: float) -> str:
    """A label near either edge is aligned to it rather than centred, so it is never cut off."""
    return "start" if fraction < 0.1 else ("end" if fraction > 0.9 else "middle")


def _frame(chart_id: str, title: str, summary: str, ticks: list[Decimal], body: list[str]) -> Markup:
    """The outer drawing: title and description, a gridline per tick with its label above it at
    the left edge, then the chart's own parts."""
    axis_top = ticks[-1]
    grid = []
    for tick in ticks:
        y = _y(tick, axis_top)
        grid.append(f'<line x1="0" x2="100%" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID if tick else "#aab3c2"}"/>')
    labels = [_text("0", _y(tick, axis_top) - 3, format_quantity(tick)) for tick in ticks[1:]]
    return Markup(  # noqa: S704 - title, summary and every label go through escape()
        f'<svg class="chart-plot" width="100%" height="{HEIGHT}" role="img" id="{chart_id}" '
        f'aria-labelledby="{chart_id}-title" aria-describedby="{chart_id}-desc" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{chart_id}-title">{escape(title)}</title><desc id="{chart_id}-desc">{escape(summary)}</desc>'
        + "".join(grid + body + labels)
        + "</svg>"
    )


def stacked_bars(
    days: Sequence[str], series: dict[str, list[int]], labels: dict[str, str], title: str, *, chart_id: str = "chart"
) -> Markup:
    """One bar per day, stacked by kind, with round ticks on the count axis."""
    totals = [sum(values[i] for values in series.values()) for i in range(len(days))]
    ticks = nice_ticks(max([*totals, 1]), whole=True)
    axis_top = ticks[-1]
    width = 100 / max(len(days), 1)
    body = []
    for i, day in enumerate(days):
        bottom: float = PAD_TOP + PLOT
        for kind, values in series.items():
            if not values[i]:
                continue
            h = values[i] / float(axis_top) * PLOT
            bottom -= h
            tip = f"{day} {labels.get(kind, kind)}: {values[i]}"
            body.append(
                f'<rect x="{(i + 0.15) * width:.2f}%" y="{bottom:.1f}" width="{width * 0.7:.2f}%" height="{h:.1f}" '
                f'fill="{KIND_COLOURS.get(kind, "#888")}"><title>{escape(tip)}</title></rect>'
            )
        if (i % 7 == 0 and i < len(days) - 3) or i == len(days) - 1:
            centre = (i + 0.5) / len(days)
            body.append(_text(f"{centre * 100:.2f}%", HEIGHT - 6, day[5:], _anchor(centre)))
    busiest = max(range(len(days)), key=lambda i: totals[i], default=0)
    if any(totals):
        summary = _(
            "%(total)s movements in all; the busiest day, %(day)s, had %(most)s.",
            total=f"{sum(totals):,}",
            day=days[busiest],
            most=f"{totals[busiest]:,}",
        )
    else:
        summary = _("No movements on these days.")
    return _frame(chart_id, title, summary, ticks, body)


def step_line(
    points: Sequence[tuple[datetime, Decimal]],
    title: str,
    label_format: str = "%m-%d",
    *,
    reorder_point: Decimal = Decimal(0),
    unit: str = "",
    chart_id: str = "chart",
) -> Markup:
    """On-hand balance over time as a step line (balances change at movements, not between them),
    with round ticks, the first, middle and last dates, and the reorder point (when the item has
    one) as a dashed line."""
    if len(points) < 2:
        return Markup("")
    start, end = points[0][0].timestamp(), points[-1][0].timestamp()
    span = max(end - start, 1.0)
    values = [value for _, value in points]
    ticks = nice_ticks(max(*values, reorder_point, Decimal(1)))
    axis_top = ticks[-1]

    def x(when: datetime) -> float:
        return (when.timestamp() - start) / span * 1000

    path, previous_y = [], None
    for when, value in points:
        y = _y(value, axis_top)
        path.append(
            f"M{x(when):.1f},{y:.1f}"
            if previous_y is None
            else f"L{x(when):.1f},{previous_y:.1f} L{x(when):.1f},{y:.1f}"
        )
        previous_y = y
    body = [
        f'<svg width="100%" height="{HEIGHT}" viewBox="0 0 1000 {HEIGHT}" preserveAspectRatio="none">'
        f'<path d="{" ".join(path)}" fill="none" stroke="{LINE}" stroke-width="2" '
        'vector-effect="non-scaling-stroke"/></svg>'
    ]
    middle = datetime.fromtimestamp(start + span / 2, points[0][0].tzinfo)
    for fraction, when in ((0.0, points[0][0]), (0.5, middle), (1.0, points[-1][0])):
        body.append(_text(f"{fraction * 100:g}%", HEIGHT - 6, when.strftime(label_format), _anchor(fraction)))
    summary = _(
        "From %(start)s to %(end)s: lowest %(low)s, highest %(high)s, now %(now)s %(unit)s.",
        start=points[0][0].strftime(label_format),
        end=points[-1][0].strftime(label_format),
        low=format_quantity(min(values)),
        high=format_quantity(max(values)),
        now=format_quantity(values[-1]),
        unit=unit,
    )
    if reorder_point > 0:
        y = _y(reorder_point, axis_top)
        label = _("Reorder point %(qty)s", qty=format_quantity(reorder_point))
        body.append(
            f'<line class="reorder-line" x1="0" x2="100%" y1="{y:.1f}" y2="{y:.1f}" stroke="{REORDER}" '
            f'stroke-width="1.5" stroke-dasharray="6 4"/>'
        )
        body.append(_text("100%", y - 4, label, "end", REORDER))
        summary += " " + _(
            "The dashed line is the reorder point, %(qty)s %(unit)s.", qty=format_quantity(reorder_point), unit=unit
        )
    return _frame(chart_id, title, summary, ticks, body)


def _row_chart(label: str, parts: list[str]) -> Markup:
    return Markup(  # noqa: S704 - the label goes through escape(); parts hold numbers only
        f'<svg class="row-chart" width="{ROW_WIDTH}" height="{ROW_HEIGHT}" viewBox="0 0 {ROW_WIDTH} {ROW_HEIGHT}" '
        f'role="img" aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        f'<rect x="0" y="2" width="{ROW_WIDTH}" height="{ROW_HEIGHT - 4}" rx="2" fill="#eef1f5"/>'
        + "".join(parts)
        + "</svg>"
    )


def level_bar(on_hand: Decimal, reorder_point: Decimal) -> Markup:
    """On hand as a bar against the reorder point (the mark four fifths along): how far below it
    an item has fallen, at a glance."""
    scale = max(on_hand, reorder_point, Decimal(1)) * Decimal("1.25")
    filled = float(max(on_hand, Decimal(0)) / scale) * ROW_WIDTH
    mark = float(reorder_point / scale) * ROW_WIDTH
    share = int(on_hand / reorder_point * 100) if reorder_point > 0 else 100
    colour = REORDER if share < 50 else "#a15c00"
    label = _("On hand is %(percent)s%% of the reorder point.", percent=share)
    return _row_chart(
        label,
        [
            f'<rect class="level" x="0" y="2" width="{filled:.1f}" height="{ROW_HEIGHT - 4}" rx="2" fill="{colour}"/>',
            f'<line class="mark" x1="{mark:.1f}" x2="{mark:.1f}" y1="0" y2="{ROW_HEIGHT}" stroke="#1d2330" '
            f'stroke-width="2"/>',
        ],
    )


def variance_bar(variance: Decimal, threshold: Decimal, scale: Decimal, unit: str) -> Markup:
    """A count line's variance as a bar from the middle (right for a surplus, left for a
    shortfall), on a scale shared by the page's lines, with the count's threshold dashed each side."""
    half = ROW_WIDTH / 2
    reach = float(min(abs(variance) / scale, Decimal(1))) * (half - 1) if scale > 0 else 0.0
    left = half if variance >= 0 else half - reach
    edge = float(threshold / scale) * (half - 1) if scale > 0 else 0.0
    colour = "#1d7a46" if variance > 0 else REORDER
    signed = ("+" if variance > 0 else ("−" if variance < 0 else "")) + format_quantity(abs(variance))
    beyond = abs(variance) > threshold
    words = {"variance": signed, "unit": unit, "threshold": format_quantity(threshold)}
    label = (
        _("Variance %(variance)s %(unit)s, beyond the threshold of %(threshold)s.", **words)
        if beyond
        else _("Variance %(variance)s %(unit)s, within the threshold of %(threshold)s.", **words)
    )
    marks = [
        f'<line x1="{half + side * edge:.1f}" x2="{half + side * edge:.1f}" y1="0" y2="{ROW_HEIGHT}" stroke="{INK}" '
        f'stroke-width="1" stroke-dasharray="3 2"/>'
        for side in (-1, 1)
    ]
    return _row_chart(
        label,
        [
            f'<rect class="level" x="{left:.1f}" y="2" width="{reach:.1f}" height="{ROW_HEIGHT - 4}" fill="{colour}"/>',
            *marks,
            f'<line x1="{half}" x2="{half}" y1="0" y2="{ROW_HEIGHT}" stroke="{INK}" stroke-width="1.5"/>',
        ],
    )
