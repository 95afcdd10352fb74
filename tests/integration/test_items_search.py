"""Items search (issue 4): a term found anywhere in a SKU, name or barcode (whatever its case,
accents or full-width letters), in SKU order across keyset pages, and on MariaDB the plan that
keeps a contains search cheap on a large catalogue: one scan of the covering ix_items_search
index in page order, with no row fetched per test, and no scan at all for a term no item holds."""

from __future__ import annotations

from typing import Any

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import event, func, select, text

from app.models import Item, SearchGram
from app.services import catalog, items
from app.services.items import ItemInput
from app.services.search_keys import fold


def _catalogue() -> None:
    items.create_items(
        [ItemInput(sku=f"FILL-{n:04d}", name=f"平垫片 Flat washer {n:04d}", barcode=f"59{n:04d}") for n in range(300)]
        + [
            ItemInput(sku="ZZ-000123", name="六角螺母 Hex nut"),  # the SKU ends with it
            ItemInput(sku="AB-1000123-X", name="铜芯电缆 Copper cable"),  # the middle of the SKU
            ItemInput(sku="CD-7", name="螺丝刀 Driver 000123 long"),  # the name holds it
            ItemInput(sku="EF-8", name="绝缘胶带 Tape", barcode="6900001231234"),  # the barcode holds it
            ItemInput(sku="GH-9", name="扳手 Wrench 00012 3"),  # almost, but not contiguous
        ]
    )
    items.create_item(sku="AA-000123", name="归档 Archived")
    items.archive_item(sku="AA-000123")


def _all_pages(**filters: Any) -> list[list[str]]:
    pages, after = [], None
    while True:
        page = catalog.list_items(**filters, after=after)
        pages.append([row.sku for row in page.rows])
        if page.next_cursor is None:
            return pages
        after = page.next_cursor


def test_contains_search_finds_the_term_anywhere_in_sku_name_or_barcode_in_sku_order(db: Any) -> None:
    _catalogue()

    assert _all_pages(q="000123", limit=2) == [["AB-1000123-X", "CD-7"], ["EF-8", "ZZ-000123"]]
    assert _all_pages(q="000123", archived=None, limit=3) == [
        ["AA-000123", "AB-1000123-X", "CD-7"],
        ["EF-8", "ZZ-000123"],
    ]
    assert _all_pages(q="zz-0001", limit=50) == [["ZZ-000123"]]  # case does not matter
    assert _all_pages(q="1000123-x") == [["AB-1000123-X"]]
    assert _all_pages(q="no such thing") == [[]]


@pytest.mark.parametrize("backend", [pytest.param("mysql", marks=pytest.mark.mysql)], indirect=True)
def test_mariadb_contains_search_scans_the_covering_index_in_page_order(db: Any) -> None:
    _catalogue()
    db.session.execute(text("ANALYZE TABLE items"))
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        page = catalog.list_items(q="000123", limit=2)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert [row.sku for row in page.rows] == ["AB-1000123-X", "CD-7"]

    statement, parameters = seen[-1]  # the page query, after the probe of the term's pieces
    cursor = db.session.connection().connection.cursor()
    cursor.execute("EXPLAIN " + statement, parameters)
    columns = [c[0] for c in cursor.description]
    plan = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    inner = [row for row in plan if row["table"] == "items" and row["select_type"] == "DERIVED"]
    assert len(inner) == 1, plan
    assert inner[0]["key"] == "ix_items_search", plan
    assert "Using index" in inner[0]["Extra"], plan  # no row is fetched to test the term
    assert "filesort" not in inner[0]["Extra"], plan  # read in page order, stops at the page size


