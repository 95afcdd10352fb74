"""The stock forms' item picker as a clerk uses it: the cursor waits in the SKU box, a Chinese
name or its pinyin lists the items, the keyboard chooses one, the form tells the item's name,
unit and stock and suggests its place, and the receipt lands where it should. Lower-case codes
work the same on /scan."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from flask import Flask
from playwright.sync_api import Page, expect

from app.services import catalog, items
from tests.browser.conftest import PHONE, axe_findings, shots


def _held(app: Flask, sku: str) -> dict[str, Decimal]:
    with app.app_context():
        return {row.location: row.quantity for row in catalog.list_stock(sku=sku)}


def _plain(quantity: Decimal) -> str:
    """A quantity as pages show it: 20, 2.5 (no trailing zeros)."""
    return f"{quantity.normalize():f}"


def test_receive_by_chinese_name_and_by_pinyin_chosen_with_the_keyboard(
    sign_in: Callable[..., Page], live_app: Flask
) -> None:
    before = _held(live_app, "NUT-M4")
    page = sign_in("clerk", viewport=PHONE)
    page.goto("/movements/receive")
    sku = page.get_by_role("combobox", name="SKU")
    expect(sku).to_be_focused()

    # A Chinese name: the one match is highlighted, Enter takes it.
    page.keyboard.type("螺母")
    options = page.get_by_role("listbox", name="匹配的物品").get_by_role("option")
    expect(options).to_have_count(1)
    expect(options.first).to_contain_text("六角螺母 M4")
    expect(sku).to_have_attribute("aria-expanded", "true")
    assert axe_findings(page) == []
    shots(page, "receive-item-lookup-open")
    page.keyboard.press("Enter")
    expect(sku).to_have_value("NUT-M4")
    expect(sku).to_have_attribute("aria-expanded", "false")
    expect(page.get_by_label("库位")).to_have_value("WH1-A-01-02")
    echo = page.locator("#sku-echo")
    held = before["WH1-A-01-02"]  # other browser tests move this item too: read, don't assume
    expect(echo).to_contain_text(f"六角螺母 M4 · pcs — WH1-A-01-02 {_plain(held)} pcs")
    expect(echo).to_contain_text("已建议库位 WH1-A-01-02")
    quantity = page.get_by_label("数量")
    expect(quantity).to_be_focused()
    page.keyboard.type("12")
    page.keyboard.press("Enter")
    received = f"已入库 12 pcs 六角螺母 M4 → WH1-A-01-02，现有 {_plain(held + 12)}"
    expect(page.locator(".flash-success")).to_contain_text(received)
    assert _held(live_app, "NUT-M4")["WH1-A-01-02"] == before["WH1-A-01-02"] + 12

    # Pinyin initials, the list closed with Escape and opened again with the arrow keys.
    page.get_by_label("库位").fill("")
    sku.fill("")
    sku.focus()
    page.keyboard.type("fxjd")
    expect(options).to_have_count(1)
    expect(options.first).to_contain_text("封箱胶带 48mm")
    page.keyboard.press("Escape")
    expect(page.get_by_role("listbox", name="匹配的物品")).to_be_hidden()
    expect(sku).to_have_value("fxjd")
    page.keyboard.press("ArrowDown")
    expect(options.first).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Enter")
    expect(sku).to_have_value("TAPE-48")
    expect(page.get_by_label("库位")).to_have_value("WH2-A-01-01")

    # Many matches: down twice, up once, Enter takes the second.
    sku.fill("")
    page.keyboard.type("bxg")
    expect(options).to_have_count(10)
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowUp")
    expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    expect(sku).to_have_attribute("aria-activedescendant", "sku-option-1")
    page.keyboard.press("Enter")
    expect(sku).to_have_value("BOLT-002")
    expect(page.locator("#sku-echo")).to_contain_text("不锈钢螺栓 M2 · pcs — 无库存")

    # The SKU in another case finds the item too.
    sku.fill("")
    page.keyboard.type("nut-m4")
    expect(options.first).to_contain_text("NUT-M4")
    assert axe_findings(page) == []


def test_the_receive_form_still_works_without_javascript(sign_in: Callable[..., Page], live_app: Flask) -> None:
    before = _held(live_app, "GLOVE-L").get("WH1-A-01-01", Decimal(0))
    page = sign_in("clerk", java_script_enabled=False)
    page.goto("/movements/receive")
    expect(page.get_by_label("SKU")).not_to_have_attribute("role", "combobox")  # the plain box
    page.get_by_label("SKU").fill("glove-l")
    page.get_by_label("库位").fill("wh1-a-01-01")
    page.get_by_label("数量").fill("3")
    page.get_by_role("button", name="入库", exact=True).click()
    expect(page.locator(".flash-success")).to_contain_text("防护手套 L")
    assert _held(live_app, "GLOVE-L")["WH1-A-01-01"] == before + 3


def test_pick_lines_added_later_get_their_own_item_picker(sign_in: Callable[..., Page]) -> None:
    page = sign_in("clerk")
    page.goto("/movements/pick")
    page.get_by_role("button", name="添加一行").click()
    count = page.locator(".pick-line").count()
    last = page.locator(f"#lines-{count - 1}-sku")
    expect(last).to_have_attribute("aria-controls", f"lines-{count - 1}-sku-options")
    last.focus()
    page.keyboard.type("螺丝钉")
    page.keyboard.press("Enter")
    expect(last).to_have_value("SCREW-M4")
    expect(page.locator(f"#lines-{count - 1}-location")).to_have_value("WH1-A-01-01")
    expect(page.locator(f"#lines-{count - 1}-quantity")).to_be_focused()
    expect(page.locator("#lines-0-sku-options")).to_be_hidden()
    assert axe_findings(page) == []


def test_scan_takes_a_location_code_typed_in_lower_case(sign_in: Callable[..., Page]) -> None:
    page = sign_in("clerk", viewport=PHONE)
    page.goto("/scan")
    page.locator("#scan-code").fill("wh2-a-01-01")
    page.locator("#scan-code").press("Enter")
    expect(page.locator("#scan-location")).to_have_text("WH2-A-01-01")


def test_a_supplier_gs1_label_scanned_into_the_sku_box_fills_item_quantity_and_tells_the_lot(
    sign_in: Callable[..., Page], live_app: Flask
) -> None:
    with live_app.app_context():
        items.create_item(sku="ERASER-GS1", name="橡皮擦", unit="块", barcode="96385074")  # an EAN-8
    page = sign_in("clerk")
    page.goto("/movements/receive")
    sku = page.get_by_role("combobox", name="SKU")
    page.get_by_label("库位").fill("WH1-A-01-02")
    sku.focus()
    # GTIN-14 of the EAN-8, lot (variable length, so the group separator), then a count of 24.
    page.keyboard.type("]d20100000096385074107B")
    page.keyboard.insert_text("\x1d")
    page.keyboard.type("3024")
    page.keyboard.press("Enter")
    expect(sku).to_have_value("ERASER-GS1")
    expect(page.get_by_label("数量")).to_have_value("24")
    expect(page.locator("#sku-echo")).to_contain_text("橡皮擦 · 块 — 无库存。 批号 7B")
    page.get_by_role("button", name="入库", exact=True).click()
    expect(page.locator(".flash-success")).to_contain_text("橡皮擦")
    assert _held(live_app, "ERASER-GS1") == {"WH1-A-01-02": Decimal(24)}
