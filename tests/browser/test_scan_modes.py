"""The scan page remembers each clerk's mode (none until chosen, never a default that issues
stock by mistake), files scans under an order number, keeps a typed quantity after a refused
scan, and names the available quantity once."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.extensions import db
from app.models import Movement
from app.services import users
from tests.browser.conftest import PASSWORD, PHONE, axe_findings, shots


def _wedge(page: Page, code: str) -> None:
    page.keyboard.type(code)
    page.keyboard.press("Enter")


def _new_clerk(app: Flask, username: str) -> None:
    with app.app_context():
        users.create_user(username=username, password=PASSWORD, role="clerk")
        db.session.remove()


def _scans(app: Flask, username: str) -> list[tuple[str, str, Decimal, str | None, str | None]]:
    with app.app_context():
        rows = db.session.execute(
            select(Movement.kind, Movement.reference, Movement.quantity, Movement.reason_code, Movement.note)
            .where(Movement.username == username)
            .order_by(Movement.id)
        ).all()
        db.session.remove()
    return [tuple(row) for row in rows]


def _choose(page: Page, key: str) -> None:
    """Alt+N chooses a mode; the page tells the server, which remembers it for the next visit."""
    with page.expect_response(lambda r: r.url.endswith("/scan/mode") and r.ok):
        page.keyboard.press(f"Alt+{key}")


def test_no_mode_until_chosen_then_the_last_mode_opens_the_page(sign_in: Callable[..., Page], live_app: Flask) -> None:
    _new_clerk(live_app, "mode-clerk")
    page = sign_in("mode-clerk", viewport=PHONE)
    page.goto("/scan")
    radios = page.locator("input[name=mode]")
    expect(radios).to_have_count(3)
    for n in range(3):
        expect(radios.nth(n)).not_to_be_checked()
    _wedge(page, "WH2-A-01-01")
    _wedge(page, "BOLT-030")
    result = page.locator("#scan-result")
    expect(result).to_have_class("scan-result bad")
    expect(result).to_contain_text("请先选择出库、入库或调拨")
    assert _scans(live_app, "mode-clerk") == []
    shots(page, "scan-no-mode")
    _choose(page, "2")
    _wedge(page, "BOLT-030")
    expect(result).to_contain_text("已入库 1 × 不锈钢螺栓 M30")
    page.reload()
    expect(page.get_by_role("radio", name="入库")).to_be_checked()
    expect(page.get_by_role("radio", name="出库")).not_to_be_checked()
    # Another device of the same clerk opens in the same mode.
    other = sign_in("mode-clerk")
    other.goto("/scan")
    expect(other.get_by_role("radio", name="入库")).to_be_checked()
    assert axe_findings(page) == []


def test_scans_are_filed_under_the_order_typed_and_still_undo(sign_in: Callable[..., Page], live_app: Flask) -> None:
    _new_clerk(live_app, "order-clerk")
    page = sign_in("order-clerk")
    page.goto("/scan")
    reference = page.get_by_label("单据号")
    reference.fill("PO-7788")
    reference.press("Enter")
    expect(page.locator("#scan-code")).to_be_focused()
    _wedge(page, "WH1-A-01-02")
    _choose(page, "2")
    _wedge(page, "*3")
    _wedge(page, "BOLT-029")
    expect(page.locator("#scan-result")).to_contain_text("已入库 3 × 不锈钢螺栓 M29")
    _wedge(page, "BOLT-029")
    expect(page.locator("#scan-result")).to_contain_text("现有 4")
    assert _scans(live_app, "order-clerk") == [
        ("receive", "PO-7788", Decimal(3), "scan", None),
        ("receive", "PO-7788", Decimal(1), "scan", None),
    ]
    page.locator("[data-undo]").click()
    expect(page.locator("#scan-result")).to_contain_text("已撤销")
    assert [row[:2] for row in _scans(live_app, "order-clerk")][-1] == ("reversal", "PO-7788")
    shots(page, "scan-order")
    page.goto("/movements?reference=PO-7788")
    expect(page.locator("tbody tr")).to_have_count(3)
    first = page.locator("tbody tr").last
    expect(first).to_contain_text("PO-7788")
    first.get_by_role("link").first.click()
    expect(page.locator("dl")).to_contain_text("扫码")


def test_a_refused_scan_keeps_its_quantity_and_says_the_available_quantity_once(
    sign_in: Callable[..., Page], live_app: Flask
) -> None:
    _new_clerk(live_app, "short-clerk")
    page = sign_in("short-clerk", viewport=PHONE)
    page.goto("/scan")
    _wedge(page, "WH2-A-01-01")
    _choose(page, "1")
    _wedge(page, "*7")
    _wedge(page, "BOLT-028")
    result = page.locator("#scan-result")
    expect(result).to_have_class("scan-result bad")
    expect(result).to_contain_text("仅有 0 可用（需要 7）")
    text = result.inner_text()
    assert text.count(" 0 ") == 1 and "可用：" not in text, text
    expect(result).to_contain_text("数量保留到下次扫描")
    expect(page.locator("#scan-quantity")).to_have_text("7")
    shots(page, "scan-refused-keeps-quantity")
    assert axe_findings(page) == []
    _choose(page, "2")
    _wedge(page, "BOLT-028")
    expect(result).to_contain_text("已入库 7 × 不锈钢螺栓 M28")
    expect(page.locator("#scan-quantity")).to_have_text("1")
    assert [(kind, qty) for kind, _, qty, _, _ in _scans(live_app, "short-clerk")] == [("receive", Decimal(7))]