def _statements(db: Any, **filters: Any) -> tuple[list[str], list[list[str]]]:
    """The SQL one list_items call sends, and the SKUs it finds across its pages."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        page = catalog.list_items(**filters)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return seen, [[row.sku for row in page.rows]]


def test_search_ignores_case_accents_and_full_width_letters(db: Any) -> None:
    items.create_item(sku="CAFE-1", name="Café Crème 咖啡机")
    items.create_item(sku="ＦＷ-2", name="全角 Full width")

    assert _all_pages(q="CAFE CREME") == [["CAFE-1"]]
    assert _all_pages(q="café crème") == [["CAFE-1"]]
    assert _all_pages(q="ＣＲＥＭＥ") == [["CAFE-1"]]
    assert _all_pages(q="fw-2") == [["ＦＷ-2"]]
    assert _all_pages(q="咖啡") == [["CAFE-1"]]


def test_a_term_no_item_contains_is_answered_without_scanning_the_catalogue(db: Any) -> None:
    _catalogue()
    items.create_item(sku="SCR-X", name="螺丝钉 Screw")  # initials lsd

    seen, pages = _statements(db, q="zzqq")
    assert pages == [[]]
    assert "instr(" not in seen[-1].lower()  # the page query tests nothing

    seen, pages = _statements(db, q="lsd")  # no search text holds "lsd": only the initials can match
    assert pages == [["CD-7", "SCR-X"]]  # 螺丝刀 and 螺丝钉
    assert "instr(" not in seen[-1].lower() and "name_initials LIKE" in seen[-1]


def test_a_renamed_item_is_found_by_its_new_name_and_barcode(db: Any) -> None:
    items.create_item(sku="REN-1", name="扳手 Wrench")
    items.update_item(sku="REN-1", name="梅花扳手 Torx key", barcode="7712345")

    assert _all_pages(q="torx") == [["REN-1"]]
    assert _all_pages(q="12345") == [["REN-1"]]
    assert _all_pages(q="mhbs") == [["REN-1"]]
    assert _all_pages(q="wrench") == [[]]


def test_upgrade_fills_the_search_text_of_existing_items(db: Any) -> None:
    _catalogue()
    downgrade(revision="5d2f6e1a9b47")  # before items.search_text
    upgrade()
    assert _all_pages(q="000123", limit=50) == [["AB-1000123-X", "CD-7", "EF-8", "ZZ-000123"]]
    assert _all_pages(q="washer 0299") == [["FILL-0299"]]


def _scanned(db: Any, q: str) -> list[str]:
    """What a contains search finds when it scans every search text: the answer to keep."""
    term = fold(q)
    found = select(Item.sku).where(func.instr(Item.search_text, term) > 0, Item.archived == False)  # noqa: E712
    return list(db.session.scalars(found.order_by(Item.sku, Item.id)))


def _sku_catalogue() -> None:
    items.create_items(
        [ItemInput(sku=f"AAA-{n:04d}", name=f"前面的 Before {n}") for n in range(200)]
        + [ItemInput(sku=f"QRT-{n:05d}", name=f"螺母 Nut {n}") for n in range(4180, 4230)]
        + [ItemInput(sku=f"ZZZ-{n:04d}", name=f"后面的 After {n}") for n in range(50)]
        + [ItemInput(sku="U_1-000", name="下划线"), ItemInput(sku="UX1-000", name="不是下划线")]
    )


def test_a_term_found_only_at_sku_starts_finds_what_the_scan_finds(db: Any) -> None:
    _sku_catalogue()
    items.create_item(sku="ＱＲＴ-04219Ｗ", name="全角")  # folds to qrt-04219w: MariaDB's LIKE agrees
    mysql = db.engine.dialect.name == "mysql"

    for q in ("QRT-0421", "qrt-0421", "QRT-04", "u_1-0", "Qrt-042199"):
        seen, pages = _statements(db, q=q, limit=100)
        assert pages == [_scanned(db, q)], q
        assert ("LIKE" in seen[-1]) is mysql, q  # MariaDB reads the SKU range
    assert _all_pages(q="qrt-0421", limit=4)[0] == ["QRT-04210", "QRT-04211", "QRT-04212", "QRT-04213"]
    assert _all_pages(q="u_1-0") == [["U_1-000"]]  # "_" is no wildcard


def test_once_a_name_or_another_sku_holds_the_term_the_search_scans_again(db: Any) -> None:
    _sku_catalogue()
    items.create_item(sku="ABC-1", name="替换件 for qrt-0421x")  # before the range in SKU order
    items.create_items([ItemInput(sku="MID-QRT-04215", name="中间")])

    seen, pages = _statements(db, q="QRT-0421", limit=100)

    assert "LIKE" not in seen[-1]
    assert pages == [_scanned(db, "QRT-0421")]
    assert {"ABC-1", "MID-QRT-04215"} <= set(pages[0])


def test_an_edit_that_puts_the_term_inside_a_text_turns_the_range_off(db: Any) -> None:
    _sku_catalogue()
    items.create_item(sku="KEY-1", name="钥匙")
    items.update_items([("KEY-1", {"name": "钥匙 qrt-0421 用"})])

    assert catalog.list_items(q="qrt-0421", limit=100).rows[0].sku == "KEY-1"
    assert [[row.sku for row in catalog.list_items(q="qrt-0421", limit=100).rows]] == [_scanned(db, "qrt-0421")]


def test_upgrade_marks_the_pieces_found_only_at_sku_starts(db: Any) -> None:
    _sku_catalogue()
    items.create_item(sku="ABC-2", name="说明 mentions aaa-01")
    downgrade(revision="f3b9e1d7c482")  # before search_grams.inside
    upgrade()
    inside = dict(db.session.execute(select(SearchGram.gram, SearchGram.inside)).tuples().all())

    assert (inside["qrt"], inside["rt-"], inside["aaa"]) == (False, True, True)
    seen, pages = _statements(db, q="QRT-0421", limit=100)
    assert pages == [_scanned(db, "QRT-0421")]
    assert ("LIKE" in seen[-1]) is (db.engine.dialect.name == "mysql")
