"""Reads and catalogue edits over HTTP: items, places, the ledger and reversals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Item, ItemRequest


def test_items_list_shape_and_filters(client, bearer, factory, stocked):
    factory.item(sku="BOLT-9", name="六角螺栓 Hex bolt", category="紧固件")
    archived = factory.item(sku="OLD-1", name="旧物料")
    headers = bearer("manager")
    client.patch(f"/api/v1/items/{archived.sku}", json={"archived": True}, headers=headers)
    listed = client.get("/api/v1/items", headers=headers).get_json()
    assert listed["next"] is None
    assert [r["sku"] for r in listed["data"]] == sorted([stocked.item.sku, "BOLT-9"])
    row = next(r for r in listed["data"] if r["sku"] == stocked.item.sku)
    assert (row["on_hand"], row["reorder_point"], row["archived"]) == ("10", "3", False)
    by_category = client.get("/api/v1/items?category=紧固件", headers=headers).get_json()["data"]
    assert [r["sku"] for r in by_category] == ["BOLT-9"]
    assert by_category[0]["category"] == "紧固件"
    assert [r["sku"] for r in client.get("/api/v1/items?q=hex", headers=headers).get_json()["data"]] == ["BOLT-9"]
    assert [r["sku"] for r in client.get("/api/v1/items?archived=true", headers=headers).get_json()["data"]] == [
        "OLD-1"
    ]
    warehouse = stocked.location.code.split("-")[0]
    in_warehouse = client.get(f"/api/v1/items?warehouse={warehouse}", headers=headers).get_json()["data"]
    assert [r["sku"] for r in in_warehouse] == [stocked.item.sku]


def test_items_updated_since(client, bearer, stocked):
    headers = bearer("viewer")
    future = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    past = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    assert client.get("/api/v1/items", query_string={"updated_since": future}, headers=headers).get_json()["data"] == []
    rows = client.get("/api/v1/items", query_string={"updated_since": past}, headers=headers).get_json()["data"]
    assert [r["sku"] for r in rows] == [stocked.item.sku]


def test_items_keyset_pages_cover_everything_once(client, bearer, factory):
    skus = sorted(factory.item().sku for _ in range(5))
    headers = bearer("viewer")
    seen, cursor = [], None
    for _ in range(5):
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/items", query_string=query, headers=headers).get_json()
        seen += [r["sku"] for r in page["data"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == skus


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "limit=x", "cursor=%%%", "cursor=WzJd", "archived=maybe"])
def test_bad_list_queries_are_422(client, bearer, query):
    response = client.get(f"/api/v1/items?{query}", headers=bearer("viewer"))
    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    assert response.get_json()["errors"]


def test_item_detail_has_stock_per_location(client, bearer, factory, stocked):
    factory.stock(stocked.item, stocked.other, "1.5")
    detail = client.get(f"/api/v1/items/{stocked.item.sku}", headers=bearer("viewer")).get_json()
    assert detail["on_hand"] == "11.5"
    assert [(s["location"], s["quantity"]) for s in detail["stock"]] == sorted(
        [(stocked.location.code, "10"), (stocked.other.code, "1.5")]
    )


def test_unknown_item_is_404(client, bearer):
    response = client.get("/api/v1/items/NO-SUCH", headers=bearer("viewer"))
    assert response.status_code == 404
    assert response.get_json()["sku"] == "NO-SUCH"


def test_create_item_then_conflict(client, bearer):
    headers = bearer("manager")
    body = {"sku": "CABLE-2", "name": "铜芯电缆 2.5mm²", "unit": "m", "category": "电气", "reorder_point": "50"}
    created = client.post("/api/v1/items", json=body, headers=headers)
    assert created.status_code == 201
    assert (created.get_json()["name"], created.get_json()["reorder_point"], created.get_json()["stock"]) == (
        "铜芯电缆 2.5mm²",
        "50",
        [],
    )
    duplicate = client.post("/api/v1/items", json=body, headers=headers)
    assert duplicate.status_code == 409
    assert duplicate.get_json()["field"] == "sku"
    # A key the creation did not store names no earlier request: the SKU conflict stands.
    late = client.post("/api/v1/items", json=body, headers={**headers, "Idempotency-Key": "create-cable"})
    assert late.status_code == 409 and late.get_json()["field"] == "sku"


def test_create_item_stores_its_idempotency_key(app, client, bearer):
    headers = {**bearer("manager"), "Idempotency-Key": "create-bolt"}
    body = {"sku": "BOLT-9", "name": "螺栓 M9", "unit": "pcs"}
    created = client.post("/api/v1/items", json=body, headers=headers)
    repeated = client.post("/api/v1/items", json=body, headers=headers)
    assert (created.status_code, repeated.status_code) == (201, 201)
    assert repeated.get_json() == created.get_json()
    changed = client.post("/api/v1/items", json={**body, "sku": "BOLT-10"}, headers=headers)
    assert changed.status_code == 409 and changed.get_json()["code"] == "idempotency_conflict"
    with app.app_context():
        bolt = db.session.scalar(select(Item.id).where(Item.sku == "BOLT-9"))
        stored = db.session.scalars(select(ItemRequest)).all()
        assert [(r.idempotency_key, r.item_id) for r in stored] == [("create-bolt", bolt)]
        assert db.session.scalar(select(Item.id).where(Item.sku == "BOLT-10")) is None


def test_the_same_item_key_from_another_token_is_another_request(client, bearer):
    body = {"sku": "NUT-1", "name": "螺母", "unit": "pcs"}
    first = client.post("/api/v1/items", json=body, headers={**bearer("manager"), "Idempotency-Key": "k1"})
    other = client.post(
        "/api/v1/items", json={**body, "sku": "NUT-2"}, headers={**bearer("manager"), "Idempotency-Key": "k1"}
    )
    assert (first.status_code, other.status_code) == (201, 201)
    assert other.get_json()["sku"] == "NUT-2"


def test_patch_item_changes_only_what_is_sent(client, bearer, stocked):
    headers = bearer("manager")
    response = client.patch(f"/api/v1/items/{stocked.item.sku}", json={"reorder_point": 8}, headers=headers)
    assert response.status_code == 200
    assert (response.get_json()["reorder_point"], response.get_json()["name"]) == ("8", stocked.item.name)
    bad = client.patch(f"/api/v1/items/{stocked.item.sku}", json={"sku": "RENAMED"}, headers=headers)
    assert bad.status_code == 422
    assert client.patch("/api/v1/items/NOPE", json={"unit": "kg"}, headers=headers).status_code == 404


def test_warehouses_and_locations(client, bearer, stocked):
    headers = bearer("viewer")
    warehouse = stocked.location.code.split("-")[0]
    assert client.get("/api/v1/warehouses", headers=headers).get_json() == {
        "data": [{"code": warehouse, "name": "测试仓库", "active": True}],
        "next": None,
    }
    rows = client.get(f"/api/v1/locations?warehouse={warehouse}", headers=headers).get_json()["data"]
    assert [(r["code"], r["on_hand"]) for r in rows] == sorted(
        [(stocked.location.code, "10"), (stocked.other.code, "0")]
    )


def test_movements_filters_pages_and_detail(client, bearer, stocked):
    headers = bearer("manager")
    for reference in ("SO-1", "SO-2", "SO-3"):
        body = {"sku": stocked.item.sku, "location": stocked.location.code, "quantity": "1", "reference": reference}
        client.post("/api/v1/stock/issue", json=body, headers=headers)
    issues = client.get("/api/v1/movements?kind=issue&limit=2", headers=headers).get_json()
    assert [m["reference"] for m in issues["data"]] == ["SO-3", "SO-2"]
    rest = client.get(f"/api/v1/movements?kind=issue&limit=2&cursor={issues['next']}", headers=headers).get_json()
    assert [m["reference"] for m in rest["data"]] == ["SO-1"] and rest["next"] is None
    one = client.get("/api/v1/movements?reference=SO-2", headers=headers).get_json()["data"]
    assert len(one) == 1
    detail = client.get(f"/api/v1/movements/{one[0]['id']}", headers=headers).get_json()
    assert {**detail, "reversed_by": None} == {**one[0], "reversed_by": None}
    at_other = client.get(f"/api/v1/movements?location={stocked.other.code}", headers=headers).get_json()
    assert at_other["data"] == []
    assert client.get("/api/v1/movements?kind=theft", headers=headers).status_code == 422
    assert client.get("/api/v1/movements/999999", headers=headers).status_code == 404


def test_reverse_a_movement_once(client, bearer, stocked):
    headers = bearer("manager")
    body = {"sku": stocked.item.sku, "location": stocked.location.code, "quantity": "4"}
    issued = client.post("/api/v1/stock/issue", json=body, headers=headers).get_json()["movement"]
    reversal = client.post(
        f"/api/v1/movements/{issued['id']}/reverse", json={"reason": "picked wrong"}, headers=headers
    )
    assert reversal.status_code == 201
    movement = reversal.get_json()["movement"]
    assert (movement["kind"], movement["reverses"], movement["to_location"], movement["to_balance"]) == (
        "reversal",
        issued["id"],
        stocked.location.code,
        "10",
    )
    assert client.get(f"/api/v1/movements/{issued['id']}", headers=headers).get_json()["reversed_by"] == movement["id"]
    again = client.post(f"/api/v1/movements/{issued['id']}/reverse", json={"reason": "again"}, headers=headers)
    assert again.status_code == 409
    assert again.get_json()["type"].endswith("/already-reversed")
    assert (
        client.post(
            f"/api/v1/movements/{issued['id']}/reverse", json={"reason": "x"}, headers=bearer("clerk")
        ).status_code
        == 403
    )
