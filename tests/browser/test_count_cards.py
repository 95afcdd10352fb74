"""The count sheet and its review on a 360 × 740 phone: one card per line with a large count box
and its unit, the shared location once, progress that counts what was saved, the counter's own
figures kept (never the system's), and on review the large variances tinted, signed and first,
with a "only variances" view that is a plain link (no script needed)."""

from __future__ import annotations

import re
from collections.abc import Callable

from flask import Flask
from playwright.sync_api import Page, expect

from app.services import counts, items, locations, stock
from tests.browser.conftest import PHONE, axe_findings, shots

PLACE = "WH1-C-09-01"
# Six items on one shelf; 37 is a figure no other line or label carries, to prove it never shows.
HELD = {"CNT-01": 10, "CNT-02": 10, "CNT-03": 37, "CNT-04": 12, "CNT-05": 8, "CNT-06": 3}


def _open_count(app: Flask) -> int:
    with app.app_context():
        locations.create_location(warehouse="WH1", code=PLACE)
        for n, sku in enumerate(HELD, start=1):
            items.create_item(sku=sku, name=f"盘点样品 {n} 号（长名称以测换行）", unit="kg" if n == 3 else "pcs")
        stock.receive_lines(lines=[stock.PickLine(sku, PLACE, q) for sku, q in HELD.items()], user="seed")
        return counts.open_count(user="manager", location=PLACE, threshold=1).id


def _without_tokens(html: str) -> str:
    """The page without its random values: a CSRF token ("…W37Y8c", seen in CI) or a nonce can
    hold any digits by chance."""
    return re.sub(r'(name="csrf_token"[^>]*value|nonce)="[^"]*"', r'\1=""', html)


def _fits_the_screen(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def test_count_sheet_and_review_on_a_phone(sign_in: Callable[..., Page], live_app: Flask) -> None:
    count_id = _open_count(live_app)
    clerk = sign_in("clerk", viewport=PHONE)
    clerk.goto(f"/counts/{count_id}")
    sheet = clerk.locator("#count-lines")
    cards = sheet.locator(".count-card")
    expect(cards).to_have_count(6)
    expect(clerk.locator("#count-progress")).to_have_text("已盘 0 / 6")
    expect(clerk.get_by_role("heading", level=1)).to_contain_text(PLACE)
    expect(sheet).not_to_contain_text(PLACE)  # the shared location is said once, in the heading
    _fits_the_screen(clerk)
    box = clerk.get_by_label("实盘数 CNT-01").bounding_box()
    assert box is not None and box["height"] >= 44 and box["width"] >= 120
    # Value and unit side by side on the card, not pushed to opposite edges.
    unit = cards.nth(2).locator(".count-unit")
    expect(unit).to_have_text("kg")
    unit_box = unit.bounding_box()
    entry_box = clerk.get_by_label("实盘数 CNT-03").bounding_box()
    assert unit_box and entry_box and 0 <= unit_box["x"] - (entry_box["x"] + entry_box["width"]) <= 16
    assert axe_findings(clerk) == []

    clerk.get_by_label("实盘数 CNT-01").fill("10")
    clerk.get_by_label("实盘数 CNT-02").fill("4")
    clerk.get_by_role("button", name="保存盘点数").click()
    expect(clerk.locator(".flash-success")).to_contain_text("已保存 2 个盘点数")
    expect(clerk.locator("#count-progress")).to_have_text("已盘 2 / 6")
    expect(clerk.get_by_label("实盘数 CNT-01")).to_have_value("10")
    expect(clerk.get_by_label("实盘数 CNT-02")).to_have_value("4")
    expect(cards.nth(1).locator(".chip")).to_have_text("实盘数")
    expect(cards.nth(2).locator(".chip")).to_have_text("待盘点")
    assert "37" not in _without_tokens(clerk.content())  # still blind: no system quantity anywhere
    assert axe_findings(clerk) == []
    shots(clerk, "count-sheet-cards")

    # Saved again unchanged: nothing new is recorded, and the page says so.
    clerk.get_by_role("button", name="保存盘点数").click()
    expect(clerk.locator(".flash-success")).to_contain_text("没有新的盘点数需要保存")
    expect(clerk.locator("#count-progress")).to_have_text("已盘 2 / 6")

    for sku, counted in (("CNT-03", "37"), ("CNT-04", "12.5"), ("CNT-05", "8"), ("CNT-06", "5")):
        clerk.get_by_label(f"实盘数 {sku}").fill(counted)
    clerk.get_by_role("button", name="保存盘点数").click()
    expect(clerk.locator("#count-progress")).to_have_text("已盘 6 / 6")

    # The review: the order is the server's and the filter a plain link (so it needs no script).
    manager = sign_in("manager", viewport=PHONE)
    manager.goto(f"/counts/{count_id}/review")
    review = manager.locator("#review-lines .count-card")
    expect(review).to_have_count(6)
    # Large variances first, largest on top, tinted and signed; then the rest in sheet order.
    expect(review.nth(0)).to_contain_text("CNT-02")
    expect(review.nth(0).locator(".variance dd")).to_have_text("−6 pcs")
    expect(review.nth(0)).to_have_class("count-card variance-large")
    expect(review.nth(1)).to_contain_text("CNT-06")
    expect(review.nth(1).locator(".variance dd")).to_have_text("+2 pcs")
    expect(review.nth(2)).to_contain_text("CNT-01")
    expect(review.nth(2)).to_have_class("count-card")
    _fits_the_screen(manager)
    assert axe_findings(manager) == []
    shots(manager, "count-review-cards")

    manager.get_by_role("link", name="只看差异 (3)").click()
    expect(manager.get_by_role("link", name="只看差异 (3)")).to_have_attribute("aria-current", "page")
    expect(review).to_have_count(3)
    assert [review.nth(n).locator(".code").first.inner_text() for n in range(3)] == ["CNT-02", "CNT-06", "CNT-04"]
    expect(review.nth(2).locator(".variance dd")).to_have_text("+0.5 pcs")
    assert axe_findings(manager) == []
    shots(manager, "count-review-variances")
