"""Reservations (issue 18): their list, a form to reserve an order's lines, a reservation's page,
cancelling one, and printable pick lists (one reservation, or several merged by location)."""

from flask import Blueprint

bp = Blueprint("reservations", __name__, url_prefix="/reservations")

from app.web.reservations import views  # noqa: E402,F401 - routes attach themselves to bp
