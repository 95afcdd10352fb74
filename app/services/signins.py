"""Sign-in bookkeeping: the failed-attempt throttle (kept in the database, so every gunicorn
worker sees the same counts) and the successful sign-in stamp."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, select, update

from app.extensions import db
from app.models import SignInFailure, User
from app.models.types import utcnow
from app.services.transaction import unit_of_work

WINDOW = timedelta(minutes=15)
# Five wrong passwords for one username from one address lock that pair; twenty from one address
# (whatever the usernames) lock the address, which stops spraying one password over many accounts.
PAIR_LIMIT = 5
CLIENT_LIMIT = 20


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


def locked_until(*, username: str, client: str, now: datetime | None = None) -> datetime | None:
    """Until when sign-ins for this username from this address are refused, or None."""
    moment = now or utcnow()
    name = username.strip().lower()[:64]
    pair = _locked_until([SignInFailure.username == name, SignInFailure.client == client], PAIR_LIMIT, moment)
    address = _locked_until([SignInFailure.client == client], CLIENT_LIMIT, moment)
    found = [t for t in (pair, address) if t is not None]
    return max(found) if found else None


@unit_of_work
def record_failure(*, username: str, client: str) -> int:
    """Count a failed sign-in; returns how many failures the pair has in the window now."""
    now = utcnow()
    name = username.strip().lower()[:64]
    db.session.execute(
        delete(SignInFailure).where(SignInFailure.client == client, SignInFailure.created_at < now - 2 * WINDOW)
    )
    db.session.add(SignInFailure(username=name, client=client[:64], created_at=now))
    db.session.flush()
    return int(
        db.session.scalar(
            select(func.count())
            .select_from(SignInFailure)
            .where(
                SignInFailure.username == name,
                SignInFailure.client == client,
                SignInFailure.created_at > now - WINDOW,
            )
        )
        or 0
    )


@unit_of_work
def record_success(*, user_id: int, username: str, client: str) -> None:
    """Forget the pair's failures and stamp the user's last sign-in."""
    name = username.strip().lower()[:64]
    db.session.execute(delete(SignInFailure).where(SignInFailure.username == name, SignInFailure.client == client))
    db.session.execute(update(User).where(User.id == user_id).values(last_login_at=utcnow()))


def find_user(username: str) -> User | None:
    return db.session.scalar(select(User).where(User.username == username.strip()))
