"""The ledger over HTTP: list and read movements, and reverse one."""

from __future__ import annotations

from typing import Any

from app.api import bp
from app.api.auth import Principal, blind_places
from app.api.openapi import operation, writing
from app.api.schemas import (
    MovementDetail,
    MovementList,
    MovementQuery,
    ReversalResult,
    ReverseMovement,
    row_body,
)
from app.api.stock import keyed
from app.services import catalog, reservations
from app.services import stock as stock_service


@operation(bp, "GET", "/movements", query=MovementQuery, response=MovementList)
def index(principal: Principal, *, query: MovementQuery) -> dict[str, Any]:
    """List ledger lines, newest first"""
    page = catalog.list_movements(**query.filters())
    blind = blind_places(principal, sorted({row.sku for row in page.rows}))
    return {"data": [row_body(row) for row in catalog.hide_balances(page.rows, blind)], "next": page.next_cursor}


@operation(bp, "GET", "/movements/{movement_id}", path_types={"movement_id": int}, response=MovementDetail)
def show(principal: Principal, *, movement_id: int) -> dict[str, Any]:
    """One ledger line, with the reversal that undid it (if any)"""
    row, reversed_by = catalog.get_movement(movement_id)
    row = next(catalog.hide_balances([row], blind_places(principal, [row.sku])))
    return {**row_body(row), "reversed_by": reversed_by}


@operation(
    bp,
    "POST",
    "/movements/{movement_id}/reverse",
    path_types={"movement_id": int},
    body=ReverseMovement,
    response=ReversalResult,
    **writing("manager", status=201),
)
def reverse(principal: Principal, *, movement_id: int, body: ReverseMovement) -> dict[str, Any]:
    """Reverse a movement
    Writes the opposite ledger line, linked to the original; a movement is reversed at most once. For a line a
    reservation's issue wrote, `restore_reservation` makes the reservation line hold the stock again."""
    if body.restore_reservation:
        reversal = reservations.reverse_pick(
            movement_id=movement_id, user=principal.username, reason=body.reason, restore=True, **keyed(principal)
        )
    else:
        reversal = stock_service.reverse_movement(
            movement_id=movement_id, user=principal.username, reason=body.reason, **keyed(principal)
        )
    row, _ = catalog.get_movement(reversal.id)
    return {"movement": row_body(row)}
