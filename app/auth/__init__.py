"""Sign-in support: how Flask-Login finds the signed-in user, where it sends anonymous visitors,
and the role check every page uses (app.auth.roles)."""

from __future__ import annotations

from datetime import UTC, datetime

from flask_babel import lazy_gettext as _l

from app.config import settings
from app.extensions import db, login_manager
from app.models import User
from app.models.types import utcnow

login_manager.login_view = "auth.login"
login_manager.login_message = _l("Please sign in to open this page.")
login_manager.login_message_category = "info"


@login_manager.user_loader
def load_user(alternative_id: str) -> User | None:
    """The user a session or remember-me cookie names, checked on every request. The id is
    "<user id>:<credential version>[:<sign-in time>]" (User.get_id, stamped by sign_in_id): a
    cookie from before a sign-out, password change, deactivation or role change names an old
    version, and one from a sign-in older than REMEMBER_COOKIE_DURATION is too old, even if a
    copy of it is replayed after the browser dropped it."""
    parts = alternative_id.split(":")
    if not 2 <= len(parts) <= 3 or not all(part.isascii() and part.isdigit() for part in parts):
        return None
    if len(parts) == 3 and _too_old(int(parts[2])):
        return None
    user = db.session.get(User, int(parts[0]), populate_existing=True)
    if user is None or not user.active or user.credential_version != int(parts[1]):
        return None
    return user


def sign_in_id(user: User) -> str:
    """What the cookies of one sign-in carry: each sign-in's remember-me cookie is a new value."""
    return f"{user.get_id()}:{int(utcnow().timestamp())}"


def _too_old(signed_in_at: int) -> bool:
    lifetime = settings().REMEMBER_COOKIE_DURATION
    return utcnow() - datetime.fromtimestamp(signed_in_at, UTC) > lifetime
