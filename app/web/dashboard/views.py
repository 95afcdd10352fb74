"""The dashboard page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import render_template
from flask_babel import gettext as _

from app.auth.roles import role_required
from app.models import MOVEMENT_KINDS
from app.services import catalog, dashboard
from app.web.charts import KIND_COLOURS, stacked_bars
from app.web.dashboard import bp
from app.web.i18n import kind_label, today_start, utc_offset

DAYS = 30


@bp.get("/")
@role_required("viewer")
def index() -> Any:
    today = today_start()
    since = today - timedelta(days=DAYS - 1)
    per_day = dashboard.movements_per_day(since=since, offset_minutes=int(utc_offset().total_seconds() // 60))
    days = [(since + timedelta(days=n)).date().isoformat() for n in range(DAYS)]
    series = {kind: [per_day.get(day, {}).get(kind, 0) for day in days] for kind in MOVEMENT_KINDS}
    labels = {kind: kind_label(kind) for kind in MOVEMENT_KINDS}
    return render_template(
        "dashboard/index.html",
        totals=dashboard.totals(today_start=today),
        chart=stacked_bars(days, series, labels, _("Movements per day, last 30 days")),
        legend=[(labels[k], KIND_COLOURS[k], sum(series[k])) for k in MOVEMENT_KINDS],
        most_moved=dashboard.most_moved(since=since),
        latest=catalog.list_movements(limit=10).rows,
    )
