"""The Content-Security-Policy breaks nothing (issue 14, finding 10): every page, the API docs
page (vendored Swagger UI) and the label sheet load in Chromium without one violation."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

PAGES = [
    "/",
    "/items",
    "/items/SCREW-M4",
    "/items/new",
    "/locations",
    "/movements",
    "/movements/receive",
    "/movements/issue",
    "/movements/transfer",
    "/movements/pick",
    "/movements/adjust",
    "/low-stock",
    "/users",
    "/users/tokens",
    "/notifications",
    "/settings",
    "/scan",
    "/counts",
    "/imports",
    "/labels",
    "/labels/print?skus=SCREW-M4,NUT-M4",
    "/api/docs",
]
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


def _watch(page: Page) -> list[str]:
    """Console lines about the policy; the page's own violation events are read at each stop."""
    messages: list[str] = []
    page.context.add_init_script(RECORD_VIOLATIONS)
    page.on("console", lambda msg: messages.append(msg.text) if "Content Security Policy" in msg.text else None)
    return messages


@pytest.mark.slow  # 15 s: every page, with the policy's violations collected
def test_no_page_breaks_the_content_security_policy(sign_in: Callable[..., Page]) -> None:
    page = sign_in("admin")
    console = _watch(page)
    violations: dict[str, list[str]] = {}
    for url in PAGES:
        page.goto(url)
        page.wait_for_load_state("networkidle")
        if url == "/api/docs":
            expect(page.locator(".swagger-ui .info .title")).to_contain_text("Inventory")
        if url.startswith("/labels/print"):
            page.get_by_role("button", name="打印").click()
        found = page.evaluate("window.__cspViolations")
        if found:
            violations[url] = found
    assert violations == {}
    assert console == []


def test_the_sign_in_page_and_its_form_work_under_the_policy(page: Page, live_server: str) -> None:
    console = _watch(page)
    page.goto(f"{live_server}/login")
    page.get_by_label("用户名").fill("viewer")
    page.get_by_label("密码").fill("browser-pass-1")
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(f"{live_server}/")
    assert page.evaluate("window.__cspViolations") == []
    assert console == []
