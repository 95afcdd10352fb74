"""The lots expiring soon, a lot's page (facts, stock, every movement) and their CSV exports."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from flask import abort, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from app.auth.roles import role_required
from app.services import catalog, counts, items, traceability
from app.services.errors import InvalidInput, UnknownLot
from app.web.common import csv_response, whole_number
from app.web.i18n import format_quantity, kind_label
from app.web.lots import bp

DEFAULT_DAYS = 30
# Paged like the low-stock report; the CSV has every row. 200 rows on one page took 41.6 ms p95
# with 6,000 lots (tests/benchmarks/pages.py, budget 40 ms), rendering most of it.
PAGE_ROWS = 100
FILTER_ARGS = ("days", "warehouse", "category", "sku", "expired")


def _number(value: Decimal) -> str:
    return format_quantity(value).replace(",", "")


def _filters() -> dict[str, Any]:
    """The expiring page's filters from the query string; 400 for a value no form would send."""
    args = request.args
    days = whole_number(args.get("days"), maximum=traceability.MAX_DAYS) if args.get("days") else DEFAULT_DAYS
    category = whole_number(args.get("category"), maximum=2**31 - 1) if args.get("category") else None
    sku, warehouse = args.get("sku", "").strip(), args.get("warehouse", "").strip()
    if days is None or (args.get("category") and category is None) or len(sku) > 64 or len(warehouse) > 64:
        abort(400)
    if args.get("expired", "1") not in ("0", "1"):
        abort(400)
    return {
        "days": days,
        "include_expired": args.get("expired", "1") == "1",
        "warehouse": warehouse or None,
        "category_id": category,
        "sku": sku or None,
    }


def _state_label(state: str, days_left: int | None = None) -> str:
    if state == "expired":
        return _("Expired")
    if state == "expiring":
        if days_left is None:
            return _("Expiring soon")
        return ngettext("Expires in %(num)s day", "Expires in %(num)s days", days_left)
    return ""


def _state_labels(rows: list[traceability.ExpiringRow]) -> dict[int, str]:
    """Each row's state in words by its days left, said once per day shown rather than per row."""
    states = {r.days_left: r.state for r in rows}
    return {days: _state_label(state, days) for days, state in states.items()}


@bp.app_template_global()
def expiry_state_label(state: str, days_left: int | None = None) -> str:
    """The words beside a lot's expiry (the colour alone tells nobody who cannot see it)."""
    return _state_label(state, days_left)


@bp.app_template_global()
def line_traces(movements: list[catalog.MovementRow]) -> dict[int, traceability.LineTrace]:
    """The lots and serials of the ledger lines a table shows (templates/movements/_table.html)."""
    return traceability.line_traces(m.id for m in movements)


@bp.get("/expiring")
@role_required("clerk")
def expiring() -> Any:
    filters = _filters()
    try:
        page = traceability.list_expiring(**filters, after=request.args.get("after") or None, limit=PAGE_ROWS)
    except InvalidInput:
        abort(400)
    args: dict[str, Any] = {k: v for k in FILTER_ARGS if (v := request.args.get(k, "").strip())}
    return render_template(
        "lots/expiring.html",
        rows=page.rows,
        hidden=counts.hidden_places(current_user.role, skus={r.sku for r in page.rows}),
        states=_state_labels(page.rows),
        filters=filters,
        args=args,
        warehouses=catalog.list_warehouses(),
        categories=items.list_categories(),
        next_url=url_for(".expiring", **args, after=page.next_cursor) if page.next_cursor else None,
        first_url=url_for(".expiring", **args) if request.args.get("after") else None,
    )


@bp.get("/expiring.csv")
@role_required("clerk")
def expiring_csv() -> Any:
    rows = traceability.list_expiring(**_filters()).rows
    hidden = counts.hidden_places(current_user.role, skus={r.sku for r in rows})
    header = [
        _("SKU"),
        _("Name"),
        _("Lot"),
        _("Expiry"),
        _("State"),
        _("Location"),
        _("Warehouse"),
        _("Quantity"),
        _("Unit"),
    ]
    return csv_response(
        "expiring-lots.csv",
        header,
        (
            [
                r.sku,
                r.item_name,
                r.code,
                r.expiry.isoformat(),
                _state_label(r.state, r.days_left),
                r.location,
                r.warehouse,
                "" if (r.sku, r.location) in hidden else _number(r.quantity),
                r.unit,
            ]
            for r in rows
        ),
    )


def _lot_or_404(lot_id: int) -> traceability.LotFacts:
    try:
        return traceability.get_lot(lot_id)
    except UnknownLot:
        abort(404, description=_("No such lot."))


@bp.get("/<int:lot_id>")
@role_required("viewer")
def show(lot_id: int) -> Any:
    lot = _lot_or_404(lot_id)
    hidden = {code for _sku, code in counts.hidden_places(current_user.role, skus=[lot.sku])}
    movements = traceability.lot_movements(lot_id)
    if hidden:
        movements = list(catalog.hide_balances(movements, {(lot.sku, code) for code in hidden}))
    return render_template(
        "lots/show.html",
        lot=lot,
        today=traceability.today(),
        stock=traceability.lot_stock(lot_id),
        hidden_locations=hidden,
        movements=movements,
    )


@bp.get("/<int:lot_id>/trace.csv")
@role_required("viewer")
def trace_csv(lot_id: int) -> Any:
    """The lot's recall trace: every ledger line of the lot, oldest first."""
    lot = _lot_or_404(lot_id)
    hidden = {(lot.sku, code) for _sku, code in counts.hidden_places(current_user.role, skus=[lot.sku])}
    rows = catalog.hide_balances(traceability.lot_movements(lot_id), hidden)
    header = [
        "#",
        _("Time"),
        _("Kind"),
        _("SKU"),
        _("Lot"),
        _("Expiry"),
        _("From"),
        _("To"),
        _("Quantity"),
        _("Unit"),
        _("Reference"),
        _("Note"),
        _("User"),
    ]
    expiry = lot.expiry.isoformat() if isinstance(lot.expiry, date) else ""
    return csv_response(
        f"lot-{lot.id}-trace.csv",
        header,
        (
            [
                m.id,
                m.created_at.isoformat(timespec="seconds"),
                kind_label(m.kind),
                m.sku,
                lot.code,
                expiry,
                m.from_location or "",
                m.to_location or "",
                _number(m.quantity),
                m.unit,
                m.reference or "",
                m.note or "",
                m.username,
            ]
            for m in rows
        ),
    )


@bp.get("/by-code/<sku>/<code:code>")
@role_required("viewer")
def by_code(sku: str, code: str) -> Any:
    """A lot named by its item and code (as printed on its label) → its page."""
    try:
        lot = traceability.find_lot(sku, code)
    except UnknownLot:
        abort(404, description=_("No such lot."))
    return redirect(url_for(".show", lot_id=lot.id), 303)
