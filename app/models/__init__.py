"""Every model, re-exported so that Alembic autogenerate sees the whole schema."""

from app.models.backup import BACKUP_RUN_KINDS, BackupRun
from app.models.count import COUNT_STATUSES, Count, CountLine, CountSerial, ImportBatch
from app.models.item import TRACKING_MODES, Category, Item, ItemRequest, SearchGram
from app.models.job import JOB_STATES, ImportJob, ImportUpload, ImportUploadChunk
from app.models.location import Location, Warehouse
from app.models.notification import LedgerAudit, NotificationDelivery, NotificationSubscription, NotificationTarget  # noqa: F401
from app.models.reservation import RESERVATION_STATUSES, Reservation, ReservationLine, ReservationMovement
from app.models.signin import SignInFailure
from app.models.stock import (
    MOVEMENT_KINDS,
    SERIAL_STATES,
    Lot,
    Movement,
    MovementSerial,
    OutboxEvent,
    Serial,
    StockLevel,
    StockOutIntent,
)
from app.models.user import ROLES, TOKEN_SCOPES, ApiToken, User

__all__ = [
    "BACKUP_RUN_KINDS",
    "COUNT_STATUSES",
    "JOB_STATES",
    "MOVEMENT_KINDS",
    "RESERVATION_STATUSES",
    "ROLES",
    "SERIAL_STATES",
    "TOKEN_SCOPES",
    "TRACKING_MODES",
    "ApiToken",
    "BackupRun",
    "Category",
    "Count",
    "CountLine",
    "CountSerial",
    "ImportBatch",
    "ImportJob",
    "ImportUpload",
    "ImportUploadChunk",
    "Item",
    "ItemRequest",
    "Location",
    "Lot",
    "Movement",
    "MovementSerial",
    "OutboxEvent",
    "Reservation",
    "ReservationLine",
    "ReservationMovement",
    "SearchGram",
    "Serial",
    "SignInFailure",
    "StockLevel",
    "StockOutIntent",
    "User",
    "Warehouse",
]
