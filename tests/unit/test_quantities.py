"""Quantities are exact decimals with at most three places."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.services.errors import InvalidQuantity
from app.services.quantities import parse_quantity


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2", "2.000"),
        ("2.5", "2.500"),
        (" 1.234 ", "1.234"),
        ("007", "7.000"),
        (0.1, "0.100"),
        (7, "7.000"),
        (Decimal("0.001"), "0.001"),
        ("999999999999999.999", "999999999999999.999"),
    ],
)
def test_accepted_quantities(value, expected):
    assert parse_quantity(value) == Decimal(expected)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (Decimal("NaN"), "finite"),
        ("nan", "not a number"),
        ("Infinity", "not a number"),
        ("1.2345", "3 decimal places"),
        ("1.2340", "3 decimal places"),
        ("1e2", "not a number"),
        ("1E+3", "not a number"),
        ("1_000", "not a number"),
        ("١٢", "not a number"),
        ("²", "not a number"),
        ("+1", "not a number"),
        (".5", "not a number"),
        ("1" * 16, "too large"),
        ("-1", "more than zero"),
        ("0", "more than zero"),
        ("1000000000000000", "too large"),
        ("abc", "not a number"),
        ("", "must be a number"),
        (None, "must be a number"),
        (False, "must be a number"),
        ([1], "must be a number"),
    ],
)
def test_refused_quantities_say_why(value, message):
    with pytest.raises(InvalidQuantity, match=message):
        parse_quantity(value)


def test_zero_is_allowed_where_asked_and_the_field_is_named():
    assert parse_quantity("0", allow_zero=True) == 0
    with pytest.raises(InvalidQuantity) as caught:
        parse_quantity("-1", field="counted", allow_zero=True)
    assert caught.value.field == "counted" and "zero or more" in caught.value.message


def test_a_refused_text_is_refused_every_time_and_never_stands_for_another_field():
    # Parsed texts are remembered (an import repeats a few dozen quantities 100,000 times): a
    # refusal must not be, nor must one field's answer stand for another's.
    for _ in range(2):
        with pytest.raises(InvalidQuantity) as caught:
            parse_quantity("0", field="quantity")
        assert caught.value.field == "quantity"
    assert parse_quantity("0", field="reorder_point", allow_zero=True) == 0
    with pytest.raises(InvalidQuantity) as caught:
        parse_quantity("0", field="counted")
    assert caught.value.field == "counted"


def test_a_long_zero_padded_text_is_read_like_a_short_one():
    assert parse_quantity("0" * 5000 + "12.5") == Decimal("12.500")
    with pytest.raises(InvalidQuantity, match="3 decimal places"):
        parse_quantity("0" * 5000 + "1.2345")
