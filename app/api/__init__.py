"""The JSON API for integrators at /api/v1 (bearer tokens, problem+json errors, OpenAPI 3.1 at
/api/v1/openapi.json) and its readable docs page at /api/docs."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, Request, current_app, jsonify, render_template, url_for
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_limiter import Limiter

from app.api.auth import init_token_cache, rate_limit_key
from app.config import settings
from app.extensions import csrf

SWAGGER_UI = "vendor/swagger-ui-5.35.0"

bp = Blueprint("api", __name__, url_prefix="/api/v1")
docs_bp = Blueprint("api_docs", __name__, url_prefix="/api/docs", static_folder="static")
# Limits are declared per operation and read from the config at request time; nothing else in
# the app is limited (no default limits).
limiter = Limiter(rate_limit_key, default_limits=[])


def limit_for(scope: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The per-token limit of `scope` operations; with RATELIMIT_ENABLED=false the view is called
    directly, skipping the limiter's per-request bookkeeping (a few percent of the hot path)."""

    def limit() -> str:
        config = settings()
        return config.INVENTORY_API_WRITE_LIMIT if scope == "write" else config.INVENTORY_API_READ_LIMIT

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        limited = limiter.limit(limit, scope=f"api-{scope}")(view)

        @functools.wraps(view)
        def dispatch(**params: Any) -> Any:
            return limited(**params) if limiter.enabled else view(**params)

        return dispatch

    return decorate


class SessionInterface(SecureCookieSessionInterface):
    """Requests to the API neither read nor write the session cookie: the API is token-only, and
    building the cookie's signer on every request was 3 % of a stock-out's CPU."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith(f"{bp.url_prefix}/"):
            return self.make_null_session(app)
        return super().open_session(app, request)


@bp.get("/openapi.json")
def openapi_document() -> Any:
    """The OpenAPI 3.1 document, built once per process from the operation registry."""
    from app.api.openapi import build_document

    document = current_app.extensions.get("inventory_openapi")
    if document is None:
        document = build_document(settings().INVENTORY_VERSION)
        current_app.extensions["inventory_openapi"] = document
    return jsonify(document)


@docs_bp.get("")
def docs_page() -> Any:
    return render_template(
        "api/docs.html",
        swagger_css=url_for("static", filename=f"{SWAGGER_UI}/swagger-ui.css"),
        swagger_js=url_for("static", filename=f"{SWAGGER_UI}/swagger-ui-bundle.js"),
        init_js=url_for("api_docs.static", filename="docs.js"),
        spec_url=url_for("api.openapi_document"),
    )


def init_app(app: Flask) -> None:
    """Set the API up before its blueprints (`bp`, `docs_bp`) are registered: token-only, hence
    CSRF-exempt, rate-limited per token, and without session cookies."""
    from app.api import items, locations, lots, movements, reservations, stock  # noqa: F401 - they register the operations

    csrf.exempt(bp)
    limiter.init_app(app)
    init_token_cache(app)
    app.session_interface = SessionInterface()
