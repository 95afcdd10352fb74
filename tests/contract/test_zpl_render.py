"""Our ZPL labels drawn by a ZPL renderer and read back by a barcode decoder (issue 17): every
symbol on an item, lot, serial and location label decodes; a GS1 one, through our scanner parser
(gs1.read), into the same GTIN, lot, expiry and serial, with or without the scanner's symbology
identifier; the others into the code the scan page resolves. Lots and serials GS1 cannot carry (a
Chinese lot, one with spaces, an item without a GTIN) scan back through the app's own resolution
into the same item and lot or serial. The name and the line under it are drawn, and no symbol runs
into another, into the text or off the label."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Lot
from app.services import codes, gs1, labels, stock
from app.services.gs1 import GS1Data
from app.services.labels import LabelContent
from app.services.zpl import Layout, document
from tests.contract.conftest import Box, Raster, Renderer, Symbol

FONT = "E:NOTOSANSSC.TTF"
LAYOUTS = pytest.mark.parametrize(
    "layout",
    [Layout(480, 320, FONT), Layout(800, 400, FONT)],  # 60 x 40 mm (the default), 100 x 50 mm
    ids=["60x40mm", "100x50mm"],
)
# What is drawn does not depend on the database; the contents' queries run on both backends in
# tests/integration.
SQLITE = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
COMMANDS = {"^BX": "DataMatrix", "^BC": "Code128", "^BQ": "QRCode"}
GS1_IDENTIFIERS = {"DataMatrix": "]d2", "Code128": "]C1"}
PLAIN_IDENTIFIERS = {"QRCode": "]Q1", "Code128": "]C0"}
EDGE = 8  # dots (1 mm): how far inside the label's edges a symbol stays
# 49 characters: a QR code of version 4 (33 modules), no room for Code 128. A barcode, not a SKU:
# the SKU is also printed as text, and a word wider than its ^FB block a Zebra hyphenates onto the
# next line, which the renderer does not (it draws on, over the symbol).
LONG_CODE = "CABLE-USB-C-to-USB-A-2m-black-braided-fast-charge"


@pytest.fixture
def contents(app: Any, factory: Any) -> dict[str, Any]:
    """Labels as the app builds them from the database: a lot-tracked pen (GTIN) with a lot code
    as long as GS1 allows (20), a serial-tracked phone (GTIN) with a 20-character serial, a part
    whose SKU holds a ">" and no barcode, a cable with a long (not GTIN) barcode, a serial-tracked
    drill without a GTIN, all on shelf WH1-A-01-01. Then the lots and serials GS1 cannot carry: the
    pen's lots "批次1" and "A 1 B" (Chinese, spaces), a lot of glue without a GTIN, the drill's
    serial, and a serial "序列 7" of the phone, each with the item and lot or serial it must scan
    back as."""
    shelf = factory.location("WH1-A-01-01", warehouse=factory.warehouse("WH1", name="一号仓库"))
    factory.item(
        "PEN-BLUE", name="蓝色圆珠笔 0.5mm", barcode="4006381333931", unit="支", tracking="lot", requires_expiry=True
    )
    factory.item("PHONE-1", name="手机 Model X", barcode="9501101530003", tracking="serial")
    factory.item("PART>5X", name="六角螺栓 M8")
    factory.item("CABLE-1", name="数据线", barcode=LONG_CODE)
    factory.item("DRILL-1", name="电钻", tracking="serial")
    with app.app_context():
        stock.receive_stock(
            sku="PEN-BLUE", location=shelf.code, quantity=5, lot="2026-0001-ABCDEFGHIJ", expiry="2027-03-31", user="rx"
        )
        stock.receive_stock(sku="PHONE-1", location=shelf.code, quantity=1, serials=["SN-2026-000000012345"], user="rx")
        stock.receive_stock(sku="PART>5X", location=shelf.code, quantity=3, user="rx")
        stock.receive_stock(sku="CABLE-1", location=shelf.code, quantity=3, user="rx")
        stock.receive_stock(sku="DRILL-1", location=shelf.code, quantity=1, serials=["D-0001"], user="rx")
        first_lot = db.session.scalar(select(Lot.id))
        location = labels.location_contents("WH1-A-01-01")
        factory.item("GLUE-1", name="胶水", tracking="lot")
        for sku, lot in (("PEN-BLUE", "批次1"), ("PEN-BLUE", "A 1 B"), ("GLUE-1", "G-01")):
            stock.receive_stock(sku=sku, location=shelf.code, quantity=2, lot=lot, expiry="2027-01-31", user="rx")
        stock.receive_stock(sku="PHONE-1", location=shelf.code, quantity=1, serials=["序列 7"], user="rx")
        lot_ids = dict(db.session.execute(select(Lot.code, Lot.id)).tuples().all())
        return {
            "item": labels.item_contents(["PEN-BLUE"])[0],
            "lot": labels.lot_content(first_lot),
            "serial": labels.serial_content("PHONE-1", "SN-2026-000000012345"),
            "location": location,
            "traced": [
                (labels.lot_content(lot_ids["批次1"]), ("PEN-BLUE", "批次1", None)),
                (labels.lot_content(lot_ids["A 1 B"]), ("PEN-BLUE", "A 1 B", None)),
                (labels.lot_content(lot_ids["G-01"]), ("GLUE-1", "G-01", None)),
                (labels.serial_content("DRILL-1", "D-0001"), ("DRILL-1", None, "D-0001")),
                (labels.serial_content("PHONE-1", "序列 7"), ("PHONE-1", None, "序列 7")),
            ],
        }


def _formats(zpl: str) -> list[str]:
    return re.findall(r"\^XA.*?\^XZ", zpl, flags=re.S)


def _text_boxes(label: str) -> list[Box]:
    """Where each ^A@ text field may draw: its ^FO origin, its ^FB width and lines."""
    fields = re.findall(r"\^FO(\d+),(\d+)\^A@N,(\d+),\d+,[^\^]+\^FB(\d+),(\d+)", label)
    return [Box(int(x), int(y), int(x) + int(w), int(y) + int(h) * int(n)) for x, y, h, w, n in fields]


def _check_label(raster: Raster, label: str, content: LabelContent) -> None:
    symbols = raster.symbols()
    drawn = sorted(COMMANDS[command] for command in re.findall(r"\^B[XCQ]", label))
    assert sorted(s.format for s in symbols) == drawn, f"drawn {drawn}, decoded {symbols}"
    for symbol in symbols:
        if content.gs1:
            assert symbol.scanned.startswith(GS1_IDENTIFIERS[symbol.format])
            assert gs1.read(symbol.scanned) == content.gs1
            if content.gs1.gtin:  # a scanner set to send no identifier: the GTIN first marks it
                assert gs1.read(symbol.text) == content.gs1
        else:
            assert symbol.scanned == PLAIN_IDENTIFIERS[symbol.format] + content.code
            assert gs1.read(symbol.scanned) is None
        inside = Box(EDGE, EDGE, raster.width - EDGE, raster.height - EDGE)
        assert (symbol.box.left, symbol.box.top) >= (inside.left, inside.top), symbol
        assert (symbol.box.right, symbol.box.bottom) <= (inside.right, inside.bottom), symbol
        assert not any(symbol.box.overlaps(other.box) for other in symbols if other is not symbol), symbols
    title, subtitle = _text_boxes(label)
    for box in (title, subtitle):
        assert raster.ink(box) > 50, f"nothing drawn in {box}"
        assert not any(box.overlaps(symbol.box) for symbol in symbols), (box, symbols)


def _render(renderer: Renderer, contents: list[LabelContent], layout: Layout) -> list[list[Symbol]]:
    """Each label's decoded symbols, once every label is checked."""
    zpl = document(contents, copies=1, layout=layout)
    formats = _formats(zpl)
    rasters = renderer.render(zpl, width=layout.width, height=layout.height, font=layout.font)
    assert len(rasters) == len(formats) == len(contents)
    for raster, label, content in zip(rasters, formats, contents, strict=True):
        assert (raster.width, raster.height) == (layout.width, layout.height)
        _check_label(raster, label, content)
    return [raster.symbols() for raster in rasters]


