"""Reservation pages (issue 18): available beside on hand, the list, the reserve form (all or
nothing, short lines told with what is available), a reservation's page, cancelling (asked first,
a manager's), pick lists (one or merged, in walking order, with a code /scan takes), picking on
/scan scan by scan (wrong place, wrong item, another order's item, a row twice: told, nothing
written) and finishing (one transaction; the rest kept or released)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.extensions import db
from app.models import Item, Movement, Reservation, ReservationLine, Serial, StockLevel
from app.services import locations, reservations, stock
from app.services.picking import walk_key, walk_orders
from tests.factories import Factory
from tests.integration.web.conftest import Stocked, text_of


def _reserve(app: Flask, reference: str, *lines: tuple[str, Any, str | None]) -> int:
    with app.app_context():
        made = reservations.reserve(
            reference=reference,
            lines=[reservations.ReserveLine(sku, qty, location) for sku, qty, location in lines],
            user="erp",
        )
        return made.id


def _form(reference: str, *lines: tuple[str, str, str]) -> dict[str, str]:
    data = {"reference": reference, "idempotency_key": f"key-{reference}-{len(lines)}"}
    for n, (sku, qty, location) in enumerate(lines):
        data |= {f"lines-{n}-sku": sku, f"lines-{n}-quantity": qty, f"lines-{n}-location": location}
    return data


def _held(app: Flask, sku: str) -> tuple[Decimal, Decimal]:
    with app.app_context():
        on_hand, reserved = db.session.execute(select(Item.on_hand, Item.reserved).where(Item.sku == sku)).one()
        return on_hand, reserved


def _movements(app: Flask) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(Movement)) or 0)


# ---------------------------------------------------------------- available


def test_item_and_location_pages_show_available_beside_on_hand(
    app: Flask, client: FlaskClient, login_as: Any, stocked: Stocked
) -> None:
    _reserve(app, "SO-1", ("SKU-SCREW", "4", None))
    login_as("viewer")
    item_page = text_of(client.get("/items/SKU-SCREW"))
    assert "4 reserved, 6 available" in item_page or "已预留 4，可用 6" in item_page
    listing = client.get("/items?q=SKU-SCREW").get_data(as_text=True)
    assert 'data-label="可用"' in listing and ">6<" in listing.replace(" ", "")
    place = client.get("/locations/WH1-A-01-01").get_data(as_text=True)
    assert ">6<" in place.replace(" ", "")


# ---------------------------------------------------------------- reserving


def test_reserve_form_reserves_every_line_and_opens_the_reservation(
    app: Flask, client: FlaskClient, login_as: Any, stocked: Stocked
) -> None:
    login_as("clerk")
    response = client.post("/reservations/new", data=_form("SO-7", ("sku-screw", "3", "wh1-a-01-01")))
    assert response.status_code == 303
    page = text_of(client.get(response.headers["Location"]))
    assert "SO-7" in page and "WH1-A-01-01" in page
    assert _held(app, "SKU-SCREW") == (Decimal(10), Decimal(3))


def test_reserve_form_refuses_all_when_a_line_is_short_and_tells_what_is_available(
    app: Flask, client: FlaskClient, login_as: Any, stocked: Stocked, factory: Factory
) -> None:
    nut = factory.item("SKU-NUT", name="螺母")
    factory.stock(nut, stocked.shelf, 2)
    login_as("clerk")
    response = client.post(
        "/reservations/new", data=_form("SO-8", ("SKU-SCREW", "3", ""), ("SKU-NUT", "5", "WH1-A-01-01"))
    )
    assert response.status_code == 409
    page = text_of(response)
    assert "第 2 行：仅有 2 可用（要求 5）。" in page
    assert _held(app, "SKU-SCREW")[1] == 0 and _held(app, "SKU-NUT")[1] == 0


@pytest.mark.parametrize("quantity", ["0", "-1", "abc", "1.0001", "1e3", "9" * 40])
def test_reserve_form_refuses_bad_quantities(
    app: Flask, client: FlaskClient, login_as: Any, stocked: Stocked, quantity: str
) -> None:
    login_as("clerk")
    response = client.post("/reservations/new", data=_form("SO-9", ("SKU-SCREW", quantity, "")))
    assert response.status_code == 422
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Reservation)) == 0


def test_reserve_form_tells_an_unknown_sku(app: Flask, client: FlaskClient, login_as: Any, stocked: Stocked) -> None:
    login_as("clerk")
    response = client.post("/reservations/new", data=_form("SO-10", ("NO-SUCH-SKU", "1", "")))
    assert response.status_code == 404
    assert "NO-SUCH-SKU" in text_of(response)


def test_a_viewer_cannot_reserve_and_a_clerk_cannot_cancel(
    app: Flask, client: FlaskClient, login_as: Any, stocked: Stocked
) -> None:
    rid = _reserve(app, "SO-11", ("SKU-SCREW", "2", None))
    login_as("viewer")
    assert client.post("/reservations/new", data=_form("SO-12", ("SKU-SCREW", "1", ""))).status_code == 403
    login_as("clerk")
    assert client.post(f"/reservations/{rid}/cancel").status_code == 403
    assert _held(app, "SKU-SCREW")[1] == 2


def test_writes_without_a_csrf_token_are_refused(app: Flask, make_app: Any, factory: Factory, stocked: Stocked) -> None:
    rid = _reserve(app, "SO-13", ("SKU-SCREW", "2", None))
    strict = make_app(WTF_CSRF_ENABLED=True)
    client = strict.test_client()
    manager = factory.user("manager")
    client.post("/login", data={"username": manager.username, "password": "correct-horse-9"})
    assert client.post(f"/reservations/{rid}/cancel").status_code == 400
    assert client.post("/reservations/new", data=_form("SO-14", ("SKU-SCREW", "1", ""))).status_code == 400
    assert client.post(f"/scan/pick/PICK:{rid}", data={"code": "WH1-A-01-01"}).status_code == 400
    assert _held(app, "SKU-SCREW")[1] == 2


# ---------------------------------------------------------------- the list, a reservation, cancelling


def test_list_filters_by_reference_and_status_newest_first(
    app: Flask, client: FlaskClient, login_as: Any, stocked: Stocked
) -> None:
    first = _reserve(app, "SO-20", ("SKU-SCREW", "1", None))
    second = _reserve(app, "SO-21", ("SKU-SCREW", "1", None))
    with app.app_context():
        reservations.cancel_reservation(reservation_id=first, user="boss")
    login_as("viewer")
    page = client.get("/reservations").get_data(as_text=True)
    assert page.index(f"#{second}<") < page.index(f"#{first}<")
    assert "SO-20" not in text_of(client.get("/reservations?reference=SO-21"))
    opened = text_of(client.get("/reservations?status=open"))
    assert "SO-21" in opened and "SO-20" not in opened
    assert client.get("/reservations?status=<script>&before=x").status_code == 200


def test_cancel_asks_first_then_releases_the_stock(
    app: Flask, client: FlaskClient, login_as: Any, stocked: Stocked
) -> None:
    rid = _reserve(app, "SO-30", ("SKU-SCREW", "4", None))
    login_as("manager")
    question = client.get(f"/reservations/{rid}/cancel")
    assert question.status_code == 200 and "不能撤销" in text_of(question)
    assert _held(app, "SKU-SCREW")[1] == 4
    assert client.post(f"/reservations/{rid}/cancel").status_code == 303
    assert _held(app, "SKU-SCREW")[1] == 0
    again = client.post(f"/reservations/{rid}/cancel", follow_redirects=True)
    assert again.status_code == 200 and "已取消" in text_of(again)
    assert client.get("/reservations/999999").status_code == 404


# ---------------------------------------------------------------- pick lists


def test_walking_order_follows_zone_aisle_level_and_a_warehouse_setting() -> None:
    codes = ["WH1-B-01-01", "WH1-A-10-01", "WH1-A-2-03", "WH1-A-2-01"]
    assert sorted(codes, key=lambda c: walk_key(c, "WH1")) == ["WH1-A-2-01", "WH1-A-2-03", "WH1-A-10-01", "WH1-B-01-01"]
    order = walk_orders("WH1=aisle,zone,level")["WH1"]
    assert sorted(codes, key=lambda c: walk_key(c, "WH1", order)) == [
        "WH1-B-01-01",
        "WH1-A-2-01",
        "WH1-A-2-03",
        "WH1-A-10-01",
    ]


@pytest.fixture
def two_orders(app: Flask, factory: Factory) -> tuple[int, int]:
    """SO-A: 2 bolts at WH1-B-01-01, 1 washer at WH1-A-02-01; SO-B: 3 bolts at WH1-B-01-01."""
    warehouse = factory.warehouse("WH1")
    far = factory.location("WH1-B-01-01", warehouse=warehouse)
    near = factory.location("WH1-A-02-01", warehouse=warehouse)
    bolt, washer = factory.item("PL-BOLT", name="螺栓"), factory.item("PL-WASHER", name="垫圈")
    factory.stock(bolt, far, 10)
    factory.stock(washer, near, 10)
    a = _reserve(app, "SO-A", ("PL-BOLT", "2", None), ("PL-WASHER", "1", None))
    b = _reserve(app, "SO-B", ("PL-BOLT", "3", None))
    return a, b


def test_merged_pick_list_is_in_walking_order_with_a_code(
    app: Flask, client: FlaskClient, login_as: Any, two_orders: tuple[int, int]
) -> None:
    a, b = two_orders
    login_as("clerk")
    response = client.get(f"/reservations/pick-list?ids={a}&ids={b}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.index("WH1-A-02-01") < html.index("WH1-B-01-01")
    assert f"PICK:{a}.{b}" in html and 'class="qr"' in html and "code128" in html
    assert "5" in text_of(response).split("PL-BOLT")[1][:40]
    assert client.get("/reservations/pick-list?ids=x;drop").status_code == 422
    assert client.get("/reservations/pick-list?ids=424242").status_code == 404


# ---------------------------------------------------------------- picking on /scan


class Picker:
    """Posts scans to a pick page, carrying the page's state as a browser would."""

    def __init__(self, client: FlaskClient, code: str) -> None:
        self.client, self.url = client, f"/scan/pick/{code}"
        self.state = self._state(client.get(self.url))

    @staticmethod
    def _state(response: Any) -> str:
        html = response.get_data(as_text=True)
        marker = 'name="state" value="'
        return html[html.index(marker) + len(marker) :].split('"', 1)[0] if marker in html else ""

    def post(self, **data: str) -> Any:
        response = self.client.post(self.url, data={"state": self.state, **data})
        if response.status_code in (200, 422):
            self.state = self._state(response) or self.state
        return response

    def scan(self, code: str) -> Any:
        return self.post(action="scan", code=code)


