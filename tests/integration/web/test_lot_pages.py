"""Where lots and serials are (issue 17): an item's stock per lot with its expiry marked in words,
a lot's page and recall trace (CSV), a serial's history, the lots expiring soon (CSV), roles and
hostile query strings, on SQLite and MariaDB."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Lot
from app.models.types import utcnow
from app.services import catalog, codes, counts, gs1, labels, stock
from tests.integration.web.conftest import text_of

TODAY = utcnow().date()


def days(n: int) -> Any:
    return TODAY + timedelta(days=n)


@pytest.fixture
def lots(app: Any, factory: Any) -> dict[str, Any]:
    """MILK-1 (warn 7 days): lot OLD expired yesterday (4 at A), lot SOON in 3 days (5 at A, 2 at
    B), lot LATE in 60 days (9 at A); 3 of SOON issued to order SO-77. PHONE-1 with serials."""
    warehouse = factory.warehouse("WH1", name="一号仓库")
    a = factory.location("WH1-A-01", warehouse=warehouse)
    b = factory.location("WH1-B-01", warehouse=warehouse)
    milk = factory.item(
        "MILK-1", name="牛奶", tracking="lot", requires_expiry=True, expiry_warning_days=7, barcode="4006381333931"
    )
    phone = factory.item("PHONE-1", name="手机", tracking="serial")
    plain = factory.item("SKU-PLAIN", name="螺丝钉")
    with app.app_context():
        for code, expiry, where, qty in [
            ("OLD", days(-1), a, 4),
            ("SOON", days(3), a, 8),
            ("SOON", days(3), b, 2),
            ("LATE", days(60), a, 9),
        ]:
            stock.receive_stock(
                sku="MILK-1", location=where.code, quantity=qty, lot=code, expiry=expiry, user="rx", reference="PO-1"
            )
        stock.issue_stock(sku="MILK-1", location=a.code, quantity=3, lot="SOON", user="px", reference="SO-77")
        stock.receive_stock(sku="PHONE-1", location=a.code, quantity=3, serials=["SN-1", "SN-2", "SN-3"], user="rx")
        stock.issue_stock(sku="PHONE-1", location=a.code, quantity=1, serials=["SN-2"], user="px", reference="SO-78")
        stock.receive_stock(sku="SKU-PLAIN", location=a.code, quantity=5, user="rx")
        ids = dict(db.session.execute(select(Lot.code, Lot.id)).tuples().all())
    return {"ids": ids, "milk": milk, "phone": phone, "plain": plain}


def rows_of(response: Any) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))


def test_item_page_shows_stock_per_lot_with_expiry_in_words(client: Any, login_as: Any, lots: Any) -> None:
    login_as("viewer")
    page = client.get("/items/MILK-1")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    # Stock by location: one row a place, its lots summed (4 + 5 + 9 at A, 2 at B).
    places = html.split('id="stock"')[1].split("</table>")[0]
    assert places.count("<tr>") == 3 and ">18<" in places and "2 个库位" in text_of(page)
    table = html.split('id="lot-stock"')[1].split("</table>")[0]
    # First to expire first: OLD, SOON (two places), LATE.
    assert table.index(">OLD<") < table.index(">SOON<") < table.index(">LATE<")
    old_row = table.split(">OLD<")[0].rsplit("<tr", 1)[1]
    assert 'class="lot-expired"' in old_row
    text = text_of(page)
    assert "已过期" in text and "3 天后到期" in text
    late_row = table.split(">LATE<")[1].split("</tr>")[0]
    assert "badge-" not in late_row
    assert f'href="/lots/{lots["ids"]["SOON"]}"' in table
    # The ledger rows name their lot, linked to the lot page.
    ledger = html.split('id="ledger"')[1]
    assert f'href="/lots/{lots["ids"]["SOON"]}"' in ledger and "批次 SOON" in text_of_html(ledger)


def text_of_html(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_untracked_item_page_has_no_lot_or_serial_section(client: Any, login_as: Any, lots: Any) -> None:
    login_as("viewer")
    html = client.get("/items/SKU-PLAIN").get_data(as_text=True)
    assert 'id="lots"' not in html and 'id="serials"' not in html and "/lots/" not in html


def test_item_page_lists_serials_in_stock_per_location_paged(client: Any, login_as: Any, lots: Any, app: Any) -> None:
    login_as("viewer")
    html = client.get("/items/PHONE-1").get_data(as_text=True)
    places = html.split('id="serial-places"')[1].split("</ul>")[0]
    assert "WH1-A-01" in places and "2 个序列号" in text_of_html(places)
    listed = html.split('id="serial-list"')[1].split("</table>")[0]
    assert "SN-1" in listed and "SN-3" in listed and "SN-2" not in listed
    assert 'href="/items/PHONE-1/serials/SN-1"' in listed
    # The ledger names the serials each line moved, linked to their pages.
    ledger = html.split('id="ledger"')[1]
    assert ledger.count('href="/items/PHONE-1/serials/SN-2"') == 2  # received, then issued
    assert client.get("/items/PHONE-1?serials_after=garbage").status_code == 400


def test_serials_page_past_the_first_hundred(client: Any, login_as: Any, factory: Any, app: Any) -> None:
    where = factory.location("WH9-A-01", warehouse=factory.warehouse("WH9"))
    factory.item("PHONE-9", tracking="serial")
    with app.app_context():
        stock.receive_stock(
            sku="PHONE-9", location=where.code, quantity=101, serials=[f"S{n:03d}" for n in range(101)], user="rx"
        )
    login_as("viewer")
    html = client.get("/items/PHONE-9").get_data(as_text=True)
    assert "S099" in html and "S100" not in html and "101 个序列号" in text_of_html(html)
    next_url = html.split('class="pager"')[1].split('href="')[1].split('"')[0].replace("&amp;", "&")
    second = client.get(next_url).get_data(as_text=True)
    assert "S100" in second.split('id="serial-list"')[1] and "S099" not in second.split('id="serial-list"')[1]


def test_lot_page_traces_where_the_lot_came_from_and_went(client: Any, login_as: Any, lots: Any) -> None:
    login_as("viewer")
    soon = lots["ids"]["SOON"]
    page = client.get(f"/lots/{soon}")
    html, text = page.get_data(as_text=True), text_of(page)
    assert page.status_code == 200
    assert "SOON" in text and days(3).isoformat() in text and "3 天后到期" in text
    stock_table = html.split('id="lot-stock"')[1].split("</table>")[0]
    assert "WH1-A-01" in stock_table and "WH1-B-01" in stock_table
    trace = html.split('id="trace"')[1]
    assert trace.index("PO-1") < trace.index("SO-77") and "OLD" not in trace and "LATE" not in trace
    by_code = client.get("/lots/by-code/MILK-1/SOON")
    assert by_code.status_code == 303 and by_code.headers["Location"].endswith(f"/lots/{soon}")
    assert client.get("/lots/by-code/MILK-1/NOPE").status_code == 404
    assert client.get("/lots/999999").status_code == 404
    assert client.get("/lots/abc").status_code == 404


def test_lot_trace_csv_lists_every_line_of_the_lot(client: Any, login_as: Any, lots: Any) -> None:
    login_as("viewer")
    rows = rows_of(client.get(f"/lots/{lots['ids']['SOON']}/trace.csv"))
    assert rows[0][0] == "#"
    body = rows[1:]
    assert [(r[6], r[7], r[8], r[10]) for r in body] == [
        ("", "WH1-A-01", "8", "PO-1"),
        ("", "WH1-B-01", "2", "PO-1"),
        ("WH1-A-01", "", "3", "SO-77"),
    ]
    assert {r[4] for r in body} == {"SOON"} and {r[5] for r in body} == {days(3).isoformat()}


def test_serial_page_tells_where_it_is_and_its_history(client: Any, login_as: Any, lots: Any) -> None:
    login_as("viewer")
    issued = client.get("/items/PHONE-1/serials/SN-2")
    text = text_of(issued)
    assert issued.status_code == 200 and "已出库" in text and "SO-78" in text
    history = issued.get_data(as_text=True).split('id="history"')[1]
    assert history.count("<tr id=") == 2
    here = text_of(client.get("/items/PHONE-1/serials/SN-1"))
    assert "WH1-A-01" in here and "在库" in here and "SO-78" not in here
    # The ledger line's own page names its lot or serials too.
    line = history.split('href="/movements/')[1].split('"')[0]
    assert 'href="/items/PHONE-1/serials/SN-2"' in client.get(f"/movements/{line}").get_data(as_text=True)
    assert client.get("/items/PHONE-1/serials/NOPE").status_code == 404
    assert client.get("/items/NOPE/serials/SN-1").status_code == 404


def test_expiring_page_sorted_by_expiry_with_filters(client: Any, login_as: Any, lots: Any) -> None:
    login_as("clerk")
    page = client.get("/lots/expiring?days=30")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    table = html.split('id="expiring-lots"')[1].split("</table>")[0]
    assert table.index(">OLD<") < table.index(">SOON<") and ">LATE<" not in table
    assert "已过期" in text_of_html(table)
    without = client.get("/lots/expiring?days=30&expired=0").get_data(as_text=True).split('id="expiring-lots"')[1]
    assert ">OLD<" not in without and ">SOON<" in without
    wide = client.get("/lots/expiring?days=90&warehouse=WH1&sku=MILK-1").get_data(as_text=True)
    assert ">LATE<" in wide
    other = client.get("/lots/expiring?days=90&warehouse=NOPE").get_data(as_text=True)
    assert ">LATE<" not in other
    assert 'href="/lots/expiring"' in html  # in the navigation


def _expiring_rows(html: str) -> list[tuple[str, str, str]]:
    """(SKU, lot, location) of each row of the expiring table, top to bottom."""
    table = html.split('id="expiring-lots"')[1].split("</table>")[0]
    return re.findall(r'href="/items/([^"]+)".*?href="/lots/\d+">([^<]+)</a>.*?href="/locations/([^"]+)"', table, re.S)


def _next_page(html: str) -> str | None:
    found = re.search(r'<a href="([^"]+)" rel="next">', html)
    return found[1].replace("&amp;", "&") if found else None


@pytest.mark.parametrize("page_rows", [1, 2, 4])
def test_expiring_pages_keep_the_filters_and_together_list_what_the_csv_lists(
    app: Any, client: Any, login_as: Any, factory: Any, lots: Any, monkeypatch: Any, page_rows: int
) -> None:
    """Lots expiring the same day come by SKU, then lot, then location, and a page may end
    between any two of them: BREAD-1's lot and MILK-1's ALSO expire with SOON, in 3 days."""
    factory.item("BREAD-1", name="面包", tracking="lot")
    with app.app_context():
        for sku, code, place in [("BREAD-1", "B1", "WH1-A-01"), ("MILK-1", "ALSO", "WH1-B-01")]:
            stock.receive_stock(sku=sku, location=place, quantity=1, lot=code, expiry=days(3), user="rx")
    monkeypatch.setattr("app.web.lots.views.PAGE_ROWS", page_rows)
    login_as("clerk")
    url: str | None = "/lots/expiring?days=90&warehouse=WH1&expired=1"
    seen, pages = [], 0
    while url:
        assert "days=90" in url and "warehouse=WH1" in url and "expired=1" in url
        html = client.get(url).get_data(as_text=True)
        rows = _expiring_rows(html)
        assert len(rows) == min(page_rows, 6 - len(seen))  # full pages, the rest on the last
        pager = html.split('<nav class="pager"')[1].split("</nav>")[0]
        assert ('rel="next"' in pager) == (len(seen) + len(rows) < 6)
        first = '<a href="/lots/expiring?days=90&amp;warehouse=WH1&amp;expired=1">第一页</a>'
        assert (first in pager) == (pages > 0)  # "First page", with the filters, from the second page on
        assert 'href="/lots/expiring.csv?days=90&amp;warehouse=WH1&amp;expired=1"' in html  # never a part
        seen += rows
        pages += 1
        url = _next_page(html)
    assert seen == [
        ("MILK-1", "OLD", "WH1-A-01"),
        ("BREAD-1", "B1", "WH1-A-01"),
        ("MILK-1", "ALSO", "WH1-B-01"),
        ("MILK-1", "SOON", "WH1-A-01"),
        ("MILK-1", "SOON", "WH1-B-01"),
        ("MILK-1", "LATE", "WH1-A-01"),
    ]
    assert pages == -(-6 // page_rows)
    csv_rows = rows_of(client.get("/lots/expiring.csv?days=90&warehouse=WH1&expired=1"))[1:]
    assert [(r[0], r[2], r[5]) for r in csv_rows] == seen


def test_expiring_csv(client: Any, login_as: Any, lots: Any) -> None:
    login_as("manager")
    rows = rows_of(client.get("/lots/expiring.csv?days=30"))
    assert [(r[0], r[2], r[3], r[5], r[7]) for r in rows[1:]] == [
        ("MILK-1", "OLD", days(-1).isoformat(), "WH1-A-01", "4"),
        ("MILK-1", "SOON", days(3).isoformat(), "WH1-A-01", "5"),
        ("MILK-1", "SOON", days(3).isoformat(), "WH1-B-01", "2"),
    ]
    assert rows[1][4] == "已过期"


@pytest.mark.parametrize(
    "query",
    [
        "days=-1",
        "days=abc",
        "days=99999999999",
        "days=%00",
        "category=x",
        "expired=maybe",
        "sku=" + "x" * 200,
        "days=١٢",
    ],
)
def test_expiring_page_refuses_hostile_queries(client: Any, login_as: Any, lots: Any, query: str) -> None:
    login_as("clerk")
    assert client.get(f"/lots/expiring?{query}").status_code == 400
    assert client.get(f"/lots/expiring.csv?{query}").status_code == 400


@pytest.mark.parametrize(
    "after",
    [
        "garbage!!",
        "%00",
        "x" * 2000,
        catalog.encode_cursor("x"),
        catalog.encode_cursor(1, 2, 3, 4),
        catalog.encode_cursor("2026-02-30", "MILK-1", "SOON", "WH1-A-01"),
        catalog.encode_cursor("not a date", "MILK-1", "SOON", "WH1-A-01"),
        catalog.encode_cursor("2026-01-01", "MILK-1", "SOON"),
        catalog.encode_cursor("2026-01-01", "MILK-1", None, "WH1-A-01"),
    ],
)
def test_expiring_page_refuses_a_cursor_it_did_not_write(client: Any, login_as: Any, lots: Any, after: str) -> None:
    login_as("clerk")
    assert client.get(f"/lots/expiring?days=30&after={after}").status_code == 400
    # The export has every row whatever the page: it reads no cursor.
    assert len(rows_of(client.get(f"/lots/expiring.csv?days=30&after={after}"))) == 4


def test_expiring_page_after_a_cursor_with_quotes_and_chinese_lists_what_follows(
    client: Any, login_as: Any, lots: Any
) -> None:
    login_as("clerk")
    after = catalog.encode_cursor(days(3).isoformat(), "MILK-1", "SOON' OR '1'='1", "库位 -- ;")
    html = client.get(f"/lots/expiring?days=90&after={after}").get_data(as_text=True)
    assert _expiring_rows(html) == [
        ("MILK-1", "LATE", "WH1-A-01")
    ]  # SOON sorts before the cursor's code: only LATE follows


def test_roles(client: Any, login_as: Any, lots: Any) -> None:
    assert client.get("/lots/expiring").status_code == 302  # to sign in
    login_as("viewer")
    assert client.get("/lots/expiring").status_code == 403
    assert 'href="/lots/expiring"' not in client.get("/items").get_data(as_text=True)
    assert client.get(f"/lots/{lots['ids']['OLD']}").status_code == 200


def test_lot_and_serial_labels(client: Any, login_as: Any, lots: Any) -> None:
    login_as("viewer")
    lot = lots["ids"]["SOON"]
    sheet = client.get(f"/labels/lots/{lot}")
    assert sheet.status_code == 200 and "LOT SOON" in sheet.get_data(as_text=True)
    zpl = client.get(f"/labels/lots/{lot}.zpl").get_data(as_text=True)
    # GS1 DataMatrix: FNC1, (01) GTIN, (17) expiry, (10) lot; no GS1-128 on 60 x 40 mm, whose bars
    # would be one dot wide.
    assert "^XA" in zpl and f"^FD_1010400638133393117{days(3):%y%m%d}10SOON^FS" in zpl and "^BC" not in zpl
    serial = client.get("/labels/serials/PHONE-1/SN-1.zpl").get_data(as_text=True)
    assert "SN-1" in serial
    assert client.get("/labels/lots/999999").status_code == 404
    assert client.get("/labels/serials/PHONE-1/NOPE.zpl").status_code == 404


def test_a_lot_label_scans_back_into_the_same_fields(app: Any, lots: Any) -> None:
    with app.app_context():
        content = labels.lot_content(lots["ids"]["SOON"])
        serial = labels.serial_content("PHONE-1", "SN-1")
    assert content.gs1 == gs1.GS1Data("04006381333931", lot="SOON", expiry=days(3))
    # What the symbols encode (the QR and Code 128 carry the element string) reads back the same.
    assert gs1.read(content.code) == content.gs1
    assert gs1.read(content.gs1.hri()) == content.gs1
    # PHONE-1 has no GTIN: its serial label carries our own serial code, which a scan resolves.
    assert serial.gs1 is None and serial.code.startswith("SN/") and serial.subtitle == "PHONE-1 · SN SN-1"
    with app.app_context():
        found = codes.resolve_code(serial.code)
    assert (found.code, found.gs1) == ("PHONE-1", gs1.GS1Data(None, serial="SN-1"))


def test_lot_pages_stay_blind_to_a_counter_while_the_place_is_counted(
    app: Any, client: Any, login_as: Any, lots: Any
) -> None:
    """A clerk counting WH1-A-01 reads no quantity of MILK-1 there on the lot page, the expiring
    list or its CSV; WH1-B-01, not counted, stays visible; a manager sees both."""
    with app.app_context():
        count = counts.open_count(user="boss", location="WH1-A-01")
    soon = lots["ids"]["SOON"]

    def read(role: str) -> tuple[str, list[list[str]]]:
        login_as(role)
        lot_page = client.get(f"/lots/{soon}").get_data(as_text=True).split('id="lot-stock"')[1].split("</table>")[0]
        return lot_page, rows_of(client.get("/lots/expiring.csv?days=30"))[1:]

    def row(table: str, code: str) -> str:
        """The text of the on-hand cell of `code`'s row."""
        found = next(r for r in table.split("<tr")[1:] if code in r)
        return " ".join(re.sub(r"<[^>]+>", " ", found.split('class="num">')[1].split("</td>")[0]).split())

    lot_stock, csv_rows = read("clerk")
    a_row, b_row = row(lot_stock, "WH1-A-01"), row(lot_stock, "WH1-B-01")
    assert (a_row, b_row) == ("盘点期间隐藏", "2 pcs")
    assert [(r[2], r[5], r[7]) for r in csv_rows] == [
        ("OLD", "WH1-A-01", ""),
        ("SOON", "WH1-A-01", ""),
        ("SOON", "WH1-B-01", "2"),
    ]
    lot_stock, csv_rows = read("manager")
    assert row(lot_stock, "WH1-A-01") == "5 pcs"
    assert [r[7] for r in csv_rows] == ["4", "5", "2"]
    with app.app_context():
        counts.cancel_count(count_id=count.id, user="boss")
    lot_stock, _rows = read("clerk")
    assert row(lot_stock, "WH1-A-01") == "5 pcs"


