"""Domain exceptions: what went wrong, with the facts, a stable code and an HTTP status.

`app/errors.py` turns these into problem documents (API) or flashed messages (pages); services
raise them and never know about HTTP beyond the status number.

Most errors are declared rather than written out: a class names its title and message template,
its base gives the status (NotFound 404, Conflict 409, else 422), its name the code
(UnknownItem: "unknown_item"), and the annotated fields are the facts, at once the constructor's
arguments, the names the template uses and the problem document's extras. Errors about the same
thing share its facts: an error about a lot (a LotError) names the item's SKU and the lot.

The template is the one message of the error: in English it is the problem document's `detail`,
and pages show its translation from the catalogue, filled with the same facts
(app.web.common.domain_message). A new error is its declaration and one catalogue entry.
"""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal
from typing import Any, ClassVar, dataclass_transform


class DomainError(Exception):
    status = 422
    code = "domain_error"
    title = "The request cannot be carried out"

    def __init__(self, message: str, **extras: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extras = extras

    def to_dict(self) -> dict[str, Any]:
        """Extras as JSON-ready values (decimals become strings, as quantities travel)."""
        return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in self.extras.items()}


def _l(template: str) -> str:
    """Marks a declared error's template for the catalogue (`make translations` extracts `_l(…)`),
    like lazy_gettext in the page layers: translated where it is shown, not here, since the English
    stays the error's message."""
    return template


def private() -> Any:
    """A declared fact the message names but the problem document does not carry."""
    return dataclasses.field(metadata={"private": True})


@dataclass_transform(eq_default=False, field_specifiers=(dataclasses.field, private))
class Declared(DomainError):
    """The base of a declared error: `class UnknownItem(ItemError, NotFound, title="Unknown item",
    template=_l("no item with SKU {sku!r}")): ...`. `kw_only=True` makes the class's own facts
    keyword arguments; `code=` is for an error that reads as another to its callers. A subclass
    without a template is a family: the facts its errors share."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]
    template: ClassVar[str]  # English, str.format style: the catalogue's msgid

    def __init_subclass__(
        cls, *, title: str | None = None, template: str | None = None, code: str | None = None, kw_only: bool = False
    ) -> None:
        super().__init_subclass__()
        if template is not None:
            cls.code = code or re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()
            cls.title, cls.template = title or cls.title, template
        dataclasses.dataclass(eq=False, kw_only=kw_only)(cls)

    def facts(self) -> dict[str, Any]:
        """Every fact by name, the private ones too: what the template is filled with."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def __post_init__(self) -> None:
        public = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if not f.metadata.get("private")}
        DomainError.__init__(self, self.template.format(**self.facts()), **public)


class InvalidInput(DomainError):
    status = 422
    code = "invalid_input"
    title = "Invalid input"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", field=field)
        self.field = field


class MalformedRequest(InvalidInput):
    """The request is not even of the shape asked for (a JSON list where an object belongs)."""

    status = 400
    code = "malformed_request"
    title = "Malformed request"


class InvalidQuantity(InvalidInput):
    code = "invalid_quantity"
    title = "Invalid quantity"

    def __init__(self, message: str, field: str = "quantity") -> None:
        super().__init__(field, message)


