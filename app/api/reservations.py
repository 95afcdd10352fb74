"""Reservations over HTTP (issue 18): reserve stock for an order, read, cancel, and issue what was
picked. Thin: each view parses, calls one reservation service and answers its view as JSON."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from app.api import bp
from app.api.auth import Principal
from app.api.openapi import operation, writing
from app.api.schemas import (
    CreateReservation,
    IssueReservation,
    ReservationList,
    ReservationOut,
    ReservationQuery,
    movement_body,
    reservation_body,
)
from app.api.stock import keyed
from app.services import catalog, lots, reservations
from app.services.errors import InvalidInput, UnknownReservation

_ID = {"reservation_id": int}
_INT = 2**31 - 1


def _post(path: str, body: type[BaseModel] | None = None, status: int = 200) -> Callable[[Any], Any]:
    """A POST that writes reservations: write scope, a clerk at least, 404/409 (unknown names or
    reservation, short stock, a closed reservation, a reused key)."""
    contract = writing("clerk", status=status, errors=(404, 409))
    path_types = _ID if "{" in path else {}
    return operation(bp, "POST", path, body=body, response=ReservationOut, path_types=path_types, **contract)


def _known(reservation_id: int) -> int:
    if reservation_id > _INT:
        raise UnknownReservation(reservation_id)
    return reservation_id


@_post("/reservations", CreateReservation, status=201)
def create(principal: Principal, *, body: CreateReservation) -> dict[str, Any]:
    """Reserve stock for an order, all lines or none
    A short line refuses the whole reservation with 409 `reservation-short`, listing every short line with what is
    available there; nothing is reserved. A line without `location` is reserved where the stock is (first expired,
    first out across lots; else the location with the most available first), and `lines` says where: a request line
    may come back as several lines (`request_line`), one per place and lot."""
    view = reservations.reserve(
        reference=body.reference,
        lines=[line.model_dump() for line in body.lines],
        expires_at=body.expires_at,
        user=principal.username,
        **keyed(principal),
    )
    return reservation_body(view)


@operation(bp, "GET", "/reservations", query=ReservationQuery, response=ReservationList)
def index(principal: Principal, *, query: ReservationQuery) -> dict[str, Any]:
    """List reservations, newest first
    Optionally of one order `reference` and `status`."""
    before = None
    if query.cursor is not None:
        if not (query.cursor.isascii() and query.cursor.isdigit()):
            raise InvalidInput("cursor", "is not a valid page cursor")
        before = int(query.cursor)
    views, more = reservations.list_reservations(
        reference=query.reference, status=query.status, before=before, limit=query.limit
    )
    return {"data": [reservation_body(v) for v in views], "next": None if more is None else str(more)}


@operation(bp, "GET", "/reservations/{reservation_id}", path_types=_ID, response=ReservationOut)
def show(principal: Principal, *, reservation_id: int) -> dict[str, Any]:
    """One reservation with its lines: where each is held, what was picked, by whom and when"""
    return reservation_body(reservations.get_reservation(_known(reservation_id)))


@_post("/reservations/{reservation_id}/cancel")
def cancel(principal: Principal, *, reservation_id: int) -> dict[str, Any]:
    """Cancel a reservation
    What its lines still hold is released; a reservation already picked, cancelled or expired answers 409."""
    view = reservations.cancel_reservation(reservation_id=_known(reservation_id), user=principal.username)
    return reservation_body(view)


@_post("/reservations/{reservation_id}/issue", IssueReservation)
def issue(principal: Principal, *, reservation_id: int, body: IssueReservation) -> dict[str, Any]:
    """Issue what was picked against a reservation, in one transaction
    Each picked line becomes an `issue` movement (reference: the reservation's) that takes the reserved stock. A line
    picked short keeps the rest reserved, unless `release_rest`. Omit `lines` to pick everything in full."""
    picks = None if body.lines is None else [line.model_dump(exclude_none=True) for line in body.lines]
    view = reservations.issue_reservation(
        reservation_id=_known(reservation_id),
        lines=picks,
        release_rest=body.release_rest,
        note=body.note,
        user=principal.username,
        **keyed(principal),
    )
    result = reservation_body(view)
    if view.movements:
        names = catalog.movement_names(list(view.movements), given=())
        traced = lots.traced(list(view.movements))
        result["movements"] = [
            movement_body(
                m,
                sku=names.skus[m.item_id],
                from_location=names.places[m.from_location_id],
                to_location=None,
                traced=traced,
            )
            for m in view.movements
        ]
    return result
