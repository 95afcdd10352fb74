"""Users and API tokens: creation, password and token checks. Secrets are only ever stored hashed."""

from __future__ import annotations

import functools
import hashlib
import logging
import secrets
import threading
from datetime import datetime, timedelta

from blinker import Namespace
from cachetools import TTLCache
from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.security import check_password_hash, generate_password_hash

from app.extensions import db
from app.models import ROLES, TOKEN_SCOPES, ApiToken, User
from app.models.types import utcnow
from app.services.errors import Conflict, InvalidInput, UnknownUser
from app.services.text import URL_UNSAFE, single_line
from app.services.transaction import after_commit, unit_of_work

TOKEN_PREFIX = "inv_"  # noqa: S105 - a marker, not a secret
MIN_PASSWORD_LENGTH = 8
# last_used_at is for people auditing tokens, not for the hot path: each process writes it at most
# once a minute per token, and remembers at most this many tokens (the least recently written is
# forgotten first, and written again on its next use).
TOUCH_INTERVAL_SECONDS = 60.0
TOUCH_MEMORY = 10_000

log = logging.getLogger(__name__)
_touched: TTLCache[str, bool] = TTLCache(maxsize=TOUCH_MEMORY, ttl=TOUCH_INTERVAL_SECONDS)
_touched_lock = threading.Lock()

signals = Namespace()
#: Sent after commit when a token is revoked or a user's role or active flag changes: whoever
#: remembers checked tokens (the API's token cache) must forget them.
credentials_changed = signals.signal("credentials-changed")


def announce_credentials_changed() -> None:
    """Tell listeners, once the current unit of work has committed, that credentials changed."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def send() -> None:
        credentials_changed.send(app)

    after_commit(send)


def revoke_sessions(user_id: int) -> None:
    """Within the caller's unit of work: every session and remember-me cookie of the user stops
    working (they carry the credential version this raises), and token caches are told."""
    db.session.execute(update(User).where(User.id == user_id).values(credential_version=User.credential_version + 1))
    announce_credentials_changed()


@unit_of_work
def sign_out_everywhere(*, user_id: int) -> None:
    revoke_sessions(user_id)


def hash_password(password: str) -> str:
    return generate_password_hash(password, method="scrypt")


def hash_token(token: str) -> str:
    # Tokens are 256 random bits, so a fast hash is enough: nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


def _check_password(password: str) -> str:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise InvalidInput("password", f"at least {MIN_PASSWORD_LENGTH} characters")
    return password


@unit_of_work
def create_user(*, username: str, password: str, role: str, display_name: str = "") -> User:
    """Raises InvalidInput (role, username, short password) and Conflict (username taken)."""
    username = single_line((username or "").strip(), "username")
    if not username or len(username) > 64 or any(ch.isspace() or ch in URL_UNSAFE for ch in username):
        raise InvalidInput("username", "1 to 64 characters without spaces, / or \\")
    if role not in ROLES:
        raise InvalidInput("role", f"one of {', '.join(ROLES)}")
    if db.session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"user {username!r} already exists", field="username")
    user = User(
        username=username,
        display_name=single_line((display_name or username).strip(), "display_name")[:100],
        password_hash=hash_password(_check_password(password)),
        role=role,
        active=True,
    )
    db.session.add(user)
    db.session.flush()
    return user


@unit_of_work
def set_password(*, username: str, password: str) -> User:
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        raise UnknownUser(username)
    user.password_hash = hash_password(_check_password(password))
    revoke_sessions(user.id)
    return user


def verify_password(user: User, password: str) -> bool:
    return check_password_hash(user.password_hash, password)


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def authenticate(user: User | None, password: str) -> bool:
    """Whether `password` signs `user` in. An unknown or inactive user still costs one scrypt check
    (against a throwaway hash), so the answer's timing does not tell which usernames exist
    (measured before: 266 ms for a real user, 23 ms for an unknown one)."""
    if user is None or not user.active:
        check_password_hash(_dummy_hash(), password)
        return False
    return verify_password(user, password)


@unit_of_work
def create_token(
    *, username: str, scope: str, name: str = "", expires_in: timedelta | None = None
) -> tuple[ApiToken, str]:
    """A new API token for `username`; returns the row and the token text (shown only once).
    `scope` "write" includes "read". Raises UnknownUser and InvalidInput."""
    if scope not in TOKEN_SCOPES:
        raise InvalidInput("scope", f"one of {', '.join(TOKEN_SCOPES)}")
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        raise UnknownUser(username)
    secret = secrets.token_urlsafe(32)
    token_text = f"{TOKEN_PREFIX}{secret}"
    token = ApiToken(
        user_id=user.id,
        name=single_line((name or "").strip(), "name")[:100],
        prefix=token_text[:12],
        token_hash=hash_token(token_text),
        scopes="read write" if scope == "write" else "read",
        expires_at=utcnow() + expires_in if expires_in else None,
    )
    db.session.add(token)
    db.session.flush()
    return token, token_text


def find_token(token_text: str, *, now: datetime | None = None) -> ApiToken | None:
    """The live token (not revoked, not expired, its user active) matching `token_text`."""
    if not token_text.startswith(TOKEN_PREFIX):
        return None
    token = db.session.scalar(
        select(ApiToken).join(ApiToken.user).where(ApiToken.token_hash == hash_token(token_text), User.active)
    )
    moment = now or utcnow()
    if token is None or token.revoked_at is not None or (token.expires_at and token.expires_at <= moment):
        return None
    return token


@unit_of_work
def revoke_token(*, token_id: int) -> ApiToken:
    token = db.session.get(ApiToken, token_id)
    if token is None:
        raise Conflict(f"no token #{token_id}", token_id=token_id)
    token.revoked_at = token.revoked_at or utcnow()
    announce_credentials_changed()
    return token


def touch_token(*, token_hash: str) -> bool:
    """Record that a token was just used, throttled (see TOUCH_INTERVAL_SECONDS). Best effort: a
    busy database never fails the caller's request over an audit timestamp. Returns whether it
    wrote."""
    with _touched_lock:
        if token_hash in _touched:
            return False
        _touched[token_hash] = True
    try:
        _write_last_used(token_hash=token_hash)
    except SQLAlchemyError as exc:
        log.warning("token last-used time not recorded", extra={"error": type(exc).__name__})
        return False
    return True


@unit_of_work
def _write_last_used(*, token_hash: str) -> None:
    db.session.execute(update(ApiToken).where(ApiToken.token_hash == token_hash).values(last_used_at=utcnow()))
