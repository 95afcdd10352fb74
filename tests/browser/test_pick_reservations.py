"""Picking two orders' merged pick list on /scan, as a keyboard-wedge scanner types (code, then
Enter), on a desktop and on a 360 px phone: the list's code opens it, a location then an item
confirms each stop, a wrong item is refused, and finishing issues both orders at once. Each run
keeps to its own items (PKR-<size>-…), so other tests' searches never match them."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy import select

from app.extensions import db
from app.models import Item
from app.services import items as item_service
from app.services import reservations, stock
from tests.browser.conftest import DESKTOP, PHONE, axe_findings, shot, shots


def _wedge(page: Page, code: str) -> None:
    """A scan: typed into the focused box, then Enter."""
    page.keyboard.type(code)
    page.keyboard.press("Enter")


def _two_orders(app: Flask, tag: str) -> tuple[int, int, str, str]:
    """Order 1 takes 2 washers (WH1-A-01-02) and 1 clip (WH1-A-01-01); order 2 takes 3 washers."""
    washer, clip = f"PKR-{tag}-WASHER", f"PKR-{tag}-CLIP"
    with app.app_context():
        item_service.create_item(sku=washer, name=f"拣货垫圈 {tag}")
        item_service.create_item(sku=clip, name=f"拣货卡扣 {tag}")
        stock.receive_lines(
            lines=[stock.PickLine(washer, "WH1-A-01-02", 10), stock.PickLine(clip, "WH1-A-01-01", 4)],
            user="seed",
            reference="PKR",
        )
        first = reservations.reserve(
            reference=f"SO-{tag}-1",
            lines=[reservations.ReserveLine(washer, 2), reservations.ReserveLine(clip, 1)],
            user="erp",
        )
        second = reservations.reserve(reference=f"SO-{tag}-2", lines=[reservations.ReserveLine(washer, 3)], user="erp")
    return first.id, second.id, washer, clip


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_a_merged_two_order_pick_list_is_picked_on_scan(
    sign_in: Callable[..., Page], live_app: Flask, size: str
) -> None:
    first, second, washer, clip = _two_orders(live_app, size)
    page = sign_in("clerk", viewport=PHONE if size == "phone" else DESKTOP)
    page.goto(f"/reservations/pick-list?ids={first}&ids={second}")
    rows = page.locator("#pick-rows tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("WH1-A-01-01")  # walking order: level 01 before 02
    expect(rows.nth(1)).to_contain_text("5")  # 2 + 3 washers merged at one stop
    expect(page.locator(".pick-code svg.qr")).to_be_visible()
    assert axe_findings(page) == []
    shots(page, f"pick-list-{size}")
    page.emulate_media(media="print")  # printed: the list alone, with a tick box per stop
    expect(page.locator(".topbar")).to_be_hidden()
    expect(rows.nth(0).locator("td.print-only")).to_be_visible()
    shot(page, f"pick-list-{size}-print")
    page.emulate_media(media="screen")

    page.goto("/scan")
    expect(page.locator("#scan-code")).to_be_focused()
    _wedge(page, f"PICK:{first}.{second}")
    page.wait_for_url(f"**/scan/pick/PICK:{first}.{second}")
    expect(page.locator("#pick-code")).to_be_focused()
    _wedge(page, "WH1-A-01-01")
    expect(page.locator("#pick-at")).to_have_text("WH1-A-01-01")
    _wedge(page, washer)
    expect(page.locator("#pick-result")).to_contain_text("不在这里拣：请去 WH1-A-01-02")
    _wedge(page, clip)
    expect(page.locator("#pick-result")).to_contain_text(f"已在 WH1-A-01-01 拣 1 pcs × 拣货卡扣 {size}")
    _wedge(page, "WH1-A-01-02")
    _wedge(page, washer)  # at once: the page queues a scan made while the last one is on its way
    expect(page.locator("#pick-count")).to_have_text("2 / 2")
    assert axe_findings(page) == []
    shots(page, f"pick-scan-{size}")

    page.get_by_role("button", name="完成并出库").click()
    expect(page.locator(".flash-success")).to_contain_text("已拣 3 行")
    expect(page.locator("#pick-empty")).to_be_visible()
    with live_app.app_context():
        picked = [reservations.get_reservation(i) for i in (first, second)]
        held = {
            sku: (on_hand, reserved)
            for sku, on_hand, reserved in db.session.execute(
                select(Item.sku, Item.on_hand, Item.reserved).where(Item.sku.in_([washer, clip]))
            )
        }
    assert [r.status for r in picked] == ["picked", "picked"]
    assert held[washer] == (Decimal(5), Decimal(0)) and held[clip] == (Decimal(3), Decimal(0))
