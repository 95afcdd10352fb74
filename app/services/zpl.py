"""Labels as ZPL II for Zebra-compatible thermal printers: one ^XA…^XZ format per label, copies
by ^PQ. Text is UTF-8 (^CI28) in a TrueType font downloaded to the printer (Chinese names print as
they read); every data field goes through ^FH, so ^ and ~ in a name cannot end the field or start
a command. An item whose barcode is a GTIN is printed as GS1 (GS1 DataMatrix and GS1-128, AI 01),
which the scan page reads back (app/services/gs1.py); anything else as QR and Code 128."""

from __future__ import annotations

from dataclasses import dataclass

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


def _escaped(char: str, indicator: str) -> bool:
    return char in ("^", "~", indicator) or ord(char) < 32 or ord(char) == 127


def matrix_data(data: GS1Data) -> str:
    """The GS1 DataMatrix field data of ^BX (ECC 200): FNC1 first (what makes it GS1), the fields,
    FNC1 after each variable-length one that another follows; a literal escape character doubled."""
    fnc1 = f"{MATRIX_ESCAPE}1"
    text, fields = fnc1, data.elements()
    for n, (ai, value) in enumerate(fields):
        text += ai + value.replace(MATRIX_ESCAPE, MATRIX_ESCAPE * 2)
        if ai in VARIABLE_LENGTH_AIS and n < len(fields) - 1:
            text += fnc1
    return field_data(text, MATRIX_HEX_INDICATOR)


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
        f"^FO{MARGIN},{MARGIN}^A@N,{title},{title},{font}^FB{text_width},2,0,L^FH^FD{field_data(content.title)}^FS",
        f"^FO{MARGIN},{MARGIN + 2 * title + 8}^A@N,{subtitle},{subtitle},{font}^FB{text_width},1,0,L"
        f"^FH^FD{field_data(content.subtitle)}^FS",
        f"^FO{width - MARGIN - square},{MARGIN}{_matrix(content, square)}",
        _bars(content, x=MARGIN, y=bars_at, width=width - 2 * MARGIN, height=height - bars_at - MARGIN - 28),
        f"^PQ{copies}",
        "^XZ",
    ]
    return "\n".join(line for line in lines if line) + "\n"


def _matrix(content: LabelContent, room: int) -> str:
    if content.gs1:
        # ECC 200 with the escape character named (firmware defaults differ); 18 modules across
        # hold a GTIN (16 x 16 and its quiet zone), more data makes the printer grow the symbol.
        module = max(2, room // 18)
        fh = f"^FH{MATRIX_HEX_INDICATOR}"
        return f"^BXN,{module},200,,,,{MATRIX_ESCAPE}{fh}^FD{matrix_data(content.gs1)}^FS"
    # QR (^BQ model 2, error correction M, automatic mode): a version 2 symbol of 25 modules.
    magnification = max(1, min(10, room // 30))
    return f"^BQN,2,{magnification}^FH^FDMA,{field_data(content.code)}^FS"


def _bars(content: LabelContent, *, x: int, y: int, width: int, height: int) -> str:
    """GS1-128 (^BC mode D: FNC1 and the parentheses handled by the printer, which prints them in
    the text line) for a GTIN, else Code 128 for ASCII codes; nothing when the code will not fit."""
    if content.gs1:
        # Symbol characters: digits pack in pairs (subset C), and each field may need a FNC1 or a
        # change of subset.
        data, mode = content.gs1.hri(), ",D"
        fields = [ai + value for ai, value in content.gs1.elements()]
        length = sum((len(f) + 1) // 2 if f.isdigit() else len(f) for f in fields) + 2 * len(fields)
    elif content.code.isascii() and content.code.isprintable():
        data, mode, length = content.code, "", len(content.code)
    else:
        return ""
    module = min(3, width // (length * 11 + _CODE128_FIXED_MODULES))
    if module < 1 or height < 40:
        return ""
    return f"^FO{x},{y}^BY{module}^BCN,{height},Y,N,N{mode}^FH^FD{field_data(data)}^FS"
