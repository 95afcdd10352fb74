"""The outcome of each backup and each verification, read back as metrics and on the admin page."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models.types import BigId, UtcDateTime, utcnow

BACKUP_RUN_KINDS = ("create", "verify")


class BackupRun(Model):
    """One `flask backup create` or `flask backup verify`, successful or not.

    A CronJob has no /metrics of its own to scrape, so the job writes its outcome here and the web
    app exports it as gauges at scrape time, the way ledger audits reach Prometheus.
    """

    __tablename__ = "backup_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200), index=True)
    ok: Mapped[bool] = mapped_column(default=False)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    finished_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    duration_seconds: Mapped[float] = mapped_column(default=0.0)
    size_bytes: Mapped[int] = mapped_column(BigId, default=0)
    detail: Mapped[str] = mapped_column(String(1000), default="")
