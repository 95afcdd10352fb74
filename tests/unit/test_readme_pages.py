"""The README's page list is current: every page a browser can open without a parameter in its
URL is named there (JSON, files and probes are not pages)."""

from __future__ import annotations

from pathlib import Path

from app import create_app
from app.config import Config

README = Path(__file__).resolve().parents[2] / "README.md"
# What answers a GET without being a page: probes, metrics, the service worker, JSON.
NOT_PAGES = {"health.healthz", "health.readyz", "prometheus_metrics", "scan.service_worker", "scan.token", "static"}


def _page_rules() -> set[str]:
    app = create_app(Config(SECRET_KEY="readme-test-" + "x" * 32, SQLALCHEMY_DATABASE_URI="sqlite://"))
    return {
        rule.rule
        for rule in app.url_map.iter_rules()
        if "GET" in (rule.methods or ())
        and not rule.arguments
        and rule.endpoint not in NOT_PAGES
        and not rule.rule.startswith("/api/v1")
    }


def _pages_section() -> str:
    text = README.read_text(encoding="utf-8")
    return text[text.index("## Pages and roles") : text.index("## How stock stays right")]


def test_every_page_route_is_in_the_readme_page_list() -> None:
    section = _pages_section()
    missing = sorted(rule for rule in _page_rules() if f"`{rule}`" not in section)
    assert missing == [], f"add these pages to README.md's 'Pages and roles': {missing}"


def test_the_page_list_names_the_pages_a_clerk_uses_most() -> None:
    assert {"/", "/scan", "/items", "/movements/receive"} <= _page_rules()
