"""Offline scans carry who made them (issue 14, finding 5): the server books a scan only to the
user who scanned it, and a manager's discarding of someone else's queued scans is logged."""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.extensions import db
from app.models import Movement, StockLevel
from tests.integration.floor.conftest import Stocked


def _scan(client: FlaskClient, **fields: Any) -> Any:
    body = {"code": "SKU-SCREW", "mode": "issue", "location": "WH1-A-01-01", "idempotency_key": "k-1", **fields}
    return client.post("/scan/moves", json=body)


def _movements(app: Flask) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(Movement)) or 0)


def test_a_scan_made_by_another_user_is_refused_and_moves_nothing(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked
) -> None:
    login_as("clerk")
    response = _scan(client, user="someone-else")
    assert response.status_code == 409
    body = response.get_json()
    assert body["code"] == "scanned_by_another_user"
    assert "someone-else" in body["message"] and "登录时发送" in body["message"]
    assert _movements(app) == 1  # only the opening receipt
    with app.app_context():
        level = db.session.scalar(select(StockLevel.quantity).where(StockLevel.item_id == stocked.item.id))
    assert level == Decimal(10)


def test_a_scan_made_by_the_signed_in_user_is_booked_to_them(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked
) -> None:
    clerk = login_as("clerk")
    assert _scan(client, user=clerk.username).get_json()["balance"] == "9"
    with app.app_context():
        assert db.session.scalar(select(Movement.username).order_by(Movement.id.desc()).limit(1)) == clerk.username


def test_the_scan_page_names_its_user_and_offers_discarding_to_managers_only(
    client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked
) -> None:
    clerk = login_as("clerk")
    html = client.get("/scan").get_data(as_text=True)
    assert f'data-user="{clerk.username}"' in html and "data-discard-url" not in html
    manager = login_as("manager")
    html = client.get("/scan").get_data(as_text=True)
    assert f'data-user="{manager.username}"' in html and 'data-discard-url="/scan/discarded"' in html


def test_a_manager_discarding_queued_scans_is_logged_and_moves_nothing(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked, caplog: pytest.LogCaptureFixture
) -> None:
    manager = login_as("manager")
    scans = [{"code": "SKU-SCREW", "mode": "issue", "location": "WH1-A-01-01", "quantity": "2"}] * 3
    with caplog.at_level(logging.INFO, logger="app.scan"):
        response = client.post("/scan/discarded", json={"user": "clerk7", "scans": scans})
    assert response.get_json() == {"status": "ok", "discarded": 3}
    [record] = [r for r in caplog.records if r.name == "app.scan"]
    assert record.getMessage() == "offline scans discarded"
    assert (record.username, record.owner, record.count) == (manager.username, "clerk7", 3)
    assert record.scans[0] == {"code": "SKU-SCREW", "mode": "issue", "location": "WH1-A-01-01", "quantity": "2"}
    assert _movements(app) == 1


def test_only_managers_discard_and_a_malformed_discard_is_refused(
    client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked
) -> None:
    login_as("clerk")
    assert client.post("/scan/discarded", json={"user": "x", "scans": []}).status_code == 403
    login_as("manager")
    for body in ({"user": "x"}, {"user": "x", "scans": "all"}, {"user": "x", "scans": [1, 2]}, [1], "x"):
        response = client.post("/scan/discarded", json=body)
        assert response.status_code == 422, body
        assert response.get_json()["status"] == "error"
