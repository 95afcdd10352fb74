"""Security headers (issue 14, finding 10): a CSP that runs no inline script, no framing, no MIME
sniffing, same-origin referrers, HSTS with secure cookies; the API docs page gets data: images
and nothing more."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flask import Flask

EXPECTED = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _csp(response: Any) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    return dict(part.strip().split(" ", 1) for part in policy.split(";"))


def test_pages_api_and_static_files_carry_the_security_headers(app: Flask, client: Any, login_as: Any) -> None:
    login_as("admin")
    for url in ("/", "/login", "/items", "/api/v1/warehouses", "/static/js/app.js", "/nowhere"):
        response = client.get(url)
        for name, value in EXPECTED.items():
            assert response.headers.get(name) == value, (url, name)
        csp = _csp(response)
        assert csp["script-src"] == "'self'" and csp["frame-ancestors"] == "'none'", url
        assert csp["object-src"] == "'none'" and csp["img-src"] == "'self'", url
        assert "Strict-Transport-Security" not in response.headers


def test_only_the_api_docs_page_may_show_data_images(client: Any) -> None:
    csp = _csp(client.get("/api/docs"))
    assert csp["img-src"] == "'self' data:" and csp["script-src"] == "'self'"


def test_hsts_is_sent_when_cookies_are_https_only(make_app: Any) -> None:
    response = make_app(SESSION_COOKIE_SECURE=True).test_client().get("/login")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_templates_hold_no_inline_script_or_event_handler(repo_root: Path) -> None:
    """What the CSP would block in a browser, caught before one runs: every <script> has a src,
    and no element has an on…= handler or a javascript: URL."""
    offenders = []
    for template in sorted((repo_root / "templates").rglob("*.html")):
        html = template.read_text(encoding="utf-8")
        for tag in re.findall(r"<script\b[^>]*>", html):
            if "src=" not in tag:
                offenders.append(f"{template.name}: {tag}")
        offenders += [f"{template.name}: {m}" for m in re.findall(r"<[^>]*\son[a-z]+\s*=[^>]*>", html)]
        offenders += [f"{template.name}: javascript: URL" for _ in re.findall(r"javascript:", html)]
    assert offenders == []
