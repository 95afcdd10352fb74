"""Issue 15's remaining points as a browser shows them: an item saved unchanged changes nothing
(1), disruptive actions ask first and say what they did (2), a location page lists what is there
(9), the desktop ledger keeps codes and dates on one line with signed, coloured quantities (11),
a posting says what happened and keeps the delivery's reference for the next line (13), menus
close when focus leaves them (15), 404 and 403 pages help in the user's language (18), Chinese
fonts come before system-ui and the favicon loads (22)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy import text

from app.extensions import db
from app.services import counts, items, locations, notifications, stock, users
from tests.browser.conftest import DESKTOP, axe_findings, shots

PLACE = "WH1-F-01-01"
MIXED = "WH1-F-02-02"  # 5 pcs and 2.5 m: never "7.5" of anything


@pytest.fixture(scope="module")
def records(live_app: Flask) -> dict[str, str]:
    """One record of each kind a disruptive action applies to, of this module's own."""
    with live_app.app_context():
        locations.create_location(warehouse="WH1", code=PLACE)
        items.create_item(
            sku="FB-NUT",
            name="六角螺帽 M5",
            category="紧固件",
            reorder_point=44,
            reorder_quantity=100,
            description="镀锌\n每盒 100 个",  # a textarea with a line break: saved unchanged, still no change
        )
        items.create_item(sku="FB-WIRE", name="铜线 散装", unit="m", category="电工")
        stock.receive_stock(sku="FB-NUT", location=PLACE, quantity=335, user="seed")
        stock.issue_stock(sku="FB-NUT", location=PLACE, quantity=10, user="seed")
        stock.receive_stock(sku="FB-WIRE", location=PLACE, quantity="12.5", user="seed")
        locations.create_location(warehouse="WH1", code=MIXED)
        items.create_item(sku="FB-CABLE", name="电缆 三芯", unit="m")
        stock.receive_lines(
            lines=[stock.PickLine("FB-NUT", MIXED, 5), stock.PickLine("FB-CABLE", MIXED, "2.5")], user="seed"
        )
        locations.create_location(warehouse="WH2", code="WH2-F-01-01")
        items.create_item(sku="FB-COUNTED", name="盘点样品")
        stock.receive_stock(sku="FB-COUNTED", location="WH2-F-01-01", quantity=3, user="seed")
        count = counts.open_count(user="manager", location="WH2-F-01-01")
        users.create_user(username="fb-leaver", password="browser-pass-1", role="viewer")
        token, _text = users.create_token(username="admin", scope="read", name="反馈令牌")
        target = notifications.create_target(
            name="反馈通知", kind="webhook", url="https://hooks.example.com/fb", warehouses=["WH1", "WH2"]
        )
        return {"count": str(count.id), "token": str(token.id), "prefix": token.prefix, "target": str(target.id)}


def _lines(page: Page, selector: str) -> list[tuple[str, int]]:
    """Each matching element's text and how many lines it takes (its line boxes)."""
    return page.eval_on_selector_all(
        selector,
        """els => els.map(el => {
             const range = document.createRange(); range.selectNodeContents(el);
             const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
             return [el.textContent.trim(), tops.size]; })""",
    )


def test_an_item_saved_unchanged_changes_nothing(sign_in: Callable[..., Page], records: dict[str, str]) -> None:
    page = sign_in("manager")
    page.goto("/items/FB-NUT/edit")
    category = page.get_by_label("类别", exact=True)
    expect(category.locator("option:checked")).to_have_text("紧固件")
    expect(category.get_by_role("option", name="新建类别…")).to_have_count(1)
    expect(page.get_by_label("补货点")).to_have_value("44")
    before = page.locator("main form").evaluate("f => [...new FormData(f)].filter(([k]) => k !== 'csrf_token')")
    page.get_by_role("button", name="保存").click()
    expect(page.locator(".flash-info")).to_contain_text("没有要保存的更改：FB-NUT 保持原样")
    page.goto("/items/FB-NUT/edit")
    after = page.locator("main form").evaluate("f => [...new FormData(f)].filter(([k]) => k !== 'csrf_token')")
    assert after == before
    page.goto("/items/categories")
    expect(page.get_by_text("<Category", exact=False)).to_have_count(0)


def _table(app: Flask, table: str) -> list[dict[str, object]]:
    with app.app_context():
        rows = [dict(r._mapping) for r in db.session.execute(text(f"SELECT * FROM {table} ORDER BY id"))]  # noqa: S608
        db.session.remove()
    return rows


