"""Names that name pages (SKUs, usernames; location codes were always letters, digits, - _ .) refuse
"/" and "\\" at creation on pages, in the API and in imports; a user stored with one earlier can
still be deactivated from the command line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, insert, select

from app.extensions import db
from app.models import Item, User
from app.services import imports, locations
from app.services.errors import InvalidInput
from tests.factories import Factory


def _exists(app: Flask, model: Any, **where: str) -> bool:
    with app.app_context():
        stmt = select(func.count()).select_from(model).filter_by(**where)
        return bool(db.session.scalar(stmt))


@pytest.mark.parametrize("sku", ["M6/20", "M6\\20"])
def test_the_item_page_refuses_a_sku_that_cannot_name_a_page(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], sku: str
) -> None:
    login_as("manager")
    response = client.post("/items/new", data={"sku": sku, "name": "螺栓", "unit": "pcs"})
    assert response.status_code == 422
    assert "不能包含空格、/ 或" in response.get_data(as_text=True)
    assert not _exists(app, Item, sku=sku)


def test_the_api_refuses_a_sku_with_a_slash(app: Flask, client: FlaskClient, factory: Factory) -> None:
    token = factory.token(factory.user(role="manager"), scope="write")
    response = client.post(
        "/api/v1/items", json={"sku": "M6/20", "name": "螺栓"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "sku"
    assert not _exists(app, Item, sku="M6/20")


def test_an_import_row_with_a_slash_in_its_sku_is_a_row_error(app: Flask) -> None:
    with app.app_context():
        checked = imports.check_file(b"sku,name\nM6-20,ok\nM6/20,bad\n", "x.csv")
    assert [(e.row, e.field, e.found) for e in checked.errors] == [(3, "sku", "M6/20")]


def test_the_users_page_refuses_a_username_with_a_slash(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any]
) -> None:
    login_as("admin")
    form = {"username": "ops/alice", "display_name": "", "role": "clerk", "password": "long-enough-1"}
    response = client.post("/users", data=form)
    assert response.status_code == 422
    assert "不能包含空格、/ 或" in response.get_data(as_text=True)
    assert not _exists(app, User, username="ops/alice")


def test_location_codes_never_held_a_slash(app: Flask, factory: Factory) -> None:
    warehouse = factory.warehouse(code="WHS")
    with app.app_context(), pytest.raises(InvalidInput):
        locations.create_location(warehouse=warehouse.code, code="WHS-A/1")


def test_the_cli_deactivates_a_user_no_page_can_open(app: Flask, factory: Factory) -> None:
    model = factory.user(role="clerk")
    with app.app_context():
        # A user stored before "/" was refused.
        row = {c: getattr(model, c) for c in ("password_hash", "role", "display_name")}
        db.session.execute(insert(User).values(username="ops/alice", active=True, **row))
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["deactivate-user", "ops/alice"])
    assert result.exit_code == 0, result.output
    assert "deactivated user ops/alice" in result.output
    with app.app_context():
        assert db.session.scalar(select(User.active).where(User.username == "ops/alice")) is False
    missing = app.test_cli_runner().invoke(args=["deactivate-user", "nobody"])
    assert missing.exit_code == 1 and "no user 'nobody'" in missing.output
