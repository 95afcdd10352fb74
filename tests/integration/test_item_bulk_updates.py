"""Changing many items at once (items.update_items, an import's changed rows): the same rules and
the same result as update_item one by one, all or nothing, written set-wise; and bulk receipts
that total items.on_hand set-wise leave the on-hand triggers working for everyone else."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.exc import ResourceClosedError

from app.models import Item
from app.services import catalog, codes, imports, items, stock, transaction
from app.services.errors import InvalidInput, TrackingLocked, UnknownItem
from app.services.ledger import find_total_mismatches
from app.services.search_keys import search_text

WRITTEN = ("name", "name_pinyin", "name_initials", "search_text", "barcode", "unit", "reorder_point")
WRITTEN += ("reorder_quantity", "description", "tracking", "category_id", "archived")


def _columns(db: Any, sku: str) -> dict[str, Any]:
    row = db.session.execute(select(Item).where(Item.sku == sku)).scalar_one()
    db.session.refresh(row)
    return {name: getattr(row, name) for name in (*WRITTEN, "updated_at")}


def test_many_changes_write_what_update_item_writes_one_by_one(db, factory):
    changes = {
        "name": "十字螺丝刀 PH2",
        "barcode": "6901234567892",
        "reorder_point": "4.5",
        "description": "两行\n说明",
        "category": "工具",
    }
    factory.item(sku="ONE-1"), factory.item(sku="MANY-1")
    items.update_item(sku="ONE-1", **changes)

    assert items.update_items([("MANY-1", {**changes, "barcode": "6901234567885"})]) == 1

    one, many = _columns(db, "ONE-1"), _columns(db, "MANY-1")
    assert many["name_pinyin"] == "shiziluosidaoph2" and many["reorder_point"] == Decimal("4.5")
    assert many["search_text"] == search_text("MANY-1", "十字螺丝刀 PH2", "6901234567885")
    assert {k: v for k, v in many.items() if k not in ("search_text", "barcode", "updated_at")} == {
        k: v for k, v in one.items() if k not in ("search_text", "barcode", "updated_at")
    }
    assert [row.sku for row in catalog.list_items(q="螺丝刀").rows] == ["MANY-1", "ONE-1"]
    assert [row.sku for row in catalog.list_items(q="shizi").rows] == ["MANY-1", "ONE-1"]


def test_unchanged_items_are_not_written(db, factory):
    factory.item(sku="SAME-1", name="扳手", reorder_point=2)
    before = _columns(db, "SAME-1")

    assert items.update_items([("SAME-1", {"name": "扳手", "reorder_point": Decimal(2)})]) == 0

    assert _columns(db, "SAME-1") == before


def test_a_later_change_of_the_same_item_applies_on_top_of_the_earlier_one(db, factory):
    factory.item(sku="TWICE-1", name="旧名")

    items.update_items([("TWICE-1", {"name": "新名"}), ("TWICE-1", {"reorder_point": 3})])

    after = _columns(db, "TWICE-1")
    assert (after["name"], after["reorder_point"]) == ("新名", Decimal(3))


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"tracking": "lot"}, TrackingLocked),  # the item holds stock
        ({"sku": "RENAMED"}, InvalidInput),
        ({"name": "bad\x00name"}, InvalidInput),
        ({"reorder_point": "-1"}, InvalidInput),
        ({"barcode": "TAKEN-BC"}, codes.CodeTaken),  # another item's barcode
        ({"barcode": "OTHER-1"}, codes.CodeTaken),  # another item's SKU
    ],
)
def test_one_refused_change_writes_none_of_them(db, factory, change, error):
    held = factory.item(sku="HELD-1", name="有货")
    factory.item(sku="FREE-1", name="没货")
    factory.item(sku="OTHER-1", barcode="TAKEN-BC")
    factory.stock(held, factory.location(), 5)
    before = (_columns(db, "HELD-1"), _columns(db, "FREE-1"))

    with pytest.raises(error):
        items.update_items([("FREE-1", {"name": "改了"}), ("HELD-1", change)])

    db.session.rollback()
    assert (_columns(db, "HELD-1"), _columns(db, "FREE-1")) == before


def test_a_location_code_or_a_barcode_claimed_twice_is_refused(db, factory):
    shelf = factory.location()
    factory.item(sku="A-1"), factory.item(sku="B-1")

    with pytest.raises(codes.CodeTaken):
        items.update_items([("A-1", {"barcode": shelf.code})])
    with pytest.raises(codes.CodeTaken):
        items.update_items([("A-1", {"barcode": "690000000001"}), ("B-1", {"barcode": "690000000001"})])
    db.session.rollback()
    assert db.session.scalars(select(Item.barcode).where(Item.sku.in_(["A-1", "B-1"]))).all() == [None, None]


def test_an_unknown_sku_is_refused(db, factory):
    factory.item(sku="KNOWN-1")
    with pytest.raises(UnknownItem):
        items.update_items([("KNOWN-1", {"name": "好"}), ("NOT-THERE", {"name": "坏"})])


def test_an_import_changes_its_existing_items_set_wise_and_keeps_their_stock(db, factory):
    manager = factory.user(role="manager").username
    shelf = factory.location()
    for n in range(3):
        factory.item(sku=f"IMP-{n}", name=f"旧名 {n}", reorder_point=1)
    content = "sku,name,reorder_point,location,quantity\n" + "".join(
        f"IMP-{n},新名 {n},{n + 2},{shelf.code},{n + 1}\n" for n in range(3)
    )

    result = imports.commit_import(data=content.encode(), filename="items.csv", user=manager)

    assert (result.items_created, result.items_updated, result.stock_lines) == (0, 3, 3)
    rows = db.session.execute(select(Item.name, Item.reorder_point, Item.on_hand).order_by(Item.sku)).all()
    assert [tuple(row) for row in rows] == [(f"新名 {n}", Decimal(n + 2), Decimal(n + 1)) for n in range(3)]
    assert find_total_mismatches() == []
    assert [row.sku for row in catalog.list_items(q="新名").rows] == ["IMP-0", "IMP-1", "IMP-2"]


def test_the_on_hand_triggers_count_again_once_a_bulk_write_ends_even_a_failed_one(db, factory):
    factory.item(sku="TRIG-1")
    shelf = factory.location()
    with pytest.raises(RuntimeError), transaction.on_hand_triggers_off():
        raise RuntimeError("the bulk write failed")
    stock.receive_lines(lines=[stock.PickLine("TRIG-1", shelf.code, 4)], user="t")
    if db.engine.dialect.name == "mysql":
        assert transaction.connection().execute(text("SELECT @inventory_on_hand_set_wise")).scalar() is None

    stock.receive_stock(sku="TRIG-1", location=shelf.code, quantity=3, user="t")

    assert db.session.scalar(select(Item.on_hand).where(Item.sku == "TRIG-1")) == Decimal(7)
    assert find_total_mismatches() == []


@pytest.mark.mysql
@pytest.mark.parametrize("backend", ["mysql"], indirect=True)
@pytest.mark.parametrize("reset", [True, False], ids=["checkin_reset", "no_reset"])
def test_a_connection_whose_bulk_block_never_cleared_the_variable_comes_back_with_the_triggers_on(db, request, reset):
    """The block's own clear can fail (or never run); the pool's check-in clears it then. Without
    that (the negative control) the next user of the connection would skip the triggers."""
    if not reset:
        event.remove(db.engine, "checkin", transaction._triggers_back_on)
        request.addfinalizer(lambda: event.listen(db.engine, "checkin", transaction._triggers_back_on))
    connection = transaction.connection()
    dbapi = connection.connection.dbapi_connection
    block = transaction.on_hand_triggers_off()
    assert block.__enter__() is True  # left only after the connection went back
    db.session.rollback()
    db.session.remove()  # the connection goes back to the pool
    with pytest.raises(ResourceClosedError):  # the block's own clear comes too late: it fails
        block.__exit__(None, None, None)

    with dbapi.cursor() as cursor:
        cursor.execute("SELECT @inventory_on_hand_set_wise")
        assert cursor.fetchone()[0] == (None if reset else 1)
    if not reset:
        with dbapi.cursor() as cursor:  # leave the pool clean for the next tests
            cursor.execute("SET @inventory_on_hand_set_wise = NULL")
