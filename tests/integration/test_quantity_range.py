"""Quantities valid for one movement that would overflow a stored level or an item's total are
refused with a clear error (409), on SQLite and on MariaDB, before anything is written."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.extensions import db
from app.models import Item, Movement
from app.services import stock
from app.services.errors import QuantityOutOfRange
from app.services.quantities import MAX_QUANTITY
from tests.factories import Factory

# Whole: SQLite keeps such a NUMERIC as a double, exact up to 2**53 but not to three places.
NEAR_MAX = Decimal(int(MAX_QUANTITY))


def _state(app: Flask, sku: str) -> tuple[Decimal, int]:
    with app.app_context():
        on_hand = db.session.scalar(select(Item.on_hand).where(Item.sku == sku))
        return Decimal(on_hand), int(db.session.scalar(select(func.count()).select_from(Movement)) or 0)


def test_a_level_past_the_stored_range_is_refused(app: Flask, factory: Factory) -> None:
    item, location = factory.item(), factory.location()
    factory.stock(item, location, NEAR_MAX)
    before = _state(app, item.sku)
    with app.app_context(), pytest.raises(QuantityOutOfRange) as caught:
        stock.receive_stock(sku=item.sku, location=location.code, quantity=1, user="t")
    assert caught.value.extras["sku"] == item.sku and caught.value.extras["location"] == location.code
    assert _state(app, item.sku) == before


def test_an_item_total_past_the_stored_range_is_refused(app: Flask, factory: Factory) -> None:
    item, first, second = factory.item(), factory.location(), factory.location()
    factory.stock(item, first, NEAR_MAX)
    before = _state(app, item.sku)
    with app.app_context(), pytest.raises(QuantityOutOfRange):
        stock.receive_stock(sku=item.sku, location=second.code, quantity=1, user="t")
    with app.app_context(), pytest.raises(QuantityOutOfRange):
        stock.adjust_stock(sku=item.sku, location=second.code, counted=1, user="t")
    assert _state(app, item.sku) == before
    with app.app_context():  # moving stock between locations leaves the total as it is
        stock.transfer_stock(sku=item.sku, from_location=first.code, to_location=second.code, quantity=5, user="t")
    assert _state(app, item.sku)[0] == NEAR_MAX


def test_the_api_answers_409_problem_json(app: Flask, client: FlaskClient, factory: Factory) -> None:
    item, location = factory.item(), factory.location()
    factory.stock(item, location, NEAR_MAX)
    token = factory.token(factory.user(role="clerk"), scope="write")
    body = {"sku": item.sku, "location": location.code, "quantity": "999999999999999"}
    response = client.post("/api/v1/stock/receive", json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 409
    assert response.content_type == "application/problem+json"
    assert response.get_json()["code"] == "quantity_out_of_range"


def test_the_receive_form_says_what_is_wrong(
    app: Flask, client: FlaskClient, factory: Factory, login_as: Callable[..., Any]
) -> None:
    item, location = factory.item(), factory.location()
    factory.stock(item, location, NEAR_MAX)
    login_as("clerk")
    page = client.get("/movements/receive").get_data(as_text=True)
    key = re.search(r'name="idempotency_key"[^>]*value="([^"]+)"', page)
    form = {"sku": item.sku, "location": location.code, "quantity": "5", "idempotency_key": key.group(1) if key else ""}
    response = client.post("/movements/receive", data=form, follow_redirects=True)
    assert response.status_code == 409
    assert "超过系统能保存的最大数量" in response.get_data(as_text=True)
    assert _state(app, item.sku)[0] == NEAR_MAX
