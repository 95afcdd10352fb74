"""Warehouses and locations over HTTP (read only: places are set up on the pages)."""

from __future__ import annotations

from typing import Any

from app.api import bp
from app.api.auth import Principal
from app.api.openapi import operation
from app.api.schemas import LocationList, LocationQuery, WarehouseList, text
from app.services import catalog


@operation(bp, "GET", "/warehouses", response=WarehouseList)
def warehouses(principal: Principal) -> dict[str, Any]:
    """Every warehouse"""
    rows = [{"code": w.code, "name": w.name, "active": w.active} for w in catalog.list_warehouses()]
    return {"data": rows, "next": None}


@operation(bp, "GET", "/locations", query=LocationQuery, response=LocationList)
def index(principal: Principal, *, query: LocationQuery) -> dict[str, Any]:
    """Locations with the units they hold
    All of them in one answer (a site has hundreds, not millions), so `next` is always null."""
    rows = [
        {
            "code": row.code,
            "name": row.name,
            "warehouse": row.warehouse,
            "active": row.active,
            "on_hand": text(row.on_hand),
        }
        for row in catalog.list_locations(warehouse=query.warehouse, active=query.active)
    ]
    return {"data": rows, "next": None}
