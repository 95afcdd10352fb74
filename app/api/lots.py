"""Lots and serials over HTTP (issue 17): an item's lots with what they hold and when they
expire, and where a serial is with every movement of it."""

from __future__ import annotations

from typing import Any

from app.api import bp
from app.api.auth import Principal
from app.api.openapi import Rest, operation
from app.api.schemas import LotList, LotQuery, SerialOut, movement_body
from app.services import lots


@operation(bp, "GET", "/lots", query=LotQuery, response=LotList)
def index(principal: Principal, *, query: LotQuery) -> dict[str, Any]:
    """Lots, earliest expiry first
    Each lot with what it holds over every location; `sku` and `expiring_before` narrow the list."""
    rows = lots.list_lots(sku=query.sku, expiring_before=query.expiring_before)
    return {
        "data": [
            {
                "sku": row.sku,
                "lot": row.code,
                "expiry": row.expiry.isoformat() if row.expiry else None,
                "received_at": row.received_at.isoformat(),
                "on_hand": format(row.on_hand.normalize(), "f") if row.on_hand else "0",
            }
            for row in rows
        ]
    }


@operation(bp, "GET", "/serials/{sku}/{serial}", path_types={"serial": Rest}, response=SerialOut)
def serial(principal: Principal, *, sku: str, serial: str) -> dict[str, Any]:
    """Where a serial number is, and its history
    `status` is in_stock (at `location`) or issued; `history` lists every movement of the unit. A
    serial may hold "/" (percent-encoded or not)."""
    info = lots.serial_info(sku, serial)
    traced = lots.traced(info.history)
    return {
        "sku": info.sku,
        "serial": info.serial,
        "status": info.status,
        "location": info.location,
        "lot": info.lot,
        "history": [
            movement_body(
                m,
                sku=info.sku,
                from_location=info.places.get(m.from_location_id) if m.from_location_id else None,
                to_location=info.places.get(m.to_location_id) if m.to_location_id else None,
                traced=traced,
            )
            for m in info.history
        ],
    }