def test_picking_a_merged_list_confirms_each_row_and_finishing_issues_both_orders(
    app: Flask, client: FlaskClient, login_as: Any, two_orders: tuple[int, int]
) -> None:
    a, b = two_orders
    login_as("clerk")
    picker = Picker(client, f"PICK:{a}.{b}")
    assert picker.scan("PL-BOLT").status_code == 422  # no location scanned yet
    assert "WH1-A-02-01" in text_of(picker.scan("WH1-A-02-01"))
    wrong = picker.scan("PL-BOLT")
    assert wrong.status_code == 422 and "WH1-B-01-01" in text_of(wrong)
    assert picker.scan("PL-WASHER").status_code == 200
    twice = picker.scan("PL-WASHER")
    assert twice.status_code == 422
    assert picker.scan("WH1-B-01-01").status_code == 200
    assert picker.scan("pl-bolt").status_code == 200
    assert _movements(app) == 2  # the two receipts: nothing issued before finishing
    assert picker.post(action="finish", rest="keep").status_code == 303
    with app.app_context():
        assert {r.status for r in db.session.scalars(select(Reservation))} == {"picked"}
        assert db.session.scalar(select(func.sum(StockLevel.reserved))) == 0
    assert _held(app, "PL-BOLT") == (Decimal(5), Decimal(0))
    assert picker.post(action="finish", rest="keep").status_code in (409, 422)
    assert _held(app, "PL-BOLT") == (Decimal(5), Decimal(0))


