"""Domain exceptions: what went wrong, with the facts, a stable code and an HTTP status.

`app/errors.py` turns these into problem documents (API) or flashed messages (pages); services
raise them and never know about HTTP beyond the status number.

Most errors are declared rather than written out: the class keywords give the status, code, title
and message template, and the annotated fields are the facts, at once the constructor's arguments,
the names the template uses and the problem document's extras.
"""

from __future__ import annotations

import dataclasses
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


def private() -> Any:
    """A declared fact the message names but the problem document does not carry."""
    return dataclasses.field(metadata={"private": True})


@dataclass_transform(eq_default=False, field_specifiers=(dataclasses.field, private))
class Declared(DomainError):
    """The base of a declared error: `class UnknownItem(Declared, NotFound, code=…, title=…,
    template="no item with SKU {sku!r}")` with a field `sku: str`. `kw_only=True` makes every
    fact a keyword argument."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]
    template: ClassVar[str]

    def __init_subclass__(
        cls, *, code: str, title: str, template: str, status: int | None = None, kw_only: bool = False
    ) -> None:
        super().__init_subclass__()
        cls.code, cls.title, cls.template = code, title, template
        cls.status = cls.status if status is None else status
        dataclasses.dataclass(eq=False, kw_only=kw_only)(cls)

    def __post_init__(self) -> None:
        facts = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        public = {f.name: facts[f.name] for f in dataclasses.fields(self) if not f.metadata.get("private")}
        DomainError.__init__(self, self.template.format(**facts), **public)


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


class UnknownItem(Declared, NotFound, code="unknown_item", title="Unknown item", template="no item with SKU {sku!r}"):
    sku: str


class UnknownLocation(
    Declared, NotFound, code="unknown_location", title="Unknown location", template="no location with code {location!r}"
):
    location: str


class UnknownGtin(
    Declared, NotFound, code="unknown_gtin", title="Unknown GTIN", template="no item with barcode {gtin}"
):
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


class UnknownMovement(
    Declared, NotFound, code="unknown_movement", title="Unknown movement", template="no movement #{movement_id}"
):
    movement_id: int


class UnknownUser(Declared, NotFound, code="unknown_user", title="Unknown user", template="no user {username!r}"):
    username: str


class ArchivedItem(
    Declared, code="archived_item", title="Item is archived", template="item {sku!r} is archived and cannot be moved"
):
    sku: str


class InactiveLocation(
    Declared, code="inactive_location", title="Location is inactive", template="location {location!r} is inactive"
):
    location: str


class SameLocation(
    Declared,
    code="same_location",
    title="Transfer to the same location",
    template="cannot transfer from {location!r} to itself",
):
    location: str


class InsufficientStock(
    Declared,
    status=409,
    code="insufficient_stock",
    title="Insufficient stock",
    template="only {available} of {sku} at {location}, {requested} requested",
    kw_only=True,
):
    sku: str
    location: str
    requested: Decimal
    available: Decimal


class StockShortDuringCount(
    Declared,
    status=409,
    code="insufficient_stock",
    title="Insufficient stock",
    template="not enough {sku} at {location} for {requested} requested; the quantity is hidden while it is counted",
    kw_only=True,
):
    """InsufficientStock as a counter sees it at a place being counted (a blind count): the same
    refusal, without the quantity that would unblind the count."""

    sku: str
    location: str
    requested: Decimal
    quantity_hidden: bool = dataclasses.field(default=True, init=False)


class QuantityOutOfRange(
    Declared,
    status=409,
    code="quantity_out_of_range",
    title="Quantity out of range",
    template="{sku} at {location} would exceed the largest storable quantity {limit}",
    kw_only=True,
):
    """A movement would take a stock level, or an item's total over every location, past the
    largest quantity the database stores (NUMERIC(18, 3))."""

    sku: str
    location: str
    limit: Decimal


class AlreadyReversed(
    Declared,
    status=409,
    code="already_reversed",
    title="Movement already reversed",
    template="movement #{movement_id} was already reversed by #{reversal_id}",
):
    movement_id: int
    reversal_id: int


class IrreversibleMovement(
    Declared,
    code="irreversible_movement",
    title="Movement cannot be reversed",
    template="movement #{movement_id} cannot be reversed: {reason}",
):
    movement_id: int
    reason: str = private()


class IdempotencyConflict(
    Declared,
    status=409,
    code="idempotency_conflict",
    title="Idempotency key reused with a different request",
    template="idempotency key {key!r} was already used for a different request",
):
    key: str


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


class NotTracked(
    Declared,
    code="not_tracked",
    title="Item not tracked that way",
    template="item {sku!r} is tracked by {tracking}: it has no {field}",
    kw_only=True,
):
    """A lot named for an item without lots, or serials for an item without serial numbers."""

    sku: str
    tracking: str
    field: str


class TrackingLocked(
    Declared,
    status=409,
    code="tracking_locked",
    title="Tracking cannot change",
    template="item {sku!r} holds stock: its tracking changes only while none is held",
):
    sku: str


class LotRequired(
    Declared, code="lot_required", title="Lot required", template="item {sku!r} is lot-tracked: give the lot"
):
    sku: str


class ExpiryRequired(
    Declared,
    code="expiry_required",
    title="Expiry date required",
    template="item {sku!r} requires an expiry date for lot {lot!r}",
):
    sku: str
    lot: str


class ExpiryMismatch(
    Declared,
    status=409,
    code="expiry_mismatch",
    title="Lot expires on another date",
    template="lot {lot!r} of {sku!r} expires on {expiry}, not {given}",
    kw_only=True,
):
    sku: str
    lot: str
    expiry: str
    given: str


class UnknownLot(
    Declared, NotFound, code="unknown_lot", title="Unknown lot", template="no lot {lot!r} of item {sku!r}"
):
    sku: str
    lot: str


class ExpiredLot(
    Declared,
    status=409,
    code="expired_lot",
    title="Lot expired",
    template="lot {lot!r} of {sku!r} expired on {expiry}: a manager may issue it with a reason",
    kw_only=True,
):
    sku: str
    lot: str
    expiry: str


class SerialCountMismatch(
    Declared,
    code="serial_count_mismatch",
    title="Serial numbers do not match the quantity",
    template="{quantity} of {sku!r} need exactly {quantity} serial numbers, {given} given",
    kw_only=True,
):
    sku: str
    quantity: Decimal
    given: int


class SerialExists(
    Declared,
    status=409,
    code="serial_exists",
    title="Serial number exists",
    template="serial {serial!r} of {sku!r} was already received",
):
    sku: str
    serial: str


class UnknownSerial(
    Declared, NotFound, code="unknown_serial", title="Unknown serial", template="no serial {serial!r} of item {sku!r}"
):
    sku: str
    serial: str


class SerialNotHere(
    Declared,
    status=409,
    code="serial_not_here",
    title="Serial not at this location",
    template="serial {serial!r} of {sku!r} is not in stock at {location}",
    kw_only=True,
):
    sku: str
    serial: str
    location: str
