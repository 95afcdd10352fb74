"""Printable item and location labels (QR code and Code 128), on A4 sheets or one per label."""

from flask import Blueprint

bp = Blueprint("labels", __name__, url_prefix="/labels")

from app.web.labels import views  # noqa: E402,F401 - routes attach themselves to bp
