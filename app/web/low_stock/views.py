"""The low-stock page and its CSV export."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import abort, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.auth.roles import role_required
from app.services import catalog, counts
from app.services.errors import InvalidInput
from app.web.charts import level_bar
from app.web.common import csv_response
from app.web.i18n import format_quantity
from app.web.low_stock import bp


@bp.get("")
@role_required("viewer")
def index() -> Any:
    warehouse = request.args.get("warehouse") or None
    try:
        page = catalog.list_low_stock(warehouse=warehouse, after=request.args.get("after") or None, limit=100)
    except InvalidInput:
        abort(400)
    args: dict[str, Any] = {"warehouse": warehouse} if warehouse else {}
    blind = counts.hidden_places(current_user.role, skus=[row.sku for row in page.rows])
    return render_template(
        "low_stock/index.html",
        page=page,
        hidden_skus={sku for sku, _code in blind},
        bars={row.id: level_bar(row.on_hand, row.reorder_point) for row in page.rows},
        warehouses=catalog.list_warehouses(),
        selected=warehouse or "",
        args=args,
        next_url=url_for(".index", **args, after=page.next_cursor) if page.next_cursor else None,
        first_url=url_for(".index", **args) if request.args.get("after") else None,
    )


@bp.get("/export.csv")
@role_required("viewer")
def export() -> Any:
    rows = catalog.list_low_stock(warehouse=request.args.get("warehouse") or None, limit=None).rows
    # A counter's open count hides the total, and the suggested order it is worked out from.
    hidden_skus = {sku for sku, _code in counts.hidden_places(current_user.role)}
    header = [_("SKU"), _("Name"), _("Unit"), _("On hand"), _("Reorder point"), _("Suggested order")]
    return csv_response("low-stock.csv", header, (_row(r, hidden=r.sku in hidden_skus) for r in rows))


def _row(r: catalog.LowStockRow, *, hidden: bool) -> list[str]:
    def number(value: Decimal) -> str:
        return format_quantity(value).replace(",", "")

    on_hand, suggested = ("", "") if hidden else (number(r.on_hand), number(r.suggested))
    return [r.sku, r.name, r.unit, on_hand, number(r.reorder_point), suggested]
