"""Sign-in bookkeeping: the failed-attempt throttle (kept in the database, so every gunicorn
worker sees the same counts) and the successful sign-in stamp.

The throttle slows guessing without letting anyone lock other people out:
- one client and one username: 5 failures in 15 minutes lock that pair;
- one client, whatever the usernames: 20 failures lock that client (password spraying);
- one username from every client: once the account has 10 failures in the window, a client that
  failed for it waits a delay that grows with the account's failures (2 s, 4 s, … at most 60 s)
  after its own latest failure before it may try again. The wait is never a lock: a client that has
  not failed for the account is never made to wait, and one that has waits at most a minute, so the
  real user always gets in while the account is under attack from elsewhere.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, select, update

from app.config import settings
from app.extensions import db
from app.models import SignInFailure, User
from app.models.types import utcnow
from app.services.transaction import unit_of_work

WINDOW = timedelta(minutes=15)
PAIR_LIMIT = 5
CLIENT_LIMIT = 20
ACCOUNT_FREE_FAILURES = 10
ACCOUNT_MAX_DELAY = timedelta(seconds=60)


@dataclass(frozen=True)
class Throttle:
    """Why and until when an attempt is refused without checking its password."""

    until: datetime
    reason: str  # "pair", "client" or "account"


def _username_key(username: str) -> str:
    """What the throttle keys a username on: a keyed hash (HMAC-SHA256 with SECRET_KEY) of the name
    as typed (trimmed, lower-cased), never the text, because a password typed into the username box
    would otherwise sit in the database for the whole window. Keyed, so the stored digests cannot be
    checked against a list of guesses without the key."""
    typed = username.strip().lower().encode()
    return hmac.new(settings().SECRET_KEY.encode(), typed, hashlib.sha256).hexdigest()


def _locked_until(stmt_filter: list[ColumnElement[bool]], limit: int, now: datetime) -> datetime | None:
    """When the `limit`-th most recent failure leaves the window, or None if there are fewer."""
    nth = db.session.scalar(
        select(SignInFailure.created_at)
        .where(*stmt_filter, SignInFailure.created_at > now - WINDOW)
        .order_by(SignInFailure.created_at.desc())
        .offset(limit - 1)
        .limit(1)
    )
    return None if nth is None else nth + WINDOW


def account_delay(failures: int) -> timedelta:
    """The wait after an account's latest failure once it has `failures` in the window."""
    if failures < ACCOUNT_FREE_FAILURES:
        return timedelta(0)
    return min(timedelta(seconds=2 ** min(failures - ACCOUNT_FREE_FAILURES + 1, 16)), ACCOUNT_MAX_DELAY)


def _account_wait(name: str, client: str, now: datetime) -> datetime | None:
    recent = [SignInFailure.username_digest == name, SignInFailure.created_at > now - WINDOW]
    failures = db.session.scalar(select(func.count()).select_from(SignInFailure).where(*recent)) or 0
    if failures < ACCOUNT_FREE_FAILURES:
        return None
    latest = db.session.scalar(
        select(func.max(SignInFailure.created_at)).where(*recent, SignInFailure.client == client)
    )
    if latest is None:
        return None
    until: datetime = latest + account_delay(int(failures))
    return until if until > now else None


def throttle(*, username: str, client: str, now: datetime | None = None) -> Throttle | None:
    """Whether an attempt for this username from this client must be refused now, or None."""
    moment = now or utcnow()
    name = _username_key(username)
    pair = _locked_until([SignInFailure.username_digest == name, SignInFailure.client == client], PAIR_LIMIT, moment)
    address = _locked_until([SignInFailure.client == client], CLIENT_LIMIT, moment)
    locks = [Throttle(t, reason) for t, reason in ((pair, "pair"), (address, "client")) if t is not None]
    if locks:
        return max(locks, key=lambda lock: lock.until)
    wait = _account_wait(name, client, moment)
    return None if wait is None else Throttle(wait, "account")


@unit_of_work
def record_failure(*, username: str, client: str) -> int:
    """Count a failed sign-in; returns how many failures the pair has in the window now."""
    now = utcnow()
    name = _username_key(username)
    db.session.execute(
        delete(SignInFailure).where(SignInFailure.client == client, SignInFailure.created_at < now - 2 * WINDOW)
    )
    db.session.add(SignInFailure(username_digest=name, client=client[:64], created_at=now))
    db.session.flush()
    return int(
        db.session.scalar(
            select(func.count())
            .select_from(SignInFailure)
            .where(
                SignInFailure.username_digest == name,
                SignInFailure.client == client,
                SignInFailure.created_at > now - WINDOW,
            )
        )
        or 0
    )


@unit_of_work
def record_success(*, user_id: int, username: str, client: str) -> None:
    """Forget the pair's failures and stamp the user's last sign-in."""
    name = _username_key(username)
    db.session.execute(
        delete(SignInFailure).where(SignInFailure.username_digest == name, SignInFailure.client == client)
    )
    db.session.execute(update(User).where(User.id == user_id).values(last_login_at=utcnow()))


def find_user(username: str) -> User | None:
    return db.session.scalar(select(User).where(User.username == username.strip()))
