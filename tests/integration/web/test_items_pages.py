"""Item pages: search by SKU, name, barcode and pinyin; filters; sorting; keyset pages; create,
edit, archive; categories; and a constant number of SQL statements per page."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from flask import Flask
from sqlalchemy import event

from app.services import counts, items, stock
from app.services.items import ItemInput
from tests.integration.web.conftest import Stocked, text_of


def _skus(response: Any) -> list[str]:
    html = response.get_data(as_text=True)
    table = html.split('id="items"')[1].split("</table>")[0]
    return [part.split('"')[0] for part in table.split('href="/items/')[1:] if "#" not in part.split('"')[0]]


def _catalogue(factory: Any, stocked: Stocked) -> None:
    factory.item("SKU-NUT", name="六角螺母", barcode="6901234567892", category="紧固件")
    factory.item("SKU-TAPE", name="封箱胶带")
    factory.item("SKU-LSJ", name="螺丝刀")


def test_pinyin_initials_and_full_pinyin_find_chinese_names(
    client: Any, login_as: Any, factory: Any, stocked: Stocked
) -> None:
    _catalogue(factory, stocked)
    login_as("viewer")
    assert _skus(client.get("/items?q=lsd")) == ["SKU-LSJ", "SKU-SCREW"]  # 螺丝刀, 螺丝钉
    assert _skus(client.get("/items?q=luosi")) == ["SKU-LSJ", "SKU-SCREW"]
    assert _skus(client.get("/items?q=luosiding")) == ["SKU-SCREW"]
    assert _skus(client.get("/items?q=LSJ")) == ["SKU-LSJ"]  # the SKU contains it
    assert _skus(client.get("/items?q=fxjd")) == ["SKU-TAPE"]


def test_search_by_name_sku_and_barcode(client: Any, login_as: Any, factory: Any, stocked: Stocked) -> None:
    _catalogue(factory, stocked)
    login_as("viewer")
    assert _skus(client.get("/items?q=螺母")) == ["SKU-NUT"]
    assert _skus(client.get("/items?q=tape")) == ["SKU-TAPE"]
    assert _skus(client.get("/items?q=4567892")) == ["SKU-NUT"]
    assert "没有符合条件的物品" in text_of(client.get("/items?q=zzzz"))


def test_filters_by_low_stock_category_warehouse_and_archived(
    app: Flask, client: Any, login_as: Any, factory: Any, stocked: Stocked
) -> None:
    _catalogue(factory, stocked)
    low = factory.item("SKU-LOW", name="平垫片", reorder_point="20")
    factory.stock(low, stocked.other, 3)
    with app.app_context():
        items.archive_item(sku="SKU-TAPE")
        category_id = next(c.id for c in items.list_categories() if c.name == "紧固件")
    login_as("viewer")
    assert _skus(client.get("/items?low=1")) == ["SKU-LOW"]
    assert _skus(client.get(f"/items?category={category_id}")) == ["SKU-NUT"]
    assert _skus(client.get("/items?warehouse=WH1")) == ["SKU-LOW", "SKU-SCREW"]
    assert _skus(client.get("/items?archived=1")) == ["SKU-TAPE"]
    assert "SKU-TAPE" not in _skus(client.get("/items"))
    assert len(_skus(client.get("/items?archived=all"))) == 5


def test_sorting_and_keyset_pages_cover_every_item_once(app: Flask, client: Any, login_as: Any) -> None:
    with app.app_context():
        items.create_items([ItemInput(sku=f"P-{n:03d}", name=f"物品{n:03d}") for n in range(120)])
    login_as("viewer")
    seen: list[str] = []
    url = "/items?sort=name&dir=desc"
    while url:
        response = client.get(url)
        seen += _skus(response)
        html = response.get_data(as_text=True)
        url = (
            html.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
            if 'rel="next"' in html
            else ""
        )
    assert seen == [f"P-{n:03d}" for n in reversed(range(120))]
    assert client.get("/items?after=not-a-cursor").status_code == 400


def test_the_result_count_is_exact_up_to_its_cap_and_never_reads_every_search_match(
    app: Flask, client: Any, login_as: Any, monkeypatch: Any
) -> None:
    with app.app_context():
        items.create_items([ItemInput(sku=f"C-{n:03d}", name=f"物品{n:03d}") for n in range(70)])
    login_as("viewer")

    def count(url: str) -> str:
        found = re.search(r'class="result-count">\s*(.*?)\s*</p>', client.get(url).get_data(as_text=True), re.S)
        assert found is not None, url
        return found.group(1)

    assert count("/items") == "1–50 / 共 70"
    monkeypatch.setattr("app.services.catalog.COUNT_CAP", 60)
    assert count("/items") == "1–50 / 超过 60"
    statements: list[str] = []
    with app.app_context():
        from app.extensions import db

        engine = db.engine
    listen = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listen)
    try:
        assert count("/items?q=C-0") == "1–50，还有更多"
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    assert not [s for s in statements if "count(*)" in s.lower() and "from (select items.id" in s.lower()]
    # The last page knows its total without counting.
    first = client.get("/items?q=C-0").get_data(as_text=True)
    next_url = first.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    assert count(next_url) == "51–70 / 共 70"


def test_item_page_links_each_balance_to_its_ledger_lines(client: Any, login_as: Any, stocked: Stocked) -> None:
    login_as("viewer")
    page = client.get("/items/SKU-SCREW")
    html = page.get_data(as_text=True)
    assert "/movements?sku=SKU-SCREW&amp;location=WH1-A-01-01" in html
    assert "<svg" in html  # on hand over time
    assert "WH1-A-01-01: 10" in text_of(page)
    assert client.get("/items/NOPE").status_code == 404


def test_manager_creates_edits_and_archives_an_item(app: Flask, client: Any, login_as: Any, stocked: Stocked) -> None:
    login_as("manager")
    form = {
        "sku": "SKU-NEW",
        "name": "扎带",
        "unit": "pcs",
        "category": "new",
        "new_category": "包装",
        "reorder_point": "5",
        "reorder_quantity": "50",
    }
    created = client.post("/items/new", data=form)
    assert created.status_code == 303 and created.headers["Location"] == "/items/SKU-NEW"
    assert _skus(client.get("/items?q=zd")) == ["SKU-NEW"]
    edited = client.post("/items/SKU-NEW/edit", data={**form, "name": "尼龙扎带", "reorder_point": "8"})
    assert edited.status_code == 303
    assert _skus(client.get("/items?q=nlzd")) == ["SKU-NEW"]  # pinyin follows the new name
    with app.app_context():
        item = items.get_item("SKU-NEW")
        assert (item.name, item.reorder_point, item.category.name) == ("尼龙扎带", Decimal(8), "包装")
    assert client.post("/items/SKU-NEW/archive").status_code == 303
    assert "已归档" in text_of(client.get("/items/SKU-NEW"))
    refused = client.post(
        "/movements/receive",
        data={"sku": "SKU-NEW", "location": "WH1-A-01-01", "quantity": "1", "idempotency_key": "q" * 32},
    )
    assert "物品 SKU-NEW 已归档，不能出入库" in text_of(refused)


def test_item_form_errors(client: Any, login_as: Any, stocked: Stocked) -> None:
    login_as("manager")
    blank = client.post("/items/new", data={"sku": "", "name": "", "reorder_point": "-1"})
    assert blank.status_code == 422
    assert text_of(blank).count("此项必填") >= 2
    assert "请输入零或更大的数字" in text_of(blank)
    spaced = client.post("/items/new", data={"sku": "A B", "name": "x", "unit": "pcs"})
    assert "不能包含空格" in text_of(spaced)
    duplicate = client.post("/items/new", data={"sku": "SKU-SCREW", "name": "x", "unit": "pcs"})
    assert duplicate.status_code == 409
    assert 'id="sku-err"' in duplicate.get_data(as_text=True)
    assert "该值已被使用" in text_of(duplicate)


def test_categories_are_listed_and_created_by_managers(client: Any, login_as: Any) -> None:
    login_as("manager")
    assert client.post("/items/categories", data={"name": "劳保", "description": "手套"}).status_code == 303
    assert "劳保" in text_of(client.get("/items/categories"))
    assert client.post("/items/categories", data={"name": "劳保"}).status_code == 409
    assert client.post("/items/categories", data={"name": ""}).status_code == 422


def test_pages_issue_a_constant_number_of_statements(
    app: Flask, client: Any, login_as: Any, factory: Any, stocked: Stocked
) -> None:
    login_as("viewer")
    with app.app_context():
        from app.extensions import db

        engine = db.engine
    counted: list[str] = []

    def count(*_args: Any) -> None:
        counted.append("x")

    def statements(url: str) -> int:
        counted.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            assert client.get(url).status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(counted)

    small = {u: statements(u) for u in ("/items", "/items/SKU-SCREW", "/movements")}
    with app.app_context():
        items.create_items([ItemInput(sku=f"B-{n:03d}", name=f"螺栓{n}") for n in range(80)])
    for n in range(8):
        factory.stock(stocked.item, stocked.other, n + 1)
    large = {u: statements(u) for u in ("/items", "/items/SKU-SCREW", "/movements")}
    # One page needs no count (its total is what it shows); more pages, one capped count.
    assert large == {**small, "/items": small["/items"] + 1}
    assert max(large.values()) <= 8


def _location_cells(client: Any) -> dict[str, str]:
    """Each row's SKU and the text of its location column (the fourth)."""
    table = client.get("/items").get_data(as_text=True).split('id="items"')[1].split("</tbody>")[0]
    cells = {}
    for row in table.split("<tr")[2:]:
        sku = row.split('href="/items/')[1].split('"')[0]
        cells[sku] = re.sub(r"<[^>]+>|\s+", " ", row.split("<td")[4].split(">", 1)[1].split("</td>")[0]).strip()
    return cells


