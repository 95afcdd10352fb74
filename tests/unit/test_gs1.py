"""Supplier GS1 labels as scanners type them: with and without symbology identifiers, group
separators, a configured FNC1 stand-in or parentheses; wrong check digits and dates refused."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from app.services.errors import InvalidGS1Code
from app.services.gs1 import GS1Data, encodable, read

GS = "\x1d"


@pytest.mark.parametrize(
    ("scanned", "expected"),
    [
        # GS1-128 on a pharmaceutical carton: ]C1, then GTIN, expiry, lot (variable, FNC1) and serial.
        (
            f"]C101095011015300031726033110ABC123{GS}21SN-0042",
            GS1Data("09501101530003", lot="ABC123", expiry=date(2026, 3, 31), serial="SN-0042"),
        ),
        # GS1 DataMatrix on a medical device (UDI): ]d2, lot before expiry, so a separator after it.
        (
            f"]d2010590123412345710LOT-7A{GS}1727063021XK3",
            GS1Data("05901234123457", lot="LOT-7A", expiry=date(2027, 6, 30), serial="XK3"),
        ),
        # GS1 QR on a food pallet label.
        ("]Q301040063813339311728123110B7", GS1Data("04006381333931", lot="B7", expiry=date(2028, 12, 31))),
        # A wedge scanner without symbology identifiers: fixed-length AIs first, no separator needed.
        ("0104006381333931172512311012345", GS1Data("04006381333931", lot="12345", expiry=date(2025, 12, 31))),
        # Day 00: the end of the month (GS1 General Specifications 3.4.7).
        ("(01)05901234123457(17)260200(10)B123", GS1Data("05901234123457", lot="B123", expiry=date(2026, 2, 28))),
        # Text printed under a GS1-128 barcode, spaces and all.
        ("(01) 00012345678905 (30) 24", GS1Data("00012345678905", quantity=Decimal(24))),
        # A carton of 12 (AI 37) of trade item 02…, with its lot.
        (f"]C1020590123412345737012{GS}10L99", GS1Data("05901234123457", lot="L99", quantity=Decimal(12))),
        # The separator some scanners also send in front of the data, and a trailing one.
        (f"{GS}01095011015300033024{GS}", GS1Data("09501101530003", quantity=Decimal(24))),
        # A GS1 code that names no GTIN (an SSCC on a pallet): read, but nothing to resolve by.
        ("]C100106141411234567897", GS1Data(None)),
    ],
)
def test_reads_supplier_labels(scanned, expected):
    assert read(scanned) == expected


def test_a_configured_fnc1_stand_in_separates_fields_like_the_group_separator():
    scanned = "01095011015300031012|21777|3005"
    assert read(scanned, stand_in="|") == GS1Data("09501101530003", lot="12", serial="777", quantity=Decimal(5))
    # Without the setting the bar is no GS1 data at all: refused, not read as a lot "12|21777|3005".
    with pytest.raises(InvalidGS1Code):
        read(scanned)


@pytest.mark.parametrize(
    "scanned",
    [
        "BOLT-031",
        "WH1-A-01-01",
        "bolt-031",
        "4006381333931",
        "05901234123457",
        "]C0BOLT-031",
        "",
        "   ",
        "螺栓",
        "01ABC",
    ],
)
def test_plain_codes_are_not_gs1(scanned):
    assert read(scanned, stand_in="|") is None


@pytest.mark.parametrize(
    ("scanned", "reason", "ai"),
    [
        ("]C101095011015300041012345", "check_digit", "01"),  # …0003 is right
        ("(01)04006381333932(10)X", "check_digit", "01"),
        ("010400638133393510X", "check_digit", "01"),
        (f"]d2020590123412345837012{GS}10L", "check_digit", "02"),
        ("0109501101530003172502311012345", "date", "17"),  # 31 February
        ("]C1010950110153000317251301", "date", "17"),  # month 13
        ("]C101095011015300", "format", "01"),  # cut short
        ("(01)09501101530003(99999)X", "format", None),
        (f"010950110153000330{GS}10L", "format", "30"),  # a count with no digits
    ],
)
def test_broken_gs1_codes_are_refused_with_the_reason(scanned, reason, ai):
    with pytest.raises(InvalidGS1Code) as refused:
        read(scanned)
    assert refused.value.reason == reason
    assert refused.value.extras["ai"] == ai
    assert refused.value.status == 422
    assert "is not a valid GS1 code" in refused.value.message


def test_gtin_forms_match_barcodes_stored_shorter():
    assert GS1Data("04006381333931").gtin_forms() == ["04006381333931", "4006381333931"]
    assert GS1Data("00012345678905").gtin_forms() == ["00012345678905", "0012345678905", "012345678905"]
    assert GS1Data("00000096385074").gtin_forms() == ["00000096385074", "0000096385074", "000096385074", "96385074"]
    assert GS1Data("14006381333938").gtin_forms() == ["14006381333938"]
    assert GS1Data(None).gtin_forms() == []


def test_hri_reads_back_into_the_same_fields():
    data = GS1Data("09501101530003", lot="A(1", expiry=date(2027, 1, 31), serial="S 9", quantity=Decimal(6))
    assert data.hri() == "(01)09501101530003(17)270131(10)A(1(21)S 9(30)6"
    plain = GS1Data("09501101530003", lot="L-1", expiry=date(2027, 1, 31), serial="S9", quantity=Decimal(6))
    assert read(plain.hri()) == plain


@pytest.mark.parametrize(
    ("lot", "serial", "expected"),
    [
        ("2026-0001-ABCDEFGHIJ", None, True),  # 20 characters of set 82: the most AI 10 holds
        (None, "SN/1_x", True),
        ("批次1", None, False),  # Chinese: gs1.read refuses it
        ("A 1", None, False),  # a space is not in set 82
        (None, "Ä1", False),
        ("2026-0001-ABCDEFGHIJK", None, False),  # 21 characters
        ("A(10)B", None, False),  # its human-readable form reads back as another lot
        ("", None, False),
        (None, "S\x1d1", False),
    ],
)
def test_only_values_gs1_carries_and_reads_back_are_encodable(lot, serial, expected):
    data = GS1Data("04006381333931", lot=lot, expiry=date(2027, 3, 31), serial=serial)
    assert encodable(data) is expected
    if expected:
        assert read(data.hri()) == data
