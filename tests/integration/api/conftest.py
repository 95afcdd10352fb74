"""Fixtures for the API tests: bearer headers for a user of a given role and scope, and a stocked
item at a location."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import pytest

from app.models import Item, Location
from tests.factories import Factory


@pytest.fixture
def bearer(factory: Factory) -> Callable[..., dict[str, str]]:
    """bearer("clerk") -> {"Authorization": "Bearer inv_..."} for a new user with that role."""

    def _bearer(role: str = "clerk", scope: str = "write") -> dict[str, str]:
        return {"Authorization": f"Bearer {factory.token(factory.user(role=role), scope=scope)}"}

    return _bearer


@dataclass
class Stocked:
    item: Item
    location: Location
    other: Location


@pytest.fixture
def stocked(factory: Factory) -> Stocked:
    """An item with 10 on hand at one location, and a second (empty) location in the same warehouse."""
    item = factory.item(reorder_point=Decimal(3))
    location, other = factory.location(), factory.location()
    factory.stock(item, location, 10)
    return Stocked(item, location, other)
