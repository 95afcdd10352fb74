"""The scan page in Chromium, typed as a keyboard-wedge scanner types (code, then Enter): moving
stock with balances shown, error scans, undo, and an offline spell whose queued scans are replayed
exactly once when the connection returns."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from flask import Flask
from playwright.sync_api import Page, expect

from app.extensions import db
from app.services import catalog, items, stock
from tests.browser.conftest import shot


def _wedge(page: Page, code: str) -> None:
    """What a wedge scanner does: type into whatever has the focus, then Enter."""
    page.keyboard.type(code)
    page.keyboard.press("Enter")


def test_wedge_scanner_session_moves_stock_and_shows_balances(sign_in: Callable[..., Page]) -> None:
    page = sign_in("clerk")
    page.goto("/scan")
    expect(page.locator("#scan-code")).to_be_focused()
    result = page.locator("#scan-result")
    _wedge(page, "WH2-A-01-01")
    expect(page.locator("#scan-location")).to_have_text("WH2-A-01-01")
    page.keyboard.press("Alt+2")  # receive
    for _ in range(3):
        _wedge(page, "BOLT-031")
    expect(result).to_contain_text("已入库 1 × 不锈钢螺栓 M31（BOLT-031），库位 WH2-A-01-01：现有 3")
    expect(result).to_have_class("scan-result ok")
    _wedge(page, "*4")
    _wedge(page, "BOLT-031")
    expect(result).to_contain_text("现有 7")
    page.keyboard.press("Alt+1")  # issue
    _wedge(page, "BOLT-031")
    expect(result).to_contain_text("已出库 1 × 不锈钢螺栓 M31（BOLT-031），库位 WH2-A-01-01：剩余 6")
    expect(page.locator("#scan-code")).to_be_focused()
    expect(page.locator("#scan-log tr")).to_have_count(5)
    shot(page, "scan")


def test_error_scans_are_red_and_say_why(sign_in: Callable[..., Page]) -> None:
    page = sign_in("clerk")
    page.goto("/scan")
    result = page.locator("#scan-result")
    _wedge(page, "WH2-A-01-01")
    page.keyboard.press("Alt+1")  # issue
    _wedge(page, "NO-SUCH-CODE")
    expect(result).to_have_class("scan-result bad")
    expect(result).to_contain_text("未知条码 NO-SUCH-CODE")
    _wedge(page, "BOLT-032")
    expect(result).to_contain_text("库存不足")
    expect(result).to_contain_text("仅有 0 可用")
    expect(page.locator("#scan-log tr.bad")).to_have_count(2)
    shot(page, "scan-error")
    # Headless Chromium has no BarcodeDetector and no camera: the button says to type instead.
    page.get_by_role("button", name="摄像头").click()
    expect(result).to_contain_text("请手动输入编码")
    expect(page.locator("#scan-code")).to_be_focused()


def test_undo_takes_back_the_last_scan(sign_in: Callable[..., Page]) -> None:
    page = sign_in("clerk")
    page.goto("/scan")
    _wedge(page, "WH1-A-01-02")
    page.keyboard.press("Alt+2")
    _wedge(page, "BOLT-034")
    _wedge(page, "BOLT-034")
    expect(page.locator("#scan-result")).to_contain_text("现有 2")
    page.locator("[data-undo]").click()
    expect(page.locator("#scan-result")).to_contain_text("已撤销")
    expect(page.locator("#scan-log tr.undone")).to_have_count(1)
    expect(page.locator("#scan-code")).to_be_focused()
    page.goto("/items/BOLT-034")
    expect(page.locator("#stock")).to_contain_text("1")


# Polls the Cache Storage the service worker writes (no event tells a page that a copy is kept).
KEPT_WITHIN_10_S = """async () => {
  for (let i = 0; i < 200; i += 1) {
    if (await caches.match("/scan")) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}"""


def _ledger(app: Flask, sku: str) -> list[tuple[str, Decimal, Decimal | None]]:
    with app.app_context():
        rows = catalog.list_movements(sku=sku).rows
        db.session.remove()
    return [(row.kind, row.quantity, row.to_balance) for row in reversed(rows)]


def test_scan_page_loads_offline_after_one_visit_and_replays_once(
    sign_in: Callable[..., Page], live_app: Flask
) -> None:
    """Exactly as a clerk does it: one online visit, a scan, a Wi-Fi dead spot, a reload there,
    another scan, back online."""
    page = sign_in("clerk")
    page.goto("/scan")
    _wedge(page, "WH2-A-01-01")
    page.keyboard.press("Alt+2")  # receive
    _wedge(page, "BOLT-033")
    expect(page.locator("#scan-result")).to_contain_text("现有 1")
    # The worker keeps the page as soon as it is active; the clerk's walk takes longer than this.
    assert page.evaluate(KEPT_WITHIN_10_S), "the scan page was not kept for offline use"
    page.context.set_offline(True)
    page.reload()
    expect(page.locator("#scan-code")).to_be_focused()
    _wedge(page, "WH2-A-01-01")
    page.keyboard.press("Alt+2")
    _wedge(page, "BOLT-033")
    expect(page.locator("#scan-pending")).to_have_text("1")
    expect(page.locator("#scan-result")).to_contain_text("离线")
    shot(page, "scan-offline")
    assert _ledger(live_app, "BOLT-033") == [("receive", Decimal(1), Decimal(1))]
    page.context.set_offline(False)
    expect(page.locator("#scan-pending")).to_have_text("0", timeout=15_000)
    expect(page.locator("#scan-result")).to_contain_text("现有 2")
    assert _ledger(live_app, "BOLT-033") == [("receive", Decimal(1), Decimal(1)), ("receive", Decimal(1), Decimal(2))]
    # Another reload online serves the page from the network again and replays nothing twice.
    page.reload()
    expect(page.locator("#scan-pending")).to_have_text("0")
    assert len(_ledger(live_app, "BOLT-033")) == 2


def test_transfer_mode_scans_source_then_destination(sign_in: Callable[..., Page]) -> None:
    page = sign_in("clerk")
    page.goto("/scan")
    _wedge(page, "WH1-A-01-01")
    page.keyboard.press("Alt+2")
    _wedge(page, "*5")
    _wedge(page, "BOLT-037")
    page.keyboard.press("Alt+3")  # transfer: the next location scanned is the destination
    _wedge(page, "WH1-A-01-01")
    _wedge(page, "WH1-A-01-02")
    expect(page.locator("#scan-target")).to_have_text("WH1-A-01-02")
    _wedge(page, "BOLT-037")
    expect(page.locator("#scan-result")).to_contain_text(
        "已调拨 1 × 不锈钢螺栓 M37（BOLT-037）WH1-A-01-01 → WH1-A-01-02：4 / 1"
    )


def test_a_supplier_gs1_label_with_group_separators_issues_its_count(
    sign_in: Callable[..., Page], live_app: Flask
) -> None:
    """A GS1-128 carton label as a wedge scanner types it: ]C1, GTIN, expiry, lot, the group
    separator (ASCII 29) after the variable-length lot and serial, then the count (AI 30)."""
    with live_app.app_context():
        pen = items.create_item(sku="PEN-GS1", name="蓝色圆珠笔", unit="支", barcode="4006381333931")
        stock.receive_stock(sku=pen.sku, location="WH2-A-01-01", quantity=Decimal(50), user="seed")
    page = sign_in("clerk")
    page.goto("/scan")
    page.keyboard.press("Alt+1")  # issue: the page opens in the clerk's last mode, or none
    _wedge(page, "WH2-A-01-01")
    expect(page.locator("#scan-location")).to_have_text("WH2-A-01-01")
    page.keyboard.type("]C10104006381333931172703311024A-17")
    page.keyboard.insert_text("\x1d")
    page.keyboard.type("21SN-9")
    page.keyboard.insert_text("\x1d")
    _wedge(page, "306")
    result = page.locator("#scan-result")
    expect(result).to_contain_text("已出库 6 × 蓝色圆珠笔（PEN-GS1），库位 WH2-A-01-01：剩余 44")
    expect(result).to_contain_text("批号 24A-17 · 有效期至 2027-03-31 · 序列号 SN-9")
    expect(result).to_have_class("scan-result ok")
    with live_app.app_context():
        assert {row.location: row.quantity for row in catalog.list_stock(sku="PEN-GS1")} == {"WH2-A-01-01": Decimal(44)}
    # A GTIN that is no item's barcode is refused, naming it.
    _wedge(page, "]C10109501101530003")
    expect(result).to_have_class("scan-result bad")
    expect(result).to_contain_text("没有条码为 09501101530003 的物品")
    shot(page, "scan-gs1")
