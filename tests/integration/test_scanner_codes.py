"""One namespace for everything a scanner reads: SKUs, barcodes and location codes never equal one
another (without regard to case), in the services, in the import, and reported for old rows."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import func, select, text

from app.extensions import db
from app.models import Item, Location
from app.services import codes, imports, items, locations, stock
from app.services.errors import DomainError
from tests.factories import Factory


def test_a_barcode_cannot_be_another_items_sku_or_a_location_code(app_ctx: Flask, factory: Factory) -> None:
    factory.item("BOLT-1")
    shelf = factory.location()
    for barcode, used_by in (("bolt-1", "sku"), (shelf.code.lower(), "location")):
        with pytest.raises(codes.CodeTaken) as caught:
            items.create_item(sku="NUT-1", name="螺母", barcode=barcode)
        assert caught.value.extras == {"field": "barcode", "used_by": used_by}
    assert db.session.scalar(select(func.count()).select_from(Item).where(Item.sku == "NUT-1")) == 0


def test_a_sku_cannot_be_another_items_barcode_and_an_edit_cannot_take_one(app_ctx: Flask, factory: Factory) -> None:
    factory.item("WASHER-1", barcode="6901234567892")
    with pytest.raises(codes.CodeTaken):
        items.create_item(sku="6901234567892", name="垫片")
    other = factory.item("WASHER-2")
    with pytest.raises(codes.CodeTaken):
        items.update_item(sku=other.sku, barcode="washer-1")
    own = items.update_item(sku="WASHER-1", name="平垫片")  # its own barcode is not a clash
    assert own.barcode == "6901234567892"


def test_a_location_code_cannot_be_a_sku_or_a_barcode(app_ctx: Flask, factory: Factory) -> None:
    warehouse = factory.warehouse(code="WHC")
    factory.item("WHC-A-01", barcode="WHC-B-02")
    for code in ("WHC-A-01", "whc-b-02"):
        with pytest.raises(codes.CodeTaken):
            locations.create_location(warehouse=warehouse.code, code=code)
    assert db.session.scalar(select(func.count()).select_from(Location).where(Location.code.like("WHC-%"))) == 0


def test_the_import_refuses_rows_whose_codes_collide(app_ctx: Flask, factory: Factory) -> None:
    factory.item("OLD-1", barcode="690000000001")
    shelf = factory.location()
    content = (
        "sku,name,barcode\n"
        f"NEW-1,新,{shelf.code}\n"  # a barcode that is a location code
        "690000000001,新,\n"  # a SKU that is another item's barcode
        "NEW-3,新,NEW-4\n"
        "NEW-4,新,\n"  # a SKU an earlier row took as its barcode
        "OLD-1,旧,690000000001\n"  # an existing item keeping its own codes
    ).encode()
    checked = imports.check_file(content, "x.csv")
    assert [(e.row, e.field) for e in checked.errors] == [(2, "code_taken"), (3, "code_taken"), (5, "code_taken")]


def test_the_migration_reports_existing_collisions_and_changes_nothing(
    app_ctx: Flask, factory: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    factory.item("DUP-1")
    shelf = factory.location()
    # Rows stored before the namespace was enforced.
    db.session.execute(text("UPDATE items SET barcode = :code WHERE sku = 'DUP-1'"), {"code": shelf.code.lower()})
    db.session.commit()
    downgrade(revision="b7e3c4a1f9d2")
    with caplog.at_level(logging.WARNING, logger="alembic.runtime.migration"):
        upgrade()
    lines = [r.getMessage() for r in caplog.records if "collision" in r.getMessage()]
    assert lines == [f"scanner code collision: {shelf.code.lower()!r} is barcode of item DUP-1; location {shelf.code}"]
    assert db.session.scalar(select(Item.barcode).where(Item.sku == "DUP-1")) == shelf.code.lower()


def _outcome(action: Callable[[], Any]) -> str:
    try:
        action()
    except DomainError as error:
        return error.code
    return "done"


def test_a_sku_in_another_case_picks_in_a_multi_line_pick_as_it_issues_alone(app_ctx: Flask, factory: Factory) -> None:
    item, shelf = factory.item("CASE-1"), factory.location()
    factory.stock(item, shelf, 10)
    sku, code = "case-1", shelf.code.lower()
    single = _outcome(lambda: stock.issue_stock(sku=sku, location=code, quantity=1, user="t"))
    lines = [stock.PickLine(sku, code, 1), stock.PickLine("CASE-1", shelf.code, 1)]
    multi = _outcome(lambda: stock.issue_lines(lines=lines, user="t"))
    # MariaDB compares codes without case, SQLite byte for byte: either way both paths agree.
    assert single == multi
    expected = "done" if db.engine.dialect.name == "mysql" else "unknown_item"
    assert single == expected
