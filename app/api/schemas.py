"""The API's payloads, defined once: pydantic models validate requests and describe responses, and
the OpenAPI document (app.api.openapi) is generated from these same classes.

Quantities travel as decimal strings ("2.5") and are accepted as strings or numbers; the check
itself is the stock core's `parse_quantity`, so the API and the pages agree on what a quantity is.
Responses are built as plain dicts by the `*_body` functions here (no model round trip on the hot
path); the contract tests and schemathesis hold them to the response models.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    WithJsonSchema,
)

from app.models import MOVEMENT_KINDS, RESERVATION_STATUSES, SERIAL_STATES, TRACKING_MODES
from app.models.types import MAX_ROW_ID
from app.services.errors import DomainError, InvalidQuantity
from app.services.quantities import parse_quantity

MAX_PAGE = 200
_QUANTITY_PATTERN = r"^[0-9]{1,15}(\.[0-9]{1,3})?$"


class RequestInvalid(DomainError):
    """The request body or query failed validation; `errors` lists each field and what is wrong."""

    status = 422
    code = "validation_failed"
    title = "Invalid request"

    def __init__(self, errors: list[dict[str, str]]) -> None:
        noun = "field" if len(errors) == 1 else "fields"
        super().__init__(f"{len(errors)} {noun} failed validation", errors=errors)

    @classmethod
    def from_pydantic(cls, error: ValidationError) -> RequestInvalid:
        return cls(
            [
                {"field": ".".join(str(part) for part in e["loc"]) or "body", "message": e["msg"]}
                for e in error.errors(include_url=False, include_context=False, include_input=False)
            ]
        )


def _checker(*, allow_zero: bool) -> Any:
    def check(value: object) -> Decimal:
        try:
            return parse_quantity(value, allow_zero=allow_zero)
        except InvalidQuantity as error:
            raise ValueError(error.message.split(": ", 1)[-1]) from None

    return check


def _quantity_schema(*, allow_zero: bool) -> dict[str, Any]:
    number: dict[str, Any] = {"type": "number", "maximum": 999999999999999, "multipleOf": 0.001}
    number["minimum" if allow_zero else "exclusiveMinimum"] = 0
    return {
        "anyOf": [{"type": "string", "pattern": _QUANTITY_PATTERN}, number],
        "description": "A decimal with at most 3 places, as a string (preferred) or a number.",
        "examples": ["2", "2.5"],
    }


#: A positive quantity; Count also allows zero (a stocktake count, a reorder point).
Quantity = Annotated[
    Decimal,
    PlainValidator(_checker(allow_zero=False)),
    WithJsonSchema(_quantity_schema(allow_zero=False), mode="validation"),
]
Count = Annotated[
    Decimal,
    PlainValidator(_checker(allow_zero=True)),
    WithJsonSchema(_quantity_schema(allow_zero=True), mode="validation"),
]
#: How quantities leave the API: a decimal string without exponent or trailing zeros.
QuantityText = Annotated[str, Field(pattern=r"^-?[0-9]+(\.[0-9]+)?$", examples=["2.5"])]


def _aware(value: datetime) -> datetime:
    """Naive timestamps in a query are taken as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Timestamp = Annotated[datetime, AfterValidator(_aware)]
