"""Blind cycle counts: opened by a manager, counted blind, second counts, approval posts stocktakes."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.extensions import db
from app.models import Count, CountLine, Item, Location, Movement, StockLevel
from tests.factories import Factory
from tests.integration.floor.conftest import Stocked, text_of


def _open(client: FlaskClient, **fields: Any) -> Any:
    return client.post("/counts", data={"location": "WH1-A-01-01", "threshold": "0", **fields})


def _count_id(app: Flask) -> int:
    with app.app_context():
        return int(db.session.scalar(select(Count.id).order_by(Count.id.desc())) or 0)


def _qty(app: Flask, count_id: int, sku: str, location: str = "WH1-A-01-01") -> str:
    """The count page's field name for that line."""
    with app.app_context():
        line_id = db.session.scalar(
            select(CountLine.id)
            .join(Item, Item.id == CountLine.item_id)
            .join(Location, Location.id == CountLine.location_id)
            .where(CountLine.count_id == count_id, Item.sku == sku, Location.code == location)
        )
    assert line_id is not None
    return f"qty:{line_id}"


def _level(app: Flask, stocked: Stocked) -> Decimal:
    with app.app_context():
        return db.session.scalar(
            select(StockLevel.quantity).where(
                StockLevel.item_id == stocked.item.id, StockLevel.location_id == stocked.shelf.id
            )
        ) or Decimal(0)


def test_manager_opens_a_count_of_what_the_location_holds(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked
) -> None:
    login_as("manager")
    response = _open(client, note="月末盘点")
    count_id = _count_id(app)
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/counts/{count_id}")
    page = text_of(client.get(f"/counts/{count_id}"))
    assert "SKU-SCREW" in page and "螺丝钉" in page
    assert "月末盘点" in text_of(client.get("/counts"))


def test_clerk_cannot_open_or_approve_but_can_count(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked, factory: Factory
) -> None:
    login_as("clerk")
    assert _open(client).status_code == 403
    manager = factory.user(role="manager")
    with app.app_context():
        from app.services import counts

        count = counts.open_count(location="WH1-A-01-01", user=manager.username)
    assert client.get(f"/counts/{count.id}/review").status_code == 403
    assert client.post(f"/counts/{count.id}/approve").status_code == 403
    assert client.post(f"/counts/{count.id}/entries", data={_qty(app, count.id, "SKU-SCREW"): "9"}).status_code == 303


def test_viewer_sees_no_counts(client: FlaskClient, login_as: Callable[..., Any]) -> None:
    login_as("viewer")
    assert client.get("/counts").status_code == 403


def test_the_count_page_never_shows_the_system_quantity(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked
) -> None:
    login_as("manager")
    _open(client)
    count_id = _count_id(app)
    page = client.get(f"/counts/{count_id}").get_data(as_text=True)
    # The only stock is 10 at the shelf: the counter's page must not carry that figure anywhere.
    assert ">10<" not in page and "10.000" not in page and "系统数量" not in page
    assert "系统数量" in text_of(client.get(f"/counts/{count_id}/review"))


def test_open_count_errors(client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked) -> None:
    login_as("manager")
    unknown = _open(client, location="NOWHERE")
    assert unknown.status_code == 404 and "没有编码为 NOWHERE 的库位" in text_of(unknown)
    empty = _open(client, location="WH1-A-01-02")
    assert empty.status_code == 422 and "那里没有可盘点的物品" in text_of(empty)
    neither = _open(client, location="")
    assert neither.status_code == 422 and "请选择库位" in text_of(neither)
    bad_sku = _open(client, skus="NOPE-1")
    assert bad_sku.status_code == 404 and "NOPE-1" in text_of(bad_sku)


