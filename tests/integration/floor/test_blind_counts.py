"""Blind counts stay blind (issue 14, finding 20): while a count is open, a counter (clerk) sees no
quantity of its lines on the item page or through the API; managers do, and so does everyone once
the count is closed. Places the count does not cover stay visible."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.services import counts
from tests.factories import Factory
from tests.integration.floor.conftest import Stocked, text_of


@pytest.fixture
def counted(app: Flask, factory: Factory, stocked: Stocked) -> int:
    """SKU-SCREW: 10 at WH1-A-01-01 under an open count; 4 at WH1-A-01-02, not counted."""
    factory.stock(stocked.item, stocked.other, 4)
    with app.app_context():
        return counts.open_count(user="boss", location=stocked.shelf.code).id


def _api(factory: Factory, role: str) -> tuple[Any, dict[str, str]]:
    user = factory.user(role=role)
    return user, {"Authorization": f"Bearer {factory.token(user, scope='read')}"}


def test_a_counter_sees_no_quantity_of_a_counted_place_on_the_item_page(
    client: FlaskClient, login_as: Callable[..., Any], counted: int
) -> None:
    login_as("clerk")
    page = text_of(client.get("/items/SKU-SCREW"))
    assert "WH1-A-01-01 " in page and "盘点期间隐藏" in page
    assert "10 pcs" not in page and "14 pcs" not in page  # neither the level nor the total
    assert "4 pcs" in page  # the place not being counted
    assert "在库数量变化" not in page  # no balance chart to read it from


def test_a_manager_and_everyone_after_the_count_see_the_quantities(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], counted: int
) -> None:
    login_as("manager")
    assert "10 pcs" in text_of(client.get("/items/SKU-SCREW"))
    with app.app_context():
        counts.cancel_count(count_id=counted, user="boss")
    login_as("clerk")
    page = text_of(client.get("/items/SKU-SCREW"))
    assert "10 pcs" in page and "盘点期间隐藏" not in page


def test_the_api_hides_counted_levels_and_totals_from_a_counter(
    client: FlaskClient, factory: Factory, counted: int
) -> None:
    _, clerk = _api(factory, "clerk")
    detail = client.get("/api/v1/items/SKU-SCREW", headers=clerk).get_json()
    assert detail["on_hand"] is None
    assert {row["location"]: row["quantity"] for row in detail["stock"]} == {
        "WH1-A-01-01": None,
        "WH1-A-01-02": "4",
    }
    [listed] = client.get("/api/v1/items?q=SKU-SCREW", headers=clerk).get_json()["data"]
    assert listed["on_hand"] is None
    levels = client.get("/api/v1/stock?item=SKU-SCREW", headers=clerk).get_json()["data"]
    assert {row["location"]: row["quantity"] for row in levels} == {"WH1-A-01-01": None, "WH1-A-01-02": "4"}


def test_the_api_shows_a_manager_every_quantity(client: FlaskClient, factory: Factory, counted: int) -> None:
    _, manager = _api(factory, "manager")
    detail = client.get("/api/v1/items/SKU-SCREW", headers=manager).get_json()
    assert detail["on_hand"] == "14"
    levels = client.get("/api/v1/stock?item=SKU-SCREW", headers=manager).get_json()["data"]
    assert {row["location"]: row["quantity"] for row in levels} == {"WH1-A-01-01": "10", "WH1-A-01-02": "4"}