Sku = Annotated[str, Field(min_length=1, max_length=64, examples=["DEMO-000001"])]
LocationCode = Annotated[str, Field(min_length=1, max_length=64, examples=["WH1-A-01-01"])]
Reference = Annotated[str | None, Field(default=None, max_length=100, examples=["SO-1001"])]
#: A lot (batch) code, as printed on the supplier's label (GS1 AI 10).
LotCode = Annotated[
    str | None,
    Field(default=None, min_length=1, max_length=64, pattern=r"\S", description="A lot code.", examples=["B2407"]),
]
SerialText = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\s,]+( [^\s,]+)*$")]
Serials = Annotated[
    list[SerialText] | None,
    Field(default=None, max_length=500, description="Serial numbers, one per unit (serial-tracked items)."),
]
Expiry = Annotated[date | None, Field(default=None, description="The lot's expiry date (YYYY-MM-DD).")]
AllowExpired = Annotated[
    bool,
    Field(
        default=False,
        description="Issue from an expired lot (managers only); the reason goes in `note`, which is then required.",
    ),
]
Note = Annotated[str | None, Field(default=None, max_length=500)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def text(value: Decimal | None) -> str | None:
    """A quantity as it travels: "2.5", "100", "0"."""
    return None if value is None else format(value.normalize(), "f")


def when(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


# ---------------------------------------------------------------- stock movements (requests)


class AtLocation(Body):
    """What names one item's stock at one location (by their full codes)."""

    sku: Sku
    location: LocationCode


class PickLineIn(AtLocation):
    quantity: Quantity
    lot: LotCode = None
    serials: Serials = None


class Noted(Body):
    """What every stock request may carry besides what it moves (the services' `reference`, `note`)."""

    reference: Reference = None
    note: Note = None


class IssueStock(PickLineIn, Noted):
    """A stock-out: take `quantity` of `sku` out of `location` (its full code). A lot-tracked item
    is taken from `lot`, or else first-expired-first-out over its lots there (several movements);
    a serial-tracked item by naming its `serials`."""

    allow_expired: AllowExpired = False


class ReceiveStock(PickLineIn, Noted):
    """A receipt: put `quantity` of `sku` into `location`; a lot-tracked item into `lot` (with its
    `expiry` when the item requires one), a serial-tracked item as `quantity` new `serials`."""

    expiry: Expiry = None


class TransferStock(Noted):
    sku: Sku
    from_location: LocationCode
    to_location: LocationCode
    quantity: Quantity
    lot: LotCode = None
    serials: Serials = None
    allow_expired: AllowExpired = False


class AdjustStock(AtLocation, Noted):
    """A stocktake: set the level at `location` (of `lot`, for a lot-tracked item) to `counted`
    and record the difference."""

    counted: Count
    lot: LotCode = None
    expiry: Expiry = None


class IssueLines(Noted):
    """A multi-line pick: every line is issued, or none is."""

    lines: list[PickLineIn] = Field(min_length=1, max_length=500)


class ReverseMovement(Body):
    reason: str = Field(min_length=1, max_length=500, pattern=r"\S")
    restore_reservation: bool = Field(
        default=False, description="For a reservation's pick: the reservation line holds the stock again."
    )


# ---------------------------------------------------------------- stock movements (responses)


class MovementOut(BaseModel):
    id: int
    kind: Literal["receive", "issue", "transfer", "adjust", "reversal"]
    sku: str
    from_location: str | None
    to_location: str | None
    quantity: QuantityText
    from_balance: QuantityText | None
    to_balance: QuantityText | None
    reference: str | None
    note: str | None
    reason_code: str | None = Field(
        description="Why the system wrote this line, as a stable code (scan_undo: undone on the scan page)."
    )
    user: str
    created_at: datetime
    reverses: int | None = Field(description="The movement this one reverses.")
    lot: str | None = Field(default=None, description="The lot this line moved (lot-tracked items).")
    serials: list[str] | None = Field(default=None, description="The serials this line moved (serial-tracked items).")


class MovementDetail(MovementOut):
    reversed_by: int | None = Field(description="The reversal that undid this movement, if any.")


class MovementResult(BaseModel):
    movement: MovementOut
    movements: list[MovementOut] | None = Field(
        default=None,
        description="Every movement the request wrote when it wrote several (an issue or transfer over several "
        "lots, first-expired-first-out); `movement` is the first of them.",
    )
    balance: QuantityText | None = Field(
        description="The stock level at the location the request named, after it; null for a counter (clerk) "
        "while an open count covers that place: the count is blind."
    )


class MovementsResult(BaseModel):
    movements: list[MovementOut]


class MovementList(BaseModel):
    data: list[MovementOut]
    next: str | None


def movement_body(
    m: Any,
    *,
    sku: str,
    from_location: str | None,
    to_location: str | None,
    hidden: Collection[str] = (),
    traced: Any = None,
) -> dict[str, Any]:
    """A Movement (or a catalogue MovementRow) as MovementOut; the balances of the `hidden` sides
    ("from", "to") left out (a blind count)."""
    body = {
        "id": m.id,
        "kind": m.kind,
        "sku": sku,
        "from_location": from_location,
        "to_location": to_location,
        "quantity": text(m.quantity),
        "from_balance": None if "from" in hidden else text(m.from_balance),
        "to_balance": None if "to" in hidden else text(m.to_balance),
        "reference": m.reference,
        "note": m.note,
        "reason_code": m.reason_code,
        "user": m.username,
        "created_at": m.created_at.isoformat(),
        "reverses": m.reverses_id,
    }
    if traced is not None:
        body["lot"], body["serials"] = traced.lots.get(m.lot_id), traced.serials.get(m.id)
    return body


def row_body(row: Any) -> dict[str, Any]:
    return movement_body(row, sku=row.sku, from_location=row.from_location, to_location=row.to_location)


# ---------------------------------------------------------------- items


Tracking = Literal[TRACKING_MODES]  # type: ignore[valid-type]
TRACKING = (
    "How the stock is told apart: none, by lot (with expiry dates), or by serial number. "
    "Changes only while the item holds no stock."
)
WARNING_DAYS = "Warn this many days before a lot expires (lot-tracked items)."


class ItemFields(Body):
    name: str = Field(min_length=1, max_length=200, examples=["螺丝钉 M6 Screw"])
    barcode: str | None = Field(default=None, max_length=64)
    unit: str = Field(default="pcs", min_length=1, max_length=16)
    category: str | None = Field(default=None, max_length=100)
    reorder_point: Count = Decimal(0)
    reorder_quantity: Count = Decimal(0)
    description: str = Field(default="", max_length=5000)
    tracking: Tracking = Field(default="none", description=TRACKING)
    requires_expiry: bool = Field(default=False, description="Lot-tracked: every lot needs an expiry date.")
    expiry_warning_days: int | None = Field(default=None, ge=0, le=3650, description=WARNING_DAYS)


class CreateItem(ItemFields):
    sku: str = Field(min_length=1, max_length=64, pattern=r"^[^\s\x00-\x1f\x7f/\\]+$", examples=["SCREW-M6"])


class UpdateItem(Body):
    """Only the fields present change; `archived` archives or restores the item."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    barcode: str | None = Field(default=None, max_length=64)
    unit: str | None = Field(default=None, min_length=1, max_length=16)
    category: str | None = Field(default=None, max_length=100)
    reorder_point: Count | None = None
    reorder_quantity: Count | None = None
    description: str | None = Field(default=None, max_length=5000)
    archived: bool | None = None
    tracking: Tracking | None = Field(default=None, description=TRACKING)
    requires_expiry: bool | None = None
    expiry_warning_days: int | None = Field(default=None, ge=0, le=3650, description=WARNING_DAYS)


BLIND = "null for a counter (clerk) while an open count covers this place: the count is blind."


class StockOut(BaseModel):
    sku: str
    location: str = Field(description="The full location code.")
    warehouse: str
    quantity: QuantityText | None = Field(description=BLIND)
    lot: str | None = Field(default=None, description="The lot of this level (lot-tracked items).")
    expiry: date | None = Field(default=None, description="The lot's expiry date.")
    reserved: QuantityText | None = Field(default=None, description="What open reservations hold here; " + BLIND)
    available: QuantityText | None = Field(
        default=None, description="What may be issued or reserved here: quantity less reserved; " + BLIND
    )


class ItemOut(BaseModel):
    sku: str
    name: str
    barcode: str | None
    unit: str
    category: str | None
    reorder_point: QuantityText
    reorder_quantity: QuantityText
    archived: bool
    updated_at: datetime
    on_hand: QuantityText | None = Field(description=BLIND)
    tracking: Tracking = Field(default="none", description=TRACKING)
    requires_expiry: bool = False
    expiry_warning_days: int | None = Field(default=None, description=WARNING_DAYS)


class ItemDetail(ItemOut):
    description: str
    stock: list[StockOut]


class ItemList(BaseModel):
    data: list[ItemOut]
    next: str | None


class StockList(BaseModel):
    data: list[StockOut]
    next: str | None


def item_body(row: Any, *, hidden: bool = False) -> dict[str, Any]:
    """A catalogue ItemRow as ItemOut; `hidden`: the caller counts the item in an open count."""
    return {
        "sku": row.sku,
        "name": row.name,
        "barcode": row.barcode,
        "unit": row.unit,
        "category": row.category,
        "reorder_point": text(row.reorder_point),
        "reorder_quantity": text(row.reorder_quantity),
        "archived": row.archived,
        "updated_at": when(row.updated_at),
        "on_hand": None if hidden else text(row.on_hand),
        **_tracking(row),
    }


def _tracking(row: Any) -> dict[str, Any]:
    return {
        "tracking": getattr(row, "tracking", "none"),
        "requires_expiry": bool(getattr(row, "requires_expiry", False)),
        "expiry_warning_days": getattr(row, "expiry_warning_days", None),
    }


def stock_body(sku: str, row: Any, *, hidden: bool = False) -> dict[str, Any]:
    quantity = None if hidden else text(row.quantity)
    expiry = row.expiry.isoformat() if row.expiry else None
    return {
        "sku": sku,
        "location": row.location,
        "warehouse": row.warehouse,
        "quantity": quantity,
        "lot": row.lot,
        "expiry": expiry,
        "reserved": None if hidden else text(row.reserved),
        "available": None if hidden else text(row.quantity - row.reserved),
    }


def item_detail_body(
    item: Any, category: str | None, stock: list[Any], hidden_locations: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """ItemDetail; the levels at `hidden_locations`, and so the total, are hidden (a blind count)."""
    on_hand = sum((row.quantity for row in stock), Decimal(0))
    return {
        "sku": item.sku,
        "name": item.name,
        "barcode": item.barcode,
        "unit": item.unit,
        "category": category,
        "reorder_point": text(item.reorder_point),
        "reorder_quantity": text(item.reorder_quantity),
        "archived": item.archived,
        "updated_at": when(item.updated_at),
        "on_hand": None if hidden_locations else text(on_hand),
        **_tracking(item),
        "description": item.description,
        "stock": [stock_body(item.sku, row, hidden=row.location in hidden_locations) for row in stock],
    }


# ---------------------------------------------------------------- places, low stock


class WarehouseOut(BaseModel):
    code: str
    name: str
    active: bool


class WarehouseList(BaseModel):
    data: list[WarehouseOut]
    next: None


class LocationOut(BaseModel):
    code: str
    name: str
    warehouse: str
    active: bool
    on_hand: QuantityText


class LocationList(BaseModel):
    data: list[LocationOut]
    next: None


class LowStockOut(BaseModel):
    sku: str
    name: str
    unit: str
    on_hand: QuantityText | None = Field(description=BLIND)
    reorder_point: QuantityText
    reorder_quantity: QuantityText
    suggested: QuantityText | None = Field(description="What to order to get back above the reorder point; " + BLIND)


class LowStockList(BaseModel):
    data: list[LowStockOut]
    next: str | None


# ---------------------------------------------------------------- queries


class Query(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class PageQuery(Query):
    cursor: str | None = Field(default=None, description="The `next` value of the previous page.")
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)

    def filters(self) -> dict[str, Any]:
        """The query as the catalogue's list functions take it: `cursor` is their `after`, `item`
        their `sku`."""
        renamed = {"cursor": "after", "item": "sku"}
        return {renamed.get(name, name): value for name, value in self.model_dump().items()}


class ItemQuery(PageQuery):
    q: str | None = Field(default=None, description="SKU, name or barcode contains it; pinyin starts with it.")
    category: str | None = Field(default=None, description="A category name.")
    warehouse: str | None = Field(default=None, description="A warehouse code that holds some of the item.")
    low_stock: bool = Field(default=False, description="Only items at or below their reorder point.")
    archived: bool = False
    updated_since: Timestamp | None = None


class LotQuery(Query):
    sku: str | None = Field(default=None, max_length=64, description="Only this item's lots.")
    expiring_before: date | None = Field(default=None, description="Only lots that expire before this date.")


class LotOut(BaseModel):
    sku: str
    lot: str
    expiry: date | None
    received_at: datetime
    on_hand: QuantityText = Field(description="What the lot holds over every location.")


class LotList(BaseModel):
    data: list[LotOut]


class SerialOut(BaseModel):
    sku: str
    serial: str
    status: Literal[SERIAL_STATES]  # type: ignore[valid-type]
    location: str | None = Field(description="Where the unit is, while in stock.")
    lot: str | None
    history: list[MovementOut] = Field(description="Every movement of this unit, oldest first.")


class StockQuery(PageQuery):
    item: str | None = Field(default=None, description="A SKU.")
    location: str | None = Field(default=None, description="A full location code.")
    warehouse: str | None = Field(default=None, description="A warehouse code.")


class LocationQuery(Query):
    warehouse: str | None = None
    active: bool | None = None


class MovementQuery(PageQuery):
    item: str | None = Field(default=None, description="A SKU.")
    location: str | None = Field(default=None, description="A location code, on either side.")
    kind: Literal[MOVEMENT_KINDS] | None = None  # type: ignore[valid-type]
    since: Timestamp | None = Field(default=None, description="Inclusive; naive means UTC.")
    until: Timestamp | None = Field(default=None, description="Exclusive; naive means UTC.")
    reference: str | None = None


class LowStockQuery(PageQuery):
    warehouse: str | None = None


# ---------------------------------------------------------------- reservations (issue 18)


class ReserveLineIn(Body):
    sku: Sku
    quantity: Quantity
    location: str | None = Field(
        default=None, min_length=1, max_length=64, description="Where to reserve; omitted: where the stock is."
    )
    lot: LotCode


class CreateReservation(Body):
    reference: str = Field(
        min_length=1, max_length=100, pattern=r"\S", description="The order's number in the ERP.", examples=["SO-1001"]
    )
    lines: list[ReserveLineIn] = Field(min_length=1, max_length=500)
    expires_at: datetime | None = Field(
        default=None, description="When the reservation lapses, with its UTC offset; in the future."
    )


class PickedLineIn(Body):
    line_id: int = Field(ge=1, le=MAX_ROW_ID, description="The reservation line (`lines[].id`).")
    quantity: Count = Field(description="What was picked of it: up to what it holds, 0 for nothing.")
    serials: Serials
    short_reason: str | None = Field(default=None, max_length=200, description="Why less was picked.")


class IssueReservation(Body):
    lines: list[PickedLineIn] | None = Field(
        default=None, min_length=1, max_length=2000, description="What was picked; omitted: every line in full."
    )
    release_rest: bool = Field(default=False, description="Release what the picked lines and the others still hold.")
    note: Note


ReservationStatus = Literal[RESERVATION_STATUSES]  # type: ignore[valid-type]


class ReservationLineOut(BaseModel):
    id: int
    request_line: int = Field(description="The request's line (1-based) this part of it came from.")
    sku: str
    location: str = Field(description="Where it is reserved.")
    lot: str | None
    quantity: QuantityText = Field(description="Reserved at first.")
    picked: QuantityText
    released: QuantityText
    outstanding: QuantityText = Field(description="Still held: quantity less picked less released.")
    short_reason: str | None
    picked_by: str | None
    picked_at: datetime | None


class ReservationOut(BaseModel):
    id: int
    reference: str
    status: ReservationStatus
    created_by: str = Field(description='Who made it: "user:<name>" or "token:<id>".')
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    closed_by: str | None
    lines: list[ReservationLineOut]
    movements: list[MovementOut] | None = Field(default=None, description="The ledger lines an issue wrote.")


class ReservationList(BaseModel):
    data: list[ReservationOut]
    next: str | None


class ReservationQuery(Query):
    reference: str | None = Field(default=None, max_length=100)
    status: ReservationStatus | None = None
    cursor: str | None = Field(default=None, max_length=20, description="The `next` value of the previous page.")
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)


def reservation_body(view: Any) -> dict[str, Any]:
    """A ReservationView as ReservationOut (movements, when it carries them, with their names)."""
    body: dict[str, Any] = {
        "id": view.id,
        "reference": view.reference,
        "status": view.status,
        "created_by": view.created_by,
        "expires_at": when(view.expires_at),
        "created_at": when(view.created_at),
        "updated_at": when(view.updated_at),
        "closed_at": when(view.closed_at),
        "closed_by": view.closed_by,
        "lines": [
            {
                "id": line.id,
                "request_line": line.request_line,
                "sku": line.sku,
                "location": line.location,
                "lot": line.lot,
                "quantity": text(line.quantity),
                "picked": text(line.picked),
                "released": text(line.released),
                "outstanding": text(line.outstanding),
                "short_reason": line.short_reason,
                "picked_by": line.picked_by,
                "picked_at": when(line.picked_at),
            }
            for line in view.lines
        ],
    }
    return body


# ---------------------------------------------------------------- problems


class Problem(BaseModel):
    """An RFC 9457 problem document; error-specific fields come after the standard ones."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str = Field(description="A stable error code, e.g. insufficient_stock.")


class FieldError(BaseModel):
    field: str
    message: str


class ValidationProblem(Problem):
    """422: `errors` lists the fields that failed validation; business rules (an archived item, an
    inactive location, a transfer to the same place) answer 422 with their own fields instead."""

    errors: list[FieldError] = Field(default_factory=list)


class ConflictProblem(Problem):
    """409: `insufficient-stock` carries sku, location, requested and available; an idempotency
    key reused with a different body carries `key`; a duplicate carries `field`."""

    sku: str | None = None
    location: str | None = None
    requested: QuantityText | None = None
    available: QuantityText | None = None
    key: str | None = None
    field: str | None = None


class ReversalResult(BaseModel):
    movement: MovementOut
