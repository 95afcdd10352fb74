"""A five-line pick with two bad lines, as a clerk keys it: one submit reports both lines, each
on its own numbered card with the quantity available, the values stay as typed, and fixing the
two lines issues all five."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.browser.conftest import PHONE, axe_findings, shots

ORDER = [
    ("BOLT-011", "WH1-A-01-01", "2"),
    ("BOLT-012", "WH1-A-01-01", "1"),
    ("NO-SUCH-SKU", "WH1-A-01-01", "1"),
    ("BOLT-013", "WH1-A-01-01", "1"),
    ("BOLT-014", "WH1-A-01-01", "9"),
]


def test_five_line_pick_with_two_bad_lines_takes_two_submits(sign_in: Callable[..., Page]) -> None:
    page = sign_in("clerk", viewport=PHONE)
    page.goto("/movements/receive")
    for sku, qty in (("BOLT-011", "5"), ("BOLT-012", "5"), ("BOLT-013", "5"), ("BOLT-014", "3")):
        page.get_by_label("SKU").fill(sku)
        page.get_by_label("库位").fill("WH1-A-01-01")
        page.get_by_label("数量").fill(qty)
        page.get_by_role("button", name="入库", exact=True).click()
        # This receipt's own message: the page before it already shows the last one's, and a
        # fresh form keeps the SKU, so a check that passed early let the next fill land on the old
        # form and received BOLT-013 twice (seen in CI: BOLT-014 then had 0 available).
        expect(page.locator(".flash-success")).to_contain_text(f"不锈钢螺栓 M{int(sku[-3:])} → WH1-A-01-01")
    page.goto("/movements/pick")
    for n, (sku, location, qty) in enumerate(ORDER):
        page.locator(f"#lines-{n}-sku").fill(sku)
        page.locator(f"#lines-{n}-location").fill(location)
        page.locator(f"#lines-{n}-quantity").fill(qty)
    page.get_by_role("button", name="全部出库").click()
    banner = page.get_by_role("alert").first
    expect(banner).to_contain_text("2 行需要修改")
    expect(page.locator("#lines-2-sku-err")).to_have_text("第 3 行：没有 SKU 为 NO-SUCH-SKU 的物品。")
    expect(page.locator("#lines-4-quantity-err")).to_have_text("第 5 行：WH1-A-01-01 仅有 3 pcs 可用。")
    expect(page.locator(".pick-line.has-problem")).to_have_count(2)
    expect(page.locator("#lines-0-quantity")).to_have_value("2")
    assert axe_findings(page) == []
    shots(page, "pick-two-bad-lines")
    banner.get_by_role("link", name="第 3 行").click()
    expect(page.locator("#lines-2-sku")).to_be_focused()
    page.locator("#lines-2-sku").fill("BOLT-012")
    page.locator("#lines-4-quantity").fill("3")
    page.get_by_role("button", name="全部出库").click()
    expect(page.locator(".flash-success")).to_contain_text("已记录流水")
    page.goto("/items/BOLT-012")
    expect(page.locator("#stock")).to_contain_text("3")
