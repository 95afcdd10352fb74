"""Parsing and checking quantities: exact decimals with at most three places, never floats."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from app.models.types import QUANTITY_SCALE
from app.models.types import QUANTITY_STEP as STEP
from app.services.errors import InvalidQuantity

# NUMERIC(18, 3) holds 15 digits before the point.
MAX_QUANTITY = Decimal("1e15") - Decimal("0.001")


def parse_quantity(value: object, *, field: str = "quantity", allow_zero: bool = False) -> Decimal:
    """A positive (or, with allow_zero, non-negative) quantity of at most three decimal places.

    Accepts Decimal, int and decimal strings ("2.5"); a float is read through its shortest repr,
    so 0.1 means 0.1. Raises InvalidQuantity for anything else.
    """
    if isinstance(value, bool):
        raise InvalidQuantity("must be a number", field)
    try:
        if isinstance(value, Decimal):
            number = value
        elif isinstance(value, int | float):
            number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        elif isinstance(value, str) and value.strip():
            number = Decimal(value.strip())
        else:
            raise InvalidQuantity("must be a number", field)
    except InvalidOperation:
        raise InvalidQuantity(f"{value!r} is not a number", field) from None
    if not number.is_finite():
        raise InvalidQuantity("must be a finite number", field)
    if number < 0 or (number == 0 and not allow_zero):
        raise InvalidQuantity("must be zero or more" if allow_zero else "must be more than zero", field)
    if number > MAX_QUANTITY:
        raise InvalidQuantity("is too large", field)
    if number != number.quantize(STEP):
        raise InvalidQuantity(f"at most {QUANTITY_SCALE} decimal places", field)
    return number.quantize(STEP)
