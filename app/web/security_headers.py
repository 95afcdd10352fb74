"""Security headers on every response: a Content-Security-Policy that runs only this site's own
script files (no inline script, no eval), no framing by any site, no MIME sniffing, no referrer to
other sites, and HSTS once the cookies are HTTPS-only."""

from __future__ import annotations

import functools

from flask import Flask, Response, request

from app.config import settings

# Styles may be inline (the label sheet's print CSS, chart legend colours): a style cannot run code,
# and scripts are what an injection would need.
_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self'",
    "font-src": "'self'",
    "connect-src": "'self'",
    "worker-src": "'self'",
    "manifest-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
# What one page needs beyond that, by blueprint: Swagger UI draws its icons from data: URLs.
_EXTRA = {"api_docs": {"img-src": "'self' data:"}}
HSTS_SECONDS = 365 * 24 * 3600


def content_security_policy(blueprint: str | None) -> str:
    policy = {**_POLICY, **_EXTRA.get(blueprint or "", {})}
    return "; ".join(f"{directive} {sources}" for directive, sources in policy.items())


@functools.cache
def _headers(blueprint: str | None, hsts: bool) -> tuple[tuple[str, str, str], ...]:
    """(lower-case name, name, value) of the headers a response of `blueprint` gets, built once."""
    found = [
        ("Content-Security-Policy", content_security_policy(blueprint)),
        ("X-Frame-Options", "DENY"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "same-origin"),
    ]
    if hsts:
        found.append(("Strict-Transport-Security", f"max-age={HSTS_SECONDS}"))
    return tuple((name.lower(), name, value) for name, value in found)


def _add_headers(response: Response) -> Response:
    """Each header unless the view set its own. Not Headers.setdefault: it raises and catches a
    KeyError for every header a response lacks, five on every API stock-out."""
    headers = response.headers
    present = {name.lower() for name, _value in headers.items()}
    for lower, name, value in _headers(request.blueprint, settings().SESSION_COOKIE_SECURE):
        if lower not in present:
            headers.add(name, value)
    return response


def init_app(app: Flask) -> None:
    app.after_request(_add_headers)
