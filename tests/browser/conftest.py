"""Browser tests: Debian's Chromium driven by Playwright against the app served by a real
werkzeug server on 127.0.0.1, on its own migrated SQLite database with a small stocked warehouse.

Screenshots of the main pages go to test-artifacts/screenshots/ for a reviewer to look at, at
360 px (a handheld) and 1366 px; axe-core (vendored in static/vendor) audits the pages tested.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_migrate import upgrade
from playwright.sync_api import Browser, Page
from werkzeug.serving import make_server

from app import create_app
from app.config import Config
from app.services import admin, items, locations, stock, users

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "browser-pass-1"
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
AXE = ROOT / "static" / "vendor" / "axe-core-4.14.1" / "axe.min.js"
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1366, "height": 768}


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    """pytest-playwright launches this Chromium (never a downloaded one)."""
    return {"executable_path": CHROMIUM, "args": CHROMIUM_ARGS, "headless": True}


def _seed(app: Flask) -> None:
    with app.app_context():
        upgrade()
        for code, name in (("WH1", "一号仓库"), ("WH2", "二号仓库")):
            locations.create_warehouse(code=code, name=name)
        for code in ("WH1-A-01-01", "WH1-A-01-02", "WH2-A-01-01"):
            locations.create_location(warehouse=code[:3], code=code)
        products = [
            ("SCREW-M4", "螺丝钉 M4", "紧固件", 20),
            ("NUT-M4", "六角螺母 M4", "紧固件", 10),
            ("TAPE-48", "封箱胶带 48mm", "包装", 5),
            ("GLOVE-L", "防护手套 L", "劳保", 30),
        ]
        for sku, name, category, reorder_point in products:
            items.create_item(sku=sku, name=name, category=category, reorder_point=reorder_point, reorder_quantity=100)
        for n in range(1, 41):
            items.create_item(sku=f"BOLT-{n:03d}", name=f"不锈钢螺栓 M{n}", category="紧固件")
        stock.receive_lines(
            lines=[
                stock.PickLine("SCREW-M4", "WH1-A-01-01", 50),
                stock.PickLine("NUT-M4", "WH1-A-01-02", 8),
                stock.PickLine("TAPE-48", "WH2-A-01-01", 40),
            ],
            user="seed",
            reference="OPENING",
        )
        for role in ("viewer", "clerk", "manager", "admin"):
            users.create_user(username=role, password=PASSWORD, role=role, display_name=f"{role.title()} 测试")


@pytest.fixture(scope="session")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    """The served app, seeded; tests read its database to check what a page really wrote."""
    database = tmp_path_factory.mktemp("browser") / "inventory.db"
    app = create_app(
        Config(
            SECRET_KEY="browser-test-secret-" + "x" * 32,
            INVENTORY_ENV="testing",
            SQLALCHEMY_DATABASE_URI=f"sqlite:///{database}",
            INVENTORY_VERSION="browser-test",
        )
    )
    _seed(app)
    return app


@pytest.fixture(scope="session")
def live_server(live_app: Flask) -> Iterator[str]:
    """The app on http://127.0.0.1:<free port>, with CSRF on as in production."""
    server = make_server("127.0.0.1", 0, live_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def sign_in(browser: Browser, live_app: Flask, live_server: str) -> Iterator[Callable[..., Page]]:
    """sign_in("clerk") -> a page in a fresh browser context, signed in through the form."""
    contexts = []

    def _sign_in(role: str, **context_args: Any) -> Page:
        # Chinese, whatever language an earlier test (one that failed midway) left this user in:
        # one such failure once turned every later page of that user English.
        with live_app.app_context():
            admin.set_preferences(username=role, locale="zh_CN")
        context = browser.new_context(base_url=live_server, locale="zh-CN", **context_args)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.goto("/")
        page.get_by_label("用户名").fill(role)
        page.get_by_label("密码").fill(PASSWORD)
        page.get_by_role("button", name="登录").click()
        page.wait_for_url(f"{live_server}/")
        return page

    yield _sign_in
    for context in contexts:
        context.close()


def shot(page: Page, name: str, *, full_page: bool = True) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def shots(page: Page, name: str) -> None:
    """The page as a phone (360 px) and as a desktop (1366 px) show it, then back to the phone
    or desktop size the test had."""
    size = page.viewport_size
    for label, viewport in (("360", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size(viewport)
        shot(page, f"{name}-{label}")
    if size:
        page.set_viewport_size(size)


def axe_findings(page: Page) -> list[str]:
    """axe-core's critical and serious findings on the page as it is now. Evaluated through the
    DevTools protocol rather than a <script> tag, so a strict Content-Security-Policy (nonces on
    the app's own scripts) does not block it."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;true")
    violations = page.evaluate(
        """async () => (await axe.run(document, { resultTypes: ["violations"] })).violations
          .filter((v) => v.impact === "critical" || v.impact === "serious")
          .map((v) => `${v.id} (${v.impact}): ${v.help} at `
            + v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", "))"""
    )
    return [str(v) for v in violations]
