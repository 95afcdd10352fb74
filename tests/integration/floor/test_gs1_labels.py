"""Supplier GS1 labels scanned on /scan, in the item picker and into the stock forms' SKU box: the
GTIN names the item by its barcode (stored as GTIN-14 or shorter), the label's count is the quantity,
and its lot, expiry and serial come back to the caller; unknown GTINs and broken codes say why."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.extensions import db
from app.models import Item, Location, Lot, Movement, Serial, StockLevel
from app.services import codes, stock
from app.services.errors import InvalidGS1Code, UnknownGtin
from tests.factories import Factory
from tests.integration.floor.conftest import Stocked, text_of
from tests.integration.web.test_stock_forms import _key

GS = "\x1d"
EAN13 = "4006381333931"  # stored as printed on the unit; the carton label carries it as GTIN-14
CARTON = f"]C10104006381333931172703311024A-17{GS}21SN-9{GS}3012"


@pytest.fixture
def labelled(factory: Factory, stocked: Stocked) -> Stocked:
    with_barcode = factory.item("PEN-BLUE", name="蓝色圆珠笔", unit="支", barcode=EAN13)
    factory.stock(with_barcode, stocked.shelf, 100)
    return stocked


def _level(app: Flask, sku: str, location: str = "WH1-A-01-01") -> Decimal:
    with app.app_context():
        return db.session.scalar(
            select(StockLevel.quantity)
            .join(Item, Item.id == StockLevel.item_id)
            .join(Location, Location.id == StockLevel.location_id)
            .where(Item.sku == sku, Location.code == location)
        ) or Decimal(0)


def test_a_gs1_label_resolves_its_item_by_the_gtin_in_any_stored_form(app: Flask, labelled: Stocked) -> None:
    with app.app_context():
        found = codes.resolve_code(CARTON)
        assert (found.kind, found.code, found.name) == ("item", "PEN-BLUE", "蓝色圆珠笔")
        assert found.gs1 is not None
        assert (found.gs1.lot, found.gs1.expiry, found.gs1.serial, found.gs1.quantity) == (
            "24A-17",
            date(2027, 3, 31),
            "SN-9",
            Decimal(12),
        )
        assert codes.resolve_code("(01)04006381333931").code == "PEN-BLUE"
        # Plain codes resolve exactly as before, with nothing read from a label.
        assert codes.resolve_code(EAN13).gs1 is None and codes.resolve_code("SKU-SCREW").gs1 is None


def test_an_unknown_gtin_and_a_wrong_check_digit_are_told_apart(app: Flask, labelled: Stocked) -> None:
    with app.app_context():
        with pytest.raises(UnknownGtin) as unknown:
            codes.resolve_code("]d20109501101530003")
        assert unknown.value.message == "no item with barcode 09501101530003"
        with pytest.raises(InvalidGS1Code) as broken:
            codes.resolve_code("]d20104006381333932")
        assert broken.value.reason == "check_digit"


def test_the_configured_fnc1_stand_in_is_read_as_a_separator(make_app: Callable[..., Flask], labelled: Stocked) -> None:
    with make_app(INVENTORY_GS1_SEPARATOR="~").app_context():
        found = codes.resolve_code("010400638133393110LOT-5~3007")
    assert found.gs1 is not None and (found.gs1.lot, found.gs1.quantity) == ("LOT-5", Decimal(7))


def test_scan_issues_the_labels_count_and_answers_lot_expiry_and_serial(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], labelled: Stocked
) -> None:
    login_as("clerk")
    response = client.post(
        "/scan/moves", json={"code": CARTON, "mode": "issue", "location": "WH1-A-01-01", "quantity": "1"}
    )
    assert response.status_code == 200
    body = response.get_json()
    assert (body["sku"], body["quantity"], body["balance"]) == ("PEN-BLUE", "12", "88")
    assert (body["gtin"], body["lot"], body["expiry"], body["serial"]) == (
        "04006381333931",
        "24A-17",
        "2027-03-31",
        "SN-9",
    )
    assert _level(app, "PEN-BLUE") == Decimal(88)
    with app.app_context():
        assert db.session.scalar(select(Movement.quantity).order_by(Movement.id.desc()).limit(1)) == Decimal(12)


def test_scan_of_an_unknown_gtin_or_a_bad_check_digit_moves_nothing_and_says_why(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], labelled: Stocked
) -> None:
    login_as("clerk")
    scan = {"mode": "issue", "location": "WH1-A-01-01"}
    unknown = client.post("/scan/moves", json={**scan, "code": f"0109501101530003{GS}"})
    assert unknown.status_code == 404
    assert unknown.get_json()["code"] == "unknown_gtin"
    assert "09501101530003" in unknown.get_json()["message"] and "条码" in unknown.get_json()["message"]
    broken = client.post("/scan/moves", json={**scan, "code": "]C101040063813339321099"})
    assert broken.status_code == 422
    assert broken.get_json()["code"] == "invalid_gs1_code"
    assert "校验位" in broken.get_json()["message"]
    assert _level(app, "PEN-BLUE") == Decimal(100)


def test_lookup_finds_the_labels_item_with_what_the_label_says(
    client: FlaskClient, login_as: Callable[..., Any], labelled: Stocked
) -> None:
    login_as("viewer")
    response = client.get("/items/lookup", query_string={"q": CARTON})
    assert response.status_code == 200
    body = response.get_json()
    assert [item["sku"] for item in body["items"]] == ["PEN-BLUE"]
    assert body["label"] == {
        "gtin": "04006381333931",
        "lot": "24A-17",
        "expiry": "2027-03-31",
        "serial": "SN-9",
        "label_quantity": "12",
    }
    # A search that is no label answers as before, without a label.
    assert "label" not in client.get("/items/lookup", query_string={"q": "PEN"}).get_json()


def test_lookup_of_an_unknown_gtin_is_a_problem_naming_the_barcode(
    client: FlaskClient, login_as: Callable[..., Any], labelled: Stocked
) -> None:
    login_as("viewer")
    response = client.get("/items/lookup", query_string={"q": "(01)09501101530003(10)X"})
    assert response.status_code == 404
    assert response.content_type == "application/problem+json"
    assert response.get_json()["code"] == "unknown_gtin"
    assert "09501101530003" in response.get_json()["detail"]
    broken = client.get("/items/lookup", query_string={"q": "(01)04006381333931(17)270231"})
    assert broken.status_code == 422 and broken.get_json()["code"] == "invalid_gs1_code"


def test_receive_form_takes_a_label_in_the_sku_box_and_its_count(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], labelled: Stocked
) -> None:
    login_as("clerk")
    form = {
        "idempotency_key": _key(client.get("/movements/receive").get_data(as_text=True)),
        "sku": CARTON,
        "location": "WH1-A-01-01",
        "quantity": "",
    }
    response = client.post("/movements/receive", data=form)
    assert response.status_code == 303
    assert _level(app, "PEN-BLUE") == Decimal(112)


def test_receive_form_marks_an_unknown_gtin_on_the_sku_field(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], labelled: Stocked
) -> None:
    login_as("clerk")
    form = {
        "idempotency_key": _key(client.get("/movements/receive").get_data(as_text=True)),
        "sku": "]C10109501101530003",
        "location": "WH1-A-01-01",
        "quantity": "3",
    }
    response = client.post("/movements/receive", data=form)
    assert response.status_code == 422
    assert "09501101530003" in text_of(response)
    assert _level(app, "PEN-BLUE") == Decimal(100)


LOT_LABEL = f"]C10104006381333931172703311024A-17{GS}3012"


def test_scan_of_a_label_receives_and_issues_the_lot_it_names_for_a_lot_tracked_item(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], factory: Factory, stocked: Stocked
) -> None:
    factory.item("PEN-LOT", name="批次笔", barcode=EAN13, tracking="lot", requires_expiry=True)
    login_as("clerk")
    received = client.post("/scan/moves", json={"code": LOT_LABEL, "mode": "receive", "location": "WH1-A-01-01"})
    assert received.status_code == 200
    issued = client.post("/scan/moves", json={"code": LOT_LABEL, "mode": "issue", "location": "WH1-A-01-01"})
    assert issued.status_code == 200
    with app.app_context():
        lines = db.session.execute(
            select(Movement.kind, Movement.quantity, Lot.code, Lot.expiry)
            .join(Lot, Lot.id == Movement.lot_id)
            .order_by(Movement.id)
        ).all()
    assert lines == [("receive", 12, "24A-17", date(2027, 3, 31)), ("issue", 12, "24A-17", date(2027, 3, 31))]


def test_a_serial_label_in_the_issue_form_fills_the_serial(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], factory: Factory, stocked: Stocked
) -> None:
    factory.item("PEN-SN", name="序列号笔", barcode=EAN13, tracking="serial")
    with app.app_context():
        stock.receive_stock(sku="PEN-SN", location="WH1-A-01-01", quantity=1, serials=["SN-9"], user="u")
    login_as("clerk")
    form = {
        "idempotency_key": _key(client.get("/movements/issue").get_data(as_text=True)),
        "sku": f"]C10104006381333931{GS}21SN-9",
        "location": "WH1-A-01-01",
        "quantity": "1",
    }
    assert client.post("/movements/issue", data=form).status_code == 303
    with app.app_context():
        assert db.session.scalar(select(Serial.status).where(Serial.serial == "SN-9")) == "issued"
