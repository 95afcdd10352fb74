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
        (" 1.2340 ", "1.234"),
        ("1e2", "100.000"),
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
        ("nan", "finite"),
        ("Infinity", "finite"),
        ("1.2345", "3 decimal places"),
        ("1e-5", "3 decimal places"),
        ("-1", "more than zero"),
        ("0", "more than zero"),
        ("1e15", "too large"),
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