def test_approval_posts_the_variance_linked_to_the_count(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked
) -> None:
    login_as("manager")
    _open(client)
    count_id = _count_id(app)
    client.post(f"/counts/{count_id}/entries", data={_qty(app, count_id, "SKU-SCREW"): "7"})
    review = text_of(client.get(f"/counts/{count_id}/review"))
    assert "−3 pcs" in review  # signed with a true minus, unit beside it
    response = client.post(f"/counts/{count_id}/approve")
    assert response.status_code == 303
    assert _level(app, stocked) == Decimal(7)
    with app.app_context():
        line = db.session.scalar(select(CountLine).where(CountLine.count_id == count_id))
        assert line is not None and line.movement_id is not None
        movement = db.session.get(Movement, line.movement_id)
        assert movement is not None
        assert (movement.kind, movement.quantity, movement.reference) == ("adjust", Decimal(3), f"COUNT-{count_id}")
        assert db.session.get(Count, count_id).status == "approved"  # type: ignore[union-attr]
    again = client.post(f"/counts/{count_id}/approve", follow_redirects=True)
    assert "此盘点已关闭" in text_of(again)


def test_movements_during_the_count_are_kept(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked, factory: Factory
) -> None:
    login_as("manager")
    _open(client)
    count_id = _count_id(app)
    client.post(f"/counts/{count_id}/entries", data={_qty(app, count_id, "SKU-SCREW"): "8"})  # 2 missing at count time
    factory.stock(stocked.item, stocked.shelf, 5)  # a receipt after the count: 15 on hand
    client.post(f"/counts/{count_id}/approve")
    assert _level(app, stocked) == Decimal(13)


def test_approval_waits_for_every_line(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked
) -> None:
    login_as("manager")
    _open(client)
    count_id = _count_id(app)
    page = client.post(f"/counts/{count_id}/approve", follow_redirects=True)
    assert "还有未盘点的行：SKU-SCREW" in text_of(page)
    assert _level(app, stocked) == Decimal(10)


def test_second_count_for_lines_over_the_threshold(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked, factory: Factory
) -> None:
    bolt = factory.item("SKU-BOLT", name="螺栓")
    factory.stock(bolt, stocked.shelf, 20)
    login_as("manager")
    _open(client, threshold="1")
    count_id = _count_id(app)
    client.post(
        f"/counts/{count_id}/entries",
        data={_qty(app, count_id, "SKU-SCREW"): "4", _qty(app, count_id, "SKU-BOLT"): "19"},
    )
    flagged = client.post(f"/counts/{count_id}/recount", follow_redirects=True)
    assert "1 行已要求复盘" in text_of(flagged)
    assert "复盘" in text_of(client.get(f"/counts/{count_id}"))
    assert "还有未盘点的行：SKU-SCREW" in text_of(client.post(f"/counts/{count_id}/approve", follow_redirects=True))
    client.post(f"/counts/{count_id}/entries", data={_qty(app, count_id, "SKU-SCREW"): "10"})
    client.post(f"/counts/{count_id}/approve")
    assert _level(app, stocked) == Decimal(10)
    with app.app_context():
        lines = {ln.item_id: ln for ln in db.session.scalars(select(CountLine).where(CountLine.count_id == count_id))}
        assert (lines[stocked.item.id].first_count, lines[stocked.item.id].second_count) == (4, 10)


def test_a_scanned_item_not_on_the_count_gets_a_line(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked, factory: Factory
) -> None:
    factory.item("SKU-FOUND", name="意外发现", barcode="6900000000017")
    login_as("manager")
    _open(client)
    count_id = _count_id(app)
    client.post(
        f"/counts/{count_id}/entries",
        data={_qty(app, count_id, "SKU-SCREW"): "10", "code": "6900000000017", "quantity": "2"},
    )
    client.post(f"/counts/{count_id}/approve")
    with app.app_context():
        found = db.session.scalar(
            select(StockLevel.quantity)
            .join(CountLine, CountLine.item_id == StockLevel.item_id)
            .where(CountLine.count_id == count_id, StockLevel.location_id == stocked.shelf.id)
            .where(StockLevel.item_id != stocked.item.id)
        )
    assert found == Decimal(2)


