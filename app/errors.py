"""The one place where errors become HTTP: problem documents under /api/, pages elsewhere."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, flash, g, jsonify, redirect, render_template, request
from flask.globals import request_ctx
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from app.services import counts
from app.services.errors import DomainError, InvalidInput

log = logging.getLogger(__name__)
PROBLEM_BASE = "https://inventory.invalid/problems/"


def wants_problem_json() -> bool:
    return request.path.startswith("/api/")


def problem(status: int, title: str, detail: str, code: str, **extras: Any) -> Response:
    """An RFC 9457 problem document."""
    body = {"type": PROBLEM_BASE + code.replace("_", "-"), "title": title, "status": status, "detail": detail}
    body["code"] = code
    body.update(extras)
    response = jsonify(body)
    response.status_code = status
    response.content_type = "application/problem+json"
    return response


def _page(status: int, detail: str, title: str | None = None) -> tuple[str, int] | Response:
    """The error page: a title for the status (or `title`) and `detail`, both already translated."""
    titles = {
        400: _("Bad request"),
        401: _("Sign-in required"),
        403: _("Forbidden"),
        404: _("Not found"),
        405: _("Method not allowed"),
        409: _("Conflict"),
        413: _("Upload too large"),
        422: _("Invalid input"),
        429: _("Too many requests"),
        500: _("Server error"),
    }
    heading = title or titles.get(status, _("Error"))
    if request_ctx.url_adapter is None:
        # The Host header could not be read (werkzeug's BadHost: say, a label longer than 63
        # characters): no URL can be built, and the page's layout links to the app. It was a 500.
        return Response(f"{status} {heading}\n{detail}\n", status, mimetype="text/plain")
    return render_template("errors/error.html", status=status, title=heading, detail=detail), status


def _http_detail(status: int) -> str:
    """What a page says about an HTTP error, in the user's language (werkzeug's text is English)."""
    details = {
        400: _("The request could not be understood. Go back and try again."),
        401: _("Please sign in first."),
        403: _("Your role does not allow this."),
        404: _("There is no such page. Check the address, or start again from the dashboard."),
        405: _("This page cannot be used that way."),
        413: _("The upload is too large."),
        429: _("Too many requests at once: wait a moment and try again."),
    }
    return details.get(status, _("The request could not be completed."))


def caller_role() -> str | None:
    """The role of whoever made this request: the API token's, else the signed-in user's."""
    role: str | None = g.get("api_role")
    if role is None and current_user.is_authenticated:
        role = current_user.role
    return role


def handle_domain_error(error: DomainError) -> Any:
    error = counts.blinded(error, caller_role())
    if wants_problem_json():
        extras = error.to_dict()
        if isinstance(error, InvalidInput):
            # API clients read one shape for every 422: a list of fields and what is wrong with each.
            extras.setdefault("errors", [{"field": error.field, "message": error.message}])
        return problem(error.status, error.title, error.message, error.code, **extras)
    from app.web.common import domain_message  # pages speak the user's language

    message = domain_message(error)
    flash(message, "error")
    if request.method == "POST" and request.referrer:
        return redirect(request.referrer, 303)
    return _page(error.status, message)


def handle_http_error(error: HTTPException) -> Any:
    status = error.code or 500
    title = error.name
    detail = error.description or title
    if wants_problem_json():
        response = problem(status, title, detail, title.lower().replace(" ", "_"))
        headers = dict(error.get_headers())
        for header in ("Allow", "Retry-After", "WWW-Authenticate"):
            if header in headers:
                response.headers[header] = headers[header]
        return response
    # Our views abort with a translated description (which SKU, which role); werkzeug's own
    # descriptions are English, so those give way to ours.
    ours = error.description if error.description != type(error).description else None
    return _page(status, ours or _http_detail(status))


def handle_csrf_error(error: CSRFError) -> Any:
    if wants_problem_json():
        return problem(400, "CSRF check failed", error.description, "csrf_failed")
    return _page(400, _("The form has expired. Reload the page and try again."), _("Form expired"))


def handle_unexpected(error: Exception) -> Any:
    log.exception("unhandled error", extra={"endpoint": request.endpoint})
    if wants_problem_json():
        return problem(500, "Internal Server Error", "The server could not complete the request.", "internal_error")
    return _page(500, _("Something went wrong on our side. Please try again later."))


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(Exception, handle_unexpected)
