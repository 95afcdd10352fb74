"""Low-stock and lot expiry notifications: deliver the outbox the stock service writes, and manage where it goes.

Delivery is at-least-once, and no network call is ever made while a row lock is held. A dispatch
round has three steps: a short transaction claims due pending events (`SELECT ... FOR UPDATE SKIP
LOCKED` on MySQL/MariaDB, so parallel dispatchers never take the same rows; SQLite serialises
writers anyway), moves them out of the queue for a lease (`CLAIM_LEASE`) and commits; the
messages go out with no transaction open; a second short transaction records each (event, target)
success and marks the events delivered, retried later with exponential backoff, or dead. A crash
after the claim leaves the events pending: they come back when the lease runs out and go again
to every target whose success was not recorded. So a receiver may see an event twice, never zero
times; each webhook body carries `event_id`, also sent as `X-Inventory-Event-Id`, the same on every
redelivery, for the receiver to de-duplicate on.

WeCom robots get several events batched into one markdown message (at most 4,096 bytes), and at
most 20 messages a minute per robot; generic webhooks get one JSON body per event, signed with
HMAC-SHA256 over "<timestamp>.<body>" in `X-Inventory-Signature`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import secrets
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlsplit

from sqlalchemy import Select, delete, insert, select, update

from app.config import settings
from app.extensions import db
from app.models import Item, Location, Lot, OutboxEvent, Reservation, Warehouse
from app.models.notification import (
    TARGET_KINDS,
    LedgerAudit,
    NotificationDelivery,
    NotificationSubscription,
    NotificationTarget,
)
from app.models.types import utcnow
from app.observability import tracing
from app.services import wecom
from app.services.errors import InvalidInput
from app.services.ledger import find_ledger_mismatches
from app.services.text import single_line
from app.services.transaction import run_in_transaction, unit_of_work

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 30
BACKOFF_CAP_SECONDS = 3600
CLAIM_BATCH = 200
# Longer than a round can take (a webhook times out after 5 s and fails the rest of its batch;
# a robot sends at most 20 messages a minute), so a live dispatcher is never overtaken.
CLAIM_LEASE = timedelta(minutes=5)
EVENT_ID_HEADER = "X-Inventory-Event-Id"
SIGNATURE_HEADER = "X-Inventory-Signature"
TIMESTAMP_HEADER = "X-Inventory-Timestamp"
HEADER = "### 库存预警 Low stock"
# A WeCom message batches events of one kind under its heading.
HEADERS = {
    "low_stock": HEADER,
    "lot_expiring": "### 批次临期 Lots expiring soon",
    "lot_expired": "### 批次已过期 Expired lots in stock",
}
AUDIT_HISTORY = timedelta(days=30)

# One limiter per robot URL and process: the robot counts messages, whoever sends them.
_limiters: dict[str, wecom.RateLimiter] = {}


@dataclass(frozen=True)
class PendingEvent:
    id: int
    sku: str
    item_name: str
    unit: str
    location: str
    warehouse_id: int
    warehouse: str
    quantity: Decimal
    reorder_point: Decimal
    created_at: datetime
    attempts: int
    traceparent: str | None
    kind: str  # "low_stock", an expiry event's "lot_expiring" or "lot_expired", or a reservation event's
    # The lot of an expiry event; a low-stock event has none.
    lot_id: int | None
    lot_code: str | None
    expiry: date | None
    # A reservation event's reservation (issue 18), its order reference and status.
    reservation_id: int | None
    reference: str | None
    reservation_status: str | None


@dataclass(frozen=True)
class Target:
    """A notification target as read at claim time, usable once that transaction has ended."""

    id: int
    name: str
    kind: str
    url: str | None
    secret: str | None


@dataclass(frozen=True)
class _Claim:
    now: datetime
    events: list[PendingEvent]
    targets: dict[int, list[Target]]
    delivered: set[tuple[int, int]]


@dataclass
class DispatchReport:
    claimed: int = 0
    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    deferred: int = 0
    messages: int = 0
    errors: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Channel:
    """How to reach targets: the robot URL from the environment and the base URL for links."""

    robot_url: str
    base_url: str
    max_attempts: int = MAX_ATTEMPTS
    send_markdown: Callable[[str, str], None] = wecom.send_markdown
    post_json: Callable[[str, bytes, dict[str, str]], bytes] = wecom.post_json


def backoff(attempts: int) -> timedelta:
    """Exponential backoff with jitter: ~30 s, 1 min, 2 min … capped at an hour."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0))
    return timedelta(seconds=ceiling * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not crypto


def quantity_text(value: Decimal) -> str:
    """12.500 -> "12.5", 3.000 -> "3": what a person reads in a chat message."""
    return format(Decimal(value).normalize(), "f")


def mask_url(url: str | None) -> str:
    """Scheme and host only: robot keys and webhook tokens live in the rest."""
    if not url:
        return ""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}/…"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


