"""Supplier labels read by a scanner: GS1 element strings (GS1-128, GS1 DataMatrix, GS1 QR) turned
into GTIN, lot, expiry, serial and quantity. biip keeps the Application Identifier tables, check
digits and date rules; this room only decides what counts as a GS1 code and what we keep of it.

`read` answers None for text that is not a GS1 code, so SKUs and location codes are never taken
for one; text that is a GS1 code but breaks its rules (a wrong check digit, a date that does not
exist) raises InvalidGS1Code instead of being guessed at."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from biip import ParseConfig, ParseError
from biip.gs1_element_strings import GS1ElementString
from biip.gs1_messages import GS1Message
from biip.gtin import Gtin
from biip.symbology import GS1Symbology, SymbologyIdentifier

from app.services.errors import InvalidGS1Code

# What a wedge scanner types for FNC1 between variable-length fields (ASCII 29).
GROUP_SEPARATOR = "\x1d"
MAX_LENGTH = 512
# Without a symbology identifier or parentheses, only a code that opens with a GTIN element string
# (AI 01, or AI 02 for the contents of a carton) is taken for GS1: that is how supplier labels
# start, and no SKU of ours looks like it unless it is stored as such (looked up first).
_UNMARKED = re.compile(r"0[12]\d{14}")
_HRI = re.compile(r"\(\d{2,4}\)")
_AI_IN_ERROR = re.compile(r"AI \((\d{2,4})\)")
_DATE_AIS = frozenset({"11", "12", "13", "15", "16", "17"})
# What AI 10 (lot) and AI 21 (serial) may hold: 1 to 20 characters of GS1's character set 82
# (GS1 General Specifications, figure 7.11-1: no space, no letter outside A-Z and a-z).
_CSET82_FIELD = re.compile(r"[!\"%&'()*+,\-./0-9:;<=>?A-Z_a-z]{1,20}")


@dataclass(frozen=True)
class GS1Data:
    """What a GS1 code says about the goods it is on; a field the code does not carry is None.
    `gtin` is always 14 digits (AI 01, else AI 02); `quantity` is AI 30, else AI 37."""

    gtin: str | None
    lot: str | None = None
    expiry: date | None = None
    serial: str | None = None
    quantity: Decimal | None = None

    def gtin_forms(self) -> list[str]:
        """The GTIN as it may be stored as a barcode: GTIN-14 and, where its leading zeros allow,
        the EAN-13, UPC-A (12) and EAN-8 it stands for."""
        if self.gtin is None:
            return []
        return [self.gtin[14 - n :] for n in (14, 13, 12, 8) if set(self.gtin[: 14 - n]) <= {"0"}]

    def elements(self) -> list[tuple[str, str]]:
        """(AI, data) of each field the code carries, fixed-length AIs first (no FNC1 after them)."""
        parts = [
            ("01", self.gtin),
            ("17", self.expiry.strftime("%y%m%d") if self.expiry else None),
            ("10", self.lot),
            ("21", self.serial),
            ("30", str(int(self.quantity)) if self.quantity is not None else None),
        ]
        return [(ai, value) for ai, value in parts if value is not None]

    def hri(self) -> str:
        """The element strings in human-readable form: "(01)…(17)…(10)…"."""
        return "".join(f"({ai}){value}" for ai, value in self.elements())


def encodable(data: GS1Data) -> bool:
    """Whether a label of ours can carry `data` as GS1 and a scanner read it back the same: a lot
    and serial GS1 allows (character set 82, at most 20 characters), in an element string whose
    human-readable form (what our QR codes and Code 128 carry) parses back into the same fields. A
    lot "批次1" or "A 1" is not: gs1.read refuses it (InvalidGS1Code)."""
    if not all(_CSET82_FIELD.fullmatch(value) for value in (data.lot, data.serial) if value is not None):
        return False
    try:
        return read(data.hri()) == data
    except InvalidGS1Code:
        return False


# Of the AIs GS1Data carries, those of variable length: a field after one needs FNC1 before it.
VARIABLE_LENGTH_AIS = frozenset({"10", "21", "30"})


def gtin14(code: str) -> str | None:
    """`code` (a barcode as stored) as a GTIN-14 when it is a GTIN-8, -12, -13 or -14 with a
    right check digit, else None."""
    if not (code.isascii() and code.isdigit() and len(code) in (8, 12, 13, 14)):
        return None
    try:
        return Gtin.parse(code).as_gtin_14()
    except ParseError:
        return None


def read(scanned: str, *, stand_in: str = "") -> GS1Data | None:
    """The GS1 data in `scanned`, or None when it is not a GS1 code. `stand_in` is what a scanner
    set up that way sends for FNC1 instead of the group separator. Raises InvalidGS1Code."""
    text = scanned.strip()
    if stand_in:
        text = text.replace(stand_in, GROUP_SEPARATOR)
    if not text or len(text) > MAX_LENGTH:
        return None
    identifier = _gs1_identifier(text)
    if identifier:
        text = text[len(identifier) :]
    elif not (_HRI.match(text) or _UNMARKED.match(text)):
        return None
    return _data(scanned, _message(scanned, text))


def _gs1_identifier(text: str) -> str:
    """The GS1 symbology identifier ("]C1", "]d2", "]Q3" …) `text` starts with, or ""."""
    if not text.startswith("]"):
        return ""
    try:
        identifier = SymbologyIdentifier.extract(text)
    except (ParseError, IndexError, ValueError):
        return ""
    return identifier.value if identifier.gs1_symbology in GS1Symbology.with_gs1_messages() else ""


def _message(scanned: str, text: str) -> GS1Message:
    config = ParseConfig(separator_chars=(GROUP_SEPARATOR,))
    try:
        if text.startswith("("):
            return GS1Message.parse_hri(text, config=config)
        return GS1Message.parse(text, config=config)
    except ParseError as error:
        ai = _AI_IN_ERROR.search(str(error))
        reason = "date" if ai and ai[1] in _DATE_AIS else "format"
        raise InvalidGS1Code(scanned, reason, str(error), ai=ai[1] if ai else None) from error


def _data(scanned: str, message: GS1Message) -> GS1Data:
    found: dict[str, GS1ElementString] = {}
    for element in message.element_strings:
        if element.ai.ai in ("01", "02") and element.gtin is None:
            raise InvalidGS1Code(scanned, "check_digit", element.gtin_error or "invalid GTIN", ai=element.ai.ai)
        found.setdefault(element.ai.ai, element)
    trade_item = found.get("01") or found.get("02")
    count = found.get("30") or found.get("37")
    return GS1Data(
        gtin=trade_item.gtin.as_gtin_14() if trade_item and trade_item.gtin else None,
        lot=found["10"].value if "10" in found else None,
        expiry=found["17"].date if "17" in found else None,
        serial=found["21"].value if "21" in found else None,
        quantity=_count(scanned, count) if count else None,
    )


def _count(scanned: str, element: GS1ElementString) -> Decimal:
    if not (element.value.isascii() and element.value.isdigit()):
        raise InvalidGS1Code(scanned, "format", f"AI ({element.ai.ai}) holds no count", ai=element.ai.ai)
    return Decimal(int(element.value))