def test_list_names_an_items_one_location_or_how_many(
    app: Flask, client: Any, login_as: Any, factory: Any, stocked: Stocked
) -> None:
    two = factory.item("SKU-TWO", name="两处物品")
    factory.stock(two, stocked.shelf, 3)
    factory.stock(two, stocked.other, 4)
    emptied = factory.item("SKU-GONE", name="已出完")
    factory.stock(emptied, stocked.other, 2)
    with app.app_context():
        stock.issue_stock(sku="SKU-GONE", location=stocked.other.code, quantity=2, user="factory")
    login_as("viewer")
    assert _location_cells(client) == {"SKU-GONE": "", "SKU-SCREW": "WH1-A-01-01", "SKU-TWO": "2 个库位"}
    client.post("/settings/language", data={"locale": "en", "next": "/items"})
    assert _location_cells(client)["SKU-TWO"] == "2 locations"


def test_list_names_no_place_of_an_item_a_counter_is_counting(
    app: Flask, client: Any, login_as: Any, stocked: Stocked
) -> None:
    with app.app_context():
        counts.open_count(user="boss", location=stocked.shelf.code)
    login_as("clerk")
    assert _location_cells(client)["SKU-SCREW"] == ""
    login_as("manager")
    assert _location_cells(client)["SKU-SCREW"] == "WH1-A-01-01"
