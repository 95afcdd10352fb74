"""Failed sign-in attempts: what the sign-in throttle counts, shared by every gunicorn worker."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models.types import BigId, UtcDateTime, utcnow


class SignInFailure(Model):
    __tablename__ = "sign_in_failures"
    __table_args__ = (
        Index("ix_sign_in_failures_username_digest_client_created_at", "username_digest", "client", "created_at"),
        Index("ix_sign_in_failures_client_created_at", "client", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # HMAC-SHA256 (hex) of the username as typed, lower-cased: guessing unknown usernames is throttled
    # too, and a password typed into the username box is never stored.
    username_digest: Mapped[str] = mapped_column(String(64))
    client: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