def test_scanning_another_orders_item_or_an_unknown_code_writes_nothing(
    app: Flask, client: FlaskClient, login_as: Any, factory: Factory, two_orders: tuple[int, int]
) -> None:
    a, _b = two_orders
    other = factory.item("PL-OTHER", name="别单物品")
    with app.app_context():
        place = locations.create_location(warehouse="WH1", code="WH1-C-01-01")
    factory.stock(other, place, 5)
    _reserve(app, "SO-C", ("PL-OTHER", "1", None))
    login_as("clerk")
    picker = Picker(client, f"PICK:{a}")
    assert picker.scan("WH1-B-01-01").status_code == 200
    stranger = picker.scan("PL-OTHER")
    assert stranger.status_code == 422 and "PL-OTHER 不在这张拣货单上" in text_of(stranger)
    unknown = picker.scan("NOPE-404")
    assert unknown.status_code == 422 and "NOPE-404" in text_of(unknown)
    assert picker.scan("WH1-C-01-01").status_code == 422  # a place with nothing on this list
    forged = client.post(f"/scan/pick/PICK:{a}", data={"state": "e30.forged-ü", "action": "finish"})
    assert forged.status_code == 422
    assert client.get("/scan/pick/PICK:abc").status_code == 404
    assert client.get("/scan/pick/PICK:999999").status_code == 404
    assert _movements(app) == 3  # the receipts only


