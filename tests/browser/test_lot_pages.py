"""Lots on a 360 px phone (issue 17): the expiring-soon list as two-line cards with the expiry
state in words, and an item's stock per lot with expired and expiring lots marked; both fit the
screen and are axe-clean."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from flask import Flask
from playwright.sync_api import Page, expect

from app.models.types import utcnow
from app.services import items, stock
from tests.browser.conftest import PHONE, axe_findings, shots

TODAY = utcnow().date()


def _lots(app: Flask) -> None:
    with app.app_context():
        items.create_item(
            sku="MILK-UHT",
            name="超高温灭菌纯牛奶 1L（整箱十二盒装）",
            tracking="lot",
            requires_expiry=True,
            expiry_warning_days=14,
            unit="箱",
        )
        for code, days, place, qty in (
            ("L-2411-A", -2, "WH1-A-01-01", 3),
            ("L-2412-B", 5, "WH1-A-01-01", 12),
            ("L-2412-B", 5, "WH2-A-01-01", 4),
            ("L-2503-C", 90, "WH1-A-01-02", 30),
        ):
            stock.receive_stock(
                sku="MILK-UHT",
                location=place,
                quantity=qty,
                lot=code,
                expiry=TODAY + timedelta(days=days),
                user="seed",
                reference="PO-900",
            )


def _fits_the_screen(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def test_expiring_lots_and_an_items_lots_on_a_phone(sign_in: Callable[..., Page], live_app: Flask) -> None:
    _lots(live_app)
    clerk = sign_in("clerk", viewport=PHONE)
    clerk.goto("/lots/expiring?days=30")
    rows = clerk.locator("#expiring-lots tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("L-2411-A")
    expect(rows.nth(0)).to_contain_text("已过期")
    expect(rows.nth(1)).to_contain_text("5 天后到期")
    expect(clerk.locator("#expiring-lots")).not_to_contain_text("L-2503-C")
    _fits_the_screen(clerk)
    # A card, not a seven-row table: each row about as tall as two or three lines.
    box = rows.nth(1).bounding_box()
    assert box is not None and box["height"] < 160
    assert axe_findings(clerk) == []
    shots(clerk, "lots-expiring")

    clerk.goto("/items/MILK-UHT")
    lots = clerk.locator("#lot-stock tbody tr")
    expect(lots).to_have_count(4)
    expect(lots.nth(0)).to_contain_text("已过期")
    expect(lots.nth(3)).to_contain_text("L-2503-C")
    expect(lots.nth(3).locator(".badge")).to_have_count(0)
    _fits_the_screen(clerk)
    assert axe_findings(clerk) == []
    shots(clerk, "item-lots")

    lots.nth(1).get_by_role("link", name="L-2412-B").click()
    expect(clerk.get_by_role("heading", level=1)).to_contain_text("批次 L-2412-B")
    expect(clerk.locator("#trace")).to_contain_text("PO-900")
    _fits_the_screen(clerk)
    assert axe_findings(clerk) == []
    shots(clerk, "lot-page")
