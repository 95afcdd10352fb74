"""Labels as ZPL II for Zebra-compatible thermal printers: one ^XA…^XZ format per label, copies
by ^PQ. Text is UTF-8 (^CI28) in a TrueType font downloaded to the printer (Chinese names print as
they read); every data field goes through ^FH, so ^ and ~ in a name cannot end the field or start
a command. An item whose barcode is a GTIN is printed as GS1 (GS1 DataMatrix and GS1-128, AI 01),
which the scan page reads back (app/services/gs1.py); anything else as QR and Code 128."""

from __future__ import annotations

import re
from dataclasses import dataclass

import segno

from app.services.gs1 import VARIABLE_LENGTH_AIS, GS1Data
from app.services.labels import LabelContent

# ^FH's hex indicator: it, ^, ~ and the control characters are written as _XX (UTF-8 bytes). The
# GS1 DataMatrix field, whose own escape character is "_", uses a backslash instead.
HEX_INDICATOR = "_"
MATRIX_HEX_INDICATOR = "\\"
MATRIX_ESCAPE = "_"
MARGIN = 16  # dots: 2 mm at 203 dpi
# Code 128 at subset B: 11 modules a character, 35 for start, check and stop, 20 of quiet zone.
_CODE128_FIXED_MODULES = 55
# GS1-128 bars at least this many dots wide (0.25 mm at 203 dpi). GS1 leaves the X-dimension to
# each application's symbol specification table (General Specifications 5.4.4.1), which ask for
# more still (0.495 mm on trade items); one dot, 0.125 mm, is what a 60 x 40 mm lot label drew and
# no table allows. A label that would need bars so thin goes without: its DataMatrix carries the
# same data.
GS1_128_MIN_MODULE = 2
# In a ^FB block a backslash escapes: "\&" is a line break, "\(" a hyphen, "\\" one backslash
# (ZPL II guide, ^FB). The contract tests' renderer (zebrash) breaks the line at "\&" but does not
# read "\\", so this is checked by tests/unit/test_zpl.py, not by drawing.
BLOCK_ESCAPE = "\\"
# In ^BC data ">" starts a Code 128 command (">5" switches to subset C): ">0" is a ">" itself.
_CODE128_COMMAND = ">"
# GS1-128 (^BC mode D) field data: FNC1 where ">8" stands; the printer drops parentheses (and
# spaces) from what it encodes. So a value is printed as GS1-128 only in GS1's character set 82
# without those and ">"; the DataMatrix carries any value.
_GS1_128_FNC1 = ">8"
_GS1_128_VALUE = re.compile(r"[!\"%&'*+,\-./0-9:;<=?A-Z_a-z]+")
# ECC 200 square symbols: modules across and the data codewords each holds, smallest first.
_MATRIX_SIZES = (
    (10, 3), (12, 5), (14, 8), (16, 12), (18, 18), (20, 22), (22, 30), (24, 36), (26, 44), (32, 62), (36, 86),
    (40, 114), (44, 144), (48, 174), (52, 204), (64, 280), (72, 368), (80, 456), (88, 576), (96, 696), (104, 816),
    (120, 1050), (132, 1304), (144, 1558),
)  # fmt: skip


@dataclass(frozen=True)
class Layout:
    """A label's size in dots (203 dpi: 8 dots a millimetre) and the printer's font file."""

    width: int
    height: int
    font: str


def field_data(text: str, indicator: str = HEX_INDICATOR) -> str:
    """`text` as ^FH field data: ^, ~, the hex indicator and control characters as _XX."""
    return "".join(
        "".join(f"{indicator}{byte:02X}" for byte in char.encode()) if _escaped(char, indicator) else char
        for char in text
    )


def block_data(text: str) -> str:
    """`text` as the field data of a ^FB block: a backslash doubled (a Zebra reads "\\&" in a
    block as a line break and "\\\\" as one backslash), then as ^FH field data."""
    return field_data(text.replace(BLOCK_ESCAPE, BLOCK_ESCAPE * 2))


def _escaped(char: str, indicator: str) -> bool:
    return char in ("^", "~", indicator) or ord(char) < 32 or ord(char) == 127


def fnc1_groups(data: GS1Data) -> list[list[tuple[str, str]]]:
    """The (AI, value) fields of `data` in runs that each follow a FNC1: the first run opens the
    symbol (what makes it GS1), and a variable-length field ends its run when another follows."""
    groups: list[list[tuple[str, str]]] = [[]]
    for ai, value in data.elements():
        if groups[-1] and groups[-1][-1][0] in VARIABLE_LENGTH_AIS:
            groups.append([])
        groups[-1].append((ai, value))
    return groups


def matrix_data(data: GS1Data) -> str:
    """The GS1 DataMatrix field data of ^BX (ECC 200): FNC1 (escape character and 1) before each
    run of fields; a literal escape character doubled."""
    fnc1 = f"{MATRIX_ESCAPE}1"
    text = "".join(
        fnc1 + "".join(ai + value.replace(MATRIX_ESCAPE, MATRIX_ESCAPE * 2) for ai, value in group)
        for group in fnc1_groups(data)
    )
    return field_data(text, MATRIX_HEX_INDICATOR)


