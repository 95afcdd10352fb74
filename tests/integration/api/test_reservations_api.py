"""/api/v1/reservations (issue 18): reserve, replay, list, read, cancel and issue over HTTP, and
every hostile request answered with a clear 4xx problem document, never a 500."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Reservation, StockLevel

URL = "/api/v1/reservations"
ONE = [{"sku": "{sku}", "quantity": 1}]


def _held(app, stocked) -> tuple[Decimal, Decimal]:
    with app.app_context():
        row = db.session.execute(
            select(StockLevel.quantity, StockLevel.reserved).where(
                StockLevel.item_id == stocked.item.id, StockLevel.location_id == stocked.location.id
            )
        ).one()
        return row[0], row[1]


def _body(stocked, quantity: object = "4", **extra: object) -> dict[str, object]:
    return {"reference": "SO-9", "lines": [{"sku": stocked.item.sku, "quantity": quantity}], **extra}


def test_a_reservation_answers_201_with_where_each_line_is_held(app, client, bearer, stocked):
    response = client.post(URL, json=_body(stocked), headers=bearer("clerk"))
    assert response.status_code == 201, response.get_json()
    answer = response.get_json()
    assert (answer["status"], answer["reference"]) == ("open", "SO-9")
    [line] = answer["lines"]
    assert (line["sku"], line["location"], line["quantity"], line["outstanding"]) == (
        stocked.item.sku,
        stocked.location.code,
        "4",
        "4",
    )
    assert _held(app, stocked) == (Decimal(10), Decimal(4))
    listed = client.get("/api/v1/stock", query_string={"item": stocked.item.sku}, headers=bearer("viewer"))
    [level] = listed.get_json()["data"]
    assert (level["quantity"], level["reserved"], level["available"]) == ("10", "4", "6")


def test_a_replay_returns_the_original_and_another_body_conflicts(app, client, bearer, stocked):
    headers = {**bearer("clerk"), "Idempotency-Key": "order-9"}
    first = client.post(URL, json=_body(stocked), headers=headers)
    again = client.post(URL, json=_body(stocked), headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.get_json() == first.get_json()
    other = client.post(URL, json=_body(stocked, "5"), headers=headers)
    assert other.status_code == 409
    assert other.get_json()["code"] == "idempotency_conflict"
    assert _held(app, stocked) == (Decimal(10), Decimal(4))


def test_a_short_reservation_is_refused_whole_with_each_short_line(app, client, bearer, stocked, factory):
    body = {
        "reference": "SO-10",
        "lines": [
            {"sku": stocked.item.sku, "quantity": "3", "location": stocked.location.code},
            {"sku": stocked.item.sku, "quantity": "8", "location": stocked.location.code},
        ],
    }
    response = client.post(URL, json=body, headers=bearer())
    assert response.status_code == 409
    assert response.content_type == "application/problem+json"
    problem = response.get_json()
    assert problem["code"] == "reservation_short"
    assert problem["lines"] == [
        {
            "line": 2,
            "sku": stocked.item.sku,
            "location": stocked.location.code,
            "lot": None,
            "requested": "8.000",
            "available": "7.000",
        }
    ]
    assert _held(app, stocked) == (Decimal(10), Decimal(0))


def test_list_show_cancel_and_issue(app, client, bearer, stocked):
    headers = bearer("clerk")
    made = client.post(URL, json=_body(stocked), headers=headers).get_json()
    other = client.post(URL, json={**_body(stocked, "1"), "reference": "SO-OTHER"}, headers=headers).get_json()
    listed = client.get(URL, query_string={"reference": "SO-9", "status": "open"}, headers=bearer("viewer"))
    assert [r["id"] for r in listed.get_json()["data"]] == [made["id"]]
    assert client.get(f"{URL}/{made['id']}", headers=headers).get_json()["lines"] == made["lines"]

    line_id = made["lines"][0]["id"]
    picked = client.post(
        f"{URL}/{made['id']}/issue",
        json={"lines": [{"line_id": line_id, "quantity": "3", "short_reason": "damaged"}]},
        headers=headers,
    )
    assert picked.status_code == 200, picked.get_json()
    answer = picked.get_json()
    assert answer["status"] == "partly_picked"
    [movement] = answer["movements"]
    assert (movement["kind"], movement["reference"], movement["quantity"], movement["from_balance"]) == (
        "issue",
        "SO-9",
        "3",
        "7",
    )
    cancelled = client.post(f"{URL}/{made['id']}/cancel", headers=headers)
    assert cancelled.get_json()["status"] == "cancelled"
    assert _held(app, stocked) == (Decimal(7), Decimal(1))
    again = client.post(f"{URL}/{made['id']}/cancel", headers=headers)
    assert (again.status_code, again.get_json()["code"]) == (409, "reservation_closed")
    full = client.post(f"{URL}/{other['id']}/issue", json={}, headers=headers)
    assert full.get_json()["status"] == "picked"
    assert _held(app, stocked) == (Decimal(6), Decimal(0))


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({"cursor": "99999999999999999999"}, 200),
        ({"cursor": "-1"}, 422),
        ({"cursor": "x"}, 422),
        ({"status": "lost"}, 422),
        ({"limit": "0"}, 422),
        ({"limit": "100000"}, 422),
        ({"reference": "R" * 101}, 422),
    ],
)
def test_hostile_listings_get_a_clear_answer(client, bearer, query, status):
    response = client.get(URL, query_string=query, headers=bearer("viewer"))
    assert response.status_code == status, response.get_json()


def test_pages_of_reservations_follow_the_cursor(client, bearer, stocked):
    for n in range(3):
        client.post(URL, json={**_body(stocked, "1"), "reference": f"SO-P{n}"}, headers=bearer())
    first = client.get(URL, query_string={"limit": 2}, headers=bearer()).get_json()
    rest = client.get(URL, query_string={"limit": 2, "cursor": first["next"]}, headers=bearer()).get_json()
    assert [r["reference"] for r in first["data"] + rest["data"]] == ["SO-P2", "SO-P1", "SO-P0"]
    assert rest["next"] is None


def test_reversing_a_picked_line_can_restore_the_reservation(app, client, bearer, stocked):
    made = client.post(URL, json=_body(stocked), headers=bearer()).get_json()
    picked = client.post(f"{URL}/{made['id']}/issue", json={}, headers=bearer()).get_json()
    movement_id = picked["movements"][0]["id"]
    reversed_ = client.post(
        f"/api/v1/movements/{movement_id}/reverse",
        json={"reason": "wrong order", "restore_reservation": True},
        headers=bearer("manager"),
    )
    assert reversed_.status_code == 201
    assert client.get(f"{URL}/{made['id']}", headers=bearer()).get_json()["status"] == "open"
    assert _held(app, stocked) == (Decimal(10), Decimal(4))


def test_readers_cannot_reserve(app, client, bearer, stocked):
    assert client.post(URL, json=_body(stocked), headers=bearer("viewer")).status_code == 403
    assert client.post(URL, json=_body(stocked), headers=bearer("clerk", scope="read")).status_code == 403
    with app.app_context():
        assert db.session.scalar(select(Reservation.id)) is None


def _fill(value: object, subs: dict[str, object]) -> object:
    """`value` with each "{name}" string replaced by subs[name]."""
    if isinstance(value, dict):
        return {k: _fill(v, subs) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, subs) for v in value]
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return subs.get(value[1:-1], value)
    return value


def _past() -> str:
    return (datetime.now(UTC) - timedelta(days=1)).isoformat()


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"reference": "SO", "lines": [{"sku": "X", "quantity": "-1"}]}, 422),
        ({"reference": "SO", "lines": [{"sku": "X", "quantity": 0}]}, 422),
        ({"reference": "SO", "lines": [{"sku": "X", "quantity": "1e400"}]}, 422),
        ({"reference": "SO", "lines": [{"sku": "X", "quantity": 10**30}]}, 422),
        ({"reference": "SO", "lines": []}, 422),
        ({"reference": "", "lines": [{"sku": "X", "quantity": 1}]}, 422),
        ({"reference": "SO", "lines": [{"sku": "NOPE", "quantity": 1}]}, 404),
        ({"reference": "SO", "lines": [{"sku": "{sku}", "quantity": 1, "location": "NOWHERE"}]}, 404),
        ({"reference": "SO", "lines": [{"sku": "{sku}", "quantity": 1, "lot": "L1"}]}, 422),
        ({"reference": "SO", "lines": [{"sku": "{sku}", "quantity": 1}] * 600}, 422),
        ({"reference": "SO", "lines": [{"sku": "{sku}", "quantity": 1}], "expires_at": "soon"}, 422),
        ({"reference": "SO", "lines": [{"sku": "{sku}", "quantity": 1}], "expires_at": "2031-01-01T00:00:00"}, 422),
        ({"reference": "SO", "lines": [{"sku": "{sku}", "quantity": 1}], "expires_at": "{past}"}, 422),
        (
            {"reference": "SO", "lines": [{"sku": "{sku}", "quantity": 1}], "expires_at": "9999-12-31T23:59:59-14:00"},
            422,
        ),
        ({"reference": "SO", "lines": "all of it"}, 422),
        ([1, 2], 422),
    ],
)
def test_hostile_reservations_get_a_clear_problem_never_a_500(app, client, bearer, stocked, body, status):
    response = client.post(URL, json=_fill(body, {"sku": stocked.item.sku, "past": _past()}), headers=bearer())
    assert response.status_code == status, response.get_json()
    assert response.content_type == "application/problem+json"
    assert _held(app, stocked) == (Decimal(10), Decimal(0))


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/999999/cancel", None, 404),
        ("/99999999999/cancel", None, 404),
        ("/999999/issue", {}, 404),
        ("/{id}/issue", {"lines": [{"line_id": 999999, "quantity": 1}]}, 404),
        ("/{id}/issue", {"lines": [{"line_id": "{line}", "quantity": 5}]}, 409),
        ("/{id}/issue", {"lines": [{"line_id": "{line}", "quantity": -1}]}, 422),
        ("/{id}/issue", {"lines": []}, 422),
        ("/{id}/issue", {"lines": [{"line_id": "{line}", "quantity": 1, "serials": ["S1"]}]}, 422),
    ],
)
def test_hostile_cancels_and_issues_get_a_clear_problem(app, client, bearer, stocked, path, body, status):
    made = client.post(URL, json=_body(stocked), headers=bearer()).get_json()
    path = path.replace("{id}", str(made["id"]))
    kw = {} if body is None else {"json": _fill(body, {"line": made["lines"][0]["id"]})}
    response = client.post(f"{URL}{path}", headers=bearer(), **kw)
    assert response.status_code == status, response.get_json()
    assert response.content_type == "application/problem+json"
    assert _held(app, stocked) == (Decimal(10), Decimal(4))
