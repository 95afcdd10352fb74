"""A declared domain error has one message: its English template is the API's `detail` and the
catalogue's msgid, and pages show the catalogue's translation filled with the same facts. So every
template has a Chinese translation, and that translation names only facts the error has (a
placeholder it lacks would fail on the page, a 500 where a form message belongs)."""

from __future__ import annotations

import string
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from app.services import codes, counts, errors

TRANSLATIONS = Path(__file__).resolve().parents[2] / "translations"
MODULES = (errors, codes, counts)


def _declared() -> list[type[errors.Declared]]:
    found, todo = [], list(errors.Declared.__subclasses__())
    while todo:
        kind = todo.pop()
        found.append(kind)
        todo.extend(kind.__subclasses__())
    modules = {m.__name__ for m in MODULES}
    return sorted({k for k in found if k.__module__ in modules and "template" in vars(k)}, key=lambda k: k.__name__)


def _catalogue(name: str) -> dict[str, str]:
    with (TRANSLATIONS / name / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return {m.id: m.string for m in read_po(handle) if isinstance(m.id, str) and m.id}


ZH = _catalogue("zh_Hans_CN")


def _names(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_the_scan_finds_the_declared_errors() -> None:
    names = {kind.__name__ for kind in _declared()}
    assert {"UnknownItem", "LotRequired", "SerialNotHere", "CodeTaken", "UnknownCount"} <= names


@pytest.mark.parametrize("kind", _declared(), ids=lambda k: k.__name__)
def test_each_template_is_translated_with_the_errors_own_facts(kind: type[errors.Declared]) -> None:
    fields = set(kind.__dataclass_fields__)
    assert _names(kind.template) <= fields
    translated = ZH.get(kind.template)
    assert translated, f"no zh msgstr for {kind.template!r}: run make translations and fill it"
    assert _names(translated) <= fields
    assert "!r" not in translated  # Chinese pages show codes bare, without Python's quotes


def test_a_page_message_and_the_api_detail_come_from_one_template() -> None:
    from app import create_app
    from app.config import Config
    from app.web.common import domain_message

    error = errors.InsufficientStock(sku="SKU-1", location="A-01", requested=Decimal("11.000"), available=Decimal("10"))
    assert error.message == "only 10 of SKU-1 at A-01, 11.000 requested"  # the API's detail, in English
    app = create_app(Config(SECRET_KEY="x", SQLALCHEMY_DATABASE_URI="sqlite://", TESTING=True))
    with app.test_request_context():  # Chinese, the default language
        assert domain_message(error) == "库存不足：A-01 的 SKU-1 仅有 10 可用（需要 11）。"


# The problem documents' contract: code, status and title of every declared error, as clients read them.
CONTRACT = {
    "AlreadyReversed": ("already_reversed", 409, "Movement already reversed"),
    "ArchivedItem": ("archived_item", 422, "Item is archived"),
    "CodeTaken": ("code_taken", 409, "Code already used"),
    "ExpiredLot": ("expired_lot", 409, "Lot expired"),
    "ExpiryMismatch": ("expiry_mismatch", 409, "Lot expires on another date"),
    "ExpiryRequired": ("expiry_required", 422, "Expiry date required"),
    "IdempotencyConflict": ("idempotency_conflict", 409, "Idempotency key reused with a different request"),
    "InactiveLocation": ("inactive_location", 422, "Location is inactive"),
    "InsufficientStock": ("insufficient_stock", 409, "Insufficient stock"),
    "IrreversibleMovement": ("irreversible_movement", 422, "Movement cannot be reversed"),
    "LotRequired": ("lot_required", 422, "Lot required"),
    "NotTracked": ("not_tracked", 422, "Item not tracked that way"),
    "QuantityOutOfRange": ("quantity_out_of_range", 409, "Quantity out of range"),
    "SameLocation": ("same_location", 422, "Transfer to the same location"),
    "SerialCountMismatch": ("serial_count_mismatch", 422, "Serial numbers do not match the quantity"),
    "SerialExists": ("serial_exists", 409, "Serial number exists"),
    "SerialNotHere": ("serial_not_here", 409, "Serial not at this location"),
    "StockShortDuringCount": ("insufficient_stock", 409, "Insufficient stock"),
    "EditedMeanwhile": ("edited_meanwhile", 409, "Changed meanwhile"),
    "TrackingLocked": ("tracking_locked", 409, "Tracking cannot change"),
    "UnknownCode": ("unknown_code", 404, "Unknown code"),
    "UnknownCount": ("unknown_count", 404, "Unknown count"),
    "UnknownGtin": ("unknown_gtin", 404, "Unknown GTIN"),
    "UnknownItem": ("unknown_item", 404, "Unknown item"),
    "UnknownLocation": ("unknown_location", 404, "Unknown location"),
    "UnknownLot": ("unknown_lot", 404, "Unknown lot"),
    "UnknownMovement": ("unknown_movement", 404, "Unknown movement"),
    "UnknownSerial": ("unknown_serial", 404, "Unknown serial"),
    "UnknownUser": ("unknown_user", 404, "Unknown user"),
    "ReservationShort": ("reservation_short", 409, "Not enough available stock to reserve"),
    "UnknownReservation": ("unknown_reservation", 404, "Unknown reservation"),
    "ReservationClosed": ("reservation_closed", 409, "Reservation is closed"),
    "UnknownReservationLine": ("unknown_reservation_line", 404, "Unknown reservation line"),
    "PickExceedsReserved": ("pick_exceeds_reserved", 409, "More picked than reserved"),
}


def test_codes_come_from_the_class_names_and_statuses_from_the_bases() -> None:
    assert {kind.__name__: (kind.code, kind.status, kind.title) for kind in _declared()} == CONTRACT


def test_a_family_is_not_an_error_of_its_own() -> None:
    assert "template" not in vars(errors.LotError) and errors.LotError.code == errors.Declared.code
    assert set(errors.ExpiredLot.__dataclass_fields__) == {"sku", "lot", "expiry"}
