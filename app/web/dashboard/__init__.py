"""The dashboard: today's figures, movements per day, the most-moved items, latest movements."""

from flask import Blueprint

bp = Blueprint("dashboard", __name__)

from app.web.dashboard import views  # noqa: E402,F401 - routes attach themselves to bp
