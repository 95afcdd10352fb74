"""Irreversible or disruptive actions ask first, on a page of their own (works without
JavaScript), and the message after them says what was done."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from app.services import counts, items, notifications
from tests.integration.web.conftest import Stocked, text_of


def test_archiving_says_archived_and_restoring_says_restored(
    app: Flask, client: Any, login_as: Any, stocked: Stocked
) -> None:
    login_as("manager")
    page = client.get("/items/SKU-SCREW")
    assert 'href="/items/SKU-SCREW/archive"' in page.get_data(as_text=True)
    asked = client.get("/items/SKU-SCREW/archive")
    assert asked.status_code == 200 and "归档 SKU-SCREW 螺丝钉？" in text_of(asked)
    with app.app_context():
        assert items.get_item("SKU-SCREW").archived is False  # asking changed nothing
    archived = client.post("/items/SKU-SCREW/archive", follow_redirects=True)
    assert "物品 SKU-SCREW 已归档。" in text_of(archived) and "已恢复" not in text_of(archived)
    # Archiving twice stays archived: the action is named by the URL, not toggled.
    client.post("/items/SKU-SCREW/archive")
    with app.app_context():
        assert items.get_item("SKU-SCREW").archived is True
    restored = client.post("/items/SKU-SCREW/restore", follow_redirects=True)
    assert "物品 SKU-SCREW 已恢复。" in text_of(restored)
    with app.app_context():
        assert items.get_item("SKU-SCREW").archived is False


def _target(app: Flask) -> int:
    with app.app_context():
        return notifications.create_target(name="仓库群", kind="wecom").id


def _token(app: Flask, factory: Any, user: Any) -> int:
    factory.token(user)
    with app.app_context():
        from app.services import admin

        return admin.list_tokens()[0].id


@pytest.mark.parametrize(
    ("who", "page", "question", "action"),
    [
        ("manager", "/locations/WH1-A-01-02/deactivate", "停用库位 WH1-A-01-02？", "/locations/WH1-A-01-02/active"),
        ("admin", "/users/{user}/deactivate", "停用 {user}？", "/users/{user}/active"),
        ("admin", "/users/tokens/{token}/revoke", "吊销令牌", "/users/tokens/{token}/revoke"),
        (
            "admin",
            "/notifications/targets/{target}/delete",
            "删除通知目标 仓库群？",
            "/notifications/targets/{target}/delete",
        ),
        ("manager", "/counts/{count}/cancel", "取消盘点 #{count}？", "/counts/{count}/cancel"),
    ],
)
def test_disruptive_actions_ask_on_a_page_of_their_own(
    app: Flask,
    client: Any,
    login_as: Any,
    factory: Any,
    stocked: Stocked,
    who: str,
    page: str,
    question: str,
    action: str,
) -> None:
    user = login_as(who)
    other = factory.user("clerk")
    with app.app_context():
        count = counts.open_count(location="WH1-A-01-01", skus=None, user="m")
    values = {"user": other.username, "token": _token(app, factory, user), "target": _target(app), "count": count.id}
    asked = client.get(page.format(**values))
    html = asked.get_data(as_text=True)
    assert asked.status_code == 200 and question.format(**values) in text_of(asked)
    assert f'action="{action.format(**values)}"' in html and 'method="post"' in html


def test_deactivating_a_location_from_its_confirmation_page(client: Any, login_as: Any, stocked: Stocked) -> None:
    login_as("manager")
    html = client.get("/locations").get_data(as_text=True)
    row = html.split('id="loc-WH1-A-01-02"')[1].split("</tr>")[0]
    assert 'href="/locations/WH1-A-01-02/deactivate"' in row and "<button" not in row
    done = client.post("/locations/WH1-A-01-02/active", data={"active": "0"}, follow_redirects=True)
    assert "库位 WH1-A-01-02 已停用" in text_of(done)
    assert client.get("/locations/NOPE/deactivate").status_code == 404
