"""Stock forms: each writes through the stock service once, shows field errors in the user's
language, tells how much is available where, and never writes twice for one rendered form."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from flask import Flask

from app.models import Movement, StockLevel
from tests.integration.web.conftest import Stocked, text_of


def _key(page: str) -> str:
    found = re.search(r'name="idempotency_key" type="hidden" value="([0-9a-f]{32})"', page)
    assert found, "every stock form carries an idempotency key"
    return found.group(1)


def _on_hand(app: Flask, stocked: Stocked, location: Any = None) -> Decimal:
    from app.extensions import db

    with app.app_context():
        level = (
            db.session.query(StockLevel)
            .filter_by(item_id=stocked.item.id, location_id=(location or stocked.shelf).id)
            .one_or_none()
        )
        return level.quantity if level else Decimal(0)


def _movements(app: Flask) -> list[Movement]:
    from app.extensions import db

    with app.app_context():
        return db.session.query(Movement).order_by(Movement.id).all()


def test_receive_adds_stock_and_redirects_to_a_fresh_form(
    app: Flask, client: Any, login_as: Any, stocked: Stocked
) -> None:
    login_as("clerk")
    page = client.get("/movements/receive?sku=SKU-SCREW").get_data(as_text=True)
    assert 'value="SKU-SCREW"' in page
    form = {
        "sku": "SKU-SCREW",
        "location": "WH1-A-01-01",
        "quantity": "2.5",
        "reference": "PO-1",
        "idempotency_key": _key(page),
    }
    response = client.post("/movements/receive", data=form, follow_redirects=True)
    assert response.status_code == 200
    assert "已入库 2.5 pcs 螺丝钉 → WH1-A-01-01，现有 12.5。" in text_of(response)
    fresh = response.get_data(as_text=True)
    assert _key(fresh) != form["idempotency_key"]
    assert 'value="PO-1"' in fresh and 'value="WH1-A-01-01"' in fresh  # the delivery note is kept
    assert _on_hand(app, stocked) == Decimal("12.5")
    last = _movements(app)[-1]
    assert (last.kind, last.quantity, last.reference, last.username) == (
        "receive",
        Decimal("2.5"),
        "PO-1",
        last.username,
    )
    assert last.username.startswith("clerk")


def test_double_submitting_one_rendered_form_records_one_movement(
    app: Flask, client: Any, login_as: Any, stocked: Stocked
) -> None:
    login_as("clerk")
    key = _key(client.get("/movements/issue").get_data(as_text=True))
    form = {"sku": "SKU-SCREW", "location": "WH1-A-01-01", "quantity": "3", "idempotency_key": key}
    first = client.post("/movements/issue", data=form)
    second = client.post("/movements/issue", data=form)  # double click, or back and resubmit
    assert first.status_code == second.status_code == 303
    assert len(_movements(app)) == 2  # the opening receipt and one issue
    assert _on_hand(app, stocked) == Decimal(7)


def test_resubmitting_a_used_form_with_other_values_is_refused(
    app: Flask, client: Any, login_as: Any, stocked: Stocked
) -> None:
    login_as("clerk")
    form = {"sku": "SKU-SCREW", "location": "WH1-A-01-01", "quantity": "3", "idempotency_key": "a" * 32}
    client.post("/movements/issue", data=form)
    response = client.post("/movements/issue", data={**form, "quantity": "4"})
    assert response.status_code == 409
    assert "此表单已用其他内容提交过" in text_of(response)
    assert _on_hand(app, stocked) == Decimal(7)


def test_issue_beyond_on_hand_says_how_many_are_available_where(
    app: Flask, client: Any, login_as: Any, stocked: Stocked
) -> None:
    login_as("clerk")
    form = {"sku": "SKU-SCREW", "location": "WH1-A-01-01", "quantity": "11", "idempotency_key": "b" * 32}
    response = client.post("/movements/issue", data=form)
    assert response.status_code == 409
    assert "库存不足：WH1-A-01-01 的 SKU-SCREW 仅有 10 可用（需要 11）" in text_of(response)
    assert 'value="11"' in response.get_data(as_text=True)  # the form keeps what was typed
    assert _on_hand(app, stocked) == Decimal(10)


def test_field_errors_are_shown_in_chinese_and_english(
    app: Flask, client: Any, login_as: Any, stocked: Stocked
) -> None:
    user = login_as("clerk")
    blank = client.post("/movements/receive", data={"idempotency_key": "c" * 32, "quantity": "-1"})
    assert blank.status_code == 422
    assert text_of(blank).count("此项必填") == 2
    assert "请输入大于零的数字，最多 3 位小数" in text_of(blank)
    from app.services import admin

    with app.app_context():
        admin.set_preferences(username=user.username, locale="en")
    english = client.post("/movements/receive", data={"idempotency_key": "c" * 32, "quantity": "1.0001"})
    assert "This field is required." in text_of(english)
    assert "Enter a number greater than zero, with at most 3 decimal places." in text_of(english)
    assert len(_movements(app)) == 1


def test_unknown_sku_and_location_are_marked_on_their_fields(client: Any, login_as: Any, stocked: Stocked) -> None:
    login_as("clerk")
    response = client.post(
        "/movements/receive",
        data={"sku": "NOPE", "location": "WH1-A-01-01", "quantity": "1", "idempotency_key": "d" * 32},
    )
    assert response.status_code == 404
    assert 'id="sku-err"' in response.get_data(as_text=True)
    assert "没有 SKU 为 NOPE 的物品" in text_of(response)
    response = client.post(
        "/movements/receive", data={"sku": "SKU-SCREW", "location": "X-9", "quantity": "1", "idempotency_key": "e" * 32}
    )
    assert 'id="location-err"' in response.get_data(as_text=True)
    assert "没有编码为 X-9 的库位" in text_of(response)


def test_transfer_moves_stock_and_refuses_the_same_location(
    app: Flask, client: Any, login_as: Any, stocked: Stocked
) -> None:
    login_as("clerk")
    same = {"sku": "SKU-SCREW", "from_location": "WH1-A-01-01", "to_location": "WH1-A-01-01", "quantity": "1"}
    response = client.post("/movements/transfer", data={**same, "idempotency_key": "f" * 32})
    assert response.status_code == 422
    assert "来源库位和目标库位不能相同" in text_of(response)
    moved = {**same, "to_location": "WH1-A-01-02", "quantity": "4", "idempotency_key": "g" * 32}
    assert client.post("/movements/transfer", data=moved).status_code == 303
    assert _on_hand(app, stocked) == Decimal(6)
    assert _on_hand(app, stocked, stocked.other) == Decimal(4)


def test_stocktake_sets_the_counted_balance(app: Flask, client: Any, login_as: Any, stocked: Stocked) -> None:
    login_as("manager")
    form = {"sku": "SKU-SCREW", "location": "WH1-A-01-01", "counted": "7", "idempotency_key": "h" * 32}
    assert client.post("/movements/adjust", data=form).status_code == 303
    assert _on_hand(app, stocked) == Decimal(7)
    adjust = _movements(app)[-1]
    assert (adjust.kind, adjust.quantity, adjust.from_balance) == ("adjust", Decimal(3), Decimal(7))
    zero = client.post("/movements/adjust", data={**form, "counted": "", "idempotency_key": "i" * 32})
    assert zero.status_code == 422


def test_pick_list_issues_every_line_or_none(
    app: Flask, client: Any, login_as: Any, stocked: Stocked, factory: Any
) -> None:
    factory.stock(stocked.item, stocked.other, 5)
    login_as("clerk")
    lines = {
        "lines-0-sku": "SKU-SCREW",
        "lines-0-location": "WH1-A-01-01",
        "lines-0-quantity": "4",
        "lines-1-sku": "SKU-SCREW",
        "lines-1-location": "WH1-A-01-02",
        "lines-1-quantity": "6",
    }
    short = client.post("/movements/pick", data={**lines, "idempotency_key": "j" * 32})
    assert short.status_code == 409
    assert "第 2 行：WH1-A-01-02 仅有 5 pcs 可用。" in text_of(short)
    assert _on_hand(app, stocked) == Decimal(10)  # the first line was not issued either
    done = client.post("/movements/pick", data={**lines, "lines-1-quantity": "5", "idempotency_key": "k" * 32})
    assert done.status_code == 303
    assert (_on_hand(app, stocked), _on_hand(app, stocked, stocked.other)) == (Decimal(6), Decimal(0))
    again = client.post("/movements/pick", data={**lines, "lines-1-quantity": "5", "idempotency_key": "k" * 32})
    assert again.status_code == 303
    assert len(_movements(app)) == 4  # two receipts, two pick lines


def test_pick_list_reports_every_bad_line_at_once_and_keeps_what_was_typed(
    app: Flask, client: Any, login_as: Any, stocked: Stocked, factory: Any
) -> None:
    factory.item("SKU-OLD", name="旧物品")
    with app.app_context():
        from app.services import items

        items.archive_item(sku="SKU-OLD")
    login_as("clerk")
    rows = [
        ("SKU-SCREW", "WH1-A-01-01", "2"),
        ("SKU-SCREW", "WH1-A-01-01", "3.0"),
        ("NO-SUCH", "WH1-A-01-01", "1"),
        ("SKU-SCREW", "NOPE-01", "1"),
        ("SKU-SCREW", "WH1-A-01-02", "3"),
        ("SKU-OLD", "WH1-A-01-01", "1"),
    ]
    data = {
        f"lines-{i}-{k}": v
        for i, row in enumerate(rows)
        for k, v in zip(("sku", "location", "quantity"), row, strict=True)
    }
    page = client.post("/movements/pick", data={**data, "idempotency_key": "p" * 32})
    html, text = page.get_data(as_text=True), text_of(page)
    assert page.status_code in {404, 409, 422}
    assert "4 行需要修改" in text
    assert "第 3 行：没有 SKU 为 NO-SUCH 的物品。" in text
    assert "第 4 行：没有编码为 NOPE-01 的库位。" in text
    assert "第 5 行：WH1-A-01-02 仅有 0 pcs 可用。" in text
    assert "第 6 行：物品 SKU-OLD 已归档。" in text
    assert "第 1 行" not in text.split("需要修改")[1].split("第 3 行")[0]  # lines 1-2 fit: 5 of 10
    assert 'href="#lines-2-sku"' in html and 'href="#lines-4-quantity"' in html
    assert 'id="lines-1-quantity-err"' not in html and 'value="3.0"' in html and "3.000" not in html
    assert "可用：10 pcs" in text
    assert _on_hand(app, stocked) == Decimal(10)


def test_stock_forms_match_codes_in_any_case(app: Flask, client: Any, login_as: Any, stocked: Stocked) -> None:
    login_as("clerk")
    page = client.get("/movements/issue").get_data(as_text=True)
    form = {"sku": "sku-screw", "location": "wh1-a-01-01", "quantity": "1", "idempotency_key": _key(page)}
    done = client.post("/movements/issue", data=form, follow_redirects=True)
    assert "已出库 1 pcs 螺丝钉 ← WH1-A-01-01，剩余 9。" in text_of(done)
    assert _on_hand(app, stocked) == Decimal(9)
    pick = {"lines-0-sku": "sku-screw", "lines-0-location": "wh1-a-01-01", "lines-0-quantity": "2"}
    picked = client.post("/movements/pick", data={**pick, "idempotency_key": "c" * 32}, follow_redirects=True)
    assert "已拣货 1 行。" in text_of(picked) and _on_hand(app, stocked) == Decimal(7)


def test_pick_list_needs_a_complete_line(client: Any, login_as: Any, stocked: Stocked) -> None:
    login_as("clerk")
    empty = client.post("/movements/pick", data={"idempotency_key": "l" * 32})
    assert empty.status_code == 422
    assert "请至少填写一行" in text_of(empty)
    half = client.post("/movements/pick", data={"lines-0-sku": "SKU-SCREW", "idempotency_key": "m" * 32})
    assert half.status_code == 422
    assert 'id="lines-0-location-err"' in half.get_data(as_text=True)
    assert 'id="lines-0-quantity-err"' in half.get_data(as_text=True)
    assert "此项必填" in text_of(half)


def test_reversal_needs_a_reason_and_links_both_ways(app: Flask, client: Any, login_as: Any, stocked: Stocked) -> None:
    login_as("manager")
    original = stocked.receipt.id
    page = client.get(f"/movements/{original}").get_data(as_text=True)
    no_reason = client.post(f"/movements/{original}/reverse", data={"reason": " ", "idempotency_key": _key(page)})
    assert no_reason.status_code == 422
    assert "必须填写原因" in text_of(no_reason)
    done = client.post(f"/movements/{original}/reverse", data={"reason": "录错了", "idempotency_key": _key(page)})
    assert done.status_code == 303
    reversal = _movements(app)[-1]
    assert (reversal.kind, reversal.reverses_id, reversal.note) == ("reversal", original, "录错了")
    assert done.headers["Location"] == f"/movements/{reversal.id}"
    assert f"/movements/{original}" in client.get(f"/movements/{reversal.id}").get_data(as_text=True)
    shown = client.get(f"/movements/{original}")
    assert f"/movements/{reversal.id}" in shown.get_data(as_text=True)
    assert "冲销此流水" not in text_of(shown)
    twice = client.post(f"/movements/{original}/reverse", data={"reason": "再来", "idempotency_key": "n" * 32})
    assert twice.status_code == 409
    assert f"流水 #{original} 已被 #{reversal.id} 冲销" in text_of(twice)
    assert _on_hand(app, stocked) == Decimal(0)


def test_ledger_filters_and_csv_export(client: Any, login_as: Any, stocked: Stocked, factory: Any) -> None:
    other = factory.item("SKU-NUT", name="六角螺母")
    factory.stock(other, stocked.other, 3, reference="PO-9")
    login_as("viewer")
    by_item = text_of(client.get("/movements?sku=SKU-NUT"))
    assert "SKU-NUT" in by_item and "SKU-SCREW" not in by_item
    by_location = text_of(client.get("/movements?location=WH1-A-01-01"))
    assert "SKU-SCREW" in by_location and "SKU-NUT" not in by_location
    assert "SKU-NUT" in text_of(client.get("/movements?reference=PO-9&kind=receive"))
    assert "没有流水" in text_of(client.get("/movements?kind=issue"))
    assert "没有流水" in text_of(client.get("/movements?since=2000-01-01&until=2000-01-02"))
    csv = client.get("/movements/export.csv?sku=SKU-NUT")
    assert csv.mimetype == "text/csv"
    lines = csv.get_data(as_text=True).lstrip("\ufeff").strip().splitlines()
    assert lines[0].startswith("编号,时间,类型,SKU")
    assert len(lines) == 2
    assert "六角螺母" in lines[1] and "PO-9" in lines[1] and ",入库," in lines[1]
