"""Every edit page, opened and saved unchanged, changes nothing in the database: the form is read
back as a browser would submit it (every input, select and textarea of the form, line breaks as
CRLF), and each record's row is compared column by column before and after."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from flask import Flask
from sqlalchemy import text

from app.extensions import db
from app.services import items, notifications
from tests.integration.web.conftest import Stocked, text_of


class _Form(HTMLParser):
    """The fields a browser submits from the form posting to `action` (None: the form without an
    action, which posts back to its own page)."""

    def __init__(self, action: str | None) -> None:
        super().__init__()
        self.action, self.inside, self.done = action, False, False
        self.values: list[tuple[str, str]] = []
        self._select: str | None = None
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and not self.done:
            self.inside = a.get("action", "") == (self.action or "")
        if not self.inside:
            return
        if tag == "input" and a.get("name") and a.get("type") not in {"submit", "button"}:
            if a.get("type") not in {"checkbox", "radio"} or "checked" in a:
                self.values.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self._select = a.get("name")
        elif tag == "option" and self._select and "selected" in a:
            self.values.append((self._select, a.get("value", "")))
        elif tag == "textarea":
            self._textarea, self._text = a.get("name"), ""

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea:
            # Browsers read CRLF as LF, drop one leading newline of a textarea, and submit line
            # breaks as CRLF.
            text = self._text.replace("\r\n", "\n").removeprefix("\n")
            self.values.append((self._textarea, text.replace("\n", "\r\n")))
            self._textarea = None
        elif tag == "form" and self.inside:
            self.inside, self.done = False, True


def _unchanged_form(client: Any, page: str, action: str | None = None) -> list[tuple[str, str]]:
    response = client.get(page)
    assert response.status_code == 200
    parser = _Form(action)
    parser.feed(response.get_data(as_text=True))
    assert parser.values, f"no form fields found on {page}"
    return parser.values


def _rows(app: Flask, table: str, where: str, **params: Any) -> list[dict[str, Any]]:
    with app.app_context():
        result = db.session.execute(text(f"SELECT * FROM {table} WHERE {where} ORDER BY id"), params)  # noqa: S608
        rows = [dict(row._mapping) for row in result]
        db.session.remove()
    return rows


def _save_unchanged(client: Any, page: str, action: str | None = None) -> Any:
    fields = _unchanged_form(client, page, action)
    return client.post(action or page, data=_multi(fields))


def _multi(fields: list[tuple[str, str]]) -> Any:
    from werkzeug.datastructures import MultiDict

    return MultiDict(fields)


def test_item_edit_page_shows_names_and_plain_numbers(client: Any, login_as: Any, factory: Any) -> None:
    factory.item("SKU-EDIT", name="六角螺母 M5", category="紧固件", reorder_point="44", reorder_quantity="2.5")
    factory.item("SKU-OTHER", category="包装")
    login_as("manager")
    html = client.get("/items/SKU-EDIT/edit").get_data(as_text=True)
    assert "&lt;Category" not in html and "<Category" not in html
    assert 'value="44"' in html and 'value="2.5"' in html and "44.000" not in html
    fields = dict(_unchanged_form(client, "/items/SKU-EDIT/edit"))
    options = html.split('name="category"')[1].split("</select>")[0]
    assert ">紧固件<" in options and ">包装<" in options and 'value="new"' in options
    assert f'<option selected value="{fields["category"]}">紧固件<' in options


def test_item_saved_unchanged_changes_nothing(app: Flask, client: Any, login_as: Any, factory: Any) -> None:
    factory.item(
        "SKU-EDIT",
        name="六角螺母 M5",
        barcode="6901234567892",
        unit="盒",
        category="紧固件",
        reorder_point="44",
        reorder_quantity="2.5",
        description="第一行\n第二行",
    )
    login_as("manager")
    before = _rows(app, "items", "sku = :sku", sku="SKU-EDIT")
    categories = _rows(app, "categories", "1 = 1")
    saved = _save_unchanged(client, "/items/SKU-EDIT/edit")
    assert saved.status_code == 303
    assert "没有要保存的更改" in text_of(client.get(saved.location))
    assert _rows(app, "items", "sku = :sku", sku="SKU-EDIT") == before
    assert _rows(app, "categories", "1 = 1") == categories


def test_two_people_editing_one_item_keep_each_others_changes(
    app: Flask, client: Any, login_as: Any, factory: Any
) -> None:
    """A opens the edit page, B opens it too and saves a new reorder point, A saves a new name:
    both stay. A's page still showed the old reorder point, and saving it wrote it back."""
    factory.item("SKU-EDIT", name="旧名称", category="紧固件", reorder_point="44")
    login_as("manager")
    page_a = dict(_unchanged_form(client, "/items/SKU-EDIT/edit"))
    page_b = dict(_unchanged_form(client, "/items/SKU-EDIT/edit"))
    assert client.post("/items/SKU-EDIT/edit", data={**page_b, "reorder_point": "45"}).status_code == 303
    assert client.post("/items/SKU-EDIT/edit", data={**page_a, "name": "新名称"}).status_code == 303
    with app.app_context():
        item = items.get_item("SKU-EDIT")
        category = item.category.name if item.category else None
        assert (item.name, item.reorder_point, category) == ("新名称", 45, "紧固件")