HIDDEN_WHILE_COUNTED = "盘点期间隐藏"


def test_lot_and_serial_pages_stay_blind_during_a_count(app: Any, client: Any, login_as: Any, lots: Any) -> None:
    """While WH1-A-01 is counted, a counter reads no quantity there on a lot's page, the item's
    stock per lot, the expiring list and its CSV, nor a serial's place or balances; WH1-B-01,
    not counted, stays visible; a manager sees everything."""
    with app.app_context():
        count = counts.open_count(user="boss", location="WH1-A-01")
    soon = lots["ids"]["SOON"]

    def read() -> dict[str, str]:
        return {
            "lot": client.get(f"/lots/{soon}").get_data(as_text=True),
            "item": client.get("/items/MILK-1").get_data(as_text=True),
            "expiring": client.get("/lots/expiring?days=30").get_data(as_text=True),
            "csv": client.get("/lots/expiring.csv?days=30").get_data(as_text=True),
            "serial": client.get("/items/PHONE-1/serials/SN-1").get_data(as_text=True),
            "phone": client.get("/items/PHONE-1").get_data(as_text=True),
        }

    login_as("clerk")
    blind = read()
    lot_stock = text_of_html(blind["lot"].split('id="lot-stock"')[1].split("</table>")[0])
    assert "5 pcs" not in lot_stock and "2 pcs" in lot_stock  # SOON: 5 at A hidden, 2 at B shown
    assert HIDDEN_WHILE_COUNTED in lot_stock
    trace = blind["lot"].split('id="trace"')[1]
    assert "WH1-A-01: 8" not in text_of_html(trace) and "WH1-B-01: 2" in text_of_html(trace)
    per_lot = text_of_html(blind["item"].split('id="lots"')[1].split("</section>")[0])
    assert "9 pcs" not in per_lot and "4 pcs" not in per_lot
    rows = [r for r in rows_of_text(blind["csv"])[1:] if r[5] == "WH1-A-01"]
    assert rows and all(r[7] == "" for r in rows)
    assert [r[7] for r in rows_of_text(blind["csv"])[1:] if r[5] == "WH1-B-01"] == ["2"]
    expiring = text_of_html(blind["expiring"].split('id="expiring-lots"')[1].split("</table>")[0])
    assert "4 pcs" not in expiring and "5 pcs" not in expiring and "2 pcs" in expiring
    facts = blind["serial"].split('id="serial-facts"')[1].split("</dl>")[0]
    assert "WH1-A-01" not in facts and "在库" not in facts
    assert 'id="serial-list"' not in blind["phone"] and 'id="serial-places"' not in blind["phone"]

    login_as("manager")
    seen = read()
    assert "5 pcs" in text_of_html(seen["lot"].split('id="lot-stock"')[1].split("</table>")[0])
    assert "9 pcs" in text_of_html(seen["item"].split('id="lots"')[1].split("</section>")[0])
    assert "WH1-A-01" in seen["serial"].split('id="serial-facts"')[1].split("</dl>")[0]
    assert 'id="serial-list"' in seen["phone"]
    with app.app_context():
        counts.cancel_count(count_id=count.id, user="boss")
    login_as("clerk")
    assert "WH1-A-01" in client.get("/items/PHONE-1/serials/SN-1").get_data(as_text=True).split('id="serial-facts"')[1]


def rows_of_text(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
