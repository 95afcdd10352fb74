"""Offline scans on a shared handheld (issue 14, finding 5): scans a clerk queued offline are never
sent under the next person who signs in on that browser. They wait, visibly, until their clerk
signs in again, or a manager discards them."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import PASSWORD, shot


@pytest.fixture
def handheld(browser: Browser, live_server: str) -> Iterator[Page]:
    """One browser (one IndexedDB) that several people sign in and out of."""
    context: BrowserContext = browser.new_context(base_url=live_server, locale="zh-CN")
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def _sign_in_as(page: Page, role: str) -> None:
    page.goto("/login")
    page.get_by_label("用户名").fill(role)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(re.compile(r"/$"))


def _sign_out(page: Page) -> None:
    page.goto("/")
    page.evaluate("document.querySelector(\"form[action$='/logout']\").submit()")
    page.wait_for_url(re.compile(r"/login"))


def _wedge(page: Page, code: str) -> None:
    page.keyboard.type(code)
    page.keyboard.press("Enter")


def _queue_offline(page: Page, sku: str, count: int) -> None:
    """Signed in as the clerk: scans made in a dead spot, then the page is left while still offline."""
    page.goto("/scan")
    _wedge(page, "WH1-A-01-02")
    page.keyboard.press("Alt+2")  # receive
    page.context.set_offline(True)
    for _ in range(count):
        _wedge(page, sku)
    expect(page.locator("#scan-pending")).to_have_text(str(count))
    page.goto("about:blank")
    page.context.set_offline(False)


def _ledger_users(page: Page, sku: str) -> list[str]:
    page.goto(f"/movements?sku={sku}")
    return [text.strip() for text in page.locator("tbody tr[id^=m] td[data-label='用户']").all_inner_texts()]


def test_another_users_offline_scans_wait_for_them(handheld: Page) -> None:
    page = handheld
    _sign_in_as(page, "clerk")
    _queue_offline(page, "BOLT-040", 2)
    _sign_out(page)
    _sign_in_as(page, "manager")
    page.goto("/scan")
    others = page.locator("#scan-others")
    expect(others).to_be_visible()
    expect(others).to_contain_text("clerk 有 2 条离线扫描待发送")
    expect(page.locator("#scan-pending")).to_have_text("0")
    _wedge(page, "WH1-A-01-02")
    page.keyboard.press("Alt+2")
    _wedge(page, "BOLT-039")  # the manager's own scan goes through at once
    expect(page.locator("#scan-result")).to_contain_text("BOLT-039")
    expect(others).to_contain_text("clerk 有 2 条")
    shot(page, "scan-others-waiting")
    assert _ledger_users(page, "BOLT-040") == []
    _sign_out(page)
    _sign_in_as(page, "clerk")
    page.goto("/scan")
    # The counter reads "…" until the page has read the queue, so "0" means both were sent; each
    # sent scan is reported in the log (the ledger is read only once both are in).
    expect(page.locator("#scan-log tr.ok")).to_have_count(2, timeout=15_000)
    expect(page.locator("#scan-pending")).to_have_text("0")
    expect(page.locator("#scan-others")).to_be_hidden()
    assert _ledger_users(page, "BOLT-040") == ["clerk", "clerk"]


def test_a_manager_may_discard_another_users_offline_scans(handheld: Page) -> None:
    page = handheld
    _sign_in_as(page, "clerk")
    _queue_offline(page, "BOLT-038", 1)
    _sign_out(page)
    _sign_in_as(page, "manager")
    page.goto("/scan")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#scan-others").get_by_role("button", name="丢弃").click()
    expect(page.locator("#scan-result")).to_contain_text("已丢弃 clerk 的 1 条离线扫描")
    expect(page.locator("#scan-others")).to_be_hidden()
    _sign_out(page)
    _sign_in_as(page, "clerk")
    page.goto("/scan")
    expect(page.locator("#scan-pending")).to_have_text("0")
    assert _ledger_users(page, "BOLT-038") == []
