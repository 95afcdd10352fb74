"""Any serial or lot code reaches its page through its URL (issue 17): "/", "%", spaces, dots,
"~" and Chinese round-trip through the `code` converter (app/web/codes.py), on the serial page,
its labels (SVG and ZPL), and a lot named by its code; on SQLite and MariaDB."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import unquote

import pytest
from flask import url_for

from app.services import stock
from app.web.codes import CodeConverter

SERIALS = [
    "A/B",
    "a//b",
    "/lead",
    "trail/",
    "100%",
    "%2F",
    "SN 1",
    "序列号/一",
    ".",
    "..",
    "../etc",
    "x.zpl",
    "~2F",
    "~",
    "a?b#c&d=e",
    "back\\slash",
    "+plus+",
]


@pytest.mark.parametrize("value", [*SERIALS, "plain-SN-1", ""])
def test_converter_round_trips(value: str) -> None:
    converter = CodeConverter(None)  # type: ignore[arg-type]
    url = converter.to_url(value)
    assert "/" not in url and url not in (".", "..")
    assert converter.to_python(unquote(url)) == value


@pytest.fixture
def odd(app: Any, factory: Any) -> dict[str, str]:
    shelf = factory.location()
    factory.item("ODD-1", name="奇怪的序列号", tracking="serial")
    factory.item("ODDLOT-1", name="奇怪的批号", tracking="lot")
    with app.app_context():
        stock.receive_stock(sku="ODD-1", location=shelf.code, quantity=len(SERIALS), serials=SERIALS, user="rx")
        lot = stock.receive_stock(sku="ODDLOT-1", location=shelf.code, quantity=2, lot="L/2024 50%", user="rx")
    return {"lot_id": str(lot.lot_id)}


def _url(app: Any, endpoint: str, **values: Any) -> str:
    with app.test_request_context():
        return url_for(endpoint, **values)


@pytest.mark.parametrize("serial", SERIALS)
def test_every_serial_reaches_its_page_and_labels(app: Any, client: Any, login_as: Any, odd: Any, serial: str) -> None:
    login_as("viewer")
    page = client.get(_url(app, "items.serial", sku="ODD-1", serial=serial))
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert html.escape(serial) in body
    # The page's own links to its labels reach them too.
    svg_link = _url(app, "labels.serial_sheet", sku="ODD-1", serial=serial)
    zpl_link = _url(app, "labels.serial_zpl", sku="ODD-1", serial=serial)
    assert html.escape(svg_link) in body and html.escape(zpl_link) in body
    assert client.get(svg_link).status_code == 200
    zpl = client.get(zpl_link)
    assert zpl.status_code == 200 and zpl.mimetype == "text/plain"


def test_an_item_page_links_to_each_serial(app: Any, client: Any, login_as: Any, odd: Any) -> None:
    login_as("viewer")
    body = client.get("/items/ODD-1").get_data(as_text=True)
    linked = [s for s in SERIALS if html.escape(_url(app, "items.serial", sku="ODD-1", serial=s)) in body]
    assert linked == SERIALS


def test_a_lot_code_with_a_slash_reaches_its_lot(app: Any, client: Any, login_as: Any, odd: Any) -> None:
    login_as("viewer")
    found = client.get(_url(app, "lots.by_code", sku="ODDLOT-1", code="L/2024 50%"))
    assert found.status_code == 303 and found.headers["Location"].endswith(f"/lots/{odd['lot_id']}")
    assert client.get(_url(app, "lots.by_code", sku="ODDLOT-1", code="L/2024")).status_code == 404


def test_an_unknown_serial_is_a_404_not_an_error(app: Any, client: Any, login_as: Any, odd: Any) -> None:
    login_as("viewer")
    for serial in ("nope/nope", "~zz", "~2"):
        assert client.get(_url(app, "items.serial", sku="ODD-1", serial=serial)).status_code == 404
    assert client.get("/items/ODD-1/serials/~zz~").status_code == 404
