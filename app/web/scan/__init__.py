"""The scan page: continuous wedge-scanner and camera scanning that moves stock one scan at a time,
and picking a pick list (its code scanned there) location by location."""

from flask import Blueprint

bp = Blueprint("scan", __name__, url_prefix="/scan")

from app.web.scan import picking, views  # noqa: E402,F401 - routes attach themselves to bp
