"""Administration: users (create, role, deactivate, reset password) and API tokens."""

from flask import Blueprint

bp = Blueprint("users", __name__, url_prefix="/users")

from app.web.users import views  # noqa: E402,F401 - routes attach themselves to bp
