"""Lots: a lot's stock and recall trace, the lots expiring soon, and their CSV exports."""

from flask import Blueprint

bp = Blueprint("lots", __name__, url_prefix="/lots")

from app.web.lots import views  # noqa: E402,F401 - routes attach themselves to bp