def matrix_modules(data: GS1Data) -> int:
    """Modules across the square ECC 200 symbol that holds `data`, counting its codewords as ASCII
    encodation does (a digit pair, any other ASCII character or FNC1: one; a byte above 127: two),
    which a printer's encoder only ever beats."""
    words = sum(1 + _ascii_codewords("".join(ai + value for ai, value in group)) for group in fnc1_groups(data))
    return next((size for size, capacity in _MATRIX_SIZES if capacity >= words), _MATRIX_SIZES[-1][0])


def _ascii_codewords(text: str) -> int:
    words, n = 0, 0
    while n < len(text):
        pair = text[n : n + 2]
        if len(pair) == 2 and pair.isascii() and pair.isdigit():
            words, n = words + 1, n + 2
        else:
            words, n = words + (1 if text[n].isascii() else 2 * len(text[n].encode())), n + 1
    return words


def document(contents: list[LabelContent], *, copies: int, layout: Layout) -> str:
    """Every label as its own ZPL format, each printed `copies` times."""
    return "".join(_label(content, copies, layout) for content in contents)


def _label(content: LabelContent, copies: int, layout: Layout) -> str:
    width, height, font = layout.width, layout.height, layout.font
    square = height * 3 // 8  # the 2D symbol's room, top right
    text_width = width - 2 * MARGIN - square - 8
    title, subtitle = height // 9, height // 13
    bars_at = max(MARGIN + square + 8, MARGIN + 2 * title + subtitle + 16)
    lines = [
        "^XA",
        "^CI28",
        f"^PW{width}",
        f"^LL{height}",
        "^LH0,0",
        f"^FO{MARGIN},{MARGIN}^A@N,{title},{title},{font}^FB{text_width},2,0,L^FH^FD{block_data(content.title)}^FS",
        f"^FO{MARGIN},{MARGIN + 2 * title + 8}^A@N,{subtitle},{subtitle},{font}^FB{text_width},1,0,L"
        f"^FH^FD{block_data(content.subtitle)}^FS",
        f"^FO{width - MARGIN - square},{MARGIN}{_matrix(content, square)}",
        _bars(content, x=MARGIN, y=bars_at, width=width - 2 * MARGIN, height=height - bars_at - MARGIN - 28),
        f"^PQ{copies}",
        "^XZ",
    ]
    return "\n".join(line for line in lines if line) + "\n"


def _matrix(content: LabelContent, room: int) -> str:
    if content.gs1:
        # ECC 200 with the escape character named (firmware defaults differ). The printer sizes
        # the symbol to the data: modules small enough that it and a module of quiet zone each
        # side stay in the room (a GTIN: 16 x 16; a 20-character lot: 22 x 22, which at a GTIN's
        # module size ran off a 60 x 40 mm label, drawn and decoded in tests/contract).
        module = max(2, room // (matrix_modules(content.gs1) + 2))
        fh = f"^FH{MATRIX_HEX_INDICATOR}"
        return f"^BXN,{module},200,,,,{MATRIX_ESCAPE}{fh}^FD{matrix_data(content.gs1)}^FS"
    # QR (^BQ model 2, error correction M, automatic mode), sized the same way: version 1 (21
    # modules) for a short code, more for a long one.
    modules = segno.make_qr(content.code, error="m", boost_error=False).symbol_size(border=0)[0]
    magnification = max(1, min(10, room // (modules + 2)))
    return f"^BQN,2,{magnification}^FH^FDMA,{field_data(content.code)}^FS"


def _bars(content: LabelContent, *, x: int, y: int, width: int, height: int) -> str:
    """GS1-128 (^BC mode D: FNC1 and the parentheses handled by the printer, which prints them in
    the text line) for a GTIN, else Code 128 for ASCII codes; nothing when the code will not fit
    (GS1-128: at bars of GS1_128_MIN_MODULE dots)."""
    found = _bars_data(content)
    if found is None:
        return ""
    data, mode, length = found
    module = min(3, width // (length * 11 + _CODE128_FIXED_MODULES))
    if module < (GS1_128_MIN_MODULE if mode == ",D" else 1) or height < 40:
        return ""
    return f"^FO{x},{y}^BY{module}^BCN,{height},Y,N,N{mode}^FH^FD{field_data(data)}^FS"


def _bars_data(content: LabelContent) -> tuple[str, str, int] | None:
    """The ^BC field data, mode and length in symbol characters, or None for no linear symbol."""
    if content.gs1:
        if not all(_GS1_128_VALUE.fullmatch(value) for _, value in content.gs1.elements()):
            return None
        # Symbol characters: digits pack in pairs (subset C), and each field may need a FNC1 or a
        # change of subset.
        fields = [ai + value for ai, value in content.gs1.elements()]
        length = sum((len(f) + 1) // 2 if f.isdigit() else len(f) for f in fields) + 2 * len(fields)
        return _gs1_128_data(content.gs1), ",D", length
    if content.code.isascii() and content.code.isprintable():
        return content.code.replace(_CODE128_COMMAND, ">0"), "", len(content.code)
    return None


def _gs1_128_data(data: GS1Data) -> str:
    """^BC mode D field data: the fields as "(AI)value", FNC1 (">8") before each run but the first
    (the printer starts the symbol with one): after a variable-length field, a scanner would
    otherwise read the next field as part of it (Zebra's own mode D example writes ">8" there)."""
    return _GS1_128_FNC1.join("".join(f"({ai}){value}" for ai, value in group) for group in fnc1_groups(data))
