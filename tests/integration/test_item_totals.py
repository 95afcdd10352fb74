"""Each item's on-hand total (items.on_hand, kept by triggers on stock_levels) and its low flag
(items.is_low) follow every stock change, whichever service or statement makes it."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import delete, select

from app.models import CountLine, Item, StockLevel
from app.services import counts, imports, items, stock
from app.services.ledger import find_total_mismatches


def total(db, sku: str) -> tuple[Decimal, bool]:
    """(on_hand, is_low) as the database holds them now, and the totals all reconcile."""
    on_hand, is_low = db.session.execute(select(Item.on_hand, Item.is_low).where(Item.sku == sku)).one()
    assert find_total_mismatches() == []
    return on_hand, bool(is_low)


def test_on_hand_total_follows_receive_issue_transfer_adjust_and_reversal(db, factory):
    item, shelf, bin_ = factory.item(sku="TOT-1", reorder_point=5), factory.location(), factory.location()
    assert total(db, "TOT-1") == (0, True)
    stock.receive_stock(sku="TOT-1", location=shelf.code, quantity=10, user="t")
    assert total(db, "TOT-1") == (10, False)
    stock.issue_stock(sku="TOT-1", location=shelf.code, quantity=3, user="t")
    assert total(db, "TOT-1") == (7, False)
    stock.transfer_stock(sku="TOT-1", from_location=shelf.code, to_location=bin_.code, quantity=4, user="t")
    assert total(db, "TOT-1") == (7, False)
    counted = stock.adjust_stock(sku="TOT-1", location=bin_.code, counted=1, user="t")
    assert total(db, "TOT-1") == (4, True)
    stock.reverse_movement(movement_id=counted.id, user="t", reason="miscounted")
    assert total(db, "TOT-1") == (7, False)
    db.session.execute(delete(StockLevel).where(StockLevel.item_id == item.id, StockLevel.location_id == bin_.id))
    db.session.commit()
    assert total(db, "TOT-1") == (3, True)


def test_on_hand_total_follows_bulk_receipts_picks_imports_and_count_approvals(db, factory):
    manager = factory.user(role="manager").username
    factory.item(sku="BULK-1", reorder_point=2)
    shelf, bin_ = factory.location(), factory.location()
    stock.receive_lines(
        lines=[stock.PickLine("BULK-1", shelf.code, 5), stock.PickLine("BULK-1", bin_.code, 5)], user="t"
    )
    assert total(db, "BULK-1") == (10, False)
    stock.issue_lines(lines=[stock.PickLine("BULK-1", shelf.code, 2), stock.PickLine("BULK-1", bin_.code, 5)], user="t")
    assert total(db, "BULK-1") == (3, False)
    content = f"sku,name,location,quantity\nBULK-1,扳手,{bin_.code},6\nBULK-2,钳子,{shelf.code},4\n".encode()
    imports.commit_import(data=content, filename="items.csv", user=manager)
    assert total(db, "BULK-1") == (9, False) and total(db, "BULK-2") == (4, False)
    count = counts.open_count(location=shelf.code, user=manager)
    lines = db.session.scalars(select(CountLine.id).where(CountLine.count_id == count.id)).all()
    counts.record_counts(count_id=count.id, user=manager, lines=dict.fromkeys(lines, 0))
    counts.approve_count(count_id=count.id, user=manager)
    assert total(db, "BULK-1") == (6, False) and total(db, "BULK-2") == (0, False)


def test_fractional_quantities_keep_the_total_and_the_low_flag_exact(db, factory):
    factory.item(sku="FRAC-1", reorder_point="0.3")
    shelf = factory.location()
    for quantity in ("0.1", "0.2"):
        stock.receive_stock(sku="FRAC-1", location=shelf.code, quantity=quantity, user="t")
    assert total(db, "FRAC-1") == (Decimal("0.3"), True)
    stock.receive_stock(sku="FRAC-1", location=shelf.code, quantity="0.001", user="t")
    assert total(db, "FRAC-1") == (Decimal("0.301"), False)


def test_low_flag_follows_the_reorder_point_and_ignores_untracked_items(db, factory):
    factory.item(sku="RP-1", reorder_point=0)
    factory.stock(factory.item(sku="RP-2", reorder_point=0), factory.location(), 1)
    assert total(db, "RP-1") == (0, False)  # a reorder point of zero is not tracked
    items.update_item(sku="RP-2", reorder_point=1)
    assert total(db, "RP-2") == (1, True)
    items.update_item(sku="RP-2", reorder_point="0.999")
    assert total(db, "RP-2") == (1, False)
