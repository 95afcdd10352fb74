"""Items: search (SKU, name, barcode, pinyin), detail with stock and ledger, edit, categories."""

from flask import Blueprint

bp = Blueprint("items", __name__, url_prefix="/items")

from app.web.items import views  # noqa: E402,F401 - routes attach themselves to bp
