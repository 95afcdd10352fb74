"""Control characters in text inputs: refused by the services, so forms, the API and imports agree."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.extensions import db
from app.models import Item, Movement
from app.services import imports, items, stock
from app.services.errors import InvalidInput
from tests.factories import Factory


def _count(app: Flask, model: Any) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.mark.parametrize("name", ["螺丝\x1b钉", "a\x00b", "line\nbreak", "tab\there"])
def test_single_line_fields_refuse_control_characters(app: Flask, name: str) -> None:
    with app.app_context(), pytest.raises(InvalidInput) as caught:
        items.create_item(sku="CTRL-1", name=name)
    assert caught.value.field == "name"
    assert _count(app, Item) == 0


def test_multi_line_fields_keep_tabs_and_newlines_and_refuse_the_rest(app: Flask) -> None:
    with app.app_context():
        item = items.create_item(sku="DESC-1", name="描述", description="第一行\r\n\t第二行")
        assert item.description == "第一行\n\t第二行"
        with pytest.raises(InvalidInput) as caught:
            items.update_item(sku="DESC-1", description="坏\x1b")
        assert caught.value.field == "description"


def test_stock_notes_refuse_escape_characters(app: Flask, factory: Factory) -> None:
    item, location = factory.item(), factory.location()
    with app.app_context(), pytest.raises(InvalidInput) as caught:
        stock.receive_stock(sku=item.sku, location=location.code, quantity=1, user="t", note="备注\x1b[31m")
    assert caught.value.field == "note"
    assert _count(app, Movement) == 0


def test_the_api_answers_422_for_a_control_character(
    app: Flask, client: FlaskClient, factory: Factory, bearer: Callable[..., dict[str, str]]
) -> None:
    item, location = factory.item(), factory.location()
    body = {"sku": item.sku, "location": location.code, "quantity": "1", "note": "x\x1by"}
    response = client.post("/api/v1/stock/receive", json=body, headers=bearer("clerk"))
    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    assert response.get_json()["errors"][0]["field"] == "note"
    assert _count(app, Movement) == 0


def test_the_item_form_shows_the_error_on_the_field(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any]
) -> None:
    login_as("manager")
    response = client.post("/items/new", data={"sku": "FORM-1", "name": "名\x1b称", "unit": "pcs"})
    assert response.status_code == 422
    assert "control characters" in response.get_data(as_text=True)
    assert _count(app, Item) == 0


def test_an_imported_row_with_a_control_character_is_a_row_error(app: Flask) -> None:
    with app.app_context():
        checked = imports.check_file("sku,name\nOK-1,好\nBAD-1,坏\x1b\n".encode(), "x.csv")
    assert [(e.row, e.field) for e in checked.errors] == [(3, "name")]


@pytest.fixture
def bearer(factory: Factory) -> Callable[..., dict[str, str]]:
    def _bearer(role: str = "clerk") -> dict[str, str]:
        return {"Authorization": f"Bearer {factory.token(factory.user(role=role), scope='write')}"}

    return _bearer
