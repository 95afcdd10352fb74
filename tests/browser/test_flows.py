"""What warehouse staff do all day, in a real browser: sign in, receive, issue until stock runs
out, transfer, count, pick several lines at once, reverse a mistake, switch language, and use the
items page on a 360-px handheld."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.browser.conftest import shot


def _flash(page: Page) -> str:
    return page.locator(".flash").first.inner_text()


def test_sign_in_shows_the_chinese_dashboard(sign_in: Callable[..., Page]) -> None:
    page = sign_in("clerk")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.get_by_role("heading", name="首页")).to_be_visible()
    expect(page.get_by_text("近 30 天每日流水").first).to_be_visible()
    expect(page.locator("footer")).to_contain_text("browser-test")
    shot(page, "dashboard")


def test_wrong_password_then_sign_in_page(page: Page, live_server: str) -> None:
    page.goto(f"{live_server}/items")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("用户名").fill("clerk")
    page.get_by_label("密码").fill("not-the-password")
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("alert")).to_contain_text("用户名或密码错误")
    shot(page, "login")


def test_receive_then_issue_until_stock_runs_out(sign_in: Callable[..., Page]) -> None:
    page = sign_in("clerk")
    page.goto("/movements/receive")
    page.get_by_label("SKU").fill("GLOVE-L")
    page.get_by_label("库位").fill("WH1-A-01-02")
    page.get_by_label("数量").fill("12")
    page.get_by_role("button", name="入库", exact=True).click()
    expect(page.locator(".flash-success")).to_contain_text("已入库 12 pcs 防护手套 L → WH1-A-01-02，现有 12。")
    expect(page.get_by_label("数量")).to_be_focused()
    shot(page, "receive")
    page.goto("/movements/issue?sku=GLOVE-L&location=WH1-A-01-02")
    for quantity in ("5", "5", "5"):
        page.get_by_label("数量").fill(quantity)
        page.get_by_role("button", name="出库", exact=True).click()
    expect(page.locator("#quantity-err")).to_contain_text("库存不足：WH1-A-01-02 的 GLOVE-L 仅有 2 可用（需要 5）")
    expect(page.get_by_role("alert").first.get_by_role("link", name="数量")).to_have_attribute("href", "#quantity")
    expect(page.get_by_label("数量")).to_have_value("5")
    shot(page, "issue-insufficient")


def test_transfer_between_locations(sign_in: Callable[..., Page]) -> None:
    page = sign_in("clerk")
    page.goto("/items/SCREW-M4")
    page.locator("#stock").get_by_role("link", name="调拨").click()
    expect(page.get_by_label("来源库位")).to_have_value("WH1-A-01-01")
    page.get_by_label("目标库位").fill("WH2-A-01-01")
    page.get_by_label("数量").fill("7")
    page.get_by_role("button", name="调拨", exact=True).click()
    expect(page.locator(".flash-success")).to_contain_text("已调拨 7 pcs 螺丝钉 M4 WH1-A-01-01 → WH2-A-01-01。")
    page.goto("/items/SCREW-M4")
    expect(page.locator("#stock")).to_contain_text("WH2-A-01-01")
    expect(page.locator("#stock").get_by_role("link", name="7", exact=True)).to_be_visible()
    shot(page, "item-detail")


def test_stocktake_sets_the_counted_quantity(sign_in: Callable[..., Page]) -> None:
    page = sign_in("manager")
    page.goto("/movements/adjust?sku=TAPE-48&location=WH2-A-01-01")
    page.get_by_label("盘点数量").fill("37")
    page.get_by_role("button", name="保存盘点").click()
    expect(page.locator(".flash-success")).to_contain_text("已记录流水")
    page.goto("/movements?sku=TAPE-48&kind=adjust")
    expect(page.locator("tbody tr").first).to_contain_text("WH2-A-01-01: 37")
    shot(page, "ledger")


def test_multi_line_pick(sign_in: Callable[..., Page]) -> None:
    page = sign_in("clerk")
    page.goto("/movements/pick")
    lines = [("NUT-M4", "WH1-A-01-02", "3"), ("SCREW-M4", "WH1-A-01-01", "2")]
    for n, (sku, location, quantity) in enumerate(lines):
        page.locator(f"#lines-{n}-sku").fill(sku)
        page.locator(f"#lines-{n}-location").fill(location)
        page.locator(f"#lines-{n}-quantity").fill(quantity)
    page.get_by_role("button", name="添加一行").click()
    expect(page.locator(".pick-line")).to_have_count(6)
    page.get_by_label("单号（订单或单据号）").fill("SO-2026-001")
    shot(page, "pick-list")
    page.get_by_role("button", name="全部出库").click()
    expect(page.locator(".flash-success")).to_contain_text("已拣货 2 行。 已记录流水")
    page.goto("/movements?reference=SO-2026-001")
    expect(page.locator("tbody tr")).to_have_count(2)


def test_reversal_with_a_reason(sign_in: Callable[..., Page]) -> None:
    page = sign_in("manager")
    page.goto("/movements/receive?sku=BOLT-001&location=WH1-A-01-01")
    page.get_by_label("数量").fill("3")
    page.get_by_role("button", name="入库", exact=True).click()
    page.locator(".flash-success").get_by_role("link").click()
    page.get_by_label("冲销原因").fill("重复录入")
    page.get_by_role("button", name="冲销", exact=True).click()
    expect(page.locator(".flash-success")).to_contain_text("已记录流水")
    expect(page.get_by_role("heading", name=re.compile("冲销"))).to_be_visible()
    page.locator("dl.facts").get_by_role("link", name=re.compile(r"^#\d+$")).click()
    expect(page.get_by_text("冲销流水")).to_be_visible()
    shot(page, "reversal")


def test_switch_to_english_and_back(sign_in: Callable[..., Page]) -> None:
    page = sign_in("viewer")
    page.goto("/items")
    page.locator(".user-menu summary").click()
    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", name="Items")).to_be_visible()
    shot(page, "items-english")
    page.locator(".user-menu summary").click()
    page.get_by_role("button", name="中文").click()
    expect(page.get_by_role("heading", name="物品")).to_be_visible()


def test_items_page_on_a_360_px_handheld(sign_in: Callable[..., Page]) -> None:
    page = sign_in("clerk", viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
    page.goto("/items")
    page.get_by_label("搜索", exact=True).fill("lsd")
    page.get_by_role("button", name="搜索").click()
    expect(page.locator("#items tbody tr")).to_have_count(1)
    expect(page.locator("#items")).to_contain_text("螺丝钉 M4")
    page.goto("/items")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    shot(page, "items-360px", full_page=False)


def test_main_pages_render_for_an_admin(sign_in: Callable[..., Page]) -> None:
    page = sign_in("admin")
    for path, name, heading in (
        ("/items", "items", "物品"),
        ("/locations", "locations", "库位"),
        ("/low-stock", "low-stock", "低库存"),
        ("/users", "users", "用户"),
        ("/users/tokens", "tokens", "API 令牌"),
    ):
        page.goto(path)
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]
        shot(page, name)