# ---------------------------------------------------------------- messages


def event_url(event: PendingEvent, base_url: str) -> str:
    """The page an event links to: its reservation's, its lot's for an expiry event, else its item's."""
    if event.reservation_id is not None:
        return f"{base_url.rstrip('/')}/reservations/{event.reservation_id}"
    if event.lot_id is not None:
        return f"{base_url.rstrip('/')}/lots/{event.lot_id}"
    return f"{base_url.rstrip('/')}/items/{quote(event.sku, safe='')}"


def _lot_block(event: PendingEvent, base_url: str) -> str:
    expiry = event.expiry.isoformat() if event.expiry else ""
    state = "已过期 Expired" if event.kind == "lot_expired" else "临期 Expiring"
    block = (
        f"**{wecom.inline(event.item_name, 100)}** `{wecom.code(event.sku)}`"
        f" 批次 Lot `{wecom.code(event.lot_code or '')}`\n"
        f'> 到期 Expiry: <font color="warning">{expiry} {state}</font>\n'
        f"> 库位 Location: {wecom.inline(event.location)} ({wecom.inline(event.warehouse)})"
        f" · 在库 On hand: {quantity_text(event.quantity)} {wecom.inline(event.unit, 16)}\n"
        f"> [查看批次 View lot]({event_url(event, base_url)})"
    )
    return wecom.own_links(block, base_url)


def markdown_block(event: PendingEvent, base_url: str) -> str:
    """Every value is escaped (wecom.inline, wecom.code): an item named "# 通知\\n[领奖](http://…)"
    is shown as typed, never as a heading or a link; the only link is to the item's (or for an
    expiry event, the lot's) own page."""
    if event.kind != "low_stock":
        return _lot_block(event, base_url)
    link = event_url(event, base_url)
    block = (
        f"**{wecom.inline(event.item_name, 100)}** `{wecom.code(event.sku)}`\n"
        f"> 库位 Location: {wecom.inline(event.location)} ({wecom.inline(event.warehouse)})\n"
        f'> 在库 On hand: <font color="warning">{quantity_text(event.quantity)} {wecom.inline(event.unit, 16)}</font>'
        f" · 补货点 Reorder point: {quantity_text(event.reorder_point)}\n"
        f"> [查看物品 View item]({link})"
    )
    return wecom.own_links(block, base_url)


def markdown_batches(events: Sequence[PendingEvent], base_url: str) -> list[tuple[str, list[int]]]:
    """Messages of at most 4,096 bytes, each with the ids of the events it carries; one kind of
    event a message, under that kind's heading."""
    batches: list[tuple[str, list[int]]] = []
    for kind in HEADERS:
        batches += _batches_of([e for e in events if e.kind == kind], base_url, HEADERS[kind])
    return batches


def _batches_of(events: Sequence[PendingEvent], base_url: str, header: str) -> list[tuple[str, list[int]]]:
    batches: list[tuple[str, list[int]]] = []
    text, ids = "", list[int]()
    for event in events:
        block = markdown_block(event, base_url)
        candidate = f"{text}\n\n{block}" if ids else f"{header}\n\n{block}"
        if ids and len(candidate.encode("utf-8")) > wecom.MARKDOWN_LIMIT_BYTES:
            batches.append((text, ids))
            text, ids = wecom.truncate_utf8(f"{header}\n\n{block}"), [event.id]
        else:
            text, ids = wecom.truncate_utf8(candidate), [*ids, event.id]
    if ids:
        batches.append((text, ids))
    return batches