def test_a_short_pick_is_recorded_with_its_reason_and_the_rest_released_by_choice(
    app: Flask, client: FlaskClient, login_as: Any, two_orders: tuple[int, int]
) -> None:
    a, _b = two_orders
    login_as("clerk")
    picker = Picker(client, f"PICK:{a}")
    with app.app_context():
        bolt_line = db.session.scalar(
            select(ReservationLine.id).where(ReservationLine.reservation_id == a).order_by(ReservationLine.id)
        )
    assert picker.post(action="short", row=str(bolt_line), quantity="5", reason="x").status_code == 422
    assert picker.post(action="short", row=str(bolt_line), quantity="1", reason="").status_code == 422
    assert picker.post(action="short", row=str(bolt_line), quantity="1", reason="破损").status_code == 200
    assert picker.post(action="finish", rest="release").status_code == 303
    with app.app_context():
        found = reservations.get_reservation(a)
    assert found.status == "picked"
    bolt = next(line for line in found.lines if line.sku == "PL-BOLT")
    assert (bolt.picked, bolt.released, bolt.short_reason) == (Decimal(1), Decimal(1), "破损")
    assert _held(app, "PL-WASHER") == (Decimal(10), Decimal(0))
    page = text_of(client.get(f"/reservations/{a}"))
    assert "破损" in page and "部分" not in page


def test_a_viewer_cannot_pick(app: Flask, client: FlaskClient, login_as: Any, two_orders: tuple[int, int]) -> None:
    a, _b = two_orders
    login_as("viewer")
    assert client.get(f"/scan/pick/PICK:{a}").status_code == 403
    assert client.post(f"/scan/pick/PICK:{a}", data={"action": "finish"}).status_code == 403


def test_dashboard_counts_open_reservations_and_lines_waiting(
    app: Flask, client: FlaskClient, login_as: Any, two_orders: tuple[int, int]
) -> None:
    login_as("viewer")
    card = client.get("/").get_data(as_text=True).split('id="reservations-waiting"')[1].split("</div></div>")[0]
    assert ">2</a>" in card and "3" in card


def test_a_serial_tracked_line_is_picked_one_serial_label_at_a_time(
    app: Flask, client: FlaskClient, login_as: Any, factory: Factory, stocked: Stocked
) -> None:
    factory.item("PEN-SN", name="序列号笔", barcode="4006381333931", tracking="serial")
    with app.app_context():
        stock.receive_stock(
            sku="PEN-SN", location="WH1-A-01-01", quantity=3, serials=["SN-1", "SN-2", "SN-3"], user="u"
        )
    rid = _reserve(app, "SO-SN", ("PEN-SN", "2", None))
    login_as("clerk")
    picker = Picker(client, f"PICK:{rid}")
    picker.scan("WH1-A-01-01")
    assert "序列号" in text_of(picker.scan("PEN-SN"))  # a plain SKU names no unit
    label = "]C10104006381333931\x1d21"
    assert picker.scan(label + "SN-2").status_code == 200
    assert picker.scan(label + "SN-2").status_code == 422  # the same unit twice
    assert picker.scan(label + "SN-3").status_code == 200
    assert picker.post(action="finish", rest="keep").status_code == 303
    with app.app_context():
        statuses = dict(db.session.execute(select(Serial.serial, Serial.status)).all())
    assert statuses == {"SN-1": "in_stock", "SN-2": "issued", "SN-3": "issued"}


def test_reserve_form_holds_until_the_end_of_the_chosen_day_and_refuses_a_past_one(
    app: Flask, client: FlaskClient, login_as: Any, stocked: Stocked
) -> None:
    login_as("clerk")
    past = client.post("/reservations/new", data=_form("SO-40", ("SKU-SCREW", "1", "")) | {"expires_at": "2020-01-01"})
    assert past.status_code == 422 and "请选择今天或以后的日期。" in text_of(past)
    made = client.post("/reservations/new", data=_form("SO-41", ("SKU-SCREW", "1", "")) | {"expires_at": "2099-03-04"})
    assert made.status_code == 303
    with app.app_context():
        expires = db.session.scalar(select(Reservation.expires_at).where(Reservation.reference == "SO-41"))
    assert expires is not None and (expires.year, expires.month) == (2099, 3) and expires.day in (4, 5)


def test_finishing_a_merged_pick_is_all_or_nothing_when_one_order_was_cancelled_meanwhile(
    app: Flask, client: FlaskClient, login_as: Any, two_orders: tuple[int, int]
) -> None:
    a, b = two_orders
    login_as("clerk")
    picker = Picker(client, f"PICK:{a}.{b}")
    for code in ("WH1-A-02-01", "PL-WASHER", "WH1-B-01-01", "PL-BOLT"):
        assert picker.scan(code).status_code == 200
    with app.app_context():
        reservations.cancel_reservation(reservation_id=b, user="boss")
    refused = picker.post(action="finish", rest="keep")
    assert refused.status_code == 409 and "拣货单已变化" in text_of(refused)
    with app.app_context():
        assert reservations.get_reservation(a).status == "open"
    assert _movements(app) == 2 and _held(app, "PL-BOLT") == (Decimal(10), Decimal(2))
