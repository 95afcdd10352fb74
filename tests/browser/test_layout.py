"""The page frame on a 360 × 740 phone and on a desktop: a one-row app bar with the floor actions
one tap away, a menu that opens with and without JavaScript, the scan result in view above the
soft keyboard, and no critical or serious axe-core finding on the pages a clerk, a manager and
an admin use (each photographed at 360 px and desktop width)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import PASSWORD, PHONE, axe_findings, shots


def test_phone_app_bar_is_one_short_row_with_the_floor_actions(sign_in: Callable[..., Page]) -> None:
    page = sign_in("clerk", viewport=PHONE)
    bar = page.locator("header.topbar").bounding_box()
    assert bar is not None and 48 <= bar["height"] <= 56, bar
    floor = page.get_by_role("navigation", name="现场作业")
    for name in ("扫码", "入库", "出库", "拣货"):
        link = floor.get_by_role("link", name=name, exact=True)
        expect(link).to_be_visible()
        box = link.bounding_box()
        assert box is not None and box["y"] + box["height"] <= 56 and box["height"] >= 44, (name, box)
    expect(page.locator(".app-title")).to_have_text("首页")
    floor.get_by_role("link", name="入库", exact=True).click()
    page.wait_for_url("**/movements/receive")
    expect(page.locator(".app-title")).to_have_text("入库")


def test_phone_menu_opens_closes_and_reaches_every_page(sign_in: Callable[..., Page]) -> None:
    page = sign_in("manager", viewport=PHONE)
    main_nav = page.get_by_role("navigation", name="主导航")
    expect(main_nav).to_be_hidden()
    button = page.get_by_role("button", name="菜单")
    button.click()
    expect(button).to_have_attribute("aria-expanded", "true")
    expect(main_nav.get_by_role("link", name="库位")).to_be_visible()
    page.keyboard.press("Escape")
    expect(main_nav).to_be_hidden()
    expect(button).to_be_focused()
    button.click()
    main_nav.get_by_role("link", name="低库存").click()
    page.wait_for_url("**/low-stock")
    expect(main_nav).to_be_hidden()


def test_phone_menu_works_without_javascript(browser: Browser, live_server: str) -> None:
    context = browser.new_context(base_url=live_server, locale="zh-CN", viewport=PHONE, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto("/login")
        page.get_by_label("用户名").fill("viewer")
        page.get_by_label("密码").fill(PASSWORD)
        page.get_by_role("button", name="登录").click()
        page.wait_for_url(f"{live_server}/")
        expect(page.get_by_role("navigation", name="主导航")).to_be_hidden()
        page.get_by_role("link", name="菜单").click()
        expect(page.get_by_role("navigation", name="主导航").get_by_role("link", name="物品")).to_be_visible()
    finally:
        context.close()


def test_dropdown_menus_open_one_at_a_time_and_close_on_outside_click(sign_in: Callable[..., Page]) -> None:
    page = sign_in("admin")
    stock, admin = page.locator("details.menu").nth(0), page.locator("details.menu").nth(1)
    stock.locator("summary").click()
    expect(stock).to_have_attribute("open", "")
    admin.locator("summary").click()
    expect(admin).to_have_attribute("open", "")
    expect(stock).not_to_have_attribute("open", "")
    page.locator("footer").click()
    expect(admin).not_to_have_attribute("open", "")


def test_scan_result_shows_under_the_input_above_the_soft_keyboard(sign_in: Callable[..., Page]) -> None:
    page = sign_in("clerk", viewport=PHONE)
    page.goto("/scan")
    page.keyboard.type("WH1-A-01-01")
    page.keyboard.press("Enter")
    result = page.locator("#scan-result")
    expect(result).to_contain_text("WH1-A-01-01")
    code, box = page.locator("#scan-code").bounding_box(), result.bounding_box()
    assert code is not None and box is not None
    # A phone's soft keyboard takes about the lower 45 % of a 740 px screen: the result must end above it.
    assert box["y"] >= code["y"] + code["height"] and box["y"] + box["height"] <= 740 * 0.55, (code, box)
    shots(page, "scan-phone")


PAGES = {
    "clerk": ["/", "/scan", "/movements/receive", "/movements/pick", "/items", "/items/SCREW-M4", "/locations"],
    "manager": ["/items/SCREW-M4/edit", "/items/SCREW-M4/archive", "/locations/WH1-A-01-02/deactivate", "/counts"],
    "admin": ["/users", "/users/tokens", "/users/clerk", "/users/clerk/deactivate", "/notifications"],
}


@pytest.mark.parametrize("role", list(PAGES))
def test_pages_have_no_serious_accessibility_findings(sign_in: Callable[..., Page], role: str) -> None:
    page = sign_in(role)
    findings = {}
    for path in PAGES[role]:
        page.goto(path)
        for width in (PHONE["width"], 1366):
            page.set_viewport_size({"width": width, "height": 740})
            if found := axe_findings(page):
                findings[f"{path} @ {width}"] = found
        name = path.strip("/").replace("/", "-") or "dashboard"
        shots(page, f"{role}-{name}")
    assert findings == {}
