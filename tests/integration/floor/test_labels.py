"""Labels: QR and Code 128 as SVG carrying the code the scan page resolves, Chinese names, sizes."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.extensions import db
from app.models import Lot, Movement, Serial, StockLevel
from app.services import codes, items, labels, stock, zpl
from app.services.codes import UnknownCode
from app.services.errors import InvalidInput
from tests.factories import Factory
from tests.integration.floor.conftest import Stocked, text_of
from tests.integration.web.test_stock_forms import _key


def test_item_labels_encode_the_barcode_or_the_sku(app: Flask, factory: Factory, stocked: Stocked) -> None:
    factory.item("SKU-BAR", name="扳手", barcode="6901234567892")
    with app.app_context():
        bar, screw = labels.item_labels(["SKU-BAR", "SKU-SCREW"])
        assert (bar.code, bar.title, screw.code) == ("6901234567892", "扳手", "SKU-SCREW")
        # What is printed is what a scan resolves back to the item.
        assert codes.resolve_code(bar.code).code == "SKU-BAR"
    assert bar.qr.startswith('<svg class="qr"') and "viewBox" in bar.qr
    assert bar.code128 is not None and bar.code128.startswith('<svg class="code128"') and "<rect" in bar.code128


def test_a_chinese_code_gets_a_qr_but_no_code128(app: Flask) -> None:
    assert labels.code128_svg("螺丝") is None
    assert "<path" in labels.qr_svg("螺丝")


def test_sheet_of_chosen_items_with_copies(client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked) -> None:
    login_as("viewer")
    page = client.get("/labels/print?skus=SKU-SCREW&copies=3&size=sheet")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.count('class="label label-item"') == 3
    assert "size: A4" in html and 'class="sheet"' in html
    assert "螺丝钉" in text_of(page)


def test_a_whole_location_on_a_label_printer(
    client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked
) -> None:
    login_as("viewer")
    page = client.get("/labels/print?location=WH1-A-01-01&size=single")
    html = page.get_data(as_text=True)
    assert len(re.findall(r'class="label label-location"', html)) == 1
    assert len(re.findall(r'class="label label-item"', html)) == 1
    assert "size: 60mm 40mm" in html


def test_unknown_sku_or_location_is_explained(
    client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked
) -> None:
    login_as("viewer")
    missing = client.get("/labels/print?skus=NOPE-1")
    assert missing.status_code == 404 and "没有 SKU 为 NOPE-1 的物品" in text_of(missing)
    assert client.get("/labels/print?location=NOWHERE").status_code == 404
    assert client.get("/labels/print?skus=").status_code == 422


def test_labels_page_needs_sign_in(client: FlaskClient, login_as: Callable[..., Any]) -> None:
    assert client.get("/labels").status_code == 302
    login_as("viewer")
    assert "标签" in text_of(client.get("/labels"))


def test_a_long_code_is_narrowed_to_fit_the_label() -> None:
    short, long = labels.code128_svg("AB-1"), labels.code128_svg("LONG-SKU-" + "X" * 30)
    widths = [float(re.search(r'width="([\d.]+)mm"', svg or "").group(1)) for svg in (short, long)]  # type: ignore[union-attr]
    assert widths[0] < 30 and 40 <= widths[1] <= 44.5  # 40 mm of bars plus the quiet zones


def test_a_request_draws_each_label_once_and_at_most_a_bounded_number_of_them(
    app: Flask, factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    skus = [factory.item(f"LBL-{n:03d}").sku for n in range(labels.MAX_DISTINCT_LABELS + 1)]
    drawn: list[str] = []
    real = labels.qr_svg
    monkeypatch.setattr(labels, "qr_svg", lambda text: drawn.append(text) or real(text))
    with app.app_context():
        sheet = labels.item_labels(skus[:3], copies=100)
        assert len(sheet) == 300 and len(drawn) == 3  # copies reuse the drawing
        with pytest.raises(InvalidInput) as caught:
            labels.item_labels(skus, copies=1)
    assert caught.value.field == "skus" and len(drawn) == 3  # refused before drawing anything


def test_the_labels_page_refuses_too_many_different_labels(
    client: FlaskClient, login_as: Callable[..., Any], factory: Any
) -> None:
    skus = ",".join(factory.item(f"PG-{n:03d}").sku for n in range(labels.MAX_DISTINCT_LABELS + 1))
    login_as("viewer")
    response = client.get("/labels/print", query_string={"skus": skus})
    assert response.status_code == 422


def test_zpl_download_has_one_format_per_label_with_copies_and_the_gtin_as_gs1(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], factory: Factory, stocked: Stocked
) -> None:
    factory.item("SKU-EAN", name="圆珠笔^蓝", barcode="4006381333931")
    login_as("viewer")
    response = client.get("/labels/labels.zpl", query_string={"skus": "SKU-EAN\nSKU-SCREW", "copies": "4"})
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.headers["Content-Disposition"] == 'attachment; filename="labels-items.zpl"'
    zpl = response.get_data(as_text=True)
    formats = re.findall(r"\^XA.*?\^XZ", zpl, flags=re.S)
    assert len(formats) == 2 and all("^PQ4" in f and "^CI28" in f for f in formats)
    assert "^FD圆珠笔_5E蓝^FS" in formats[0]  # the name, its caret escaped
    assert "^BCN,132,Y,N,N,D^FH^FD(01)04006381333931^FS" in formats[0]
    with app.app_context():
        assert codes.resolve_code("(01)04006381333931").code == "SKU-EAN"  # what the label says
    assert "^FDMA,SKU-SCREW^FS" in formats[1] and "^BX" not in formats[1]


def test_zpl_of_a_location_and_the_same_caps_as_the_sheets(
    client: FlaskClient, login_as: Callable[..., Any], factory: Any, stocked: Stocked
) -> None:
    login_as("viewer")
    response = client.get("/labels/labels.zpl", query_string={"location": "WH1-A-01-01", "copies": "9"})
    zpl = response.get_data(as_text=True)
    assert response.headers["Content-Disposition"] == 'attachment; filename="labels-WH1-A-01-01.zpl"'
    assert zpl.count("^XA") == 2 and zpl.count("^PQ1") == 2  # the place and the item it holds
    assert "一号仓库" in zpl and "螺丝钉" in zpl
    missing = client.get("/labels/labels.zpl", query_string={"skus": "NOPE-1"})
    assert missing.status_code == 404 and "没有 SKU 为 NOPE-1 的物品" in text_of(missing)
    too_many = ",".join(factory.item(f"ZP-{n:03d}").sku for n in range(labels.MAX_DISTINCT_LABELS + 1))
    assert client.get("/labels/labels.zpl", query_string={"skus": too_many}).status_code == 422
    assert client.get("/labels/labels.zpl", query_string={"skus": "SKU-SCREW", "copies": "100"}).status_code == 200
    page = client.get("/labels")
    assert 'formaction="/labels/labels.zpl"' in page.get_data(as_text=True)
    assert "下载 ZPL" in text_of(page)


@pytest.fixture
def traced(app: Flask, factory: Factory, stocked: Stocked) -> dict[str, Any]:
    """Lots and serials GS1 cannot carry, 3 of each lot and one of each serial at WH1-A-01-01: ink
    (GTIN) lots "批次1" (Chinese) and "A 1" (spaces), glue (no GTIN) lot "G-01", a drill (no GTIN)
    serial "D-0001", a phone (GTIN) serial "序列 7"; and the labels of each, as the SVG sheet and the
    ZPL file draw them."""
    factory.item("INK-1", name="墨水", barcode="4006381333931", tracking="lot")
    factory.item("GLUE-1", name="胶水", tracking="lot")
    factory.item("DRILL-1", name="电钻", tracking="serial")
    factory.item("PHONE-1", name="手机", barcode="9501101530003", tracking="serial")
    with app.app_context():
        for sku, lot in (("INK-1", "批次1"), ("INK-1", "A 1"), ("GLUE-1", "G-01")):
            stock.receive_stock(sku=sku, location="WH1-A-01-01", quantity=3, lot=lot, expiry="2027-01-31", user="rx")
        stock.receive_stock(sku="DRILL-1", location="WH1-A-01-01", quantity=1, serials=["D-0001"], user="rx")
        stock.receive_stock(sku="PHONE-1", location="WH1-A-01-01", quantity=1, serials=["序列 7"], user="rx")
        lots = {code: lot_id for lot_id, code in db.session.execute(select(Lot.id, Lot.code)).tuples()}
        contents = {
            "批次1": labels.lot_content(lots["批次1"]),
            "A 1": labels.lot_content(lots["A 1"]),
            "G-01": labels.lot_content(lots["G-01"]),
            "D-0001": labels.serial_content("DRILL-1", "D-0001"),
            "序列 7": labels.serial_content("PHONE-1", "序列 7"),
        }
    return {"lots": lots, "contents": contents}


TRACED = [("批次1", "INK-1", "lot"), ("A 1", "INK-1", "lot"), ("G-01", "GLUE-1", "lot")]
SERIALS = [("D-0001", "DRILL-1"), ("序列 7", "PHONE-1")]


def test_labels_gs1_cannot_carry_encode_our_own_lot_or_serial_code_in_both_formats(
    app: Flask, traced: dict[str, Any]
) -> None:
    """No GS1 (it would not scan back): the lot's or serial's own code, ASCII so Code 128 carries it
    too, the same on the SVG sheet and in ZPL, with the lot or serial as text beside it."""
    for value, content in traced["contents"].items():
        assert content.gs1 is None and re.fullmatch(r"(LOT|SN)/[1-9][0-9]*", content.code), content
        assert value in content.subtitle
        (label,) = labels.sheet([content])
        assert label.code == content.code and label.code128 is not None
        zpl_label = zpl.document([content], copies=1, layout=zpl.Layout(480, 320, "E:F.TTF"))
        assert f"^FDMA,{content.code}^FS" in zpl_label and f"^FD{content.code}^FS" in zpl_label
        assert "^BX" not in zpl_label
    assert traced["contents"]["批次1"].code == f"LOT/{traced['lots']['批次1']}"


@pytest.mark.parametrize(("lot", "sku", "_kind"), TRACED)
def test_a_lot_label_gs1_cannot_carry_issues_that_lot_on_the_scan_page(
    app: Flask,
    client: FlaskClient,
    login_as: Callable[..., Any],
    traced: dict[str, Any],
    lot: str,
    sku: str,
    _kind: str,
) -> None:
    login_as("clerk")
    code = traced["contents"][lot].code
    # A scanner set to lower case sends "lot/12": the same lot.
    for scanned in (code, code.lower()):
        body = client.post("/scan/moves", json={"code": scanned, "mode": "issue", "location": "WH1-A-01-01"}).get_json()
        assert (body["status"], body["sku"], body["lot"], body["expiry"], body["gtin"]) == (
            "ok", sku, lot, "2027-01-31", None,
        )  # fmt: skip
    with app.app_context():
        held = db.session.scalar(select(StockLevel.quantity).where(StockLevel.lot_id == traced["lots"][lot]))
        others = db.session.scalars(select(StockLevel.quantity).where(StockLevel.lot_id != traced["lots"][lot]))
        assert held == Decimal(1) and set(others) == {Decimal(3)}  # the other lots untouched


@pytest.mark.parametrize(("serial", "sku"), SERIALS)
def test_a_serial_label_gs1_cannot_carry_issues_that_serial_on_the_scan_page(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], traced: dict[str, Any], serial: str, sku: str
) -> None:
    login_as("clerk")
    code = traced["contents"][serial].code
    body = client.post("/scan/moves", json={"code": code, "mode": "issue", "location": "WH1-A-01-01"}).get_json()
    assert (body["status"], body["sku"], body["serial"], body["quantity"]) == ("ok", sku, serial, "1")
    with app.app_context():
        assert db.session.scalar(select(Serial.status).where(Serial.serial == serial)) == "issued"


def test_our_lot_and_serial_codes_fill_the_stock_forms(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], traced: dict[str, Any]
) -> None:
    """Typed or scanned into the SKU box, the code names the item and fills the lot (or serial)."""
    login_as("clerk")
    for sku_box, quantity in ((traced["contents"]["批次1"].code, "2"), (traced["contents"]["D-0001"].code, "1")):
        form = {
            "idempotency_key": _key(client.get("/movements/issue").get_data(as_text=True)),
            "sku": sku_box,
            "location": "WH1-A-01-01",
            "quantity": quantity,
        }
        assert client.post("/movements/issue", data=form).status_code == 303
    with app.app_context():
        assert db.session.scalar(select(StockLevel.quantity).where(StockLevel.lot_id == traced["lots"]["批次1"])) == 1
        assert db.session.scalar(select(Serial.status).where(Serial.serial == "D-0001")) == "issued"


@pytest.mark.parametrize("scanned", ["LOT/999999", "SN/999999", "LOT/999999999999999999"])
def test_a_lot_or_serial_code_naming_nothing_is_unknown_and_moves_nothing(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], traced: dict[str, Any], scanned: str
) -> None:
    login_as("clerk")
    response = client.post("/scan/moves", json={"code": scanned, "mode": "issue", "location": "WH1-A-01-01"})
    assert response.status_code == 404 and response.get_json()["code"] == "unknown_code"
    with app.app_context():
        with pytest.raises(UnknownCode):
            codes.resolve_item_label(scanned)
        assert codes.resolve_item_label("LOT/0") is None and codes.resolve_item_label("LOT/1x") is None
        assert db.session.scalar(select(func.count()).select_from(Movement).where(Movement.kind == "issue")) == 0


def test_a_barcode_in_the_form_of_our_lot_or_serial_codes_is_refused(app: Flask, traced: dict[str, Any]) -> None:
    """A stored barcode wins when scanned: "LOT/1" as an item's barcode would make lot 1's label
    name that item. SKUs cannot hold "/" at all."""
    with app.app_context():
        for barcode in (traced["contents"]["批次1"].code, "sn/12"):
            with pytest.raises(InvalidInput) as refused:
                items.create_item(sku="BOX-1", name="纸箱", barcode=barcode)
            assert refused.value.field == "barcode"
        assert items.create_item(sku="BOX-1", name="纸箱", barcode="LOT/A-1").barcode == "LOT/A-1"
        assert codes.resolve_code("LOT/A-1").code == "BOX-1"


def test_the_label_pages_of_a_chinese_lot_print_our_code_and_the_lot_as_text(
    client: FlaskClient, login_as: Callable[..., Any], traced: dict[str, Any]
) -> None:
    login_as("viewer")
    lot_id = traced["lots"]["批次1"]
    sheet = client.get(f"/labels/lots/{lot_id}?size=single")
    assert sheet.status_code == 200
    assert f'<div class="code">LOT/{lot_id}</div>' in sheet.get_data(as_text=True)
    assert "INK-1 · LOT 批次1 · EXP 2027-01-31" in text_of(sheet)
    printed = client.get(f"/labels/lots/{lot_id}.zpl").get_data(as_text=True)
    assert f"^FDLOT/{lot_id}^FS" in printed and f"^FDMA,LOT/{lot_id}^FS" in printed and "^BX" not in printed
