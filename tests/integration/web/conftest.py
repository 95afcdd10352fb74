"""Fixtures for page tests: a small stocked warehouse, sign-in, and reading pages as text."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from app.models import Item, Location, Movement
from tests.factories import Factory


@dataclass
class Stocked:
    item: Item
    shelf: Location
    other: Location
    receipt: Movement


@pytest.fixture
def stocked(factory: Factory) -> Stocked:
    """螺丝钉 (SKU-SCREW) with 10 at WH1-A-01-01, and an empty WH1-A-01-02."""
    warehouse = factory.warehouse("WH1", name="一号仓库")
    shelf = factory.location("WH1-A-01-01", warehouse=warehouse)
    other = factory.location("WH1-A-01-02", warehouse=warehouse)
    item = factory.item("SKU-SCREW", name="螺丝钉", reorder_point="5", reorder_quantity="100")
    receipt = factory.stock(item, shelf, 10)
    return Stocked(item, shelf, other, receipt)


def text_of(response: Any) -> str:
    """The page's text without tags, whitespace collapsed (to assert on what a person reads)."""
    html = response.get_data(as_text=True)
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
