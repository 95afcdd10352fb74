"""Where low-stock notifications go (targets, per-warehouse subscriptions), what was delivered,
and the result of each periodic ledger audit the notification worker runs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models.types import BigId, UtcDateTime, utcnow

TARGET_KINDS = ("wecom", "webhook")


class NotificationTarget(Model):
    """A WeCom group robot or a generic webhook.

    A WeCom target with no URL uses the robot from INVENTORY_WECOM_WEBHOOK_URL(_FILE), so the robot
    key can stay in a mounted secret. A webhook's `secret` signs each body with HMAC-SHA256.
    """

    __tablename__ = "notification_targets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    url: Mapped[str | None] = mapped_column(String(500))
    secret: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class NotificationSubscription(Model):
    """A target receives the low-stock events of the warehouses it is subscribed to."""

    __tablename__ = "notification_subscriptions"
    __table_args__ = (
        UniqueConstraint("target_id", "warehouse_id", name="uq_notification_subscriptions_target_warehouse"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("notification_targets.id", ondelete="CASCADE"))
    warehouse_id: Mapped[int] = mapped_column(ForeignKey("warehouses.id"), index=True)


class NotificationDelivery(Model):
    """One event delivered to one target: a retry never sends it to that target again."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (UniqueConstraint("event_id", "target_id", name="uq_notification_deliveries_event_target"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[int] = mapped_column(BigId, ForeignKey("outbox_events.id"))
    target_id: Mapped[int] = mapped_column(ForeignKey("notification_targets.id", ondelete="CASCADE"), index=True)
    delivered_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class LedgerAudit(Model):
    """The outcome of one reconciliation of stock levels against the ledger (exported as a metric)."""

    __tablename__ = "ledger_audits"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    finished_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    mismatches: Mapped[int] = mapped_column(default=0)
    duration_ms: Mapped[int] = mapped_column(default=0)
