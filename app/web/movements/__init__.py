"""The ledger and the stock forms: receive, issue, transfer, stocktake, pick lists, reversals."""

from flask import Blueprint

bp = Blueprint("movements", __name__, url_prefix="/movements")

from app.web.movements import views  # noqa: E402,F401 - routes attach themselves to bp
