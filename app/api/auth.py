"""Bearer-token authentication for the API: one statement per request, no session cookies.

A browser session never authenticates the API (nothing here looks at flask-login), so a page
cannot be tricked into moving stock through it; that is also why the blueprint is CSRF-exempt.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from flask import g, request
from flask_limiter.util import get_remote_address
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import Forbidden, Unauthorized

from app.extensions import db
from app.models import ROLES, ApiToken, User
from app.models.types import utcnow
from app.services.users import TOKEN_PREFIX, hash_token

# last_used_at is for people auditing tokens, not for the hot path: write it at most this often.
TOUCH_INTERVAL_SECONDS = 60.0
_touched: dict[str, float] = {}  # token digest -> monotonic time of the last write

_TOKEN = (
    select(
        ApiToken.id,
        ApiToken.scopes,
        ApiToken.expires_at,
        ApiToken.revoked_at,
        User.username,
        User.role,
    )
    .join(User, User.id == ApiToken.user_id)
    .where(ApiToken.token_hash == bindparam("token_hash"), User.active.is_(True))
)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's user and what the token allows."""

    token_id: int
    username: str
    role: str
    scopes: frozenset[str]

    def has_role(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


class BearerChallenge(Unauthorized):
    """401 with an RFC 6750 challenge (quoted parameters, which werkzeug's header class omits)."""

    def __init__(self, description: str, error: str = "") -> None:
        super().__init__(description)
        self.challenge = 'Bearer realm="inventory"' + (f', error="{error}"' if error else "")

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        return [*super().get_headers(*args, **kwargs), ("WWW-Authenticate", self.challenge)]


def bearer_text() -> str | None:
    """The token text of an `Authorization: Bearer ...` header, or None."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def token_digest() -> str | None:
    """SHA-256 of the bearer token, computed once per request (the rate limiter needs it too)."""
    if "api_token_digest" not in g:
        token = bearer_text()
        g.api_token_digest = hash_token(token) if token and token.startswith(TOKEN_PREFIX) else None
    digest: str | None = g.api_token_digest
    return digest


def rate_limit_key() -> str:
    """Limits are per token; requests without one share their client address's budget."""
    digest = token_digest()
    return f"token:{digest[:32]}" if digest else f"addr:{get_remote_address()}"


def _touch(token_id: int, digest: str) -> None:
    now = time.monotonic()
    if now - _touched.get(digest, -TOUCH_INTERVAL_SECONDS) < TOUCH_INTERVAL_SECONDS:
        return
    _touched[digest] = now
    try:
        db.session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=utcnow()))
        db.session.commit()
    except SQLAlchemyError:
        # Best effort: a busy database must not fail the request over an audit timestamp.
        db.session.rollback()


def authenticate(*, scope: str, role: str) -> Principal:
    """The caller, checked for `scope` and `role`. Raises 401 (no, unknown, revoked or expired
    token) with a Bearer challenge, or 403 (missing scope or role)."""
    if bearer_text() is None:
        raise BearerChallenge("An `Authorization: Bearer <token>` header is required.")
    digest = token_digest()
    # Core on the session's connection: a plain SELECT needs none of the ORM's execution layers.
    row = db.session.connection().execute(_TOKEN, {"token_hash": digest}).first() if digest else None
    if (
        digest is None
        or row is None
        or row.revoked_at is not None
        or (row.expires_at is not None and row.expires_at <= utcnow())
    ):
        raise BearerChallenge("The token is unknown, revoked or expired.", "invalid_token")
    principal = Principal(row.id, row.username, row.role, frozenset(row.scopes.split()))
    _touch(principal.token_id, digest)
    if scope not in principal.scopes:
        raise Forbidden(f"This token lacks the {scope!r} scope.")
    if not principal.has_role(role):
        raise Forbidden(f"This action needs the {role!r} role or above; {principal.username} is {principal.role!r}.")
    return principal
