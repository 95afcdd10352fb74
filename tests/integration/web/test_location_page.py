"""What is in a location, and totals that never add different units together."""

from __future__ import annotations

from typing import Any

from tests.integration.web.conftest import Stocked, text_of


def _mixed_units(factory: Any, stocked: Stocked) -> None:
    cable = factory.item("SKU-CABLE", name="电缆", unit="m")
    factory.stock(cable, stocked.shelf, "12.5")
    rice = factory.item("SKU-RICE", name="大米", unit="kg")
    factory.stock(rice, stocked.other, 40)


def test_location_page_lists_its_items_with_units_and_links(
    client: Any, login_as: Any, factory: Any, stocked: Stocked
) -> None:
    _mixed_units(factory, stocked)
    login_as("manager")
    page = client.get("/locations/WH1-A-01-01")
    html, text = page.get_data(as_text=True), text_of(page)
    assert page.status_code == 200
    assert "WH1-A-01-01" in text and "存放 2 种物品" in text
    table = html.split('id="location-stock"')[1].split("</table>")[0]
    assert table.index("SKU-CABLE") < table.index("SKU-SCREW")
    assert "12.5 m" in text_of_html(table) and "10 pcs" in text_of_html(table) and "SKU-RICE" not in table
    assert 'href="/counts?location=WH1-A-01-01"' in html
    assert 'href="/movements/transfer?from_location=WH1-A-01-01"' in html
    assert 'href="/labels?location=WH1-A-01-01"' in html
    assert 'href="/movements?location=WH1-A-01-01"' in html
    counts = client.get("/counts?location=WH1-A-01-01").get_data(as_text=True)
    assert 'value="WH1-A-01-01"' in counts
    assert client.get("/locations/NOPE-1").status_code == 404


def test_locations_list_links_to_the_location_page_and_counts_items(
    client: Any, login_as: Any, factory: Any, stocked: Stocked
) -> None:
    _mixed_units(factory, stocked)
    login_as("viewer")
    html = client.get("/locations").get_data(as_text=True)
    row = html.split('id="loc-WH1-A-01-01"')[1].split("</tr>")[0]
    assert 'href="/locations/WH1-A-01-01"' in row and ">2<" in row and "22.5" not in row


def test_dashboard_counts_items_and_locations_per_warehouse_not_units(
    client: Any, login_as: Any, factory: Any, stocked: Stocked
) -> None:
    _mixed_units(factory, stocked)
    login_as("viewer")
    text = text_of(client.get("/"))
    assert "WH1 一号仓库 3 种物品 分布在 2 个库位" in text
    assert "62.5" not in text  # 10 pcs + 12.5 m + 40 kg is no quantity


def test_empty_location_page_suggests_receiving(client: Any, login_as: Any, stocked: Stocked) -> None:
    login_as("clerk")
    page = client.get("/locations/WH1-A-01-02")
    assert "此库位没有库存。 入库到此库位" in text_of(page)
    assert 'href="/movements/receive?location=WH1-A-01-02"' in page.get_data(as_text=True)


def text_of_html(html: str) -> str:
    import re

    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
