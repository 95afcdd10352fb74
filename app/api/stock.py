"""Stock movements over HTTP (receive, issue, transfer, adjust, multi-line pick) and stock reads.

POST /stock/issue is the hottest path of the product: one token query, one pydantic parse, the
lean `issue_stock` service, and a response built from what the service returned (no re-read).
A replayed Idempotency-Key returns the movement the first request wrote, so its body is rebuilt
from that row and is the same as the first response.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import request
from pydantic import BaseModel
from werkzeug.exceptions import Forbidden

from app.api import bp
from app.api.auth import Principal, blind_places
from app.api.openapi import operation, writing
from app.api.schemas import (
    AdjustStock,
    IssueLines,
    IssueStock,
    LowStockList,
    LowStockQuery,
    MovementResult,
    MovementsResult,
    ReceiveStock,
    StockList,
    StockQuery,
    TransferStock,
    movement_body,
    stock_body,
    text,
)
from app.models.user import role_covers
from app.services import catalog, counts, lots
from app.services import stock as stock_service


def keyed(principal: Principal) -> dict[str, Any]:
    """The request's Idempotency-Key, which belongs to the calling token."""
    return {"idempotency_key": request.headers.get("Idempotency-Key"), "caller": principal.caller}


def _movement(
    path: str, body: type[BaseModel], response: type[BaseModel] = MovementResult, role: str = "clerk"
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A POST that moves stock: write scope, 201, and 404/409 (unknown names, short stock, key reuse)."""
    return operation(bp, "POST", path, body=body, response=response, **writing(role, status=201, errors=(404, 409)))


def _hidden_sides(principal: Principal, movements: list[Any]) -> list[set[str]]:
    """For each movement just written, the sides ("from", "to") whose balance the caller may not
    see: a counter's, at a place an open count covers (that balance is the place's quantity now).
    The stock service read which sides those are inside its transaction."""
    blind = counts.counts_blind(principal.role)
    return [set(m.counted_sides) if blind else set() for m in movements]


def acting(principal: Principal, body: BaseModel) -> dict[str, Any]:
    """A stock service's keyword arguments: the body's fields (what moves, the reference and
    note), who acts, and the caller's key. Only a manager may issue from an expired lot."""
    fields = body.model_dump(exclude_none=True)
    if fields.get("allow_expired") and not role_covers(principal.role, "manager"):
        raise Forbidden("Only a manager may issue an expired lot.")
    return {**fields, "user": principal.username, **keyed(principal)}


def _result(
    principal: Principal,
    m: Any,
    *,
    sku: str,
    from_location: str | None = None,
    to_location: str | None = None,
    tracked: bool = False,
) -> dict[str, Any]:
    """MovementResult for a movement just written; `balance` is the level it left at its source,
    or at its destination when it has none (of its lot, for a lot-tracked item), unless the caller
    may not see it. A request that wrote several lines (over several lots) lists them all."""
    lines = stock_service.lines_of(m)
    hidden = _hidden_sides(principal, lines)
    side = "from" if from_location else "to"
    balance = m.from_balance if from_location else m.to_balance
    # Lot codes and serials are read only for tracked stock: the untracked hot path reads nothing.
    traced = lots.traced(lines) if tracked or m.lot_id is not None or len(lines) > 1 else None
    bodies = [
        movement_body(line, sku=sku, from_location=from_location, to_location=to_location, hidden=sides, traced=traced)
        for line, sides in zip(lines, hidden, strict=True)
    ]
    result: dict[str, Any] = {"movement": bodies[0], "balance": None if side in hidden[0] else text(balance)}
    if len(bodies) > 1:
        result["movements"] = bodies
    return result


@_movement("/stock/issue", IssueStock)
def issue(principal: Principal, *, body: IssueStock) -> dict[str, Any]:
    """Take stock out of a location (a stock-out)
    Fails with 409 `insufficient-stock` (with `available`) rather than going below zero."""
    m = stock_service.issue_stock(**acting(principal, body))
    return _result(principal, m, sku=body.sku, from_location=body.location, tracked=bool(body.serials))