@pytest.mark.parametrize(
    ("record", "tables"),
    [
        ("location", ("locations",)),
        ("user", ("users",)),
        ("token", ("api_tokens",)),
        ("target", ("notification_targets", "notification_subscriptions")),
    ],
)
def test_every_other_editable_record_saved_unchanged_changes_nothing(
    sign_in: Callable[..., Page], live_app: Flask, records: dict[str, str], record: str, tables: tuple[str, ...]
) -> None:
    """Opened, saved with its own Save button as it stands, and every row is as it was."""
    page_and_form = {
        "location": (f"/locations/{PLACE}/edit", "main form"),
        "user": ("/users/fb-leaver", "main form[action$='/role']"),
        "token": (f"/users/tokens/{records['token']}/edit", "main form"),
        "target": ("/notifications", f"main form[action$='/targets/{records['target']}/subscriptions']"),
    }
    path, form = page_and_form[record]
    page = sign_in("admin")
    page.goto(path)
    before = [_table(live_app, t) for t in tables]
    page.locator(form).locator("button[type=submit]").click()
    expect(page.locator(".flash-success")).to_be_visible()
    assert [_table(live_app, t) for t in tables] == before
    assert all(before), before


def test_archiving_asks_first_sits_apart_from_edit_and_says_archived(
    sign_in: Callable[..., Page], records: dict[str, str]
) -> None:
    page = sign_in("manager")
    page.goto("/items/FB-WIRE")
    edit = page.get_by_role("link", name="编辑", exact=True)
    archive = page.get_by_role("link", name="归档…")
    # Apart from Edit: in a row of its own, below it, marked as dangerous.
    assert edit.evaluate("(e, a) => !e.parentElement.contains(a)", archive.element_handle())
    assert archive.evaluate("a => a.classList.contains('danger')")
    edit_box, archive_box = edit.bounding_box(), archive.bounding_box()
    assert edit_box and archive_box and archive_box["y"] >= edit_box["y"] + edit_box["height"]
    archive.click()
    expect(page.get_by_role("heading", name="归档 FB-WIRE 铜线 散装？")).to_be_visible()
    page.get_by_role("link", name="取消").click()
    expect(page.locator("h1 .badge")).to_have_count(0)
    page.get_by_role("link", name="归档…").click()
    page.get_by_role("button", name="归档", exact=True).click()
    expect(page.locator(".flash-success")).to_have_text(re.compile("物品 FB-WIRE 已归档"))
    expect(page.locator(".flash-success")).not_to_contain_text("恢复")
    expect(page.locator("h1 .badge")).to_have_text("已归档")


def test_every_disruptive_action_has_its_confirmation_page(
    sign_in: Callable[..., Page], records: dict[str, str]
) -> None:
    page = sign_in("admin")
    for path, heading, button in (
        (f"/locations/{PLACE}/deactivate", PLACE, "停用"),
        ("/users/fb-leaver/deactivate", "fb-leaver", "停用"),
        (f"/users/tokens/{records['token']}/revoke", records["prefix"], "吊销"),
        (f"/notifications/targets/{records['target']}/delete", "反馈通知", "删除"),
        (f"/counts/{records['count']}/cancel", f"#{records['count']}", "取消盘点"),
    ):
        page.goto(path)
        expect(page.get_by_role("heading", level=1)).to_contain_text(heading)
        expect(page.locator("form button.danger")).to_contain_text(button)
        expect(page.get_by_role("link", name="取消", exact=True)).to_be_visible()
    # Nothing happened by opening them.
    page.goto(f"/locations/{PLACE}")
    expect(page.locator("h1 .badge")).to_have_count(0)


def test_a_location_page_lists_what_is_there_with_its_actions(
    sign_in: Callable[..., Page], records: dict[str, str]
) -> None:
    page = sign_in("manager")
    page.goto("/locations")
    page.get_by_role("link", name=PLACE, exact=True).first.click()
    page.wait_for_url(f"**/locations/{PLACE}")
    rows = page.locator("#location-stock tbody tr")
    expect(rows.filter(has_text="FB-NUT")).to_contain_text("325")
    expect(rows.filter(has_text="FB-NUT")).to_contain_text("pcs")
    for name in ("盘点此库位", "调出", "打印标签", "流水记录"):
        expect(page.get_by_role("link", name=name, exact=True)).to_be_visible()


def test_totals_never_add_different_units(sign_in: Callable[..., Page], records: dict[str, str]) -> None:
    page = sign_in("manager")
    # Dashboard figures count items and locations, each with its label above the figure.
    figures = page.locator(".cards .card .figure").all_inner_texts()
    assert figures and all(re.fullmatch(r"[\d,]+( 种物品)?", f) for f in figures), figures
    expect(page.locator(".cards")).not_to_contain_text("在库数量")
    page.goto("/locations")
    row = page.locator("tbody tr").filter(has=page.get_by_role("link", name=MIXED, exact=True))
    expect(row.locator("td.num")).to_have_text("2")
    page.goto(f"/locations/{MIXED}")
    expect(page.locator("main")).not_to_contain_text("7.5")
    expect(page.locator("#location-stock")).to_contain_text("2.5 m")
    page.goto(f"/locations/{MIXED}/deactivate")
    expect(page.locator("main")).not_to_contain_text("7.5")


