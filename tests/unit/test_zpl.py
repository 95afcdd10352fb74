"""ZPL labels read back as a printer would: one ^XA…^XZ format per label with ^PQ copies, UTF-8
text in the configured font, data escaped with ^FH, and GS1 symbols whose data our own scanner
parser reads back into the same fields."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from urllib.parse import unquote

import pytest

from app.services import gs1
from app.services.gs1 import GS1Data
from app.services.labels import LabelContent
from app.services.zpl import Layout, block_data, document, field_data

LAYOUT = Layout(480, 320, "E:NOTOSANSSC.TTF")
PEN = LabelContent("item", "4006381333931", "蓝色圆珠笔 0.5mm", "PEN-BLUE · 支", GS1Data("04006381333931"))
SHELF = LabelContent("location", "WH1-A-01-01", "WH1-A-01-01", "一号仓库 A区")


def _formats(zpl: str) -> list[str]:
    found = re.findall(r"\^XA(.*?)\^XZ", zpl, flags=re.S)
    # Nothing outside the formats but line breaks: a printer would print stray text.
    assert re.sub(r"\^XA.*?\^XZ", "", zpl, flags=re.S).strip() == ""
    return found


def _fields(label: str, command: str) -> list[str]:
    """The ^FD data of every field drawn with `command` (^A@, ^BC, ^BX, ^BQ)."""
    return re.findall(rf"\{command}[^\^]*(?:\^F[BH][^\^]*)*\^FD(.*?)\^FS", label)


def _unhex(data: str, indicator: str = "_") -> str:
    """What ^FH makes of field data: _XX back into the bytes it stands for (UTF-8)."""
    raw = re.sub(rf"{re.escape(indicator)}([0-9A-F]{{2}})", lambda m: f"%{m[1]}", data.replace("%", "%25"))
    return unquote(raw)


def test_gs1_128_is_left_off_when_it_cannot_fit_and_the_datamatrix_stays() -> None:
    crowded = GS1Data("09501101530003", lot="24A-17-XYZ", expiry=date(2027, 3, 31), serial="SN-000123456")
    (label,) = _formats(document([LabelContent("item", "x", "批次", "", crowded)], copies=1, layout=LAYOUT))
    assert "^BC" not in label
    assert gs1.read(_as_scanned(_fields(label, "^BX")[0])) == crowded


def test_one_format_per_label_with_copies_size_and_utf8() -> None:
    formats = _formats(document([PEN, SHELF], copies=3, layout=LAYOUT))
    assert len(formats) == 2
    for label in formats:
        assert "^CI28" in label and "^PW480" in label and "^LL320" in label
        assert re.findall(r"\^PQ(\d+)", label) == ["3"]


def test_names_are_printed_in_the_downloaded_font_as_utf8() -> None:
    (label,) = _formats(document([PEN], copies=1, layout=Layout(800, 400, "R:SIMSUN.TTF")))
    assert re.findall(r"\^A@N,\d+,\d+,([^\^]+)", label) == ["R:SIMSUN.TTF", "R:SIMSUN.TTF"]
    assert [_unhex(text) for text in _fields(label, "^A@")] == ["蓝色圆珠笔 0.5mm", "PEN-BLUE · 支"]
    assert "^PW800" in label and "^LL400" in label


def test_caret_tilde_and_the_hex_indicator_in_data_are_escaped() -> None:
    hostile = LabelContent("item", "A^XZ~JR_1", "名称^XZ~JA_x", "^FS\n", None)
    (label,) = _formats(document([hostile], copies=1, layout=LAYOUT))
    texts = _fields(label, "^A@")
    assert texts == ["名称_5EXZ_7EJA_5Fx", "_5EFS_0A"]
    for data in [*texts, *_fields(label, "^BC"), *_fields(label, "^BQ")]:
        assert "^" not in data and "~" not in data and "\n" not in data
    assert [_unhex(d) for d in _fields(label, "^BC")] == ["A^XZ~JR_1"]
    assert field_data("a_b") == "a_5Fb"


def test_a_code_is_code128_and_qr_and_a_chinese_code_only_qr() -> None:
    (label,) = _formats(document([SHELF], copies=1, layout=LAYOUT))
    assert re.search(r"\^BCN,\d+,Y,N,N\^FH\^FDWH1-A-01-01\^FS", label)
    assert _fields(label, "^BQ") == ["MA,WH1-A-01-01"]
    assert "^BX" not in label
    (chinese,) = _formats(document([LabelContent("location", "仓库一", "仓库一", "")], copies=1, layout=LAYOUT))
    assert "^BC" not in chinese and _fields(chinese, "^BQ") == ["MA,仓库一"]


def test_a_gtin_is_printed_as_gs1_128_and_gs1_datamatrix_that_scan_back() -> None:
    (label,) = _formats(document([PEN], copies=1, layout=LAYOUT))
    assert "^BQ" not in label
    (linear,) = _fields(label, "^BC")
    assert re.search(r"\^BCN,\d+,Y,N,N,D\^FH\^FD", label)  # mode D: GS1-128
    assert gs1.read(_unhex(linear)) == GS1Data("04006381333931")
    assert gs1.read(_as_scanned_128(linear)) == GS1Data("04006381333931")
    (matrix,) = _fields(label, "^BX")
    assert re.search(r"\^BXN,\d+,200,,,,_\^FH\\\^FD", label)  # ECC 200, escape _, hex indicator \
    assert gs1.read(_as_scanned(matrix)) == GS1Data("04006381333931")


@pytest.mark.parametrize(
    "data",
    [
        GS1Data("09501101530003", lot="24A-17", expiry=date(2027, 3, 31), serial="SN_9", quantity=Decimal(12)),
        GS1Data("00000096385074", serial="X/1", lot="L1"),
    ],
)
def test_lot_and_serial_labels_scan_back_into_the_same_fields(data: GS1Data) -> None:
    """Lots and serials (to come) print the same way: GS1Data with their AIs on the label."""
    content = LabelContent("item", data.gtin or "", "批次标签", "", data)
    # 150 x 75 mm: room for GS1-128 with every field at bars of two dots (473 modules across 1,168
    # dots); on smaller labels the DataMatrix alone carries them.
    (label,) = _formats(document([content], copies=2, layout=Layout(1200, 600, "E:NOTOSANSSC.TTF")))
    (linear,) = _fields(label, "^BC")
    assert gs1.read(_as_scanned_128(linear)) == data
    (matrix,) = _fields(label, "^BX")
    assert gs1.read(_as_scanned(matrix)) == data


def _as_scanned(matrix: str) -> str:
    """What a scanner sends for a ^BX field: ]d2 for the leading FNC1, the group separator for
    the others, one _ for a doubled one (after ^FH's backslash escapes)."""
    text = _unhex(matrix, "\\")
    assert text.startswith("_1")
    out, n = "]d2", 2
    while n < len(text):
        if text.startswith("_1", n):
            out, n = out + gs1.GROUP_SEPARATOR, n + 2
        elif text.startswith("__", n):
            out, n = out + "_", n + 2
        else:
            out, n = out + text[n], n + 1
    return out


def _as_scanned_128(linear: str) -> str:
    """What a scanner sends for a ^BC mode D field: ]C1 for the FNC1 the printer starts with, the
    group separator for each ">8", the parentheses (printed, not encoded) gone."""
    return "]C1" + re.sub(r"[()]", "", _unhex(linear)).replace(">8", gs1.GROUP_SEPARATOR)


def test_gs1_128_leaves_out_values_mode_d_would_change_and_code128_escapes_its_command_character() -> None:
    """Mode D drops parentheses and takes ">" for a command: a lot holding them (GS1 allows both)
    is left to the DataMatrix. In plain Code 128 a ">" is written ">0" (">5" would switch to
    subset C)."""
    for lot in ("L(1)", "A>8B", "A>5"):
        data = GS1Data("09501101530003", lot=lot)
        content = LabelContent("lot", data.hri(), "批次", "", data)
        (label,) = _formats(document([content], copies=1, layout=Layout(800, 400, "E:F.TTF")))
        assert "^BC" not in label
        assert gs1.read(_as_scanned(_fields(label, "^BX")[0])) == data
    (label,) = _formats(document([LabelContent("item", "PART>5X", "螺栓", "", None)], copies=1, layout=LAYOUT))
    assert _fields(label, "^BC") == ["PART>05X"]
    assert _fields(label, "^BQ") == ["MA,PART>5X"]


def test_a_backslash_in_a_name_prints_as_itself() -> None:
    """In a ^FB block a Zebra reads "\\&" as a line break and "\\\\" as one backslash: a name's
    backslashes are doubled, so "C:\\&temp" prints as written, on one line."""
    named = LabelContent("item", "X-1", "C:\\&temp\\", "SKU\\1 · 个", None)
    (label,) = _formats(document([named], copies=1, layout=LAYOUT))
    assert [_unhex(text) for text in _fields(label, "^A@")] == ["C:\\\\&temp\\\\", "SKU\\\\1 · 个"]
    assert block_data("\\\\") == "\\\\\\\\" and block_data("a_\\") == "a_5F\\\\"


@pytest.mark.parametrize(
    ("layout", "drawn"),
    [(LAYOUT, False), (Layout(800, 400, "E:F.TTF"), True)],
    ids=["60x40mm", "100x50mm"],
)
def test_gs1_128_is_never_drawn_with_bars_of_one_dot(layout: Layout, drawn: bool) -> None:
    """GTIN, expiry and lot SOON: 319 modules. 448 dots across (60 x 40 mm) would make bars of one
    dot (0.125 mm), below GS1's X-dimensions: left off, the DataMatrix carries the same data; 768
    (100 x 50 mm) make bars of two dots (0.25 mm)."""
    data = GS1Data("04006381333931", lot="SOON", expiry=date(2027, 3, 31))
    (label,) = _formats(document([LabelContent("lot", data.hri(), "牛奶", "LOT SOON", data)], copies=1, layout=layout))
    assert gs1.read(_as_scanned(_fields(label, "^BX")[0])) == data
    assert ("^BC" in label) is drawn
    if drawn:
        assert re.search(r"\^BY2\^BCN,\d+,Y,N,N,D", label)
        assert gs1.read(_as_scanned_128(_fields(label, "^BC")[0])) == data
    # A GTIN alone (165 modules) keeps its GS1-128 at two dots on 60 x 40 mm.
    (item,) = _formats(document([PEN], copies=1, layout=LAYOUT))
    assert re.search(r"\^BY2\^BCN,\d+,Y,N,N,D", item)
