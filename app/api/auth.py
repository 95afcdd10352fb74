"""Bearer-token authentication for the API: no session cookies, and at most one statement per
request.

A browser session never authenticates the API (nothing here looks at flask-login), so a page
cannot be tricked into moving stock through it; that is also why the blueprint is CSRF-exempt.

A worker remembers a token it has checked for INVENTORY_API_TOKEN_CACHE_SECONDS (5 s by default):
the lookup was a sixth of a stock-out's CPU and one of its six database round trips. Expiry is
still checked on every request; revoking a token, or changing its user's role or active flag,
empties the cache of the process that made the change at once, and every other worker's within
those seconds.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cachetools import TTLCache
from flask import Flask, current_app, g, request
from flask_limiter.util import get_remote_address
from sqlalchemy import bindparam, select
from werkzeug.exceptions import Forbidden, Unauthorized

from app.config import settings
from app.extensions import db
from app.models import ApiToken, User
from app.models.types import utcnow
from app.models.user import role_covers
from app.services import counts
from app.services.users import TOKEN_PREFIX, credentials_changed, hash_token, touch_token

CACHE_KEY = "inventory_token_cache"

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

    @property
    def caller(self) -> str:
        """Whose idempotency keys this caller's are: its token's (see services.idempotency)."""
        return f"token:{self.token_id}"


def blind_places(principal: Principal, skus: list[str]) -> set[tuple[str, str]]:
    """The (SKU, location) places whose quantities this caller may not see now (a blind count)."""
    return counts.blind_places(skus=skus) if counts.counts_blind(principal.role) else set()


class TokenCache:
    """Principals of tokens this worker checked recently, by token digest, for `ttl` seconds; at
    most MAX_ENTRIES of them (the least recently used go first)."""

    MAX_ENTRIES = 10_000

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()  # TTLCache is not thread-safe; gthread workers share it
        self._entries: TTLCache[str, tuple[Principal, datetime | None]] | None = (
            TTLCache(maxsize=self.MAX_ENTRIES, ttl=ttl) if ttl > 0 else None
        )

    def get(self, digest: str) -> tuple[Principal, datetime | None] | None:
        if self._entries is None:
            return None
        with self._lock:
            return self._entries.get(digest)

    def put(self, digest: str, principal: Principal, expires_at: datetime | None) -> None:
        if self._entries is None:
            return
        with self._lock:
            self._entries[digest] = (principal, expires_at)

    def clear(self) -> None:
        if self._entries is not None:
            with self._lock:
                self._entries.clear()


def init_token_cache(app: Flask) -> None:
    cache = TokenCache(settings(app).INVENTORY_API_TOKEN_CACHE_SECONDS)
    app.extensions[CACHE_KEY] = cache

    def forget(_sender: Flask, **_: Any) -> None:
        cache.clear()

    # Only this app's changes; held strongly, since nothing else keeps the closure alive.
    credentials_changed.connect(forget, sender=app, weak=False)


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


def _look_up(digest: str) -> tuple[Principal, datetime | None]:
    # Core on the session's connection: a plain SELECT needs none of the ORM's execution layers.
    row = db.session.connection().execute(_TOKEN, {"token_hash": digest}).first()
    if row is None or row.revoked_at is not None:
        raise BearerChallenge("The token is unknown, revoked or expired.", "invalid_token")
    return Principal(row.id, row.username, row.role, frozenset(row.scopes.split())), row.expires_at


def authenticate(*, scope: str, role: str) -> Principal:
    """The caller, checked for `scope` and `role`. Raises 401 (no, unknown, revoked or expired
    token) with a Bearer challenge, or 403 (missing scope or role)."""
    if bearer_text() is None:
        raise BearerChallenge("An `Authorization: Bearer <token>` header is required.")
    digest = token_digest()
    if digest is None:
        raise BearerChallenge("The token is unknown, revoked or expired.", "invalid_token")
    cache: TokenCache = current_app.extensions[CACHE_KEY]
    known = cache.get(digest)
    principal, expires_at = known if known is not None else _look_up(digest)
    if expires_at is not None and expires_at <= utcnow():
        raise BearerChallenge("The token is unknown, revoked or expired.", "invalid_token")
    if known is None:
        cache.put(digest, principal, expires_at)
    touch_token(token_hash=digest)
    if scope not in principal.scopes:
        raise Forbidden(f"This token lacks the {scope!r} scope.")
    if not role_covers(principal.role, role):
        raise Forbidden(f"This action needs the {role!r} role or above; {principal.username} is {principal.role!r}.")
    g.api_role = principal.role  # what an error answer may show this caller (app/errors.py)
    return principal
