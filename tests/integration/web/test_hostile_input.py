"""Hostile values in every query parameter and form field of every page route answer a 4xx or a
form error, never a 5xx.

The parameters are not listed by hand: each route is first requested plainly while every lookup
in request.args and request.form is recorded, then each recorded name gets each hostile value.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import ImmutableMultiDict

from tests.factories import Factory
from tests.integration.web.conftest import Stocked


def _cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


HOSTILE = [
    "²",  # a Unicode digit: str.isdigit() says yes, int() says no
    "١٢",  # Arabic-Indic digits
    "-1",
    "99999999999999999999999999",
    "1E+3",
    "1_000",
    "NaN",
    "\x00\x1b",
    "/ok\r\nSet-Cookie: x=1",
    "A" * 5000,
    base64.urlsafe_b64encode(b"[" * 5000 + b"]" * 5000).decode(),  # nested past Python's recursion limit
    _cursor(["not-a-date", 1]),
    _cursor([{"a": 1}, "x"]),
    _cursor([]),
    "%%%",
]
# Names read by iterating the form rather than by lookup.
EXTRA_FIELDS = {"counts.enter": ["qty:1", "qty:²"]}
SKIPPED = {"auth.logout", "static", "prometheus_metrics", "scan.move", "scan.undo"}


class _Recorder:
    names: set[str] | None = None


def _recording(method: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(self: Any, key: Any, *args: Any, **kwargs: Any) -> Any:
        if _Recorder.names is not None and isinstance(key, str):
            _Recorder.names.add(key)
        return method(self, key, *args, **kwargs)

    return wrapper


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_Recorder]]:
    for name in ("get", "getlist", "__getitem__", "__contains__"):
        monkeypatch.setattr(ImmutableMultiDict, name, _recording(getattr(ImmutableMultiDict, name)))
    yield _Recorder
    _Recorder.names = None


def _routes(app: Flask, stocked: Stocked, admin: str) -> list[tuple[str, str, str]]:
    values = {
        "sku": stocked.item.sku,
        "code": stocked.shelf.code,
        "username": admin,
        "digest": "0" * 64,
        "serial": "SN-1",
    }
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in SKIPPED or rule.rule.startswith("/api/"):
            continue
        path = rule.rule
        for arg in rule.arguments:
            path = path.replace(f"<int:{arg}>", "1")
            path = path.replace(f"<{arg}>", values[arg]) if f"<{arg}>" in path else path
        for method in sorted((rule.methods or set()) & {"GET", "POST"}):
            found.append((rule.endpoint, method, path))
    return found


def _send(client: FlaskClient, method: str, path: str, fields: dict[str, str]) -> int:
    """The status, after reading the whole body: a streamed export fails while it streams."""
    response = client.get(path, query_string=fields) if method == "GET" else client.post(path, data=fields)
    try:
        response.get_data()
    except Exception:  # any exception while the body streams is the failure looked for
        return 500
    finally:
        response.close()
    return response.status_code


@pytest.mark.slow
def test_no_page_answers_5xx_to_hostile_parameters(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked, recorder: type[_Recorder]
) -> None:
    admin = login_as("admin")
    failures: list[str] = []
    sent = 0
    for endpoint, method, path in _routes(app, stocked, admin.username):
        recorder.names = set()
        login_as(admin)
        _send(client, method, path, {})
        names = sorted(recorder.names - {"csrf_token"}) + EXTRA_FIELDS.get(endpoint, [])
        recorder.names = None
        for name in names:
            for value in HOSTILE:
                status = _send(client, method, path, {name: value})
                sent += 1
                if status >= 500:
                    failures.append(f"{method} {path} {name}={value[:40]!r}: {status}")
    assert sent > 500  # the sweep really reached the routes' parameters
    assert failures == [], "\n".join(failures)


@pytest.mark.parametrize("body", ["[1, 2]", '"text"', "42", "null", "{"])
@pytest.mark.parametrize("path", ["/scan/moves", "/scan/undo"])
def test_scan_endpoints_refuse_json_that_is_not_an_object(
    client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked, path: str, body: str
) -> None:
    login_as("clerk")
    response = client.post(path, data=body, content_type="application/json")
    assert 400 <= response.status_code < 500
    assert response.get_json()["status"] == "error"


@pytest.mark.parametrize("movement_id", ["²", "99999999999999999999999", -1, 2**70, True])
def test_scan_undo_refuses_ids_that_are_not_ids(
    client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked, movement_id: Any
) -> None:
    login_as("clerk")
    response = client.post("/scan/undo", json={"movement_id": movement_id})
    assert response.status_code == 422
    assert response.get_json()["code"] == "invalid_input"


def test_a_cursor_with_a_bad_date_is_a_400_page_not_a_500(
    client: FlaskClient, login_as: Callable[..., Any], stocked: Stocked
) -> None:
    login_as("viewer")
    response = client.get("/items", query_string={"sort": "updated_at", "after": _cursor(["yesterday", 1])})
    assert 400 <= response.status_code < 500
    api = client.get("/api/v1/items", query_string={"cursor": _cursor([[[[[]]]]] * 3)})
    assert 400 <= api.status_code < 500


def test_a_line_break_in_next_goes_to_the_dashboard(client: FlaskClient, login_as: Callable[..., Any]) -> None:
    login_as("viewer")
    response = client.post("/settings/language", data={"locale": "en", "next": "/items\r\nSet-Cookie: x=1"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    assert "x=1" not in response.headers.get("Set-Cookie", "")


@pytest.mark.parametrize("row_id", [2**63 - 1, 2**63, 10**20])
def test_an_id_past_what_the_database_stores_is_not_found_on_every_route(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], factory: Factory, row_id: int
) -> None:
    """Every page and API route with an id in its path. The largest id a row can have reaches the
    database and names no row: a 404, or, for an action on a list page, back to that page saying
    so. One past it (SQLite cannot compare a column with it: it was a 500) matches no route: 404,
    or 405 where a route for another method has the same shape (werkzeug checks the method before
    it converts the id)."""
    admin = login_as("admin")
    token = {"Authorization": f"Bearer {factory.token(admin, scope='write')}"}
    routed = row_id < 2**63
    checked = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in SKIPPED or not any(f"<int:{arg}>" in rule.rule for arg in rule.arguments):
            continue
        path = rule.rule
        for arg in rule.arguments:
            path = path.replace(f"<int:{arg}>", str(row_id)).replace(f"<{arg}>", "X")
        api = path.startswith("/api/")
        for method in sorted((rule.methods or set()) & {"GET", "POST"}):
            body = {"json": {"reason": "x"} if rule.endpoint == "api.movements_reverse" else {}} if api else {}
            response = client.open(path, method=method, headers=token if api else {}, **body)
            checked.append(path)
            where = f"{method} {path}: {response.status_code}"
            if api:
                assert response.status_code == 404 and response.mimetype == "application/problem+json", where
            elif response.status_code == 303 and routed and method == "POST":
                back = client.get(response.location)
                assert back.status_code == 200 and 'class="flash flash-error"' in back.text, where
            else:
                assert response.status_code in ({404} if routed else {404, 405}), where
    assert any(p.startswith("/api/") for p in checked) and any(p.startswith("/lots/") for p in checked)


@pytest.mark.parametrize("host", ["a" * 64, "a" * 64 + ".example", "x" * 10_000])
def test_a_host_header_that_cannot_be_read_is_a_400(client: FlaskClient, host: str) -> None:
    """werkzeug refuses a Host whose label passes 63 characters (BadHost) before routing: no URL
    can be built then, and drawing the error page, which links to the app, was a 500."""
    page = client.get("/items", headers={"Host": host})
    assert page.status_code == 400
    assert page.mimetype == "text/plain" and page.text.startswith("400 ")
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    api = client.get("/api/v1/items", headers={"Host": host})
    assert api.status_code == 400 and api.mimetype == "application/problem+json"