@SQLITE
@LAYOUTS
def test_an_item_label_reads_back_as_its_gtin(zpl_renderer: Renderer, contents: Any, layout: Layout) -> None:
    assert contents["item"].gs1 == GS1Data("04006381333931")
    _render(zpl_renderer, [contents["item"]], layout)


@SQLITE
@LAYOUTS
def test_a_lot_label_reads_back_as_gtin_expiry_and_lot(zpl_renderer: Renderer, contents: Any, layout: Layout) -> None:
    """GS1-128 of GTIN, expiry and a 20-character lot is 484 modules: bars of one dot even on
    100 x 50 mm (768 dots across), below any GS1 X-dimension, so it is left off and the DataMatrix
    carries the data."""
    assert contents["lot"].gs1 == GS1Data("04006381333931", lot="2026-0001-ABCDEFGHIJ", expiry=date(2027, 3, 31))
    [symbols] = _render(zpl_renderer, [contents["lot"]], layout)
    assert [s.format for s in symbols] == ["DataMatrix"]


@SQLITE
@LAYOUTS
def test_a_serial_label_reads_back_as_gtin_and_serial(zpl_renderer: Renderer, contents: Any, layout: Layout) -> None:
    assert contents["serial"].gs1 == GS1Data("09501101530003", serial="SN-2026-000000012345")
    _render(zpl_renderer, [contents["serial"]], layout)


