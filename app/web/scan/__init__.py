"""The scan page: continuous wedge-scanner and camera scanning that moves stock one scan at a time."""

from flask import Blueprint

bp = Blueprint("scan", __name__, url_prefix="/scan")

from app.web.scan import views  # noqa: E402,F401 - routes attach themselves to bp
