"""Each user's own settings: language and time zone."""

from flask import Blueprint

bp = Blueprint("settings", __name__, url_prefix="/settings")

from app.web.settings import views  # noqa: E402,F401 - routes attach themselves to bp
