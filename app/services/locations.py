"""Warehouses and locations: creating them and taking them out of use."""

from __future__ import annotations

import re

from sqlalchemy import case, func, select

from app.extensions import db
from app.models import Location, StockLevel, Warehouse
from app.services import codes
from app.services.errors import Conflict, InvalidInput, NotFound, UnknownLocation
from app.services.text import single_line
from app.services.transaction import unit_of_work

_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _code(value: str, field: str, limit: int) -> str:
    code = (value or "").strip().upper()
    if not code or len(code) > limit or not _CODE.match(code):
        raise InvalidInput(field, f"1 to {limit} letters, digits, '-', '_' or '.'")
    return code


@unit_of_work
def create_warehouse(*, code: str, name: str) -> Warehouse:
    """Raises InvalidInput, Conflict for a code in use."""
    code = _code(code, "code", 16)
    if db.session.scalar(select(Warehouse.id).where(Warehouse.code == code)) is not None:
        raise Conflict(f"warehouse {code!r} already exists", field="code")
    warehouse = Warehouse(code=code, name=single_line((name or code).strip(), "name")[:100], active=True)
    db.session.add(warehouse)
    db.session.flush()
    return warehouse


@unit_of_work
def create_location(*, warehouse: str, code: str, name: str = "") -> Location:
    """Create a location; `code` is the full code (e.g. WH1-A-01-02) and must start with the
    warehouse code. Raises NotFound, InvalidInput, Conflict."""
    warehouse_id = db.session.scalar(select(Warehouse.id).where(Warehouse.code == warehouse.strip().upper()))
    if warehouse_id is None:
        raise NotFound(f"no warehouse {warehouse!r}", warehouse=warehouse)
    code = _code(code, "code", 64)
    if not code.startswith(warehouse.strip().upper() + "-"):
        raise InvalidInput("code", f"must start with the warehouse code {warehouse.upper()}-")
    if db.session.scalar(select(Location.id).where(Location.code == code)) is not None:
        raise Conflict(f"location {code!r} already exists", field="code")
    codes.check_code_free(code, field="code")
    location = Location(
        warehouse_id=warehouse_id, code=code, name=single_line((name or "").strip(), "name")[:100], active=True
    )
    db.session.add(location)
    db.session.flush()
    return location


@unit_of_work
def set_location_active(*, code: str, active: bool) -> Location:
    """Reactivate or deactivate a location; deactivation is refused while stock remains there."""
    location = db.session.scalar(select(Location).where(Location.code == code).with_for_update())
    if location is None:
        raise UnknownLocation(code)
    if not active:
        on_hand, skus = db.session.execute(
            select(
                func.coalesce(func.sum(StockLevel.quantity), 0),
                func.count(case((StockLevel.quantity > 0, StockLevel.item_id))),
            ).where(StockLevel.location_id == location.id)
        ).one()
        if on_hand:
            raise Conflict(
                f"location {code!r} still holds {on_hand} units of {skus} items: move or count them out first",
                location=code,
                on_hand=on_hand,
                held_skus=int(skus),
            )
    location.active = active
    db.session.flush()
    return location
