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
def load_user(user_id: str) -> User | None:
    user = db.session.get(User, int(user_id)) if user_id.isdigit() else None
    return user if user is not None and user.active else None