def test_a_field_both_changed_is_refused_then_saved_as_the_second_person_confirms(
    app: Flask, client: Any, login_as: Any, factory: Any
) -> None:
    factory.item("SKU-EDIT", name="旧名称", reorder_point="44", unit="个")
    login_as("manager")
    page_a = dict(_unchanged_form(client, "/items/SKU-EDIT/edit"))
    page_b = dict(_unchanged_form(client, "/items/SKU-EDIT/edit"))
    assert client.post("/items/SKU-EDIT/edit", data={**page_b, "reorder_point": "45", "unit": "盒"}).status_code == 303
    before = _rows(app, "items", "sku = :sku", sku="SKU-EDIT")
    refused = client.post("/items/SKU-EDIT/edit", data={**page_a, "reorder_point": "50", "name": "新名称"})
    assert refused.status_code == 409
    assert "他人修改了此物品" in text_of(refused) and "已被他人改为：45" in text_of(refused)
    assert _rows(app, "items", "sku = :sku", sku="SKU-EDIT") == before  # nothing written, the name neither
    # The page shows A's changes over the item as it is now (B's unit), and saves them as they are.
    parser = _Form(None)
    parser.feed(refused.get_data(as_text=True))
    shown = dict(parser.values)
    assert (shown["reorder_point"], shown["name"], shown["unit"]) == ("50", "新名称", "盒")
    assert client.post("/items/SKU-EDIT/edit", data=_multi(parser.values)).status_code == 303
    with app.app_context():
        item = items.get_item("SKU-EDIT")
        assert (item.name, item.reorder_point, item.unit) == ("新名称", 50, "盒")


def test_two_people_setting_a_field_to_the_same_value_is_no_conflict(
    app: Flask, client: Any, login_as: Any, factory: Any
) -> None:
    factory.item("SKU-EDIT", name="旧名称", reorder_point="44")
    login_as("manager")
    page_a = dict(_unchanged_form(client, "/items/SKU-EDIT/edit"))
    page_b = dict(_unchanged_form(client, "/items/SKU-EDIT/edit"))
    assert client.post("/items/SKU-EDIT/edit", data={**page_b, "reorder_point": "45"}).status_code == 303
    saved = client.post("/items/SKU-EDIT/edit", data={**page_a, "reorder_point": "45.0", "name": "新名称"})
    assert saved.status_code == 303
    with app.app_context():
        item = items.get_item("SKU-EDIT")
        assert (item.name, item.reorder_point) == ("新名称", 45)