def webhook_payload(event: PendingEvent, base_url: str) -> bytes:
    """The JSON body; `event_id` is stable across redeliveries (see the module docstring)."""
    body: dict[str, Any] = {
        "type": f"inventory.{event.kind}",
        "event_id": event.id,
        "sku": event.sku,
        "item_name": event.item_name,
        "unit": event.unit,
        "warehouse": event.warehouse,
        "location": event.location,
        "quantity": str(event.quantity),
        "reorder_point": str(event.reorder_point),
        "url": event_url(event, base_url),
        "created_at": event.created_at.isoformat(),
    }
    if event.reservation_id is not None:
        # The first line's item and place, which routed it; `quantity` is what the event moved.
        del body["reorder_point"]
        body.update(reservation_id=event.reservation_id, reference=event.reference, status=event.reservation_status)
    elif event.kind != "low_stock":
        del body["reorder_point"]
        body.update(lot=event.lot_code, expiry=event.expiry.isoformat() if event.expiry else None)
    return json.dumps(body, ensure_ascii=False, sort_keys=True).encode("utf-8")


# ---------------------------------------------------------------- one dispatch round


def _claim(limit: int) -> _Claim:
    now = utcnow()
    statement = (
        select(OutboxEvent.id)
        .where(OutboxEvent.status == "pending", OutboxEvent.next_attempt_at <= now)
        .order_by(OutboxEvent.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list(db.session.scalars(statement))
    if not ids:
        return _Claim(now, [], {}, set())
    db.session.execute(update(OutboxEvent).where(OutboxEvent.id.in_(ids)).values(next_attempt_at=now + CLAIM_LEASE))
    return _Claim(now, _load(ids), _subscribers(), _delivered(ids))


def _events(*columns: Any) -> Select[Any]:
    """Low-stock events with their item, location and warehouse."""
    return (
        select(*columns)
        .join(Item, Item.id == OutboxEvent.item_id)
        .join(Location, Location.id == OutboxEvent.location_id)
        .join(Warehouse, Warehouse.id == Location.warehouse_id)
    )


def _load(ids: list[int]) -> list[PendingEvent]:
    rows = db.session.execute(
        _events(
            OutboxEvent.id,
            Item.sku,
            Item.name,
            Item.unit,
            Location.code,
            Location.warehouse_id,
            Warehouse.code,
            OutboxEvent.quantity,
            OutboxEvent.reorder_point,
            OutboxEvent.created_at,
            OutboxEvent.attempts,
            OutboxEvent.traceparent,
            OutboxEvent.kind,
            OutboxEvent.lot_id,
            Lot.code,
            Lot.expiry,
            OutboxEvent.reservation_id,
            Reservation.reference,
            Reservation.status,
        )
        .outerjoin(Lot, Lot.id == OutboxEvent.lot_id)
        .outerjoin(Reservation, Reservation.id == OutboxEvent.reservation_id)
        .where(OutboxEvent.id.in_(ids))
        .order_by(OutboxEvent.id)
    )
    return [PendingEvent(*row) for row in rows]


def _subscribers() -> dict[int, list[Target]]:
    """Active targets by warehouse id."""
    rows = db.session.execute(
        select(NotificationSubscription.warehouse_id, NotificationTarget)
        .join(NotificationTarget, NotificationTarget.id == NotificationSubscription.target_id)
        .where(NotificationTarget.active.is_(True))
        .order_by(NotificationTarget.id)
    )
    by_warehouse: dict[int, list[Target]] = defaultdict(list)
    for warehouse_id, t in rows:
        by_warehouse[warehouse_id].append(Target(t.id, t.name, t.kind, t.url, t.secret))
    return by_warehouse


def _delivered(ids: list[int]) -> set[tuple[int, int]]:
    rows = db.session.execute(
        select(NotificationDelivery.event_id, NotificationDelivery.target_id).where(
            NotificationDelivery.event_id.in_(ids)
        )
    )
    return {(event_id, target_id) for event_id, target_id in rows}


def _limiter(url: str) -> wecom.RateLimiter:
    key = hashlib.sha256(url.encode()).hexdigest()
    if key not in _limiters:
        _limiters[key] = wecom.RateLimiter(key=key, storage_uri=settings().RATELIMIT_STORAGE_URI)
    return _limiters[key]


class _Round:
    """What one dispatch round sent, failed to send, or left for later: kept in memory while the
    messages go out, written in one transaction afterwards."""

    def __init__(self, channel: Channel, claim: _Claim) -> None:
        self.channel = channel
        self.now = claim.now
        self.sent: set[tuple[int, int]] = set()
        self.errors: dict[int, str] = {}
        self.deferred: set[int] = set()
        self.messages = 0

    def _succeeded(self, target: Target, ids: list[int]) -> None:
        self.sent.update((event_id, target.id) for event_id in ids)

    def _failed(self, target: Target, ids: list[int], error: str) -> None:
        log.warning(
            "notification delivery failed",
            extra={"target": target.name, "target_kind": target.kind, "events": len(ids), "error": error},
        )
        for event_id in ids:
            self.errors.setdefault(event_id, f"{target.name}: {error}")

    def send_wecom(self, target: Target, events: list[PendingEvent]) -> None:
        # Reservation events are for other systems (webhooks): a chat robot is not told them.
        self._succeeded(target, [e.id for e in events if e.kind not in HEADERS])
        events = [e for e in events if e.kind in HEADERS]
        if not events:
            return
        url = target.url or self.channel.robot_url
        if not url:
            self._failed(target, [e.id for e in events], "no robot URL (INVENTORY_WECOM_WEBHOOK_URL) configured")
            return
        batches = markdown_batches(events, self.channel.base_url)
        for n, (text, ids) in enumerate(batches):
            if not _limiter(url).try_acquire():
                # Over the robot's 20 messages a minute: not a failure, these wait for the next round.
                self.deferred.update(i for _, rest in batches[n:] for i in rest)
                return
            try:
                self.channel.send_markdown(url, text)
            except wecom.DeliveryFailed as exc:
                self._failed(target, [i for _, rest in batches[n:] for i in rest], str(exc))
                return
            self.messages += 1
            self._succeeded(target, ids)

    def send_webhook(self, target: Target, events: list[PendingEvent]) -> None:
        for n, event in enumerate(events):
            body = webhook_payload(event, self.channel.base_url)
            stamp = str(int(time.time()))
            headers = {
                "X-Inventory-Event": event.kind,
                EVENT_ID_HEADER: str(event.id),
                TIMESTAMP_HEADER: stamp,
                SIGNATURE_HEADER: sign(target.secret or "", stamp, body),
            }
            try:
                self.channel.post_json(target.url or "", body, headers)
            except wecom.DeliveryFailed as exc:
                # The endpoint is down: do not wait out a timeout per event, fail the rest too.
                self._failed(target, [e.id for e in events[n:]], str(exc))
                return
            self.messages += 1
            self._succeeded(target, [event.id])


def _send(channel: Channel, claim: _Claim) -> _Round:
    """Every message of the round, with no transaction open (nothing here touches the database)."""
    work = _Round(channel, claim)
    by_target: dict[int, tuple[Target, list[PendingEvent]]] = {}
    for event in claim.events:
        for target in claim.targets.get(event.warehouse_id, []):
            if (event.id, target.id) not in claim.delivered:
                by_target.setdefault(target.id, (target, []))[1].append(event)
    for target, pending in by_target.values():
        # Linked to the requests whose transactions wrote these events.
        with tracing.span(
            "outbox.send",
            **{"inventory.target_kind": target.kind, "inventory.events": len(pending)},
        ) as span:
            if span is not None:
                for link in tracing.links(e.traceparent for e in pending):
                    span.add_link(link.context)
            if target.kind == "wecom":
                work.send_wecom(target, pending)
            else:
                work.send_webhook(target, pending)
    return work


def _record(claim: _Claim, work: _Round) -> DispatchReport:
    """The round's outcome, in one transaction after the sends."""
    ids = [event.id for event in claim.events]
    # Lock the claimed events, then re-read what is recorded: a dispatcher that took them over
    # after an expired lease may have recorded some deliveries already.
    db.session.execute(select(OutboxEvent.id).where(OutboxEvent.id.in_(ids)).with_for_update())
    done = _delivered(ids)
    new = sorted(work.sent - done)
    if new:
        db.session.execute(
            insert(NotificationDelivery),
            [dict(event_id=e, target_id=t, delivered_at=work.now) for e, t in new],
        )
    done |= work.sent
    report = DispatchReport(claimed=len(claim.events), messages=work.messages, errors=work.errors)
    for event in claim.events:
        wanted = {t.id for t in claim.targets.get(event.warehouse_id, [])}
        if all((event.id, target_id) in done for target_id in wanted):
            values: dict[str, Any] = dict(status="delivered", delivered_at=work.now, last_error=None)
            report.delivered += 1
        elif event.id in work.errors:
            attempts = event.attempts + 1
            dead = attempts >= work.channel.max_attempts
            values = dict(
                attempts=attempts,
                last_error=work.errors[event.id][:500],
                status="dead" if dead else "pending",
                next_attempt_at=work.now + backoff(attempts),
            )
            report.dead += dead
            report.retrying += not dead
        else:
            # Held back by the robot's rate limit: due again at once, not after the lease.
            values = dict(next_attempt_at=work.now)
            report.deferred += 1
        db.session.execute(
            update(OutboxEvent).where(OutboxEvent.id == event.id, OutboxEvent.status == "pending").values(**values)
        )
    return report


def dispatch_once(channel: Channel, *, limit: int = CLAIM_BATCH) -> DispatchReport:
    """Deliver up to `limit` due low-stock events: claim, send, record (see the module docstring).
    A round that delivers anything is a trace of its own, linked to the requests that wrote the
    events."""
    if not _due():
        return DispatchReport()
    with tracing.job("outbox.delivery") as root:
        with tracing.span("outbox.claim"):
            claim = run_in_transaction(lambda: _claim(limit), name="outbox_claim")
        if root is not None:
            for link in tracing.links(e.traceparent for e in claim.events):
                root.add_link(link.context)
        if not claim.events:
            return DispatchReport()
        work = _send(channel, claim)
        report = run_in_transaction(lambda: _record(claim, work), name="outbox_record")
        _log_round(report)
    return report


def _due() -> bool:
    """Whether any event is due, read without a lock: an idle worker's rounds leave no trace."""
    found = db.session.scalar(
        select(OutboxEvent.id).where(OutboxEvent.status == "pending", OutboxEvent.next_attempt_at <= utcnow()).limit(1)
    )
    db.session.rollback()
    return found is not None


def _log_round(report: DispatchReport) -> None:
    log.info(
        "low-stock events dispatched",
        extra={
            "claimed": report.claimed,
            "delivered": report.delivered,
            "retrying": report.retrying,
            "dead": report.dead,
            "deferred": report.deferred,
            "messages_sent": report.messages,
        },
    )


# ---------------------------------------------------------------- the ledger audit


def run_ledger_audit() -> LedgerAudit:
    """Reconcile every stock level with the ledger and record how many do not match.

    The reading runs outside any write transaction (see app.services.ledger: one snapshot, no
    lock); only the one-row record of the outcome is a unit of work."""
    started = time.perf_counter()
    mismatches = find_ledger_mismatches()
    audit = _record_audit(len(mismatches), int((time.perf_counter() - started) * 1000))
    log.info("ledger audit finished", extra={"mismatches": audit.mismatches, "duration_ms": audit.duration_ms})
    for m in mismatches[:20]:
        log.error(
            "ledger mismatch",
            extra={"sku": m.sku, "location": m.location, "on_hand": str(m.on_hand), "from_ledger": str(m.from_ledger)},
        )
    return audit


@unit_of_work
def _record_audit(mismatches: int, duration_ms: int) -> LedgerAudit:
    audit = LedgerAudit(finished_at=utcnow(), mismatches=mismatches, duration_ms=duration_ms)
    db.session.add(audit)
    db.session.execute(delete(LedgerAudit).where(LedgerAudit.finished_at < utcnow() - AUDIT_HISTORY))
    return audit


# ---------------------------------------------------------------- administration (the admin UI)


@dataclass(frozen=True)
class TargetView:
    id: int
    name: str
    kind: str
    url_hint: str
    active: bool
    has_secret: bool
    warehouses: list[str]


@dataclass(frozen=True)
class DeadLetter:
    id: int
    sku: str
    location: str
    quantity: Decimal
    reorder_point: Decimal
    attempts: int
    last_error: str | None
    created_at: datetime


def list_targets() -> list[TargetView]:
    targets = db.session.scalars(select(NotificationTarget).order_by(NotificationTarget.name)).all()
    codes: dict[int, list[str]] = defaultdict(list)
    for target_id, code in db.session.execute(
        select(NotificationSubscription.target_id, Warehouse.code)
        .join(Warehouse, Warehouse.id == NotificationSubscription.warehouse_id)
        .order_by(Warehouse.code)
    ):
        codes[target_id].append(code)
    return [TargetView(t.id, t.name, t.kind, mask_url(t.url), t.active, bool(t.secret), codes[t.id]) for t in targets]


def list_warehouse_codes() -> list[str]:
    return list(db.session.scalars(select(Warehouse.code).where(Warehouse.active.is_(True)).order_by(Warehouse.code)))


def _get_target(target_id: int) -> NotificationTarget:
    target = db.session.get(NotificationTarget, target_id)
    if target is None:
        raise InvalidInput("target", f"no notification target {target_id}")
    return target


def _check_url(kind: str, url: str | None) -> str | None:
    url = (url or "").strip() or None
    if url is None and kind == "webhook":
        raise InvalidInput("url", "a webhook needs a URL")
    if url is not None and (not url.startswith(("https://", "http://")) or len(url) > 500):
        raise InvalidInput("url", "must be an http(s) URL of at most 500 characters")
    return url


@unit_of_work
def create_target(
    *, name: str, kind: str, url: str | None = None, secret: str | None = None, warehouses: Sequence[str] = ()
) -> NotificationTarget:
    """A WeCom robot (no URL: the one from the environment) or a webhook (a signing secret is
    generated when none is given). Raises InvalidInput."""
    name = single_line((name or "").strip(), "name")
    if not name or len(name) > 100:
        raise InvalidInput("name", "1 to 100 characters")
    if kind not in TARGET_KINDS:
        raise InvalidInput("kind", f"one of {', '.join(TARGET_KINDS)}")
    if db.session.scalar(select(NotificationTarget.id).where(NotificationTarget.name == name)) is not None:
        raise InvalidInput("name", "a target with this name exists")
    checked_url = _check_url(kind, url)
    if kind == "webhook" and not (secret or "").strip():
        secret = secrets.token_urlsafe(32)
    target = NotificationTarget(name=name, kind=kind, url=checked_url, secret=(secret or "").strip() or None)
    db.session.add(target)
    db.session.flush()
    _replace_subscriptions(target.id, warehouses)
    return target


def _replace_subscriptions(target_id: int, warehouses: Sequence[str]) -> None:
    """Delete the subscriptions no longer wanted and add the new ones; those kept stay as they
    are, so saving the same set changes no row."""
    codes = sorted(set(warehouses))
    found = dict(
        db.session.execute(select(Warehouse.code, Warehouse.id).where(Warehouse.code.in_(codes))).tuples().all()
    )
    for code in codes:
        if code not in found:
            raise InvalidInput("warehouses", f"unknown warehouse {code}")
    wanted = set(found.values())
    current = set(
        db.session.scalars(
            select(NotificationSubscription.warehouse_id).where(NotificationSubscription.target_id == target_id)
        )
    )
    if current - wanted:
        db.session.execute(
            delete(NotificationSubscription).where(
                NotificationSubscription.target_id == target_id,
                NotificationSubscription.warehouse_id.in_(current - wanted),
            )
        )
    for warehouse_id in sorted(wanted - current):
        db.session.add(NotificationSubscription(target_id=target_id, warehouse_id=warehouse_id))


@unit_of_work
def set_subscriptions(*, target_id: int, warehouses: Sequence[str]) -> None:
    """The warehouses whose low-stock events this target receives (replaces the previous set)."""
    _get_target(target_id)
    _replace_subscriptions(target_id, warehouses)


@unit_of_work
def set_target_active(*, target_id: int, active: bool) -> None:
    _get_target(target_id).active = active


@unit_of_work
def delete_target(*, target_id: int) -> None:
    target = _get_target(target_id)
    db.session.execute(delete(NotificationSubscription).where(NotificationSubscription.target_id == target_id))
    db.session.execute(delete(NotificationDelivery).where(NotificationDelivery.target_id == target_id))
    db.session.delete(target)


def list_dead_letters(limit: int = 200) -> list[DeadLetter]:
    rows = db.session.execute(
        _events(
            OutboxEvent.id,
            Item.sku,
            Location.code,
            OutboxEvent.quantity,
            OutboxEvent.reorder_point,
            OutboxEvent.attempts,
            OutboxEvent.last_error,
            OutboxEvent.created_at,
        )
        .where(OutboxEvent.status == "dead")
        .order_by(OutboxEvent.id.desc())
        .limit(limit)
    )
    return [DeadLetter(*row) for row in rows]


@unit_of_work
def retry_dead_letter(*, event_id: int) -> None:
    """Put a dead event back in the queue, due now, with its attempts reset."""
    result = db.session.execute(
        update(OutboxEvent)
        .where(OutboxEvent.id == event_id, OutboxEvent.status == "dead")
        .values(status="pending", attempts=0, next_attempt_at=utcnow())
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise InvalidInput("event", f"no dead-letter event {event_id}")
