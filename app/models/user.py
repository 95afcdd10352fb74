"""People who sign in, their roles, and the API tokens integrators use."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model
from app.models.types import UtcDateTime, utcnow

# Ordered: each role can do everything the roles before it can.
ROLES = ("viewer", "clerk", "manager", "admin")
TOKEN_SCOPES = ("read", "write")
SCAN_MODES = ("issue", "receive", "transfer")


def role_covers(role: str, needed: str) -> bool:
    """True when `role` is `needed` or above it: the one rule for users and API tokens alike."""
    return ROLES.index(role) >= ROLES.index(needed)


class User(Model):
    """Flask-Login's user protocol is written out here rather than inherited from its untyped
    UserMixin, so the model stays fully typed."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('viewer', 'clerk', 'manager', 'admin')", name="role_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="viewer")
    active: Mapped[bool] = mapped_column(default=True)
    locale: Mapped[str] = mapped_column(String(10), default="zh_CN")
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    # The scan page opens in the mode chosen last; none until one is chosen (never a guess).
    scan_mode: Mapped[str | None] = mapped_column(String(16))
    last_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # Part of what the session and remember-me cookies carry (see get_id): raising it on sign-out,
    # a password change, deactivation or a role change makes every copy of those cookies stale.
    credential_version: Mapped[int] = mapped_column(default=1, server_default="1")

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        """Flask-Login's alternative id: "<id>:<credential version>"."""
        return f"{self.id}:{self.credential_version}"

    def has_role(self, role: str) -> bool:
        """True when this user's role is `role` or above it."""
        return role_covers(self.role, role)

    def __repr__(self) -> str:
        return f"<User {self.username}>"


class ApiToken(Model):
    """Only a SHA-256 of the token is stored; `prefix` is the visible start, to tell tokens apart."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Space-separated: "read" or "read write".
    scopes: Mapped[str] = mapped_column(String(64), default="read")
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    user: Mapped[User] = relationship(lazy="raise_on_sql")
