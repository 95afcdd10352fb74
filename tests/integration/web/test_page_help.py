"""Error pages that help, an item page that tells its total, and links that go where they say."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from tests.integration.web.conftest import Stocked, text_of


def test_403_names_the_role_needed_and_the_users_role(client: Any, login_as: Any, stocked: Stocked) -> None:
    login_as("viewer")
    page = client.get("/users")
    assert page.status_code == 403
    assert "此页面或操作需要“管理员”或更高角色；您的角色是“访客”。" in text_of(page)
    assert 'action="/items"' in page.get_data(as_text=True)


def test_404_offers_the_item_search_and_the_main_pages(client: Any, login_as: Any, stocked: Stocked) -> None:
    login_as("clerk")
    page = client.get("/items/NO-SUCH-SKU")
    html = page.get_data(as_text=True)
    assert page.status_code == 404 and "没有 SKU 为 NO-SUCH-SKU 的物品。" in text_of(page)
    assert 'role="search"' in html and 'name="q"' in html
    assert 'href="/locations"' in html and 'href="/scan"' in html


def test_item_page_shows_its_total_where_it_is_and_whether_it_is_low(
    client: Any, login_as: Any, factory: Any, stocked: Stocked
) -> None:
    factory.stock(stocked.item, stocked.other, 2)
    login_as("viewer")
    html = client.get("/items/SKU-SCREW").get_data(as_text=True)
    total = text_of_fragment(html.split('id="item-total"')[1].split("</p>")[0])
    assert "12 pcs 分布在 2 个库位" in total and "低于或等于补货点" not in total
    low = factory.item("SKU-LOW", reorder_point="5")
    factory.stock(low, stocked.shelf, 3)
    html = client.get("/items/SKU-LOW").get_data(as_text=True)
    assert "低于或等于补货点" in html.split('id="item-total"')[1].split("</p>")[0]


def test_todays_movements_figure_links_to_todays_ledger(client: Any, login_as: Any, stocked: Stocked) -> None:
    login_as("viewer")
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    assert f'href="/movements?since={today}"' in client.get("/").get_data(as_text=True)


def text_of_fragment(html: str) -> str:
    import re

    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def test_ledger_signs_quantities_and_keeps_codes_on_one_line(
    client: Any, login_as: Any, factory: Any, stocked: Stocked
) -> None:
    login_as("clerk")
    form = {"sku": "SKU-SCREW", "location": "WH1-A-01-01", "quantity": "3", "idempotency_key": "s" * 32}
    client.post("/movements/issue", data=form)
    html = client.get("/movements?sku=SKU-SCREW").get_data(as_text=True)
    assert '<span class="qty qty-out">−3</span> <span class="unit-slot">pcs</span>' in html
    assert '<span class="qty qty-in">+10</span> <span class="unit-slot">pcs</span>' in html
    assert 'nowrap">WH1-A-01-01</td>' in html and '<main id="main" class="wide">' in html
