"""Items at or below their reorder point, with what to order; also as CSV."""

from flask import Blueprint

bp = Blueprint("low_stock", __name__, url_prefix="/low-stock")

from app.web.low_stock import views  # noqa: E402,F401 - routes attach themselves to bp