@SQLITE
@LAYOUTS
def test_lots_and_serials_gs1_cannot_carry_scan_back_into_the_same_fields(
    app: Any, zpl_renderer: Renderer, contents: Any, layout: Layout
) -> None:
    """A Chinese lot, a lot with spaces, a lot and a serial of items without a GTIN, a serial with
    Chinese and a space: GS1 carries none of them (gs1.read refused "批次1"; /scan refused AI 21
    without a GTIN). Their symbols carry our own lot or serial code instead, and every symbol,
    scanned as a scanner without symbology identifiers sends it, resolves through the app's own
    scan resolution (codes.resolve_code, what /scan and the counts call; resolve_item_label, what
    the stock forms call) into the same item and lot or serial; the text says them as they are."""
    traced = contents["traced"]
    decoded = _render(zpl_renderer, [content for content, _ in traced], layout)
    with app.app_context():
        for (content, (sku, lot, serial)), symbols in zip(traced, decoded, strict=True):
            assert content.gs1 is None and content.code.startswith(("LOT/", "SN/"))
            assert f"{sku} · " in content.subtitle and (lot or serial) in content.subtitle
            assert {s.format for s in symbols} == {"QRCode", "Code128"}, symbols
            for symbol in symbols:
                for resolved in (codes.resolve_code(symbol.text), codes.resolve_item_label(symbol.text)):
                    assert resolved is not None and (resolved.kind, resolved.code) == ("item", sku)
                    assert resolved.gs1 is not None
                    assert (resolved.gs1.lot, resolved.gs1.serial) == (lot, serial)
                    assert resolved.gs1.expiry == (date(2027, 1, 31) if lot else None)


@SQLITE
@LAYOUTS
def test_a_location_label_and_its_items_read_back_as_their_codes(
    zpl_renderer: Renderer, contents: Any, layout: Layout
) -> None:
    """The shelf's own label (QR and Code 128 of its code), then one per item on it: the pen and
    the phone as GS1, the drill and the part by their SKUs (the part's ">" Code 128 on a Zebra takes
    for a command), the cable by a QR code grown to hold its long barcode."""
    shelf, *items = contents["location"]
    assert shelf.code == "WH1-A-01-01" and shelf.gs1 is None
    assert [item.code for item in items] == [LONG_CODE, "DRILL-1", "PART>5X", "4006381333931", "9501101530003"]
    _render(zpl_renderer, contents["location"], layout)


@pytest.mark.parametrize(
    "data",
    [
        GS1Data("09501101530003", lot="24A-17", expiry=date(2027, 3, 31), serial="SN-9"),
        GS1Data("00000096385074", lot="L1", serial="X/1"),
        # GS1 allows "(" and ">", which ^BC mode D would drop or take for commands: DataMatrix only.
        GS1Data("09501101530003", lot="A(1)>8", serial="S>5"),
    ],
)
def test_a_lot_and_serial_together_read_back_as_separate_fields(zpl_renderer: Renderer, data: GS1Data) -> None:
    """Two variable-length fields in one symbol (a serial of a lot, to come): the lot must end
    with FNC1, or a scanner reads the serial as part of the lot. 100 x 50 mm: GS1-128 fits too."""
    content = LabelContent("serial", data.hri(), "批次序列号", f"SN {data.serial}", data)
    _render(zpl_renderer, [content], Layout(800, 400, FONT))


def test_zpl_in_names_and_codes_is_printed_not_obeyed(zpl_renderer: Renderer) -> None:
    """^ and ~ in a name or code (sent escaped with ^FH) neither end the label nor start a command:
    one label comes out, and its symbols carry the code as it is."""
    hostile = LabelContent("item", "A^XZ~JR_1", "名称^XZ~JA_x", "^FS^XA^FDx", None)
    _render(zpl_renderer, [hostile], Layout(480, 320, FONT))
