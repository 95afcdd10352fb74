"""Items over HTTP: search the catalogue, read one item with its stock, create and edit items."""

from __future__ import annotations

from typing import Any

from app.api import bp
from app.api.auth import Principal, blind_places
from app.api.openapi import operation, writing
from app.api.schemas import (
    CreateItem,
    ItemDetail,
    ItemList,
    ItemQuery,
    UpdateItem,
    item_body,
    item_detail_body,
)
from app.api.stock import keyed
from app.services import catalog
from app.services import items as items_service


def _detail(sku: str, principal: Principal) -> dict[str, Any]:
    item = items_service.get_item(sku)
    category = item.category.name if item.category else None
    hidden = frozenset(code for _, code in blind_places(principal, [item.sku]))
    return item_detail_body(item, category, catalog.list_stock(sku=item.sku), hidden)


@operation(bp, "GET", "/items", query=ItemQuery, response=ItemList)
def index(principal: Principal, *, query: ItemQuery) -> dict[str, Any]:
    """Search the catalogue
    Items in SKU order with their total on hand; follow `next` for the following page."""
    page = catalog.list_items(**query.filters())
    blind = {sku for sku, _ in blind_places(principal, [row.sku for row in page.rows])}
    return {"data": [item_body(row, hidden=row.sku in blind) for row in page.rows], "next": page.next_cursor}


@operation(bp, "GET", "/items/{sku}", response=ItemDetail)
def show(principal: Principal, *, sku: str) -> dict[str, Any]:
    """One item with its stock per location"""
    return _detail(sku, principal)


@operation(bp, "POST", "/items", body=CreateItem, response=ItemDetail, **writing("manager", status=201))
def create(principal: Principal, *, body: CreateItem) -> dict[str, Any]:
    """Create an item
    With an Idempotency-Key, repeating the same creation returns the item it made; the same key with
    a different body is a 409 `idempotency_conflict`. Keys belong to the calling token."""
    items_service.create_item(**body.model_dump(), **keyed(principal))
    return _detail(body.sku, principal)


@operation(bp, "PATCH", "/items/{sku}", body=UpdateItem, response=ItemDetail, **writing("manager"))
def update(principal: Principal, *, sku: str, body: UpdateItem) -> dict[str, Any]:
    """Change an item's fields
    Only the fields sent change; the SKU never does. `archived: true` archives the item."""
    items_service.update_item(sku=sku, **body.model_dump(exclude_unset=True))
    return _detail(sku, principal)
