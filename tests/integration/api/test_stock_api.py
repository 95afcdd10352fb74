"""POST /stock/*: the movements integrators send, their answers, errors and idempotency."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Movement, StockLevel


def _level(app, stocked, location=None) -> Decimal:
    with app.app_context():
        return db.session.scalar(
            select(StockLevel.quantity).where(
                StockLevel.item_id == stocked.item.id, StockLevel.location_id == (location or stocked.location).id
            )
        )


def _issues(app) -> list[Movement]:
    with app.app_context():
        return list(db.session.scalars(select(Movement).where(Movement.kind == "issue").order_by(Movement.id)))


def _body(stocked, quantity: object = "2", **extra: object) -> dict[str, object]:
    return {"sku": stocked.item.sku, "location": stocked.location.code, "quantity": quantity, **extra}


def test_issue_answers_201_with_movement_and_balance(app, client, bearer, stocked):
    body = _body(stocked, "2.5", reference="SO-1001", note="拣货")
    response = client.post("/api/v1/stock/issue", json=body, headers=bearer("clerk"))
    assert response.status_code == 201
    assert response.content_type == "application/json"
    answer = response.get_json()
    assert answer["balance"] == "7.5"
    movement = answer["movement"]
    assert movement["kind"] == "issue"
    assert movement["sku"] == stocked.item.sku
    assert movement["from_location"] == stocked.location.code
    assert movement["to_location"] is None
    assert movement["quantity"] == "2.5"
    assert movement["from_balance"] == "7.5"
    assert (movement["reference"], movement["note"]) == ("SO-1001", "拣货")
    assert movement["user"].startswith("clerk")
    assert _level(app, stocked) == Decimal("7.5")
    assert [m.id for m in _issues(app)] == [movement["id"]]


@pytest.mark.parametrize("quantity", [2, 2.5, "2", " 2.500 "])
def test_quantities_are_accepted_as_strings_or_numbers(app, client, bearer, stocked, quantity):
    response = client.post("/api/v1/stock/issue", json=_body(stocked, quantity), headers=bearer())
    assert response.status_code == 201
    assert _level(app, stocked) == Decimal(10) - Decimal(str(quantity).strip())


@pytest.mark.parametrize(
    "quantity",
    ["NaN", "Infinity", "-inf", "0", 0, -1, "-2", "1e-4", "0.0001", "abc", "", None, True, [1], "1e400"],
)
def test_bad_quantities_are_422_with_the_field(app, client, bearer, stocked, quantity):
    response = client.post("/api/v1/stock/issue", json=_body(stocked, quantity), headers=bearer())
    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    problem = response.get_json()
    assert problem["type"].endswith("/validation-failed")
    assert [e["field"] for e in problem["errors"]] == ["quantity"]
    assert _level(app, stocked) == Decimal(10)


def test_unknown_and_missing_fields_are_listed(client, bearer, stocked):
    body = {"sku": stocked.item.sku, "qty": "1", "location": 5}
    problem = client.post("/api/v1/stock/issue", json=body, headers=bearer()).get_json()
    assert problem["status"] == 422
    assert {e["field"] for e in problem["errors"]} == {"quantity", "qty", "location"}


def test_insufficient_stock_is_409_with_the_facts(app, client, bearer, stocked):
    response = client.post("/api/v1/stock/issue", json=_body(stocked, "12"), headers=bearer())
    assert response.status_code == 409
    problem = response.get_json()
    assert problem["type"] == "https://inventory.invalid/problems/insufficient-stock"
    assert problem["title"] and problem["detail"]
    assert (problem["sku"], problem["location"]) == (stocked.item.sku, stocked.location.code)
    assert Decimal(problem["requested"]) == 12
    assert Decimal(problem["available"]) == 10
    assert _level(app, stocked) == Decimal(10)


def test_unknown_sku_and_location_are_404(client, bearer, stocked):
    headers = bearer()
    missing_item = client.post("/api/v1/stock/issue", json={**_body(stocked), "sku": "NOPE"}, headers=headers)
    assert missing_item.status_code == 404
    assert missing_item.get_json()["type"].endswith("/unknown-item")
    missing_place = client.post("/api/v1/stock/issue", json={**_body(stocked), "location": "WX-9"}, headers=headers)
    assert missing_place.status_code == 404
    assert missing_place.get_json()["location"] == "WX-9"


def test_non_json_body_is_415(client, bearer, stocked):
    response = client.post(
        "/api/v1/stock/issue",
        data="sku=A&quantity=1",
        headers=bearer(),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 415
    assert response.content_type == "application/problem+json"
    assert response.get_json()["status"] == 415


def test_malformed_json_is_422_not_500(client, bearer):
    response = client.post(
        "/api/v1/stock/issue", data=b'{"sku": "A",', headers=bearer(), content_type="application/json"
    )
    assert response.status_code == 422
    assert response.get_json()["errors"]


def test_oversized_body_is_413(client, bearer, stocked):
    body = _body(stocked, note="x" * 300_000)
    response = client.post("/api/v1/stock/issue", json=body, headers=bearer())
    assert response.status_code == 413
    assert response.content_type == "application/problem+json"
    assert response.get_json()["type"].endswith("/request-entity-too-large")


def test_idempotent_replay_returns_the_original_answer_and_writes_nothing(app, client, bearer, stocked):
    headers = {**bearer(), "Idempotency-Key": "pick-42"}
    first = client.post("/api/v1/stock/issue", json=_body(stocked, "3"), headers=headers)
    again = client.post("/api/v1/stock/issue", json=_body(stocked, "3"), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert len(_issues(app)) == 1
    assert _level(app, stocked) == Decimal(7)


def test_idempotency_key_reused_with_another_body_is_409(app, client, bearer, stocked):
    headers = {**bearer(), "Idempotency-Key": "pick-43"}
    assert client.post("/api/v1/stock/issue", json=_body(stocked, "3"), headers=headers).status_code == 201
    response = client.post("/api/v1/stock/issue", json=_body(stocked, "4"), headers=headers)
    assert response.status_code == 409
    assert response.get_json()["type"].endswith("/idempotency-conflict")
    assert _level(app, stocked) == Decimal(7)


def test_another_tokens_request_with_the_same_key_is_its_own(app, client, bearer, stocked):
    first = client.post("/api/v1/stock/issue", json=_body(stocked, "3"), headers={**bearer(), "Idempotency-Key": "k"})
    other = client.post("/api/v1/stock/issue", json=_body(stocked, "2"), headers={**bearer(), "Idempotency-Key": "k"})
    assert first.status_code == other.status_code == 201
    assert other.get_json()["movement"]["id"] != first.get_json()["movement"]["id"]
    assert len(_issues(app)) == 2
    assert _level(app, stocked) == Decimal(5)


def test_receive_adds_stock(app, client, bearer, stocked):
    body = {"sku": stocked.item.sku, "location": stocked.other.code, "quantity": "5"}
    response = client.post("/api/v1/stock/receive", json=body, headers=bearer())
    assert response.status_code == 201
    assert response.get_json()["balance"] == "5"
    assert response.get_json()["movement"]["to_location"] == stocked.other.code
    assert _level(app, stocked, stocked.other) == 5


def test_transfer_moves_between_locations(app, client, bearer, stocked):
    body = {
        "sku": stocked.item.sku,
        "from_location": stocked.location.code,
        "to_location": stocked.other.code,
        "quantity": "4",
    }
    response = client.post("/api/v1/stock/transfer", json=body, headers=bearer())
    assert response.status_code == 201
    movement = response.get_json()["movement"]
    assert (movement["from_balance"], movement["to_balance"]) == ("6", "4")
    assert (_level(app, stocked), _level(app, stocked, stocked.other)) == (6, 4)


def test_adjust_down_records_the_difference_out(app, client, bearer, stocked):
    body = {"sku": stocked.item.sku, "location": stocked.location.code, "counted": "7"}
    response = client.post("/api/v1/stock/adjust", json=body, headers=bearer("manager"))
    assert response.status_code == 201
    movement = response.get_json()["movement"]
    assert (movement["kind"], movement["quantity"], movement["from_location"]) == ("adjust", "3", stocked.location.code)
    assert _level(app, stocked) == 7


def test_issue_lines_is_all_or_nothing(app, client, bearer, factory, stocked):
    second = factory.item()
    factory.stock(second, stocked.other, 1)
    lines = [
        {"sku": stocked.item.sku, "location": stocked.location.code, "quantity": "2"},
        {"sku": second.sku, "location": stocked.other.code, "quantity": "5"},
    ]
    short = client.post("/api/v1/stock/issue-lines", json={"lines": lines}, headers=bearer())
    assert short.status_code == 409
    assert short.get_json()["sku"] == second.sku
    assert _level(app, stocked) == 10
    lines[1]["quantity"] = "1"
    done = client.post("/api/v1/stock/issue-lines", json={"lines": lines, "reference": "PICK-7"}, headers=bearer())
    assert done.status_code == 201
    movements = done.get_json()["movements"]
    assert [(m["sku"], m["from_balance"]) for m in movements] == [(stocked.item.sku, "8"), (second.sku, "0")]


def test_issue_lines_replay_returns_the_same_movements(app, client, bearer, stocked):
    headers = {**bearer(), "Idempotency-Key": "lines-1"}
    body = {"lines": [{"sku": stocked.item.sku, "location": stocked.location.code, "quantity": "1"}] * 2}
    first = client.post("/api/v1/stock/issue-lines", json=body, headers=headers)
    again = client.post("/api/v1/stock/issue-lines", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert _level(app, stocked) == 8


def test_empty_pick_is_422(client, bearer):
    response = client.post("/api/v1/stock/issue-lines", json={"lines": []}, headers=bearer())
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "lines"


def test_stock_list_filters_and_shape(client, bearer, stocked, factory):
    other_item = factory.item()
    factory.stock(other_item, stocked.other, 2)
    headers = bearer("viewer")
    everything = client.get("/api/v1/stock", headers=headers).get_json()
    assert {(r["sku"], r["location"]) for r in everything["data"]} == {
        (stocked.item.sku, stocked.location.code),
        (other_item.sku, stocked.other.code),
    }
    one = client.get(f"/api/v1/stock?location={stocked.other.code}", headers=headers).get_json()
    warehouse = stocked.other.code.split("-")[0]
    assert one == {
        "data": [
            {
                "sku": other_item.sku,
                "location": stocked.other.code,
                "warehouse": warehouse,
                "quantity": "2",
                "lot": None,
                "expiry": None,
                "reserved": "0",
                "available": "2",
            }
        ],
        "next": None,
    }
    by_item = client.get(f"/api/v1/stock?item={stocked.item.sku}", headers=headers).get_json()
    assert [r["quantity"] for r in by_item["data"]] == ["10"]


def test_stock_list_pages_with_a_cursor(client, bearer, factory, stocked):
    for _ in range(2):
        factory.stock(factory.item(), stocked.other, 1)
    headers = bearer("viewer")
    first = client.get("/api/v1/stock?limit=2", headers=headers).get_json()
    assert len(first["data"]) == 2 and first["next"]
    second = client.get(f"/api/v1/stock?limit=2&cursor={first['next']}", headers=headers).get_json()
    assert len(second["data"]) == 1 and second["next"] is None
    assert not {r["sku"] for r in first["data"]} & {r["sku"] for r in second["data"]}


def test_low_stock_lists_items_at_or_below_reorder_point(client, bearer, stocked):
    headers = bearer()
    assert client.get("/api/v1/low-stock", headers=headers).get_json()["data"] == []
    client.post("/api/v1/stock/issue", json=_body(stocked, "8"), headers=headers)
    rows = client.get("/api/v1/low-stock", headers=headers).get_json()["data"]
    assert [(r["sku"], r["on_hand"], r["reorder_point"]) for r in rows] == [(stocked.item.sku, "2", "3")]
