"""Locations, low stock, users and API tokens, settings and language, the dashboard."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from flask import Flask
from sqlalchemy import select, update

from app.extensions import db
from app.models import User
from app.services import admin, users
from app.services.errors import InvalidInput
from tests.factories import DEFAULT_PASSWORD
from tests.integration.web.conftest import Stocked, text_of

TRANSLATIONS = Path(__file__).resolve().parents[3] / "translations"


def test_locations_are_created_renamed_and_deactivated_only_when_empty(
    client: Any, login_as: Any, stocked: Stocked
) -> None:
    login_as("manager")
    assert client.post("/locations/warehouses", data={"code": "WH9", "name": "九号仓"}).status_code == 303
    assert (
        client.post("/locations", data={"warehouse": "WH9", "code": "WH9-A-01-01", "name": "货架"}).status_code == 303
    )
    assert "WH9-A-01-01" in text_of(client.get("/locations?warehouse=WH9"))
    wrong = client.post("/locations", data={"warehouse": "WH9", "code": "WH1-Z-01-01"})
    assert wrong.status_code == 422 and 'id="code-err"' in wrong.get_data(as_text=True)
    assert client.post("/locations", data={"warehouse": "WH9", "code": "WH9-A-01-01"}).status_code == 409
    assert client.post("/locations/WH9-A-01-01/edit", data={"name": "新货架"}).status_code == 303
    assert "新货架" in text_of(client.get("/locations"))
    refused = client.post("/locations/WH1-A-01-01/active", data={"active": "0"})
    assert refused.status_code == 409
    assert "库位 WH1-A-01-01 仍存放 1 种物品：请先移走或盘点清零。" in text_of(refused)
    assert client.post("/locations/WH1-A-01-02/active", data={"active": "0"}).status_code == 303
    row = client.get("/locations").get_data(as_text=True).split('id="loc-WH1-A-01-02"')[1].split("</tr>")[0]
    assert "已停用" in row
    issue = {"sku": "SKU-SCREW", "from_location": "WH1-A-01-01", "to_location": "WH1-A-01-02", "quantity": "1"}
    login_as("clerk")
    moved = client.post("/movements/transfer", data={**issue, "idempotency_key": "r" * 32})
    assert "库位 WH1-A-01-02 已停用" in text_of(moved)


def test_low_stock_lists_what_to_order_and_exports_csv(
    client: Any, login_as: Any, factory: Any, stocked: Stocked
) -> None:
    low = factory.item("SKU-GLOVE", name="防护手套", reorder_point="20", reorder_quantity="50")
    factory.stock(low, stocked.shelf, 4)
    factory.item("SKU-NONE", name="无补货点")
    login_as("viewer")
    page = client.get("/low-stock")
    rows = page.get_data(as_text=True).split('id="low-stock"')[1]
    assert "SKU-GLOVE" in rows and "SKU-SCREW" not in rows and "SKU-NONE" not in rows
    assert "50 pcs" in text_of(page)  # suggested order
    csv = client.get("/low-stock/export.csv").get_data(as_text=True).lstrip("\ufeff").splitlines()
    assert csv[0] == "SKU,名称,单位,在库,补货点,建议采购量"
    assert csv[1:] == ["SKU-GLOVE,防护手套,pcs,4,20,50"]
    in_wh1 = client.get("/low-stock?warehouse=WH1").get_data(as_text=True).split('id="low-stock"')[1]
    assert "SKU-GLOVE" in in_wh1 and "SKU-SCREW" not in in_wh1


def test_admin_creates_users_changes_roles_and_resets_passwords(app: Flask, client: Any, login_as: Any) -> None:
    me = login_as("admin")
    form = {"username": "xiaoli", "display_name": "小李", "role": "clerk", "password": "long-enough-1"}
    assert client.post("/users", data=form).status_code == 303
    assert "小李" in text_of(client.get("/users"))
    assert client.post("/users", data=form).status_code == 409
    short = client.post("/users", data={**form, "username": "x2", "password": "short"})
    assert short.status_code == 422 and "至少 8 个字符" in text_of(short)
    assert client.post("/users/xiaoli/role", data={"role": "manager"}).status_code == 303
    mismatch = client.post("/users/xiaoli/password", data={"password": "new-password-1", "confirm": "other"})
    assert mismatch.status_code == 422 and "两次输入的密码不一致" in text_of(mismatch)
    assert (
        client.post(
            "/users/xiaoli/password", data={"password": "new-password-1", "confirm": "new-password-1"}
        ).status_code
        == 303
    )
    assert client.post("/users/xiaoli/active", data={"active": "0"}).status_code == 303
    with app.app_context():
        user = admin.get_user("xiaoli")
        assert (user.role, user.active, users.verify_password(user, "new-password-1")) == ("manager", False, True)
    last = client.post(f"/users/{me.username}/role", data={"role": "viewer"})
    assert last.status_code == 409 and "最后一位启用中的管理员" in text_of(last)


def test_tokens_are_shown_once_listed_by_prefix_and_revoked(
    app: Flask, client: Any, login_as: Any, factory: Any
) -> None:
    factory.user(role="clerk", username="scanner")
    login_as("admin")
    created = client.post(
        "/users/tokens", data={"username": "scanner", "name": "扫码枪", "scope": "write", "expires_days": "30"}
    )
    assert created.status_code == 201
    assert created.headers["Cache-Control"] == "no-store"
    token = created.get_data(as_text=True).split('id="new-token">')[1].split("<")[0]
    assert token.startswith("inv_")
    listing = client.get("/users/tokens").get_data(as_text=True)
    assert token not in listing and token[:12] in listing and "扫码枪" in listing
    with app.app_context():
        token_id = users.find_token(token).id
    assert client.post(f"/users/tokens/{token_id}/revoke").status_code == 303
    with app.app_context():
        assert users.find_token(token) is None
    assert "已吊销" in text_of(client.get("/users/tokens"))
    bad = client.post("/users/tokens", data={"username": "scanner", "name": "", "scope": "write", "expires_days": "0"})
    assert bad.status_code == 422 and "请输入 1 到 3650 天" in text_of(bad)


def test_switching_to_english_and_back_is_remembered_per_user(client: Any, login_as: Any, stocked: Stocked) -> None:
    login_as("clerk")
    assert client.post("/settings/language", data={"locale": "en", "next": "/items"}).headers["Location"] == "/items"
    english = client.get("/items")
    assert '<html lang="en">' in english.get_data(as_text=True)
    assert "On hand" in text_of(english) and "在库" not in text_of(english)
    client.post("/settings/language", data={"locale": "zh_CN", "next": "https://evil.example/"})
    assert "在库" in text_of(client.get("/items"))


def test_settings_change_the_time_zone_of_every_date(app: Flask, client: Any, login_as: Any, stocked: Stocked) -> None:
    login_as("viewer")
    shanghai = text_of(client.get(f"/movements/{stocked.receipt.id}"))
    assert client.post("/settings", data={"locale": "zh_CN", "timezone": "Mars/Olympus"}).status_code == 422
    assert client.post("/settings", data={"locale": "zh_CN", "timezone": "UTC"}).status_code == 303
    utc = text_of(client.get(f"/movements/{stocked.receipt.id}"))
    expected = stocked.receipt.created_at.strftime("%Y-%m-%d %H:%M")
    assert expected in utc and expected not in shanghai


def test_dashboard_shows_totals_chart_and_latest_movements(
    client: Any, login_as: Any, factory: Any, stocked: Stocked
) -> None:
    low = factory.item("SKU-LOW", name="平垫片", reorder_point="20")
    factory.stock(low, stocked.other, 3)
    login_as("viewer")
    page = client.get("/")
    text = text_of(page)
    assert "物品 2" in text
    assert "低于或等于补货点 1" in text
    assert "今日流水 2" in text
    assert "WH1 一号仓库 2 种物品 分布在 2 个库位" in text
    assert "<svg" in page.get_data(as_text=True) and "入库 2" in text  # legend total by kind
    assert "SKU-LOW 平垫片" in text


def _key(text: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """A message id or translation as a tuple: plural entries (ngettext) carry several forms."""
    return (text,) if isinstance(text, str) else tuple(text)


def test_every_message_is_translated_and_the_compiled_catalogues_are_current() -> None:
    for locale in ("zh_Hans_CN", "en"):
        folder = TRANSLATIONS / locale / "LC_MESSAGES"
        with (folder / "messages.po").open("rb") as po, (folder / "messages.mo").open("rb") as mo:
            source, compiled = read_po(po), read_mo(mo)
        strings = {_key(m.id): _key(m.string) for m in source if m.id}
        translated = {k: v for k, v in strings.items() if any(v)}
        assert translated == {_key(m.id): _key(m.string) for m in compiled if m.id}, f"{locale}: run make translations"
        if locale.startswith("zh"):
            assert all(map(all, strings.values())), [k for k, v in strings.items() if not all(v)]
    with (TRANSLATIONS / "messages.pot").open("rb") as pot:
        template = {_key(m.id) for m in read_po(pot) if m.id}
    assert template == set(strings)


def test_signed_in_pages_use_the_users_password_hash_from_werkzeug_scrypt(app: Flask, factory: Any) -> None:
    user = factory.user(role="viewer", password=DEFAULT_PASSWORD)
    assert user.password_hash.startswith("scrypt:")


def test_location_and_user_forms_reject_bad_input(client: Any, login_as: Any, stocked: Stocked) -> None:
    me = login_as("admin")
    blank = client.post("/locations/warehouses", data={"code": "", "name": ""})
    assert blank.status_code == 422 and text_of(blank).count("此项必填") == 2
    bad_code = client.post("/locations/warehouses", data={"code": "W H", "name": "x"})
    assert bad_code.status_code == 422 and 'id="code-err"' in bad_code.get_data(as_text=True)
    too_long = client.post("/locations/WH1-A-01-01/edit", data={"name": "长" * 101})
    assert too_long.status_code == 422
    assert client.get("/locations/NOPE/edit").status_code == 404
    unknown_role = client.post(f"/users/{me.username}/role", data={"role": "owner"})
    assert unknown_role.status_code == 422
    spaced = client.post("/users", data={"username": "a b", "role": "clerk", "password": "long-enough-1"})
    assert spaced.status_code == 422 and "不能包含空格" in text_of(spaced)


def test_a_time_zone_the_formatter_cannot_load_is_refused(app: Flask, client: Any, login_as: Any) -> None:
    viewer = login_as("viewer")
    refused = client.post("/settings", data={"locale": "zh_CN", "timezone": "posix/Asia/Shanghai"})
    assert refused.status_code == 422
    with app.app_context():
        assert db.session.scalar(select(User.timezone).where(User.id == viewer.id)) != "posix/Asia/Shanghai"
        with pytest.raises(InvalidInput):
            admin.set_preferences(username=viewer.username, timezone="posix/Asia/Shanghai")


def test_a_bad_time_zone_stored_earlier_falls_back_instead_of_breaking_pages(
    app: Flask, client: Any, login_as: Any, stocked: Stocked
) -> None:
    viewer = login_as("viewer")
    with app.app_context():
        db.session.execute(update(User).where(User.id == viewer.id).values(timezone="posix/Asia/Shanghai"))
        db.session.commit()
    for path in ("/", f"/movements/{stocked.receipt.id}", "/settings"):
        response = client.get(path)
        assert response.status_code == 200, path
    expected = stocked.receipt.created_at.replace(tzinfo=UTC).astimezone(ZoneInfo("Asia/Shanghai"))
    assert expected.strftime("%Y-%m-%d %H:%M") in text_of(client.get(f"/movements/{stocked.receipt.id}"))
