"""Administration the core services do not cover: renaming locations, user roles, activation and
preferences, and listing users and API tokens for the admin pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytz
from sqlalchemy import func, select

from app.extensions import db
from app.models import ROLES, ApiToken, Location, User
from app.models.user import SCAN_MODES
from app.services import users
from app.services.errors import Conflict, InvalidInput, UnknownLocation, UnknownUser
from app.services.text import single_line
from app.services.transaction import unit_of_work

LOCALES = ("zh_CN", "en")


@cache
def valid_timezone(name: str) -> bool:
    """A zone both the page formatter (Flask-Babel, through pytz) and zoneinfo load. zoneinfo
    alone also opens files such as posix/Asia/Shanghai that pytz refuses, and every page would
    then fail for the user who chose one."""
    try:
        ZoneInfo(name)
        pytz.timezone(name)
    except (ZoneInfoNotFoundError, ValueError, pytz.UnknownTimeZoneError):
        return False
    return True


@dataclass(frozen=True)
class TokenRow:
    id: int
    username: str
    name: str
    prefix: str
    scopes: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


@unit_of_work
def rename_location(*, code: str, name: str) -> Location:
    """Change a location's display name (its code is printed on labels and never changes)."""
    location = db.session.scalar(select(Location).where(Location.code == code))
    if location is None:
        raise UnknownLocation(code)
    text = single_line((name or "").strip(), "name")
    if len(text) > 100:
        raise InvalidInput("name", "at most 100 characters")
    location.name = text
    return location


def list_users() -> list[User]:
    return list(db.session.scalars(select(User).order_by(User.username)))


def get_user(username: str) -> User:
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        raise UnknownUser(username)
    return user


def _locked_user(username: str) -> User:
    user = db.session.scalar(
        select(User).where(User.username == username).with_for_update().execution_options(populate_existing=True)
    )
    if user is None:
        raise UnknownUser(username)
    return user


def _lock_admins() -> None:
    """Lock every active admin's row, in id order, before any check of the last-admin rule. Two
    admins demoting each other at once would otherwise each count the other as still active and
    both commit; with the set locked the second waits, then counts what the first committed."""
    db.session.execute(
        select(User.id).where(User.role == "admin", User.active).order_by(User.id).with_for_update()
    ).all()


def _other_active_admins(user_id: int) -> int:
    return int(
        db.session.scalar(
            select(func.count()).select_from(User).where(User.role == "admin", User.active, User.id != user_id)
        )
        or 0
    )


@unit_of_work
def set_role(*, username: str, role: str) -> User:
    """Raises UnknownUser, InvalidInput, and Conflict when it would leave no active admin."""
    if role not in ROLES:
        raise InvalidInput("role", f"one of {', '.join(ROLES)}")
    refusal = "the last active administrator keeps the admin role"
    return _change_guarded(username, "role", role, demotes=role != "admin", refusal=refusal)


@unit_of_work
def set_active(*, username: str, active: bool) -> User:
    """Deactivate (sessions and API tokens stop working at once) or reactivate a user."""
    refusal = "the last active administrator cannot be deactivated"
    return _change_guarded(username, "active", active, demotes=not active, refusal=refusal)


def _change_guarded(username: str, field: str, value: object, *, demotes: bool, refusal: str) -> User:
    """Set a user's `field` and end their sessions when it changes. The administrators are locked
    first, so two changes that each `demote` an admin cannot both leave none active (Conflict)."""
    _lock_admins()
    user = _locked_user(username)
    if demotes and user.role == "admin" and not _other_active_admins(user.id):
        raise Conflict(refusal, field=field, last_admin=True)
    if getattr(user, field) != value:
        setattr(user, field, value)
        db.session.flush()
        users.revoke_sessions(user.id)
    return user


@unit_of_work
def set_preferences(
    *, username: str, locale: str | None = None, timezone: str | None = None, scan_mode: str | None = None
) -> User:
    user = _locked_user(username)
    if locale is not None:
        if locale not in LOCALES:
            raise InvalidInput("locale", f"one of {', '.join(LOCALES)}")
        user.locale = locale
    if timezone is not None:
        if not valid_timezone(timezone):
            raise InvalidInput("timezone", "not a known time zone")
        user.timezone = timezone
    if scan_mode is not None:
        if scan_mode not in SCAN_MODES:
            raise InvalidInput("scan_mode", f"one of {', '.join(SCAN_MODES)}")
        user.scan_mode = scan_mode
    return user


@unit_of_work
def rename_token(*, token_id: int, name: str) -> ApiToken:
    """Change what a token is said to be for; its secret, scope and dates stay. Raises Conflict
    for an unknown token (as revoking one does) and InvalidInput."""
    token = db.session.get(ApiToken, token_id)
    if token is None:
        raise Conflict(f"no token #{token_id}", token_id=token_id)
    text = (name or "").strip()
    if not text or len(text) > 100:
        raise InvalidInput("name", "1 to 100 characters")
    token.name = text
    return token


def get_token(token_id: int) -> TokenRow | None:
    return next((row for row in list_tokens() if row.id == token_id), None)


def list_tokens() -> list[TokenRow]:
    rows = db.session.execute(
        select(
            ApiToken.id,
            User.username,
            ApiToken.name,
            ApiToken.prefix,
            ApiToken.scopes,
            ApiToken.created_at,
            ApiToken.expires_at,
            ApiToken.last_used_at,
            ApiToken.revoked_at,
        )
        .join(User, User.id == ApiToken.user_id)
        .order_by(ApiToken.revoked_at.is_not(None), ApiToken.id.desc())
    )
    return [TokenRow(*row) for row in rows]
