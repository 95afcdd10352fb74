"""Every page for every role: allowed pages render their content, forbidden ones answer 403, and
anonymous visitors are sent to the sign-in page and brought back."""

from __future__ import annotations

from typing import Any

import pytest
from flask import url_for

from app.models import ROLES
from tests.integration.web.conftest import text_of

# path -> (lowest role allowed, text the page shows in Chinese)
PAGES = {
    "/": ("viewer", "近 30 天每日流水"),
    "/items": ("viewer", "螺丝钉"),
    "/items/SKU-SCREW": ("viewer", "各库位库存"),
    "/items/categories": ("viewer", "类别"),
    "/items/new": ("manager", "新建物品"),
    "/items/SKU-SCREW/edit": ("manager", "编辑物品"),
    "/locations": ("viewer", "WH1-A-01-02"),
    "/locations/WH1-A-01-01/edit": ("manager", "编辑库位"),
    "/movements": ("viewer", "SKU-SCREW"),
    "/movements/{receipt}": ("viewer", "流水 #{receipt}"),
    "/movements/receive": ("clerk", "货物入库"),
    "/movements/issue": ("clerk", "货物出库"),
    "/movements/transfer": ("clerk", "来源库位"),
    "/movements/pick": ("clerk", "拣货单"),
    "/movements/adjust": ("manager", "盘点数量"),
    "/low-stock": ("viewer", "建议采购量"),
    "/users": ("admin", "新建用户"),
    "/users/tokens": ("admin", "新建令牌"),
    "/settings": ("viewer", "时区"),
}
DOWNLOADS = {"/movements/export.csv": "SKU-SCREW", "/low-stock/export.csv": "SKU"}


@pytest.mark.parametrize("role", ROLES)
def test_each_role_sees_its_pages_and_is_refused_the_others(
    client: Any, login_as: Any, stocked: Any, role: str
) -> None:
    login_as(role)
    for template, (needed, marker_template) in PAGES.items():
        path = template.format(receipt=stocked.receipt.id)
        marker = marker_template.format(receipt=stocked.receipt.id)
        response = client.get(path)
        if ROLES.index(role) >= ROLES.index(needed):
            assert response.status_code == 200, path
            assert marker in text_of(response), path
        else:
            assert response.status_code == 403, path
            assert "无权访问" in text_of(response), path
    for path, marker in DOWNLOADS.items():
        response = client.get(path)
        assert response.status_code == 200
        assert marker in response.get_data(as_text=True)


def test_every_page_sends_anonymous_visitors_to_sign_in_and_back(app: Any, client: Any, stocked: Any) -> None:
    public = {"auth.login", "auth.language", "auth.logout", "static"}
    pages = [
        rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint.split(".")[0]
        in {"dashboard", "items", "locations", "movements", "low_stock", "users", "settings"}
        and rule.endpoint not in public
    ]
    assert len(pages) > 30
    for rule in pages:
        path = rule.build({k: {"sku": "SKU-SCREW", "code": "WH1-A-01-01"}.get(k, "1") for k in rule.arguments})[1]
        method = "GET" if "GET" in rule.methods else "POST"
        response = client.open(path, method=method)
        assert response.status_code == 302, (method, path)
        assert response.headers["Location"].startswith("/login?next="), path


def test_signed_in_user_returns_to_the_page_they_asked_for(client: Any, factory: Any) -> None:
    factory.user(role="viewer", username="wang")
    first = client.get("/low-stock?warehouse=WH1")
    login = client.post(
        first.headers["Location"],
        data={"username": "wang", "password": "correct-horse-9", "next": "/low-stock?warehouse=WH1"},
    )
    assert login.status_code == 303
    assert login.headers["Location"] == "/low-stock?warehouse=WH1"


def test_writes_are_refused_below_the_role_and_change_nothing(client: Any, login_as: Any, stocked: Any) -> None:
    login_as("viewer")
    form = {"sku": "SKU-SCREW", "location": "WH1-A-01-01", "quantity": "1", "idempotency_key": "k1"}
    assert client.post("/movements/receive", data=form).status_code == 403
    assert client.post("/movements/issue", data=form).status_code == 403
    login_as("clerk")
    assert client.post("/movements/adjust", data={**form, "counted": "0"}).status_code == 403
    assert (
        client.post(
            f"/movements/{stocked.receipt.id}/reverse", data={"reason": "x", "idempotency_key": "k2"}
        ).status_code
        == 403
    )
    assert client.post("/items/new", data={"sku": "NEW-1", "name": "x", "unit": "pcs"}).status_code == 403
    assert client.post("/locations/WH1-A-01-02/active", data={"active": "0"}).status_code == 403
    login_as("manager")
    assert client.post("/users", data={"username": "x", "password": "p" * 10, "role": "admin"}).status_code == 403
    assert client.post("/users/tokens", data={"username": "x", "name": "n", "scope": "write"}).status_code == 403
    ledger = client.get("/movements/export.csv").get_data(as_text=True)
    assert ledger.count("SKU-SCREW") == 1  # only the opening receipt
    assert "没有符合条件的物品" in text_of(client.get("/items?q=NEW-1"))  # the filter summary still names the search


def test_navigation_hides_what_the_role_cannot_do(app: Any, client: Any, login_as: Any, stocked: Any) -> None:
    login_as("viewer")
    page = client.get("/").get_data(as_text=True)
    assert "/movements/receive" not in page
    assert "/users" not in page
    assert "/movements" in page
    login_as("clerk")
    page = client.get("/").get_data(as_text=True)
    assert "/movements/receive" in page
    assert "/movements/adjust" not in page
    login_as("admin")
    page = client.get("/").get_data(as_text=True)
    assert "/movements/adjust" in page
    assert "/users/tokens" in page
    for endpoint in ("notifications.index", "scan.index", "labels.index", "counts.index", "imports.index"):
        with app.test_request_context():
            assert url_for(endpoint) in page, endpoint


def test_footer_shows_the_version_and_html_is_chinese_by_default(client: Any, login_as: Any, make_app: Any) -> None:
    login_as("viewer")
    page = client.get("/").get_data(as_text=True)
    assert '<html lang="zh-CN">' in page
    assert "库存管理 dev" in text_of(client.get("/"))


def test_error_pages_speak_the_users_language(client: Any, login_as: Any) -> None:
    login_as("viewer")
    missing = client.get("/no-such-page")
    assert missing.status_code == 404
    page = text_of(missing)
    assert "没有这个页面" in page
    assert "requested URL was not found" not in page
    forbidden = client.get("/users")
    assert forbidden.status_code == 403 and "您的角色是“访客”" in text_of(forbidden)
    assert "You don't have the permission" not in text_of(forbidden)
