"""Blind cycle counts: opening, counting (blind), second counts, review and approval."""

from flask import Blueprint

bp = Blueprint("counts", __name__, url_prefix="/counts")

from app.web.counts import views  # noqa: E402,F401 - routes attach themselves to bp