@_movement("/stock/receive", ReceiveStock)
def receive(principal: Principal, *, body: ReceiveStock) -> dict[str, Any]:
    """Put stock into a location (a receipt)"""
    m = stock_service.receive_stock(**acting(principal, body))
    return _result(principal, m, sku=body.sku, to_location=body.location, tracked=bool(body.serials))


@_movement("/stock/transfer", TransferStock)
def transfer(principal: Principal, *, body: TransferStock) -> dict[str, Any]:
    """Move stock between two locations
    `balance` is what remains at `from_location`; the movement carries both balances."""
    m = stock_service.transfer_stock(**acting(principal, body))
    return _result(
        principal,
        m,
        sku=body.sku,
        from_location=body.from_location,
        to_location=body.to_location,
        tracked=bool(body.serials),
    )


@_movement("/stock/adjust", AdjustStock, role="manager")
def adjust(principal: Principal, *, body: AdjustStock) -> dict[str, Any]:
    """Stocktake: set a level to the counted quantity
    The difference is recorded as an `adjust` movement (out of the location when the count is lower)."""
    m = stock_service.adjust_stock(**acting(principal, body))
    if m.from_location_id is not None:
        return _result(principal, m, sku=body.sku, from_location=body.location)
    return _result(principal, m, sku=body.sku, to_location=body.location)


@_movement("/stock/issue-lines", IssueLines, response=MovementsResult)
def issue_lines(principal: Principal, *, body: IssueLines) -> dict[str, Any]:
    """Issue several lines at once, all or nothing (a multi-line pick)
    The first short line fails the whole pick with 409 `insufficient-stock`; movements come back in line order."""
    movements = stock_service.issue_lines(
        **acting(principal, body)
        | {"lines": [stock_service.PickLine(**line.model_dump(exclude_none=True)) for line in body.lines]}
    )
    names = catalog.movement_names(movements, given=[(line.sku, line.location) for line in body.lines])
    tracked = any(line.serials for line in body.lines) or any(m.lot_id is not None for m in movements)
    traced = lots.traced(movements) if tracked else None
    return {
        "movements": [
            movement_body(
                m,
                sku=names.skus[m.item_id],
                from_location=names.places[m.from_location_id],
                to_location=None,
                hidden=hidden,
                traced=traced,
            )
            for m, hidden in zip(movements, _hidden_sides(principal, movements), strict=True)
        ]
    }


@operation(bp, "GET", "/stock", query=StockQuery, response=StockList)
def levels(principal: Principal, *, query: StockQuery) -> dict[str, Any]:
    """Stock levels by SKU and location
    Zero levels are left out."""
    page = catalog.list_stock_levels(**query.filters())
    blind = blind_places(principal, sorted({row.sku for row in page.rows}))
    rows = [stock_body(row.sku, row, hidden=(row.sku, row.location) in blind) for row in page.rows]
    return {"data": rows, "next": page.next_cursor}


@operation(bp, "GET", "/low-stock", query=LowStockQuery, response=LowStockList)
def low_stock(principal: Principal, *, query: LowStockQuery) -> dict[str, Any]:
    """Items at or below their reorder point
    Totals over all locations, or over one `warehouse`; items with a zero reorder point are not tracked."""
    page = catalog.list_low_stock(**query.filters())
    blind = {sku for sku, _ in blind_places(principal, [row.sku for row in page.rows])}
    rows = [
        {
            "sku": row.sku,
            "name": row.name,
            "unit": row.unit,
            "on_hand": None if row.sku in blind else text(row.on_hand),
            "reorder_point": text(row.reorder_point),
            "reorder_quantity": text(row.reorder_quantity),
            "suggested": None if row.sku in blind else text(row.suggested),
        }
        for row in page.rows
    ]
    return {"data": rows, "next": page.next_cursor}
