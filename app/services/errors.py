"""Domain exceptions: what went wrong, with the facts, a stable code and an HTTP status.

`app/errors.py` turns these into problem documents (API) or flashed messages (pages); services
raise them and never know about HTTP beyond the status number.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any


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


class NotFound(DomainError):
    status = 404
    code = "not_found"
    title = "Not found"


class UnknownItem(NotFound):
    code = "unknown_item"
    title = "Unknown item"

    def __init__(self, sku: str) -> None:
        super().__init__(f"no item with SKU {sku!r}", sku=sku)


class UnknownLocation(NotFound):
    code = "unknown_location"
    title = "Unknown location"

    def __init__(self, location: str) -> None:
        super().__init__(f"no location with code {location!r}", location=location)


class UnknownGtin(NotFound):
    """A GS1 code whose GTIN is no item's barcode (in any of its 14, 13, 12 or 8-digit forms)."""

    code = "unknown_gtin"
    title = "Unknown GTIN"

    def __init__(self, gtin: str) -> None:
        super().__init__(f"no item with barcode {gtin}", gtin=gtin)


class UnknownMovement(NotFound):
    code = "unknown_movement"
    title = "Unknown movement"

    def __init__(self, movement_id: int) -> None:
        super().__init__(f"no movement #{movement_id}", movement_id=movement_id)


class UnknownUser(NotFound):
    code = "unknown_user"
    title = "Unknown user"

    def __init__(self, username: str) -> None:
        super().__init__(f"no user {username!r}", username=username)


class ArchivedItem(DomainError):
    status = 422
    code = "archived_item"
    title = "Item is archived"

    def __init__(self, sku: str) -> None:
        super().__init__(f"item {sku!r} is archived and cannot be moved", sku=sku)


class InactiveLocation(DomainError):
    status = 422
    code = "inactive_location"
    title = "Location is inactive"

    def __init__(self, location: str) -> None:
        super().__init__(f"location {location!r} is inactive", location=location)


class SameLocation(DomainError):
    status = 422
    code = "same_location"
    title = "Transfer to the same location"

    def __init__(self, location: str) -> None:
        super().__init__(f"cannot transfer from {location!r} to itself", location=location)


class InsufficientStock(DomainError):
    status = 409
    code = "insufficient_stock"
    title = "Insufficient stock"

    def __init__(self, *, sku: str, location: str, requested: Decimal, available: Decimal) -> None:
        super().__init__(
            f"only {available} of {sku} at {location}, {requested} requested",
            sku=sku,
            location=location,
            requested=requested,
            available=available,
        )
        self.sku = sku
        self.location = location
        self.requested = requested
        self.available = available


class StockShortDuringCount(DomainError):
    """InsufficientStock as a counter sees it at a place being counted (a blind count): the same
    refusal, without the quantity that would unblind the count."""

    status = 409
    code = "insufficient_stock"
    title = "Insufficient stock"

    def __init__(self, *, sku: str, location: str, requested: Decimal) -> None:
        super().__init__(
            f"not enough {sku} at {location} for {requested} requested; the quantity is hidden while it is counted",
            sku=sku,
            location=location,
            requested=requested,
            quantity_hidden=True,
        )
        self.sku = sku
        self.location = location
        self.requested = requested


class QuantityOutOfRange(DomainError):
    """A movement would take a stock level, or an item's total over every location, past the
    largest quantity the database stores (NUMERIC(18, 3))."""

    status = 409
    code = "quantity_out_of_range"
    title = "Quantity out of range"

    def __init__(self, *, sku: str, location: str, limit: Decimal) -> None:
        super().__init__(
            f"{sku} at {location} would exceed the largest storable quantity {limit}",
            sku=sku,
            location=location,
            limit=limit,
        )


class AlreadyReversed(DomainError):
    status = 409
    code = "already_reversed"
    title = "Movement already reversed"

    def __init__(self, movement_id: int, reversal_id: int) -> None:
        super().__init__(
            f"movement #{movement_id} was already reversed by #{reversal_id}",
            movement_id=movement_id,
            reversal_id=reversal_id,
        )


class IrreversibleMovement(DomainError):
    status = 422
    code = "irreversible_movement"
    title = "Movement cannot be reversed"

    def __init__(self, movement_id: int, reason: str) -> None:
        super().__init__(f"movement #{movement_id} cannot be reversed: {reason}", movement_id=movement_id)


class IdempotencyConflict(DomainError):
    status = 409
    code = "idempotency_conflict"
    title = "Idempotency key reused with a different request"

    def __init__(self, key: str) -> None:
        super().__init__(f"idempotency key {key!r} was already used for a different request", key=key)


class Conflict(DomainError):
    status = 409
    code = "conflict"
    title = "Conflict"


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
