"""The stock forms' item picker (GET /items/lookup): what it finds (SKU in any case, name,
pinyin, barcode), what it tells about each match, who may ask, and that hostile input is a 400."""

from __future__ import annotations

from typing import Any

import pytest

from app.services import counts, items


def _lookup(client: Any, q: str) -> Any:
    return client.get("/items/lookup", query_string={"q": q})


def test_lookup_finds_by_sku_in_any_case_name_pinyin_and_barcode(client: Any, login_as: Any, factory: Any) -> None:
    warehouse = factory.warehouse("WH1")
    a = factory.location("WH1-A-01-01", warehouse=warehouse)
    b = factory.location("WH1-B-02-03", warehouse=warehouse)
    nut = factory.item("DEMO-000001", name="六角螺母 M5", unit="pcs", barcode="6901234567892")
    factory.stock(nut, a, 12)
    factory.stock(nut, b, "325.5")
    factory.item("DEMO-000002", name="螺丝刀", unit="把")
    login_as("viewer")

    response = _lookup(client, "demo-000001")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.get_json() == {
        "items": [
            {
                "sku": "DEMO-000001",
                "name": "六角螺母 M5",
                "unit": "pcs",
                "barcode": "6901234567892",
                # Fullest place first: the one the form suggests.
                "stock": [
                    {"location": "WH1-B-02-03", "warehouse": "WH1", "quantity": "325.5"},
                    {"location": "WH1-A-01-01", "warehouse": "WH1", "quantity": "12"},
                ],
            }
        ]
    }
    assert [i["sku"] for i in _lookup(client, "螺母").get_json()["items"]] == ["DEMO-000001"]
    assert [i["sku"] for i in _lookup(client, "liujiao").get_json()["items"]] == ["DEMO-000001"]
    assert [i["sku"] for i in _lookup(client, "ljlm").get_json()["items"]] == ["DEMO-000001"]
    assert [i["sku"] for i in _lookup(client, "6901234567892").get_json()["items"]] == ["DEMO-000001"]
    screwdriver = _lookup(client, "luosidao").get_json()["items"]
    assert screwdriver == [{"sku": "DEMO-000002", "name": "螺丝刀", "unit": "把", "barcode": None, "stock": []}]
    assert _lookup(client, "").get_json() == {"items": []}
    assert _lookup(client, "nothing like it").get_json() == {"items": []}


def test_lookup_returns_at_most_ten_active_items(client: Any, login_as: Any, factory: Any, app: Any) -> None:
    for n in range(14):
        factory.item(f"BOLT-{n:02d}", name=f"螺栓 {n}")
    archived = factory.item("BOLT-99", name="螺栓 旧")
    with app.app_context():
        items.archive_item(sku=archived.sku)
    login_as("clerk")
    found = [i["sku"] for i in _lookup(client, "bolt").get_json()["items"]]
    assert found == [f"BOLT-{n:02d}" for n in range(10)]
    assert archived.sku not in [i["sku"] for i in _lookup(client, "旧").get_json()["items"]]


@pytest.mark.parametrize("q", ["x" * 101, "螺\x00母", "a\nb", "\x1b[2J"])
def test_hostile_input_is_a_400_problem_not_a_500(client: Any, login_as: Any, stocked: Any, q: str) -> None:
    login_as("viewer")
    response = _lookup(client, q)
    assert response.status_code == 400
    assert response.content_type == "application/problem+json"
    assert response.get_json()["code"] == "invalid_input"


def test_odd_but_harmless_input_finds_nothing_or_the_item(client: Any, login_as: Any, stocked: Any) -> None:
    login_as("viewer")
    for q in ["%", "_", "' OR 1=1 --", "\\", "<script>", "x" * 100]:
        response = _lookup(client, q)
        assert response.status_code == 200, q
        assert response.get_json() == {"items": []}, q
    assert [i["sku"] for i in _lookup(client, "  sku-screw  ").get_json()["items"]] == ["SKU-SCREW"]


def test_anonymous_visitors_are_sent_to_sign_in(client: Any, stocked: Any) -> None:
    response = _lookup(client, "螺丝")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_a_counter_is_not_told_the_quantity_of_a_place_being_counted(
    client: Any, login_as: Any, stocked: Any, app: Any
) -> None:
    with app.app_context():
        counts.open_count(user="boss", location="WH1-A-01-01")
    login_as("clerk")
    [item] = _lookup(client, "螺丝钉").get_json()["items"]
    assert item["stock"] == [{"location": "WH1-A-01-01", "warehouse": "WH1", "quantity": None}]
    login_as("manager")
    [item] = _lookup(client, "螺丝钉").get_json()["items"]
    assert item["stock"] == [{"location": "WH1-A-01-01", "warehouse": "WH1", "quantity": "10"}]
