"""The one place tests build data. Everything goes through the services, as real use does."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

from flask import Flask

from app.models import Item, Location, Movement, User, Warehouse
from app.services import items, locations, stock, users

DEFAULT_PASSWORD = "correct-horse-9"


class Factory:
    """Builders with sensible defaults and unique sequences. Each call runs in its own app
    context, so the objects it returns are detached snapshots (attributes loaded)."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._seq = itertools.count(1)
        self._warehouse: Warehouse | None = None

    def _n(self) -> int:
        return next(self._seq)

    def warehouse(self, code: str | None = None, name: str = "测试仓库") -> Warehouse:
        with self.app.app_context():
            return locations.create_warehouse(code=code or f"W{self._n()}", name=name)

    def location(self, code: str | None = None, *, warehouse: Warehouse | None = None, active: bool = True) -> Location:
        if warehouse is None:
            self._warehouse = self._warehouse or self.warehouse()
            warehouse = self._warehouse
        with self.app.app_context():
            location = locations.create_location(
                warehouse=warehouse.code, code=code or f"{warehouse.code}-A-{self._n():02d}-01"
            )
            if not active:
                location = locations.set_location_active(code=location.code, active=False)
            return location

    def item(self, sku: str | None = None, **fields: Any) -> Item:
        n = self._n()
        fields.setdefault("name", f"螺丝钉 M{n} Screw")
        with self.app.app_context():
            return items.create_item(sku=sku or f"SKU-{n:05d}", **fields)

    def stock(self, item: Item, location: Location, quantity: Decimal | int | str, **kw: Any) -> Movement:
        """Receive `quantity` of `item` at `location` through the stock service."""
        kw.setdefault("user", "factory")
        with self.app.app_context():
            return stock.receive_stock(sku=item.sku, location=location.code, quantity=quantity, **kw)

    def user(self, role: str = "clerk", username: str | None = None, password: str = DEFAULT_PASSWORD) -> User:
        with self.app.app_context():
            return users.create_user(username=username or f"{role}{self._n()}", password=password, role=role)

    def token(self, user: User, scope: str = "write") -> str:
        """A fresh API token text for `user`."""
        with self.app.app_context():
            return users.create_token(username=user.username, scope=scope)[1]
