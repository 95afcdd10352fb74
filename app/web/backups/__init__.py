"""Administration: the backups in the configured target with their manifests and verifications,
and the full CSV export as a zip. Backups themselves are never downloaded through the web: a
whole-database dump holds password hashes and token digests, and belongs in object storage."""

from flask import Blueprint

bp = Blueprint("backups", __name__, url_prefix="/backups")

from app.web.backups import views  # noqa: E402,F401 - routes attach themselves to bp
