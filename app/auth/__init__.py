"""Sign-in support: how Flask-Login finds the signed-in user, where it sends anonymous visitors,
and the role check every page uses (app.auth.roles)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from app.extensions import db, login_manager
from app.models import User

login_manager.login_view = "auth.login"
login_manager.login_message = _l("Please sign in to open this page.")
login_manager.login_message_category = "info"


@login_manager.user_loader
def load_user(alternative_id: str) -> User | None:
    """The user a session or remember-me cookie names ("<id>:<credential version>", see
    User.get_id), checked on every request: a cookie from before a sign-out, password change,
    deactivation or role change names an old version and signs no one in."""
    user_id, _, version = alternative_id.partition(":")
    if not (user_id.isascii() and user_id.isdigit() and version.isascii() and version.isdigit()):
        return None
    user = db.session.get(User, int(user_id), populate_existing=True)
    if user is None or not user.active or user.credential_version != int(version):
        return None
    return user