def test_changing_only_the_reorder_point_keeps_the_category(
    app: Flask, client: Any, login_as: Any, factory: Any
) -> None:
    factory.item("SKU-EDIT", category="紧固件", reorder_point="44")
    login_as("manager")
    fields = [(k, "45" if k == "reorder_point" else v) for k, v in _unchanged_form(client, "/items/SKU-EDIT/edit")]
    assert client.post("/items/SKU-EDIT/edit", data=_multi(fields)).status_code == 303
    with app.app_context():
        item = items.get_item("SKU-EDIT")
        assert (item.category.name if item.category else None, item.reorder_point) == ("紧固件", 45)
        assert [c.name for c in items.list_categories()] == ["紧固件"]


def test_new_category_is_an_explicit_choice(app: Flask, client: Any, login_as: Any, factory: Any) -> None:
    factory.item("SKU-EDIT", category="紧固件")
    login_as("manager")
    form = dict(_unchanged_form(client, "/items/SKU-EDIT/edit"))
    missing = client.post("/items/SKU-EDIT/edit", data={**form, "category": "new", "new_category": ""})
    assert missing.status_code == 422 and "请填写新类别的名称" in text_of(missing)
    hostile = client.post("/items/SKU-EDIT/edit", data={**form, "category": "<Category 3>"})
    assert hostile.status_code == 422
    assert (
        client.post("/items/SKU-EDIT/edit", data={**form, "category": "new", "new_category": "劳保"}).status_code == 303
    )
    form = dict(_unchanged_form(client, "/items/SKU-EDIT/edit"))  # the page drawn again, now with 劳保
    cleared = client.post("/items/SKU-EDIT/edit", data={**form, "category": ""})
    assert cleared.status_code == 303
    with app.app_context():
        assert items.get_item("SKU-EDIT").category is None
        assert [c.name for c in items.list_categories()] == ["劳保", "紧固件"]


def test_location_saved_unchanged_changes_nothing(app: Flask, client: Any, login_as: Any, stocked: Stocked) -> None:
    login_as("manager")
    client.post("/locations/WH1-A-01-01/edit", data={"name": "一号货架"})
    before = _rows(app, "locations", "1 = 1")
    assert _save_unchanged(client, "/locations/WH1-A-01-01/edit").status_code == 303
    assert _rows(app, "locations", "1 = 1") == before


def test_user_role_saved_unchanged_changes_nothing(app: Flask, client: Any, login_as: Any, factory: Any) -> None:
    login_as("admin")
    factory.user("manager", username="lihua")
    before = _rows(app, "users", "1 = 1")
    assert _save_unchanged(client, "/users/lihua", "/users/lihua/role").status_code == 303
    assert _rows(app, "users", "1 = 1") == before


def test_notification_target_saved_unchanged_changes_nothing(
    app: Flask, client: Any, login_as: Any, factory: Any
) -> None:
    factory.warehouse("WH1")
    factory.warehouse("WH2")
    with app.app_context():
        target = notifications.create_target(name="仓库群", kind="wecom", warehouses=["WH1", "WH2"])
    login_as("admin")
    before = (_rows(app, "notification_targets", "1 = 1"), _rows(app, "notification_subscriptions", "1 = 1"))
    action = f"/notifications/targets/{target.id}/subscriptions"
    assert _save_unchanged(client, "/notifications", action).status_code == 303
    assert (_rows(app, "notification_targets", "1 = 1"), _rows(app, "notification_subscriptions", "1 = 1")) == before
    assert len(before[1]) == 2


def test_token_saved_unchanged_changes_nothing(app: Flask, client: Any, login_as: Any, factory: Any) -> None:
    admin_user = login_as("admin")
    factory.token(admin_user, scope="read")
    token_id = _rows(app, "api_tokens", "1 = 1")[0]["id"]
    client.post(f"/users/tokens/{token_id}/edit", data={"name": "ERP 同步"})
    before = _rows(app, "api_tokens", "1 = 1")
    assert before[0]["name"] == "ERP 同步"
    assert _save_unchanged(client, f"/users/tokens/{token_id}/edit").status_code == 303
    assert _rows(app, "api_tokens", "1 = 1") == before
