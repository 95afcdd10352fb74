"""The scan endpoints: codes resolved in one place, one unit per scan, errors with facts, undo."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from app.extensions import db
from app.models import Movement, StockLevel, User
from app.services import codes
from tests.factories import Factory
from tests.integration.floor.conftest import Stocked, text_of


def _scan(client: FlaskClient, code: str, **fields: Any) -> Any:
    body = {"code": code, "mode": "issue", "location": "WH1-A-01-01", **fields}
    return client.post("/scan/moves", json=body)


def _level(app: Flask, item_id: int, location_id: int) -> Decimal:
    with app.app_context():
        found = db.session.scalar(
            select(StockLevel.quantity).where(StockLevel.item_id == item_id, StockLevel.location_id == location_id)
        )
        return found if found is not None else Decimal(0)


def _movements(app: Flask) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(Movement)) or 0)


def test_codes_resolve_location_then_barcode_then_sku(app: Flask, factory: Factory) -> None:
    factory.location("WH9-A-01-01", warehouse=factory.warehouse("WH9"))
    factory.item("SKU-BAR", name="扳手", barcode="6901234567892")
    with app.app_context():
        assert codes.resolve_code(" WH9-A-01-01 ").kind == "location"
        by_barcode = codes.resolve_code("6901234567892")
        assert (by_barcode.kind, by_barcode.code, by_barcode.name) == ("item", "SKU-BAR", "扳手")
        assert codes.resolve_code("SKU-BAR").code == "SKU-BAR"


def test_scan_page_is_for_clerks_with_the_codes_and_the_worker(
    client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked
) -> None:
    login_as("viewer")
    assert client.get("/scan").status_code == 403
    login_as("clerk")
    page = client.get("/scan")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "WH1-A-01-02" in html and "/scan/sw.js" in html
    assert "扫码" in text_of(page) and "待发送" in text_of(page)
    worker = client.get("/scan/sw.js")
    assert worker.headers["Service-Worker-Allowed"] == "/scan"
    assert "inventory-scan" in worker.get_data(as_text=True)


def test_anonymous_scan_goes_to_sign_in(client: FlaskClient) -> None:
    response = client.post("/scan/moves", json={"code": "X"})
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_location_scan_names_the_location(client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked) -> None:
    login_as("clerk")
    body = _scan(client, "WH1-A-01-02").get_json()
    assert body == {"status": "ok", "kind": "location", "code": "WH1-A-01-02", "name": ""}


def test_each_item_scan_issues_one_unit_and_shows_the_balance(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked
) -> None:
    login_as("clerk")
    first = _scan(client, "SKU-SCREW", idempotency_key="k1").get_json()
    second = _scan(client, "SKU-SCREW", idempotency_key="k2").get_json()
    assert (first["status"], first["name"], first["quantity"], first["balance"]) == ("ok", "螺丝钉", "1", "9")
    assert second["balance"] == "8"
    assert _level(app, stocked.item.id, stocked.shelf.id) == Decimal(8)


def test_typed_quantity_and_receive_mode(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked
) -> None:
    login_as("clerk")
    body = _scan(client, "SKU-SCREW", mode="receive", quantity="5", location="WH1-A-01-02").get_json()
    assert (body["mode"], body["quantity"], body["balance"]) == ("receive", "5", "5")
    assert _level(app, stocked.item.id, stocked.other.id) == Decimal(5)


def test_transfer_mode_moves_between_the_two_scanned_locations(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked
) -> None:
    login_as("clerk")
    body = _scan(client, "SKU-SCREW", mode="transfer", quantity="3", to_location="WH1-A-01-02").get_json()
    assert (body["balance"], body["to_balance"], body["to_location"]) == ("7", "3", "WH1-A-01-02")
    assert _level(app, stocked.item.id, stocked.other.id) == Decimal(3)


def test_transfer_without_a_destination_is_refused(
    client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked
) -> None:
    login_as("clerk")
    response = _scan(client, "SKU-SCREW", mode="transfer")
    assert response.status_code == 422
    assert response.get_json()["message"] == "请扫描目标库位（调拨模式）。"


def test_same_key_replayed_moves_stock_once(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked
) -> None:
    login_as("clerk")
    before = _movements(app)
    for _ in range(3):
        body = _scan(client, "SKU-SCREW", idempotency_key="offline-1").get_json()
        assert body["balance"] == "9"
    assert _movements(app) == before + 1
    assert _level(app, stocked.item.id, stocked.shelf.id) == Decimal(9)


def test_unknown_code_is_an_error_that_moves_nothing(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked
) -> None:
    login_as("clerk")
    before = _movements(app)
    response = _scan(client, "NOPE-123")
    assert response.status_code == 404
    assert response.get_json() == {
        "status": "error",
        "code": "unknown_code",
        "message": "未知条码 NOPE-123：没有物品或库位使用它。",
    }
    assert _movements(app) == before


def test_insufficient_stock_reports_what_is_available(
    client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked
) -> None:
    login_as("clerk")
    response = _scan(client, "SKU-SCREW", quantity="11")
    body = response.get_json()
    assert response.status_code == 409
    assert (body["code"], body["available"]) == ("insufficient_stock", "10")
    assert "仅有 10 可用" in body["message"]


def test_item_scan_without_a_location_asks_for_one(
    client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked
) -> None:
    login_as("clerk")
    response = _scan(client, "SKU-SCREW", location="")
    assert response.status_code == 422 and response.get_json()["message"] == "请先扫描库位。"


def test_bad_quantity_and_bad_mode_are_refused(
    client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked
) -> None:
    login_as("clerk")
    assert _scan(client, "SKU-SCREW", quantity="-2").get_json()["code"] == "invalid_quantity"
    assert _scan(client, "SKU-SCREW", mode="steal").status_code == 422


def test_viewer_cannot_scan(client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked) -> None:
    login_as("viewer")
    assert _scan(client, "SKU-SCREW").status_code == 403


def test_undo_reverses_the_last_scan(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked
) -> None:
    login_as("clerk")
    moved = _scan(client, "SKU-SCREW").get_json()
    body = client.post("/scan/undo", json={"movement_id": moved["movement_id"], "idempotency_key": "u1"}).get_json()
    assert body["status"] == "ok"
    assert _level(app, stocked.item.id, stocked.shelf.id) == Decimal(10)
    with app.app_context():
        reversal = db.session.get(Movement, body["reversal_id"])
        assert reversal is not None and reversal.reverses_id == moved["movement_id"]
    again = client.post("/scan/undo", json={"movement_id": moved["movement_id"]})
    assert again.status_code == 409


def test_undo_stores_a_reason_code_that_each_reader_sees_in_their_own_language(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked
) -> None:
    clerk = login_as("clerk")
    moved = _scan(client, "SKU-SCREW").get_json()
    undone = client.post("/scan/undo", json={"movement_id": moved["movement_id"]}).get_json()
    with app.app_context():
        reversal = db.session.get(Movement, undone["reversal_id"])
        assert reversal is not None and (reversal.note, reversal.reason_code) == (None, "scan_undo")

    assert "在扫码页撤销" in text_of(client.get(f"/movements/{undone['reversal_id']}"))
    with app.app_context():
        db.session.execute(update(User).where(User.id == clerk.id).values(locale="en"))
        db.session.commit()
    assert "Undone on the scan page" in text_of(client.get(f"/movements/{undone['reversal_id']}"))
    export = client.get("/movements/export.csv").get_data(as_text=True)
    assert "Undone on the scan page" in export


def test_undo_refuses_someone_elses_movement(
    client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked
) -> None:
    login_as("clerk")
    response = client.post("/scan/undo", json={"movement_id": stocked.receipt.id})
    assert response.status_code == 422
    assert response.get_json()["message"] == "此处只能撤销您自己的扫描。"


def test_token_endpoint_gives_a_csrf_token(client: FlaskClient, login_as: Callable[..., Any]) -> None:
    login_as("clerk")
    assert len(client.get("/scan/token").get_json()["csrf_token"]) > 20


def test_the_scan_mode_is_remembered_per_user_and_only_a_known_one(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked
) -> None:
    clerk = login_as("clerk")
    assert 'value="receive" accesskey="2" checked' not in client.get("/scan").get_data(as_text=True)
    assert client.post("/scan/mode", json={"mode": "receive"}).status_code == 200
    refused = client.post("/scan/mode", json={"mode": "steal"})
    assert refused.status_code == 422 and refused.get_json()["code"] == "invalid_input"
    with app.app_context():
        assert db.session.scalar(select(User.scan_mode).where(User.id == clerk.id)) == "receive"
    assert 'value="receive" accesskey="2" checked' in client.get("/scan").get_data(as_text=True)


def test_a_scan_with_an_order_number_is_filed_under_it(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked
) -> None:
    login_as("clerk")
    assert _scan(client, "SKU-SCREW", reference=" SO-42 ").status_code == 200
    assert _scan(client, "SKU-SCREW").status_code == 200
    with app.app_context():
        rows = db.session.execute(
            select(Movement.reference, Movement.reason_code).order_by(Movement.id.desc()).limit(2)
        )
        assert list(rows) == [("SCAN", "scan"), ("SO-42", "scan")]
