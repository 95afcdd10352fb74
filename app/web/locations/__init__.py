"""Warehouses and locations: list, create, rename, deactivate (refused while stock remains)."""

from flask import Blueprint

bp = Blueprint("locations", __name__, url_prefix="/locations")

from app.web.locations import views  # noqa: E402,F401 - routes attach themselves to bp
