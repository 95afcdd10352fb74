"""Importing items and opening stock from CSV or XLSX: upload, preview, commit (or a background job)."""

from flask import Blueprint

bp = Blueprint("imports", __name__, url_prefix="/imports")

from app.web.imports import views  # noqa: E402,F401 - routes attach themselves to bp