class NotFound(DomainError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(DomainError):
    status = 409
    code = "conflict"
    title = "Conflict"


# ---------------------------------------------------------------- declared errors, by what they are about


class ItemError(Declared):
    sku: str


class UnknownItem(ItemError, NotFound, title="Unknown item", template=_l("no item with SKU {sku!r}")): ...


class ArchivedItem(
    ItemError, title="Item is archived", template=_l("item {sku!r} is archived and cannot be moved")
): ...


class UnknownGtin(Declared, NotFound, title="Unknown GTIN", template=_l("no item with barcode {gtin}")):
    """A GS1 code whose GTIN is no item's barcode (in any of its 14, 13, 12 or 8-digit forms)."""

    gtin: str


class InvalidGS1Code(InvalidInput):
    """A scanned code that reads as a GS1 element string but breaks its rules: a GTIN whose check
    digit is wrong, a date that does not exist, data that does not fit its Application Identifier.
    `reason` is "check_digit", "date" or "format"; `detail` is the parser's own words."""

    code = "invalid_gs1_code"
    title = "Invalid GS1 code"

    def __init__(self, scanned: str, reason: str, detail: str, *, ai: str | None = None) -> None:
        super().__init__("code", f"{scanned!r} is not a valid GS1 code: {detail}")
        self.extras.update(scanned=scanned, reason=reason, ai=ai, detail=detail)
        self.reason = reason


class LocationError(Declared):
    location: str


class UnknownLocation(
    LocationError, NotFound, title="Unknown location", template=_l("no location with code {location!r}")
): ...


class InactiveLocation(
    LocationError, title="Location is inactive", template=_l("location {location!r} is inactive")
): ...


class SameLocation(
    LocationError, title="Transfer to the same location", template=_l("cannot transfer from {location!r} to itself")
): ...


class StockError(ItemError):
    """About an item's stock at one location."""

    location: str


class Shortage(StockError, Conflict):
    """Less of the item at the location than requested."""

    requested: Decimal


class InsufficientStock(
    Shortage,
    title="Insufficient stock",
    template=_l("only {available} of {sku} at {location}, {requested} requested"),
    kw_only=True,
):
    available: Decimal


class StockShortDuringCount(
    Shortage,
    code="insufficient_stock",
    title="Insufficient stock",
    template=_l("not enough {sku} at {location} for {requested} requested; the quantity is hidden while it is counted"),
    kw_only=True,
):
    """InsufficientStock as a counter sees it at a place being counted (a blind count): the same
    refusal, without the quantity that would unblind the count."""

    quantity_hidden: bool = dataclasses.field(default=True, init=False)


class QuantityOutOfRange(
    StockError,
    Conflict,
    title="Quantity out of range",
    template=_l("{sku} at {location} would exceed the largest storable quantity {limit}"),
    kw_only=True,
):
    """A movement would take a stock level, or an item's total over every location, past the
    largest quantity the database stores (NUMERIC(18, 3))."""

    limit: Decimal


class MovementError(Declared):
    movement_id: int


class UnknownMovement(MovementError, NotFound, title="Unknown movement", template=_l("no movement #{movement_id}")): ...


class AlreadyReversed(
    MovementError,
    Conflict,
    title="Movement already reversed",
    template=_l("movement #{movement_id} was already reversed by #{reversal_id}"),
):
    reversal_id: int


class IrreversibleMovement(
    MovementError,
    title="Movement cannot be reversed",
    template=_l("movement #{movement_id} cannot be reversed: {reason}"),
):
    reason: str = private()


class IdempotencyConflict(
    Declared,
    Conflict,
    title="Idempotency key reused with a different request",
    template=_l("idempotency key {key!r} was already used for a different request"),
):
    key: str


class UnknownUser(Declared, NotFound, title="Unknown user", template=_l("no user {username!r}")):
    username: str


class BackupInvalid(DomainError):
    """A backup that is missing, truncated, altered, or does not restore to what its manifest says."""

    status = 422
    code = "backup_invalid"
    title = "The backup is not valid"


class BackupRefused(DomainError):
    """A backup or restore that would do harm if carried out: unconfirmed, over a newer schema, or a
    point-in-time recovery the database cannot give."""

    status = 409
    code = "backup_refused"
    title = "Refused"


# ---------------------------------------------------------------- lots and serials (issue 17)


class EditedMeanwhile(
    ItemError,
    Conflict,
    title="Changed meanwhile",
    template=_l("someone else changed {fields} of item {sku!r} during this edit: check the values and save again"),
):
    """An edit started from values that another edit has since changed, on the fields it changes
    (items.update_item's `expected`): `fields` for the message, `names` the fields themselves."""

    fields: str
    names: tuple[str, ...] = private()


class TrackingLocked(
    ItemError,
    Conflict,
    title="Tracking cannot change",
    template=_l("item {sku!r} holds stock: its tracking changes only while none is held"),
): ...


class NotTracked(
    ItemError,
    title="Item not tracked that way",
    template=_l("item {sku!r} is tracked by {tracking}: it has no {field}"),
    kw_only=True,
):
    """A lot named for an item without lots, or serials for an item without serial numbers."""

    tracking: str
    field: str


class LotRequired(ItemError, title="Lot required", template=_l("item {sku!r} is lot-tracked: give the lot")): ...


class SerialCountMismatch(
    ItemError,
    title="Serial numbers do not match the quantity",
    template=_l("{quantity} of {sku!r} need exactly {quantity} serial numbers, {given} given"),
    kw_only=True,
):
    quantity: Decimal
    given: int


class LotError(ItemError):
    lot: str


class ExpiryRequired(
    LotError, title="Expiry date required", template=_l("item {sku!r} requires an expiry date for lot {lot!r}")
): ...


class ExpiryMismatch(
    LotError,
    Conflict,
    title="Lot expires on another date",
    template=_l("lot {lot!r} of {sku!r} expires on {expiry}, not {given}"),
    kw_only=True,
):
    expiry: str
    given: str


class ExpiredLot(
    LotError,
    Conflict,
    title="Lot expired",
    template=_l("lot {lot!r} of {sku!r} expired on {expiry}: a manager may issue it with a reason"),
    kw_only=True,
):
    expiry: str


class UnknownLot(LotError, NotFound, title="Unknown lot", template=_l("no lot {lot!r} of item {sku!r}")): ...


class SerialError(ItemError):
    serial: str


class SerialExists(
    SerialError,
    Conflict,
    title="Serial number exists",
    template=_l("serial {serial!r} of {sku!r} was already received"),
): ...


class UnknownSerial(
    SerialError, NotFound, title="Unknown serial", template=_l("no serial {serial!r} of item {sku!r}")
): ...


class SerialNotHere(
    SerialError,
    Conflict,
    title="Serial not at this location",
    template=_l("serial {serial!r} of {sku!r} is not in stock at {location}"),
    kw_only=True,
):
    location: str


# ---------------------------------------------------------------- reservations (issue 18)


class ReservationShort(
    Declared,
    Conflict,
    title="Not enough available stock to reserve",
    template=_l("reservation {reference!r} was refused: {short} of its lines cannot be reserved in full"),
    kw_only=True,
):
    """A reservation refused as a whole (nothing reserved) because some lines are short; `lines`
    lists each short line: its number in the request (`line`, 1-based), `sku`, `location` and
    `lot` as asked (None when not named), `requested` and the `available` (unreserved) quantity
    there, as text."""

    reference: str
    short: int
    lines: list[dict[str, str | int | None]]


class ReservationError(Declared):
    reservation_id: int


class ReservationClosed(
    ReservationError,
    Conflict,
    title="Reservation is closed",
    template=_l("reservation #{reservation_id} is {state}: it holds no stock any more"),
    kw_only=True,
):
    state: str


class UnknownReservation(
    ReservationError, NotFound, title="Unknown reservation", template=_l("no reservation #{reservation_id}")
): ...


class ReservationLineError(ReservationError, kw_only=True):
    """About one line of a reservation (`line_id`, the line's id)."""

    line_id: int


class UnknownReservationLine(
    ReservationLineError,
    NotFound,
    title="Unknown reservation line",
    template=_l("reservation #{reservation_id} has no line #{line_id}"),
): ...


class PickExceedsReserved(
    ReservationLineError,
    Conflict,
    title="More picked than reserved",
    template=_l("line #{line_id} of reservation #{reservation_id} holds {outstanding}, {picked} picked"),
    kw_only=True,
):
    outstanding: Decimal
    picked: Decimal
