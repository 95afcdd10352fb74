"""Counting a serial-tracked item on the count pages (issue 17): the counter lists the serials
found (typed, or scanned from a GS1 label carrying the serial), never sees the ones expected; the
manager's review names what approval will write off, move and take into stock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.extensions import db
from app.models import Location, Serial
from app.services import counts, stock
from tests.factories import Factory
from tests.integration.floor.conftest import Stocked, text_of

GTIN = "04006381333931"


def _phone_count(app: Flask, factory: Factory, stocked: Stocked) -> tuple[int, int]:
    """PHONE-1 (GTIN barcode): SN-1, SN-2 at WH1-A-01-01, SN-3 at WH1-A-01-02; a count of the
    first place open. Returns the count id and the phone line's id."""
    factory.item("PHONE-1", name="手机", tracking="serial", barcode=GTIN)
    with app.app_context():
        stock.receive_stock(sku="PHONE-1", location=stocked.shelf.code, quantity=2, serials=["SN-1", "SN-2"], user="rx")
        stock.receive_stock(sku="PHONE-1", location=stocked.other.code, quantity=1, serials=["SN-3"], user="rx")
        count = counts.open_count(user="boss", location=stocked.shelf.code)
        line = next(x for x in counts.get_count(count.id).lines if x.sku == "PHONE-1")
        return count.id, line.id


def test_a_counter_lists_the_serials_found_and_the_manager_approves(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], factory: Factory, stocked: Stocked
) -> None:
    count_id, line_id = _phone_count(app, factory, stocked)
    login_as("clerk")
    page = client.get(f"/counts/{count_id}").get_data(as_text=True)
    assert f'name="serials:{line_id}"' in page and f'name="qty:{line_id}"' not in page
    assert "SN-1" not in page and "SN-2" not in page  # blind: the serials expected are not shown
    saved = client.post(
        f"/counts/{count_id}/entries",
        data={f"serials:{line_id}": "SN-1\r\nSN-3\r\n", "code": "SKU-SCREW", "quantity": "10"},
    )
    assert saved.status_code == 303
    page = client.get(f"/counts/{count_id}").get_data(as_text=True)
    assert "SN-1\nSN-3</textarea>" in page  # what the counter entered comes back to them
    # Scanning a GS1 label with the GTIN and a serial (AI 21) adds the unit to its line.
    scanned = client.post(f"/counts/{count_id}/entries", data={"code": f"]C101{GTIN}21SN-9"})
    assert scanned.status_code == 303
    with app.app_context():
        line = next(x for x in counts.get_count(count_id).lines if x.id == line_id)
    assert line.serials == ("SN-1", "SN-3", "SN-9") and line.first_count == 3

    login_as("manager")
    review = text_of(client.get(f"/counts/{count_id}/review"))
    assert "SN-2" in review and "WH1-A-01-02" in review and "SN-9" in review
    approved = client.post(f"/counts/{count_id}/approve", follow_redirects=True)
    assert "已过账" in text_of(approved) or "approved" in text_of(approved).lower()
    with app.app_context():
        rows = db.session.execute(
            select(Serial.serial, Serial.status, Location.code).outerjoin(Location, Location.id == Serial.location_id)
        )
        places = {serial: (status, code) for serial, status, code in rows}
    assert places == {
        "SN-1": ("in_stock", "WH1-A-01-01"),
        "SN-2": ("issued", None),
        "SN-3": ("in_stock", "WH1-A-01-01"),
        "SN-9": ("in_stock", "WH1-A-01-01"),
    }


def test_hostile_serial_entries_come_back_as_messages(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], factory: Factory, stocked: Stocked
) -> None:
    count_id, line_id = _phone_count(app, factory, stocked)
    login_as("clerk")
    for data, said in (
        ({f"serials:{line_id}": "SN-1\nSN-1"}, "named twice"),
        ({f"serials:{line_id}": "x" * 5000}, "at most 100 characters"),
        ({f"qty:{line_id}": "2"}, "counted by its serial numbers"),
        ({"code": "PHONE-1", "quantity": "2"}, "serial number of each unit"),
    ):
        response = client.post(f"/counts/{count_id}/entries", data=data, follow_redirects=True)
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        assert said in html.split('class="flash flash-error"')[1].split("</p>")[0]
    with app.app_context():
        line = next(x for x in counts.get_count(count_id).lines if x.id == line_id)
    assert line.first_count is None and line.serials == ()
    # "None found" counts the line as holding nothing.
    client.post(f"/counts/{count_id}/entries", data={f"none:{line_id}": "1"})
    with app.app_context():
        line = next(x for x in counts.get_count(count_id).lines if x.id == line_id)
    assert line.first_count == 0 and line.serials == ()