def test_desktop_ledger_keeps_codes_and_dates_on_one_line_with_signed_quantities(
    sign_in: Callable[..., Page], records: dict[str, str]
) -> None:
    page = sign_in("viewer", viewport=DESKTOP)
    page.goto("/movements")
    rows = page.locator("main table tbody tr")
    expect(rows.first).to_be_visible()
    codes = _lines(page, "main table tbody td.nowrap, main table tbody td.card-title a")
    assert codes and all(n <= 1 for _text, n in codes), [c for c in codes if c[1] > 1]
    quantities = page.locator("main table tbody .qty")
    texts = quantities.all_inner_texts()
    assert any(re.fullmatch(r"\+\d[\d,.]*", t) for t in texts) and any(re.fullmatch(r"−\d[\d,.]*", t) for t in texts)
    colour = page.evaluate(
        """() => ['.qty-in', '.qty-out'].map(c => getComputedStyle(document.querySelector('main ' + c)).color)"""
    )
    assert colour[0] != colour[1], colour
    # Most rows are one line of text high (less than two of the time's line boxes), all but a
    # transfer's two balances.
    heights = rows.evaluate_all(
        """rs => rs.map(r => { const range = document.createRange();
             range.selectNodeContents(r.querySelector('td.nowrap'));
             return [r.getBoundingClientRect().height, range.getBoundingClientRect().height]; })"""
    )
    single = [row < 2 * line for row, line in heights]
    assert sum(single) > len(single) * 0.8, heights
    shots(page, "ledger-desktop")


def test_a_receipt_says_what_happened_and_keeps_the_reference_for_the_next_line(
    sign_in: Callable[..., Page], records: dict[str, str]
) -> None:
    page = sign_in("manager")
    page.goto(f"/movements/receive?sku=FB-NUT&location={PLACE}")
    page.get_by_label("数量").fill("12")
    page.get_by_label("单号（订单或单据号）").fill("PO-2026-0415")
    page.get_by_role("button", name="入库", exact=True).click()
    flash = page.locator(".flash-success")
    expect(flash).to_contain_text(f"已入库 12 pcs 六角螺帽 M5 → {PLACE}，现有 337。")
    # The next line of the delivery: same PO, cursor in the quantity.
    expect(page.get_by_label("单号（订单或单据号）")).to_have_value("PO-2026-0415")
    expect(page.get_by_label("数量")).to_be_focused()
    expect(page.get_by_label("数量")).to_have_value("")
    # The flash links to the line, where it can be taken back.
    flash.get_by_role("link", name=re.compile(r"^#\d+$")).click()
    expect(page.get_by_role("button", name="冲销", exact=True)).to_be_visible()
    page.goto(f"/movements/issue?sku=FB-NUT&location={PLACE}")
    page.get_by_label("数量").fill("10")
    page.get_by_role("button", name="出库", exact=True).click()
    expect(page.locator(".flash-success")).to_contain_text("六角螺帽 M5")
    expect(page.locator(".flash-success")).to_contain_text("327")


def test_a_dropdown_menu_closes_when_focus_leaves_it(sign_in: Callable[..., Page]) -> None:
    page = sign_in("admin", viewport=DESKTOP)
    menu = page.locator("details.menu").first
    menu.locator("summary").focus()
    page.keyboard.press("Enter")
    expect(menu).to_have_attribute("open", "")
    page.locator("main a, main button, main input").first.focus()
    expect(menu).not_to_have_attribute("open", "")


def test_404_and_403_pages_speak_chinese_and_help(sign_in: Callable[..., Page]) -> None:
    page = sign_in("clerk")
    response = page.goto("/items/NO-SUCH-SKU-404")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_contain_text("404")
    search = page.get_by_role("search")
    expect(search.get_by_role("searchbox")).to_be_visible()
    for name in ("物品", "库位"):
        expect(page.locator("main").get_by_role("link", name=name, exact=True)).to_be_visible()
    search.get_by_role("searchbox").fill("lsd")
    search.get_by_role("button").click()
    expect(page.locator("#items")).to_contain_text("SCREW-M4")
    response = page.goto("/users")
    assert response is not None and response.status == 403
    expect(page.locator("main")).to_contain_text("需要“管理员”或更高角色")
    expect(page.locator("main")).to_contain_text("您的角色是“库管员”")
    expect(page.get_by_role("search")).to_be_visible()
    assert axe_findings(page) == []
    shots(page, "error-403")


def test_chinese_pages_put_chinese_fonts_first_and_the_favicon_loads(sign_in: Callable[..., Page]) -> None:
    page = sign_in("viewer")
    family = page.evaluate("getComputedStyle(document.body).fontFamily")
    order = [family.find(f) for f in ("PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "system-ui")]
    assert -1 not in order and order == sorted(order), family
    href = page.locator("link[rel=icon]").get_attribute("href")
    assert href
    icon = page.request.get(href)
    assert icon.status == 200 and icon.headers["content-type"].startswith("image/")
    page.locator(".user-menu summary").click()
    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.wait_for_load_state()  # the new page's stylesheet too: read before it, the font was the default
    english = page.evaluate("getComputedStyle(document.body).fontFamily")
    assert english.find("system-ui") < english.find("PingFang SC"), english
    page.locator(".user-menu summary").click()
    page.get_by_role("button", name="中文").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
