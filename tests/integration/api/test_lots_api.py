"""Lots and serials over the API (issue 17): receipts with lot, expiry and serials, FEFO issues
answered with every movement, the manager-only expired override, lot and serial reads."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

import pytest

from app.models.types import utcnow

TODAY = utcnow().date()


@pytest.fixture
def place(factory):
    return factory.location()


@pytest.fixture
def milk(factory):
    return factory.item(sku="API-MILK", tracking="lot", requires_expiry=True)


def _receive(client, headers, place, lot, quantity, expiry):
    body = {"sku": "API-MILK", "location": place.code, "quantity": quantity, "lot": lot, "expiry": expiry}
    return client.post("/api/v1/stock/receive", json=body, headers=headers)


def test_a_lot_receipt_and_a_fefo_issue_over_two_lots(client, bearer, milk, place):
    clerk = bearer("clerk")
    missing = _receive(client, clerk, place, "L-LATE", "5", None)
    assert missing.status_code == 422
    assert missing.get_json()["code"] == "expiry_required"
    late = (TODAY + timedelta(days=20)).isoformat()
    soon = (TODAY + timedelta(days=3)).isoformat()
    assert _receive(client, clerk, place, "L-LATE", "5", late).status_code == 201
    received = _receive(client, clerk, place, "L-SOON", "2", soon).get_json()
    assert received["movement"]["lot"] == "L-SOON"
    assert "movements" not in received
    issued = client.post(
        "/api/v1/stock/issue", json={"sku": "API-MILK", "location": place.code, "quantity": "3"}, headers=clerk
    )
    assert issued.status_code == 201
    answer = issued.get_json()
    assert [(m["lot"], m["quantity"]) for m in answer["movements"]] == [("L-SOON", "2"), ("L-LATE", "1")]
    assert answer["movement"] == answer["movements"][0]
    levels = client.get("/api/v1/stock?item=API-MILK", headers=clerk).get_json()["data"]
    assert [(r["lot"], r["expiry"], r["quantity"]) for r in levels] == [("L-LATE", late, "4")]
    lots = client.get(f"/api/v1/lots?sku=API-MILK&expiring_before={late}", headers=clerk).get_json()["data"]
    assert [(r["lot"], r["on_hand"]) for r in lots] == [("L-SOON", "0")]


def test_only_a_manager_issues_an_expired_lot_and_gives_a_reason(client, bearer, milk, place):
    expired = (TODAY - timedelta(days=1)).isoformat()
    assert _receive(client, bearer("clerk"), place, "OLD", "3", expired).status_code == 201
    body = {"sku": "API-MILK", "location": place.code, "quantity": "1", "lot": "OLD"}
    refused = client.post("/api/v1/stock/issue", json=body, headers=bearer("clerk"))
    assert (refused.status_code, refused.get_json()["code"]) == (409, "expired_lot")
    clerk_override = client.post("/api/v1/stock/issue", json=body | {"allow_expired": True}, headers=bearer("clerk"))
    assert clerk_override.status_code == 403
    manager = bearer("manager")
    override = body | {"allow_expired": True, "note": "quality sample"}
    answer = client.post("/api/v1/stock/issue", json=override, headers=manager).get_json()
    assert (answer["movement"]["reason_code"], answer["movement"]["note"]) == ("expired_override", "quality sample")


def test_serials_are_received_issued_and_traced(client, bearer, factory, place):
    factory.item(sku="API-PHONE", tracking="serial")
    clerk = bearer("clerk")
    body = {"sku": "API-PHONE", "location": place.code, "quantity": "2", "serials": ["IMEI-1", "IMEI-2"]}
    received = client.post("/api/v1/stock/receive", json=body, headers=clerk).get_json()
    assert received["movement"]["serials"] == ["IMEI-1", "IMEI-2"]
    again = client.post("/api/v1/stock/receive", json=body | {"quantity": "1", "serials": ["IMEI-2"]}, headers=clerk)
    assert (again.status_code, again.get_json()["code"]) == (409, "serial_exists")
    out = {"sku": "API-PHONE", "location": place.code, "quantity": "1", "serials": ["IMEI-1"]}
    assert client.post("/api/v1/stock/issue", json=out, headers=clerk).status_code == 201
    second = client.post("/api/v1/stock/issue", json=out, headers=clerk)
    assert (second.status_code, second.get_json()["code"]) == (409, "serial_not_here")
    where = client.get("/api/v1/serials/API-PHONE/IMEI-1", headers=clerk).get_json()
    assert (where["status"], where["location"]) == ("issued", None)
    assert [m["kind"] for m in where["history"]] == ["receive", "issue"]
    assert client.get("/api/v1/serials/API-PHONE/NOPE", headers=clerk).status_code == 404


@pytest.mark.parametrize("serial", ["SN/2024/001", "A%B 1", "批号/7", "x.y"])
def test_a_serial_holding_a_slash_is_found_at_its_url(client, bearer, factory, place, serial):
    factory.item(sku="API-SLASH", tracking="serial")
    clerk = bearer("clerk")
    body = {"sku": "API-SLASH", "location": place.code, "quantity": "1", "serials": [serial]}
    assert client.post("/api/v1/stock/receive", json=body, headers=clerk).status_code == 201
    for path in (serial, quote(serial, safe="")):
        found = client.get(f"/api/v1/serials/API-SLASH/{path}", headers=clerk)
        assert found.status_code == 200, path
        assert (found.get_json()["serial"], found.get_json()["location"]) == (serial, place.code)
    missing = client.get("/api/v1/serials/API-SLASH/SN/2024", headers=clerk)
    assert (missing.status_code, missing.get_json()["code"]) == (404, "unknown_serial")


def test_items_api_takes_the_tracking_fields(client, bearer):
    manager = bearer("manager")
    body = {"sku": "API-LOT-1", "name": "Yoghurt", "tracking": "lot", "requires_expiry": True, "expiry_warning_days": 5}
    created = client.post("/api/v1/items", json=body, headers=manager)
    assert created.status_code == 201
    item = created.get_json()
    assert (item["tracking"], item["requires_expiry"], item["expiry_warning_days"]) == ("lot", True, 5)
    wrong = client.post("/api/v1/items", json={"sku": "API-LOT-2", "name": "x", "tracking": "batch"}, headers=manager)
    assert wrong.status_code == 422
