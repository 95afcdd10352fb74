"""Importing a CSV in Chromium (a bad row stops everything, the fixed file imports it all) and a
blind cycle count from opening to approval."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.browser.conftest import shot

HEADER = "编码,名称,单位,分类,库位,数量\n"
ROWS = (
    "IMP-001,导入扳手,把,工具,WH1-A-01-01,5\nIMP-002,导入钳子,把,工具,WH1-A-01-02,{qty}\nIMP-003,导入卷尺,个,工具,,\n"
)


def _upload(page: Page, content: str) -> None:
    page.goto("/imports")
    page.get_by_label("CSV 或 Excel 文件").set_input_files(
        files=[{"name": "items.csv", "mimeType": "text/csv", "buffer": content.encode("gbk")}]
    )
    page.get_by_role("button", name="检查文件").click()


def test_csv_import_with_a_bad_row_imports_nothing_then_the_fixed_file_imports_all(
    sign_in: Callable[..., Page],
) -> None:
    page = sign_in("manager")
    _upload(page, HEADER + ROWS.format(qty="-2"))
    expect(page.get_by_role("alert")).to_contain_text("1 行有错误：不会导入任何内容")
    errors = page.locator("#import-errors tbody tr")
    expect(errors).to_have_count(1)
    expect(errors.first).to_contain_text("3")
    expect(errors.first).to_contain_text("数量")
    expect(errors.first).to_contain_text("零或更大的数字，最多 3 位小数")
    expect(errors.first).to_contain_text("-2")
    expect(page.get_by_role("button", name="全部导入")).to_have_count(0)
    shot(page, "import-errors")
    page.goto("/items?q=IMP-")
    expect(page.get_by_text("导入扳手")).to_have_count(0)

    _upload(page, HEADER + ROWS.format(qty="2"))
    expect(page.locator(".card").first).to_contain_text("3")
    # The same cards as the dashboard's: each label above its figure.
    for card in page.locator(".cards .card").all():
        label, figure = card.locator(".label").bounding_box(), card.locator(".figure").bounding_box()
        assert label is not None and figure is not None and label["y"] + label["height"] <= figure["y"] + 1
    shot(page, "import-preview")
    page.get_by_role("button", name="全部导入").click()
    expect(page.locator(".flash-success")).to_contain_text("已导入：3 个新物品，0 个物品已更新，2 条期初库存")
    shot(page, "import")
    page.goto("/items/IMP-002")
    expect(page.locator("#stock")).to_contain_text("WH1-A-01-02")


def test_blind_count_through_approval(sign_in: Callable[..., Page]) -> None:
    clerk = sign_in("clerk")
    clerk.goto("/scan")
    clerk.keyboard.type("WH1-A-01-02")
    clerk.keyboard.press("Enter")
    clerk.keyboard.press("Alt+2")
    for _ in range(5):
        clerk.keyboard.type("BOLT-036")
        clerk.keyboard.press("Enter")
    expect(clerk.locator("#scan-result")).to_contain_text("现有 5")

    manager = sign_in("manager")
    manager.goto("/counts")
    manager.get_by_label("库位", exact=True).fill("WH1-A-01-02")
    manager.get_by_label("仅盘点这些 SKU").fill("BOLT-036")
    manager.get_by_label("差异超过此数时复盘").fill("0")
    manager.get_by_role("button", name="发起盘点").click()
    expect(manager.locator(".flash-success")).to_contain_text("已发起")
    count_url = manager.url

    clerk.goto(count_url)
    table = clerk.locator("#count-lines")
    expect(table).to_contain_text("BOLT-036")
    expect(table).not_to_contain_text("5")  # blind: no system quantity on the counter's page
    clerk.get_by_label("实盘数 BOLT-036").fill("4")
    shot(clerk, "count")
    clerk.get_by_role("button", name="保存盘点数").click()
    expect(clerk.locator(".flash-success")).to_contain_text("已保存 1 个盘点数")

    manager.goto(count_url + "/review")
    expect(manager.locator("#review-lines")).to_contain_text("−1")
    manager.get_by_role("button", name="要求复盘").click()
    expect(manager.locator(".flash-success")).to_contain_text("1 行已要求复盘")

    clerk.goto(count_url)
    expect(clerk.locator("#count-lines")).to_contain_text("复盘")
    # The second count by scanner: code + Enter moves to the quantity, then quantity + Enter.
    clerk.get_by_label("扫描编码").click()
    clerk.keyboard.type("BOLT-036")
    clerk.keyboard.press("Enter")
    expect(clerk.get_by_label("数量", exact=True)).to_be_focused()
    clerk.keyboard.type("4")
    clerk.keyboard.press("Enter")
    expect(clerk.locator(".flash-success")).to_contain_text("已保存 1 个盘点数")

    manager.goto(count_url + "/review")
    manager.get_by_role("button", name="批准并过账").click()
    expect(manager.locator(".flash-success")).to_contain_text("盘点已批准：已过账 1 条盘点调整")
    shot(manager, "count-review")
    manager.goto("/items/BOLT-036")
    expect(manager.locator("#stock")).to_contain_text("4")
