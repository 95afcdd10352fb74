"""Labels: QR and Code 128 as SVG carrying the code the scan page resolves, Chinese names, sizes."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.services import codes, labels
from app.services.errors import InvalidInput
from tests.factories import Factory
from tests.integration.floor.conftest import Stocked, text_of


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
