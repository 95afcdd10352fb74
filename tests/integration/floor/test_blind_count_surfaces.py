"""Blind counts stay blind everywhere else too (issue 14, finding 20): while a count is open, a
counter (clerk) reads the system quantity of its lines on no list, ledger, export or API answer; a
manager always does, and the counter does again once the count is cancelled or approved. Places
the count does not cover stay visible."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook

from app.services import counts
from tests.factories import Factory
from tests.integration.floor.conftest import Stocked, text_of

HIDDEN = "盘点期间隐藏"


@pytest.fixture
def counted(app: Flask, factory: Factory, stocked: Stocked) -> int:
    """Under an open count of WH1-A-01-01: SKU-SCREW (10 there; 4 at WH1-A-01-02, not counted)
    and SKU-BOLT (7 there, at or below its reorder point of 50)."""
    factory.stock(stocked.item, stocked.other, 4)
    bolt = factory.item("SKU-BOLT", name="螺栓", reorder_point="50", reorder_quantity="20")
    factory.stock(bolt, stocked.shelf, 7)
    with app.app_context():
        return counts.open_count(user="boss", location=stocked.shelf.code).id


def _close(app: Flask, count_id: int, how: str) -> None:
    with app.app_context():
        if how == "cancel":
            counts.cancel_count(count_id=count_id, user="boss")
        else:
            counts.record_counts(count_id=count_id, user="boss", found={"SKU-SCREW": 10, "SKU-BOLT": 7})
            counts.approve_count(count_id=count_id, user="boss")


def _rows(response: Any) -> list[list[str]]:
    assert response.status_code == 200
    if response.mimetype.endswith("sheet"):
        sheet = load_workbook(io.BytesIO(response.data), read_only=True).active
        return [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    return list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))


def _number(text: str) -> Decimal | None:
    return Decimal(text.replace(",", "")) if text else None


# ---------------------------------------------------------------- web pages


def _pages(client: FlaskClient) -> dict[str, str]:
    """What a person reads on each page that shows a counted quantity."""
    receipt = _receipt_id(client)
    return {
        "items": text_of(client.get("/items?q=SKU")),
        "ledger": text_of(client.get("/movements")),
        "movement": text_of(client.get(f"/movements/{receipt}")),
        "dashboard": text_of(client.get("/")),
        "low-stock": text_of(client.get("/low-stock")),
        "location": text_of(client.get("/locations/WH1-A-01-01")),
    }


def _receipt_id(client: FlaskClient) -> int:
    rows = _rows(client.get("/movements/export.csv?sku=SKU-SCREW&location=WH1-A-01-01"))
    return int(rows[-1][0])  # the oldest line: SKU-SCREW's receipt there


SHOWN = {
    "items": ["14 pcs", "7 pcs"],  # SKU-SCREW's total, SKU-BOLT's
    "ledger": ["WH1-A-01-01: 10", "WH1-A-01-01: 7"],
    "movement": ["变动后结存 10"],
    "dashboard": ["WH1-A-01-01: 10", "WH1-A-01-01: 7"],
    "low-stock": ["7 pcs", "43 pcs"],  # SKU-BOLT's total and the suggested order worked out from it
    "location": ["10 pcs", "7 pcs"],
}


def test_a_counter_reads_no_counted_quantity_on_any_page(
    client: FlaskClient, login_as: Callable[..., Any], counted: int
) -> None:
    login_as("clerk")
    pages = _pages(client)
    for page, texts in SHOWN.items():
        for shown in texts:
            assert shown not in pages[page], (page, shown)
    for page in ("items", "low-stock", "location"):
        assert HIDDEN in pages[page], page
    # What the count does not cover is still there.
    assert "WH1-A-01-02: 4" in pages["ledger"]
    assert "SKU-BOLT" in pages["low-stock"] and "50" in pages["low-stock"]


@pytest.mark.parametrize("how", ["cancel", "approve"])
def test_a_manager_always_and_a_counter_after_the_count_read_every_page(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], counted: int, how: str
) -> None:
    login_as("manager")
    pages = _pages(client)
    for page, texts in SHOWN.items():
        for shown in texts:
            assert shown in pages[page], (page, shown)
    _close(app, counted, how)
    login_as("clerk")
    pages = _pages(client)
    for page, texts in SHOWN.items():
        for shown in texts:
            assert shown in pages[page], (page, shown)
        assert HIDDEN not in pages[page]


# ---------------------------------------------------------------- exports


def _ledger_balances(client: FlaskClient, suffix: str) -> dict[str, list[Decimal | None]]:
    """Balance at destination of SKU-SCREW's receipts, by location (columns: ID, …, To = 6th,
    balance at source = 9th, at destination = 10th)."""
    rows = _rows(client.get(f"/movements/export.csv?sku=SKU-SCREW{suffix}"))
    found: dict[str, list[Decimal | None]] = {}
    for row in rows[1:]:
        found.setdefault(row[6], []).append(_number(row[9]))
    return found


def _stock_levels(client: FlaskClient, suffix: str) -> dict[str, Decimal | None]:
    rows = _rows(client.get(f"/imports/export/stock?sku=SKU-SCREW{suffix}"))
    return {row[1]: _number(row[3]) for row in rows[1:]}


def _item_totals(client: FlaskClient, suffix: str) -> dict[str, Decimal | None]:
    rows = _rows(client.get(f"/imports/export/items?q=SKU{suffix}"))
    return {row[0]: _number(row[7]) for row in rows[1:]}


def _low_stock(client: FlaskClient) -> dict[str, tuple[Decimal | None, Decimal | None]]:
    rows = _rows(client.get("/low-stock/export.csv"))
    return {row[0]: (_number(row[3]), _number(row[5])) for row in rows[1:]}


def _all_exports(client: FlaskClient, suffix: str) -> tuple[Any, ...]:
    return (
        _ledger_balances(client, suffix),
        _stock_levels(client, suffix),
        _item_totals(client, suffix),
        _low_stock(client),
    )


VISIBLE = (
    {"WH1-A-01-01": [Decimal(10)], "WH1-A-01-02": [Decimal(4)]},
    {"WH1-A-01-01": Decimal(10), "WH1-A-01-02": Decimal(4)},
    {"SKU-BOLT": Decimal(7), "SKU-SCREW": Decimal(14)},
    {"SKU-BOLT": (Decimal(7), Decimal(43))},
)
BLIND = (
    {"WH1-A-01-01": [None], "WH1-A-01-02": [Decimal(4)]},
    {"WH1-A-01-01": None, "WH1-A-01-02": Decimal(4)},
    {"SKU-BOLT": None, "SKU-SCREW": None},
    {"SKU-BOLT": (None, None)},
)


@pytest.mark.parametrize("suffix", ["", "&format=xlsx"], ids=["csv", "xlsx"])
def test_exports_hide_counted_quantities_from_a_counter_until_the_count_is_closed(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], counted: int, suffix: str
) -> None:
    login_as("clerk")
    assert _all_exports(client, suffix) == BLIND
    login_as("manager")
    assert _all_exports(client, suffix) == VISIBLE
    _close(app, counted, "cancel")
    login_as("clerk")
    assert _all_exports(client, suffix) == VISIBLE


# ---------------------------------------------------------------- the API


def _headers(factory: Factory, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {factory.token(factory.user(role=role), scope='read')}"}


def _api(client: FlaskClient, headers: dict[str, str]) -> tuple[Any, ...]:
    ledger = client.get("/api/v1/movements?item=SKU-SCREW", headers=headers).get_json()["data"]
    receipt = next(m for m in ledger if m["to_location"] == "WH1-A-01-01")
    one = client.get(f"/api/v1/movements/{receipt['id']}", headers=headers).get_json()
    low = client.get("/api/v1/low-stock", headers=headers).get_json()["data"]
    return (
        # A set: the approved count adds an adjustment line with the same balance.
        sorted({(m["to_location"], m["to_balance"]) for m in ledger}),
        one["to_balance"],
        [(row["sku"], row["on_hand"], row["suggested"]) for row in low],
    )


def test_the_api_hides_counted_balances_and_low_stock_totals_from_a_counter(
    app: Flask, client: FlaskClient, factory: Factory, counted: int
) -> None:
    clerk, manager = _headers(factory, "clerk"), _headers(factory, "manager")
    visible = ([("WH1-A-01-01", "10"), ("WH1-A-01-02", "4")], "10", [("SKU-BOLT", "7", "43")])
    assert _api(client, clerk) == ([("WH1-A-01-01", None), ("WH1-A-01-02", "4")], None, [("SKU-BOLT", None, None)])
    assert _api(client, manager) == visible
    _close(app, counted, "approve")
    assert _api(client, clerk) == visible


# ---------------------------------------------------------------- what a stock form says it did

KEY = re.compile(r'name="idempotency_key"[^>]*value="([^"]+)"')


def _post(client: FlaskClient, kind: str, location: str) -> str:
    page = client.get(f"/movements/{kind}").get_data(as_text=True)
    form = {"sku": "SKU-SCREW", "location": location, "quantity": "1", "idempotency_key": KEY.search(page).group(1)}
    response = client.post(f"/movements/{kind}", data=form, follow_redirects=True)
    assert response.status_code == 200
    return text_of(response)


def test_a_counter_moving_stock_at_a_counted_place_is_not_told_its_balance(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], counted: int
) -> None:
    login_as("clerk")
    assert "已入库 1 pcs 螺丝钉 → WH1-A-01-01。" in _post(client, "receive", "WH1-A-01-01")
    assert "已出库 1 pcs 螺丝钉 ← WH1-A-01-01。" in _post(client, "issue", "WH1-A-01-01")
    assert "已入库 1 pcs 螺丝钉 → WH1-A-01-02，现有 5。" in _post(client, "receive", "WH1-A-01-02")
    login_as("manager")
    assert "已入库 1 pcs 螺丝钉 → WH1-A-01-01，现有 11。" in _post(client, "receive", "WH1-A-01-01")
    _close(app, counted, "cancel")
    login_as("clerk")
    assert "已出库 1 pcs 螺丝钉 ← WH1-A-01-01，剩余 10。" in _post(client, "issue", "WH1-A-01-01")


def test_the_api_and_the_scan_page_tell_a_counter_no_balance_at_a_counted_place(
    app: Flask, client: FlaskClient, factory: Factory, login_as: Callable[..., Any], counted: int
) -> None:
    def issue(headers: dict[str, str], location: str) -> Any:
        body = {"sku": "SKU-SCREW", "location": location, "quantity": "1"}
        response = client.post("/api/v1/stock/issue", json=body, headers=headers)
        assert response.status_code == 201
        return response.get_json()

    def writer(role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {factory.token(factory.user(role=role), scope='write')}"}

    clerk, manager = writer("clerk"), writer("manager")
    told = issue(clerk, "WH1-A-01-01")
    assert (told["balance"], told["movement"]["from_balance"]) == (None, None)
    assert issue(clerk, "WH1-A-01-02")["balance"] == "3"
    picked = client.post(
        "/api/v1/stock/issue-lines",
        json={
            "lines": [{"sku": "SKU-SCREW", "location": loc, "quantity": "1"} for loc in ("WH1-A-01-01", "WH1-A-01-02")]
        },
        headers=clerk,
    ).get_json()["movements"]
    assert [m["from_balance"] for m in picked] == [None, "2"]
    assert issue(manager, "WH1-A-01-01")["balance"] == "7"

    login_as("clerk")
    scanned = client.post("/scan/moves", json={"code": "SKU-SCREW", "mode": "issue", "location": "WH1-A-01-01"})
    assert scanned.get_json()["balance"] == HIDDEN
    _close(app, counted, "cancel")
    assert issue(clerk, "WH1-A-01-01")["balance"] == "5"
    scanned = client.post("/scan/moves", json={"code": "SKU-SCREW", "mode": "issue", "location": "WH1-A-01-01"})
    assert scanned.get_json()["balance"] == "4"


def test_a_transfer_and_a_replay_tell_a_counter_no_balance_at_a_counted_place(
    app: Flask, client: FlaskClient, factory: Factory, counted: int
) -> None:
    """The counted side is read inside the write's transaction, for each side of a transfer, and
    again when an Idempotency-Key replays the write after the count opened."""
    clerk = {"Authorization": f"Bearer {factory.token(factory.user(role='clerk'), scope='write')}"}
    body = {"sku": "SKU-SCREW", "from_location": "WH1-A-01-02", "to_location": "WH1-A-01-01", "quantity": "1"}
    moved = client.post("/api/v1/stock/transfer", json=body, headers=clerk).get_json()["movement"]
    assert (moved["from_balance"], moved["to_balance"]) == ("3", None)
    back = {**body, "from_location": "WH1-A-01-01", "to_location": "WH1-A-01-02"}
    moved = client.post("/api/v1/stock/transfer", json=back, headers=clerk).get_json()["movement"]
    assert (moved["from_balance"], moved["to_balance"]) == (None, "4")

    _close(app, counted, "cancel")
    keyed = {**clerk, "Idempotency-Key": "replay-during-count"}
    issue = {"sku": "SKU-SCREW", "location": "WH1-A-01-01", "quantity": "1"}
    first = client.post("/api/v1/stock/issue", json=issue, headers=keyed)
    assert first.status_code == 201 and first.get_json()["balance"] == "9"
    with app.app_context():
        counts.open_count(user="boss", location="WH1-A-01-01")
    again = client.post("/api/v1/stock/issue", json=issue, headers=keyed)
    assert again.get_json()["movement"]["id"] == first.get_json()["movement"]["id"]
    assert (again.get_json()["balance"], again.get_json()["movement"]["from_balance"]) == (None, None)


# ---------------------------------------------------------------- what a refusal says


def test_a_refusal_at_a_counted_place_does_not_tell_a_counter_the_quantity(
    app: Flask, client: FlaskClient, factory: Factory, login_as: Callable[..., Any], counted: int
) -> None:
    """Asking for 1,000 of the 10 on the counted shelf is refused, with the figure for a manager
    and without it for a counter: "only 10 available" would unblind the count."""
    too_many = {"sku": "SKU-SCREW", "location": "WH1-A-01-01", "quantity": "1000"}
    ten = re.compile(r"(?<![\d.-])10(\.0+)?(?![\d])")  # the 10 on the shelf, not 1000 nor A-01-01

    def api(role: str) -> Any:
        headers = {"Authorization": f"Bearer {factory.token(factory.user(role=role), scope='write')}"}
        response = client.post("/api/v1/stock/issue", json=too_many, headers=headers)
        assert response.status_code == 409 and response.get_json()["code"] == "insufficient_stock"
        return response.get_json()

    assert Decimal(api("manager")["available"]) == 10
    refused = api("clerk")
    assert "available" not in refused and refused["quantity_hidden"] is True and not ten.search(refused["detail"])

    login_as("clerk")
    page = client.get("/movements/issue").get_data(as_text=True)
    form = text_of(client.post("/movements/issue", data={**too_many, "idempotency_key": KEY.search(page).group(1)}))
    assert "盘点期间不显示" in form and not ten.search(form)
    scanned = client.post(
        "/scan/moves", json={"code": "SKU-SCREW", "mode": "issue", "location": "WH1-A-01-01", "quantity": "1000"}
    ).get_json()
    assert "available" not in scanned and not ten.search(scanned["message"])
    pick = {"lines-0-sku": "SKU-SCREW", "lines-0-location": "WH1-A-01-01", "lines-0-quantity": "1000"}
    page = client.get("/movements/pick").get_data(as_text=True)
    picked = text_of(client.post("/movements/pick", data={**pick, "idempotency_key": KEY.search(page).group(1)}))
    assert "第 1 行" in picked and "盘点期间不显示" in picked and not ten.search(picked)

    _close(app, counted, "cancel")
    page = client.get("/movements/issue").get_data(as_text=True)
    form = text_of(client.post("/movements/issue", data={**too_many, "idempotency_key": KEY.search(page).group(1)}))
    assert ten.search(form) and "盘点期间不显示" not in form
