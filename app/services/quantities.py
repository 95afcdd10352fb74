"""Parsing and checking quantities: exact decimals with at most three places, never floats."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from app.models.types import QUANTITY_SCALE
from app.models.types import QUANTITY_STEP as STEP
from app.services.errors import InvalidQuantity

# NUMERIC(18, 3) holds 15 digits before the point.
MAX_QUANTITY = Decimal("1e15") - Decimal("0.001")
# The written form, as the OpenAPI pattern ^[0-9]{1,15}(\.[0-9]{1,3})?$ states it (a sign is let
# through only to be refused with a clearer message). Decimal() alone also reads "1E+3", "1_000",
# "NaN" and non-ASCII digits such as "١٢".
_WRITTEN = re.compile(r"-?([0-9]+)(?:\.([0-9]+))?", re.ASCII)
# Texts up to this long are remembered once parsed (a quantity has at most 15 + 1 + 3 characters
# unless padded with zeros), so the cache never holds a hostile file's megabyte of zeros.
_REMEMBERED_LENGTH = 24


def parse_quantity(value: object, *, field: str = "quantity", allow_zero: bool = False) -> Decimal:
    """A positive (or, with allow_zero, non-negative) quantity of at most three decimal places.

    Accepts Decimal, int and decimal strings written as the API documents them ("2.5", not
    "1E+3"); a float is read through its shortest repr, so 0.1 means 0.1. Raises InvalidQuantity
    for anything else.
    """
    if isinstance(value, str) and len(value) <= _REMEMBERED_LENGTH:
        return _parse_text(value, field, allow_zero)
    return _parse(value, field, allow_zero)


@lru_cache(maxsize=4096)
def _parse_text(value: str, field: str, allow_zero: bool) -> Decimal:
    """parse_quantity of a text, remembered: an import's 100,000 rows write a few dozen distinct
    quantities and reorder points, and parsing each of their 300,000 cells took 0.47 s of CPU,
    remembered 0.06 s (issue 13). A Decimal cannot be changed, so sharing one is safe; a refusal is
    raised each time, never remembered."""
    return _parse(value, field, allow_zero)


def _parse(value: object, field: str, allow_zero: bool) -> Decimal:
    if isinstance(value, bool):
        raise InvalidQuantity("must be a number", field)
    try:
        if isinstance(value, Decimal):
            number = value
        elif isinstance(value, int | float):
            number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        elif isinstance(value, str) and value.strip():
            number = _written(value.strip(), field)
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


def _written(text: str, field: str) -> Decimal:
    found = _WRITTEN.fullmatch(text)
    if found is None:
        raise InvalidQuantity(f"{text[:40]!r} is not a number", field)
    whole, fraction = found.groups()
    if len(whole.lstrip("0")) > 15:
        raise InvalidQuantity("is too large", field)
    if fraction is not None and len(fraction) > QUANTITY_SCALE:
        raise InvalidQuantity(f"at most {QUANTITY_SCALE} decimal places", field)
    return Decimal(text)
