"""Label sheets in Chromium: Chinese names rendered, QR and Code 128 drawn at label size."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.conftest import PHONE, shot


def test_a4_sheet_of_item_labels(sign_in: Callable[..., Page]) -> None:
    page = sign_in("viewer")
    page.goto("/labels")
    page.get_by_label("物品（SKU，每行一个）").fill("SCREW-M4\nNUT-M4\nTAPE-48")
    page.get_by_label("每个物品标签的份数").fill("2")
    with page.context.expect_page() as opened:
        page.get_by_role("button", name="打印标签").click()
    sheet = opened.value
    labels = sheet.locator(".label-item")
    expect(labels).to_have_count(6)
    expect(labels.first).to_contain_text("螺丝钉 M4")
    box = labels.first.bounding_box()
    assert box is not None and abs(box["width"] - 70 * 96 / 25.4) < 2  # 70 mm wide
    qr = labels.first.locator("svg.qr").bounding_box()
    assert qr is not None and qr["width"] > 60  # 20 mm
    expect(labels.first.locator("svg.code128")).to_be_visible()
    shot(sheet, "labels")


def test_the_same_choice_downloads_as_zpl_on_a_phone(sign_in: Callable[..., Page]) -> None:
    page = sign_in("viewer", viewport=PHONE, accept_downloads=True)
    page.goto("/labels")
    page.get_by_label("物品（SKU，每行一个）").fill("SCREW-M4\nNUT-M4")
    page.get_by_label("每个物品标签的份数").fill("5")
    shot(page, "labels-zpl-360")
    with page.expect_download() as download:
        page.get_by_role("button", name="下载 ZPL（斑马标签打印机）").click()
    assert download.value.suggested_filename == "labels-items.zpl"
    zpl = Path(download.value.path()).read_text(encoding="utf-8")
    assert zpl.count("^XA") == 2 and zpl.count("^PQ5") == 2
    assert "螺丝钉 M4" in zpl and "六角螺母 M4" in zpl
    expect(page).to_have_url(re.compile(r"/labels$"))  # the form stays where it was
