"""Security headers on every response: a Content-Security-Policy that runs only this site's own
script files (no inline script, no eval), no framing by any site, no MIME sniffing, no referrer to
other sites, and HSTS once the cookies are HTTPS-only."""

from __future__ import annotations

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


def _add_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", content_security_policy(request.blueprint))
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    if settings().SESSION_COOKIE_SECURE:
        headers.setdefault("Strict-Transport-Security", f"max-age={HSTS_SECONDS}")
    return response


def init_app(app: Flask) -> None:
    app.after_request(_add_headers)