def test_bad_counts_are_refused(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked
) -> None:
    login_as("manager")
    _open(client)
    count_id = _count_id(app)
    negative = client.post(
        f"/counts/{count_id}/entries", data={_qty(app, count_id, "SKU-SCREW"): "-1"}, follow_redirects=True
    )
    assert "无效" in text_of(negative) or "数量" in text_of(negative)
    unknown = client.post(f"/counts/{count_id}/entries", data={"code": "NOPE-9"}, follow_redirects=True)
    assert "未知条码 NOPE-9" in text_of(unknown)
    with app.app_context():
        assert db.session.scalar(select(CountLine.first_count).where(CountLine.count_id == count_id)) is None


def test_cancel_closes_without_touching_stock(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked
) -> None:
    login_as("manager")
    _open(client)
    count_id = _count_id(app)
    client.post(f"/counts/{count_id}/entries", data={_qty(app, count_id, "SKU-SCREW"): "1"})
    assert "盘点已取消" in text_of(client.post(f"/counts/{count_id}/cancel", follow_redirects=True))
    assert _level(app, stocked) == Decimal(10)
    assert client.get("/counts/999999").status_code == 404


def test_a_count_of_chosen_items_covers_every_location_holding_them(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked, factory: Factory
) -> None:
    factory.stock(stocked.item, stocked.other, 4)
    login_as("manager")
    _open(client, location="", skus="SKU-SCREW")
    count_id = _count_id(app)
    page = text_of(client.get(f"/counts/{count_id}"))
    assert "WH1-A-01-01" in page and "WH1-A-01-02" in page
    fields = {_qty(app, count_id, "SKU-SCREW"): "10", _qty(app, count_id, "SKU-SCREW", "WH1-A-01-02"): "3"}
    client.post(f"/counts/{count_id}/entries", data=fields)
    client.post(f"/counts/{count_id}/approve")
    with app.app_context():
        other = db.session.scalar(
            select(StockLevel.quantity).where(
                StockLevel.item_id == stocked.item.id, StockLevel.location_id == stocked.other.id
            )
        )
    assert (_level(app, stocked), other) == (Decimal(10), Decimal(3))


def test_an_item_found_during_an_item_count_needs_its_location(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked
) -> None:
    login_as("manager")
    _open(client, location="", skus="SKU-SCREW")
    count_id = _count_id(app)
    asked = client.post(
        f"/counts/{count_id}/entries", data={"code": "SKU-SCREW", "quantity": "1"}, follow_redirects=True
    )
    assert "请说明扫描的物品是在哪个库位找到的" in text_of(asked)
    client.post(f"/counts/{count_id}/entries", data={"code": "SKU-SCREW", "quantity": "2", "location": "WH1-A-01-02"})
    assert "WH1-A-01-02" in text_of(client.get(f"/counts/{count_id}/review"))


def test_sheet_keeps_entries_and_review_filters_variances_without_script(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked, factory: Any
) -> None:
    factory.stock(factory.item("SKU-NUT", name="螺母"), stocked.shelf, 4)
    login_as("manager")
    _open(client)
    count_id = _count_id(app)
    entries = {_qty(app, count_id, "SKU-SCREW"): "7", _qty(app, count_id, "SKU-NUT"): "4"}
    client.post(f"/counts/{count_id}/entries", data=entries)
    sheet = client.get(f"/counts/{count_id}").get_data(as_text=True)
    assert 'value="7"' in sheet and 'value="4"' in sheet  # what the counter entered, shown back
    assert "已盘 2 / 2" in text_of(client.get(f"/counts/{count_id}"))
    with app.app_context():
        before = [(line.first_count, line.first_by, line.counted_at) for line in db.session.scalars(select(CountLine))]
    again = client.post(f"/counts/{count_id}/entries", data=entries, follow_redirects=True)
    assert "没有新的盘点数需要保存" in text_of(again)
    with app.app_context():
        after = [(line.first_count, line.first_by, line.counted_at) for line in db.session.scalars(select(CountLine))]
    assert after == before
    full = text_of(client.get(f"/counts/{count_id}/review"))
    assert full.index("SKU-SCREW") < full.index("SKU-NUT")  # the large variance first
    only = text_of(client.get(f"/counts/{count_id}/review?show=variances"))
    assert "SKU-SCREW" in only and "SKU-NUT" not in only and "只看差异 (1)" in only
