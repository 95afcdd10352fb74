"""Every page an admin can open (issue 15, "Done when"): each parameter-free GET page in the
app's URL map, plus one of each page that takes a parameter (an item, a location, a movement, a
count, a token, a user, a notification target), photographed at 360 × 740 and 1366 × 768 into
test-artifacts/screenshots/pages/, with no critical or serious axe-core finding, no server error
and, on the phone, nothing wider than the screen."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from playwright.sync_api import Page

from app.services import counts, items, locations, notifications, reservations, stock, users
from tests.browser.conftest import DESKTOP, PHONE, axe_findings, shot

# Not pages: machine endpoints, files to download, the vendored Swagger UI (not the app's own
# markup), and the sign-in page (which a signed-in admin is sent away from).
NOT_PAGES = ("/api/", "/static/", "/metrics", "/healthz", "/readyz", "/login")
PLACE = "WH2-B-09-09"


@pytest.fixture(scope="module")
def parameter_pages(live_app: Flask) -> list[str]:
    """One page of each kind that takes a parameter, on records of its own (a count of its own
    location, so no other test's balances are hidden from a counter)."""
    with live_app.app_context():
        locations.create_location(warehouse="WH2", code=PLACE)
        items.create_item(sku="EVERY-1", name="页面样品", category="页面")
        movement = stock.receive_stock(sku="EVERY-1", location=PLACE, quantity=7, user="seed")
        count = counts.open_count(user="manager", location=PLACE)
        token, _text = users.create_token(username="admin", scope="read", name="页面令牌")
        target = notifications.create_target(name="页面通知", kind="webhook", url="https://hooks.example.com/x")
        held = reservations.reserve(reference="EVERY-SO", lines=[reservations.ReserveLine("EVERY-1", 2)], user="seed")
        ids = {"movement": movement.id, "count": count.id, "token": token.id, "target": target.id, "held": held.id}
    return [
        "/items/EVERY-1",
        "/items/EVERY-1/edit",
        "/items/EVERY-1/archive",
        f"/locations/{PLACE}",
        f"/locations/{PLACE}/edit",
        f"/locations/{PLACE}/deactivate",
        f"/movements/{ids['movement']}",
        f"/counts/{ids['count']}",
        f"/counts/{ids['count']}/review",
        f"/counts/{ids['count']}/cancel",
        f"/users/tokens/{ids['token']}/edit",
        f"/users/tokens/{ids['token']}/revoke",
        "/users/clerk",
        "/users/clerk/deactivate",
        f"/notifications/targets/{ids['target']}/delete",
        f"/reservations/{ids['held']}",
        f"/reservations/{ids['held']}/cancel",
        f"/reservations/{ids['held']}/pick-list",
        f"/scan/pick/PICK:{ids['held']}",
    ]


def _plain_pages(app: Flask) -> list[str]:
    rules = [r for r in app.url_map.iter_rules() if "GET" in (r.methods or ()) and not r.arguments]
    return sorted(r.rule for r in rules if not r.rule.startswith(NOT_PAGES))


@pytest.mark.slow  # 14-15 s per viewport: every page, photographed and checked by axe
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["360", "desktop"])
def test_every_page_is_photographed_axe_clean_and_fits_the_phone(
    sign_in: Callable[..., Page], live_app: Flask, parameter_pages: list[str], viewport: dict[str, int]
) -> None:
    page = sign_in("admin", viewport=viewport)
    label = "360" if viewport is PHONE else "desktop"
    visited, problems = [], {}
    for path in _plain_pages(live_app) + parameter_pages:
        # Asked first through the page's own cookies: a download (CSV, ZIP, ZPL, the service
        # worker) is checked for its status only, a page is then opened and looked at.
        response = page.request.get(path)
        assert response.status < 500, (path, response.status)
        if not response.headers.get("content-type", "").startswith("text/html"):
            continue
        opened = page.goto(path)
        assert opened is not None and opened.status < 500, (path, opened and opened.status)
        visited.append(path)
        shot(page, f"pages/{label}{path.replace('/', '-') if path != '/' else '-dashboard'}")
        if found := axe_findings(page):
            problems[path] = found
        if viewport is PHONE:
            width = page.evaluate("document.scrollingElement.scrollWidth")
            if width > PHONE["width"] + 1:
                problems[path] = [*problems.get(path, []), f"{width} px wide"]
    assert problems == {}
    # The walk reached the pages people use most, and every page with a parameter.
    assert {"/", "/items", "/locations", "/movements", "/scan", "/counts", "/users"} <= set(visited)
    assert set(parameter_pages) <= set(visited)
