"""Admin pages for low-stock notifications: targets, per-warehouse subscriptions, dead letters."""

from flask import Blueprint

bp = Blueprint("notifications", __name__, url_prefix="/notifications")

from app.web.notifications import views  # noqa: E402,F401 - routes attach themselves to bp
