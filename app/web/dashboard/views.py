"""The dashboard page."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from typing import Any

from flask import render_template
from flask_babel import gettext as _
from flask_login import current_user

from app.auth.roles import role_required
from app.config import settings
from app.models import MOVEMENT_KINDS
from app.services import catalog, counts, dashboard
from app.web.charts import KIND_COLOURS, stacked_bars
from app.web.dashboard import bp
from app.web.i18n import kind_label, today_start, utc_offset

DAYS = 30
# With a large ledger the figures take seconds to aggregate: each worker keeps them for a minute.
LARGE_LEDGER = 200_000
CACHE_SECONDS = 60
_cache: dict[tuple[str, datetime, int], tuple[float, Any]] = {}
_cache_lock = threading.Lock()


def _figures(today: datetime, since: datetime, offset: int) -> tuple[Any, Any, Any, float | None]:
    """Totals, movements per day and most-moved items, and when they were computed if cached."""
    key = (settings().SQLALCHEMY_DATABASE_URI, today, offset)
    with _cache_lock:
        hit = _cache.get(key)
    if hit and time.time() - hit[0] < CACHE_SECONDS:
        return (*hit[1], hit[0])
    figures = (
        dashboard.totals(today_start=today),
        dashboard.movements_per_day(since=since, offset_minutes=offset),
        dashboard.most_moved(since=since),
    )
    if dashboard.ledger_size() < LARGE_LEDGER:
        return (*figures, None)
    computed = time.time()
    with _cache_lock:
        _cache.clear()
        _cache[key] = (computed, figures)
    return (*figures, computed)


@bp.get("/")
@role_required("viewer")
def index() -> Any:
    today = today_start()
    since = today - timedelta(days=DAYS - 1)
    totals, per_day, most_moved, cached_at = _figures(today, since, int(utc_offset().total_seconds() // 60))
    days = [(since + timedelta(days=n)).date().isoformat() for n in range(DAYS)]
    series = {kind: [per_day.get(day, {}).get(kind, 0) for day in days] for kind in MOVEMENT_KINDS}
    labels = {kind: kind_label(kind) for kind in MOVEMENT_KINDS}
    latest = catalog.list_movements(limit=10).rows
    blind = counts.hidden_places(current_user.role, skus={row.sku for row in latest})
    return render_template(
        "dashboard/index.html",
        totals=totals,
        today=today.date().isoformat(),
        chart=stacked_bars(days, series, labels, _("Movements per day, last 30 days"), chart_id="movements-chart"),
        legend=[(labels[k], KIND_COLOURS[k], sum(series[k])) for k in MOVEMENT_KINDS],
        most_moved=most_moved,
        latest=list(catalog.hide_balances(latest, blind)),
        cached_at=datetime.fromtimestamp(cached_at).astimezone() if cached_at else None,
        waiting=dashboard.reservations_waiting(),
    )
