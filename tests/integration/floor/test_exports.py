"""Exports: streamed CSV and XLSX of items, stock levels and the ledger, filters respected,
formula cells neutralised."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import text, update

from app.extensions import db
from app.models import Item
from app.services import exports
from tests.factories import Factory
from tests.integration.floor.conftest import Stocked


def _csv(response: Any) -> list[list[str]]:
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def _xlsx(response: Any) -> list[list[Any]]:
    book = load_workbook(io.BytesIO(response.get_data()), read_only=True)
    return [list(row) for row in book.worksheets[0].iter_rows(values_only=True)]


@pytest.mark.parametrize("value", ["=1+1", "+cmd", "-2+3", "@SUM(A1)", "\t=x"])
def test_formula_cells_are_neutralised(value: str) -> None:
    assert exports.neutralise(value) == "'" + value
    assert exports.neutralise("螺丝钉") == "螺丝钉"
    assert exports.neutralise(-3) == -3


def test_items_export_neutralises_and_respects_filters(
    client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked, factory: Factory
) -> None:
    factory.item("EVIL-1", name='=HYPERLINK("http://x","点我")')
    login_as("viewer")
    everything = _csv(client.get("/imports/export/items"))
    assert everything[0][:2] == ["SKU", "名称"]
    evil = next(row for row in everything if row[0] == "EVIL-1")
    assert evil[1] == '\'=HYPERLINK("http://x","点我")'
    filtered = _csv(client.get("/imports/export/items?q=SCREW"))
    assert [row[0] for row in filtered[1:]] == ["SKU-SCREW"]


def test_items_export_as_xlsx(
    client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked, factory: Factory
) -> None:
    factory.item("EVIL-2", name="@cmd|' /C calc'!A0")
    login_as("viewer")
    response = client.get("/imports/export/items?format=xlsx")
    assert response.headers["Content-Disposition"] == 'attachment; filename="items.xlsx"'
    rows = _xlsx(response)
    screw = next(row for row in rows if row[0] == "SKU-SCREW")
    assert (screw[1], screw[7]) == ("螺丝钉", 10)
    assert next(row for row in rows if row[0] == "EVIL-2")[1] == "'@cmd|' /C calc'!A0"


def test_stock_levels_export_by_location(
    client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked, factory: Factory
) -> None:
    factory.stock(stocked.item, stocked.other, 4)
    login_as("viewer")
    rows = _csv(client.get("/imports/export/stock?location=WH1-A-01-02"))
    assert rows[1:] == [["SKU-SCREW", "WH1-A-01-02", "WH1", "4.000", "", ""]]
    assert len(_xlsx(client.get("/imports/export/stock?format=xlsx"))) == 3


def test_ledger_export_as_xlsx_with_filters(
    client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked, factory: Factory
) -> None:
    factory.stock(stocked.item, stocked.other, 2, reference="-PO-1")
    login_as("viewer")
    rows = _xlsx(client.get("/movements/export.csv?format=xlsx&location=WH1-A-01-02"))
    assert len(rows) == 2
    assert "'-PO-1" in rows[1]
    csv_rows = _csv(client.get("/movements/export.csv?location=WH1-A-01-02"))
    assert "'-PO-1" in csv_rows[1]


def test_exports_stream_many_pages(app: Flask, factory: Factory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exports, "CHUNK", 1024)
    location = factory.location()
    with app.app_context():
        from app.services import items, stock

        items.create_items([items.check_item(sku=f"P-{n:04d}", name=f"物品{n}") for n in range(1203)])
        stock.receive_lines(lines=[stock.PickLine(f"P-{n:04d}", location.code, 1) for n in range(1203)], user="t")
        chunks = list(exports.csv_chunks(["SKU"], ([r.sku] for r in exports.iter_items())))
        assert len(chunks) > 2  # written out as it goes, not in one piece
        assert "".join(chunks).count("\n") == 1204
        assert sum(1 for _ in exports.iter_stock_levels()) == 1203


def test_anonymous_cannot_export(client: FlaskClient) -> None:
    assert client.get("/imports/export/items").status_code == 302


def test_a_control_character_stored_earlier_never_breaks_an_export(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked
) -> None:
    movement = stocked.receipt
    with app.app_context():
        # Written straight to the database, as rows stored before inputs refused control characters.
        db.session.execute(update(Item).where(Item.sku == "SKU-SCREW").values(name="螺丝\x1b钉\x00"))
        db.session.execute(
            text("UPDATE movements SET note = :note WHERE id = :id"), {"note": "旧\x1b备注", "id": movement.id}
        )
        db.session.commit()
    login_as("viewer")
    ledger = client.get("/movements/export.csv?format=xlsx")
    assert ledger.status_code == 200
    row = next(r for r in _xlsx(ledger) if "旧\ufffd备注" in r)
    assert "螺丝\ufffd钉\ufffd" in row
    items_xlsx = _xlsx(client.get("/imports/export/items?format=xlsx"))
    assert next(r for r in items_xlsx if r[0] == "SKU-SCREW")[1] == "螺丝\ufffd钉\ufffd"
    items_csv = _csv(client.get("/imports/export/items"))
    assert next(r for r in items_csv if r[0] == "SKU-SCREW")[1] == "螺丝\ufffd钉\ufffd"


def test_unwritable_characters_are_replaced_but_tabs_and_newlines_kept() -> None:
    assert exports.neutralise("a\x1bb\x0cc\td\ne") == "a\ufffdb\ufffdc\td\ne"
