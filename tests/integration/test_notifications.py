"""Low-stock notifications: the dispatcher against a real database and a fake robot/webhook on loopback."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from datetime import timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from sqlalchemy import select, update

from app.extensions import db, login_manager
from app.models import Item, OutboxEvent
from app.models.notification import NotificationDelivery
from app.models.types import utcnow
from app.observability.logging import configure_root_logger
from app.services import notifications, stock, wecom
from tests.ops.fake_receiver import fake_receiver

BASE_URL = "https://inventory.example.cn"


@pytest.fixture(autouse=True)
def _json_logs(app):
    """The session app ran Alembic's fileConfig, which replaces the root handlers: put ours back."""
    configure_root_logger()


@pytest.fixture
def robot():
    with fake_receiver() as receiver:
        receiver.robot_url = f"{receiver.url}/cgi-bin/webhook/send?key=ROBOT-KEY-0123456789"
        yield receiver


@pytest.fixture(autouse=True)
def _fresh_limiters():
    notifications._limiters.clear()
    yield
    notifications._limiters.clear()


def channel(robot, **kw):
    return notifications.Channel(robot_url=robot.robot_url, base_url=BASE_URL, **kw)


def low_stock(app, factory, *, sku=None, name=None, warehouse=None, reorder_point=5, on_hand=10, issue=6):
    """An item that just went to or below its reorder point: one pending outbox event."""
    item = factory.item(sku=sku, name=name or "六角螺栓 M8 Hex bolt", reorder_point=reorder_point, unit="pcs")
    location = factory.location(warehouse=warehouse)
    factory.stock(item, location, on_hand)
    with app.app_context():
        stock.issue_stock(sku=item.sku, location=location.code, quantity=issue, user="clerk")
    return item, location


def events(app):
    with app.app_context():
        rows = db.session.scalars(select(OutboxEvent).order_by(OutboxEvent.id)).all()
        db.session.remove()
        return rows


def dispatch(app, chan, **kw):
    with app.app_context():
        try:
            return notifications.dispatch_once(chan, **kw)
        finally:
            db.session.remove()


def subscribe_wecom(app, *warehouses, url=None, name="仓库群 Warehouse group"):
    with app.app_context():
        target = notifications.create_target(name=name, kind="wecom", url=url, warehouses=[w.code for w in warehouses])
        db.session.remove()
        return target


def test_low_stock_event_reaches_the_robot_as_markdown_with_item_location_quantities_and_link(app, factory, robot):
    warehouse = factory.warehouse(code="WH9")
    _item, location = low_stock(app, factory, sku="BOLT-M8", warehouse=warehouse)
    subscribe_wecom(app, warehouse)

    report = dispatch(app, channel(robot))

    assert (report.claimed, report.delivered, report.messages) == (1, 1, 1)
    [text] = robot.markdown()
    assert "六角螺栓 M8 Hex bolt" in text and "`BOLT-M8`" in text
    assert location.code in text and "WH9" in text
    assert '<font color="warning">4 pcs</font>' in text and "Reorder point: 5" in text
    assert f"({BASE_URL}/items/BOLT-M8)" in text
    [event] = events(app)
    assert event.status == "delivered" and event.delivered_at is not None and event.attempts == 0


def test_events_of_unsubscribed_warehouses_go_nowhere(app, factory, robot):
    subscribed, other = factory.warehouse(code="WHA"), factory.warehouse(code="WHB")
    low_stock(app, factory, sku="ONLY-B", warehouse=other)
    subscribe_wecom(app, subscribed)

    report = dispatch(app, channel(robot))

    assert report.delivered == 1 and robot.received == []


def test_many_events_are_batched_into_few_messages_each_within_4096_bytes(app, factory, robot):
    warehouse = factory.warehouse(code="WHX")
    subscribe_wecom(app, warehouse)
    skus = [f"LONG-{n:03d}" for n in range(30)]
    for sku in skus:
        low_stock(app, factory, sku=sku, name="超长的物料名称 " * 8, warehouse=warehouse)

    report = dispatch(app, channel(robot))

    texts = robot.markdown()
    assert report.delivered == 30
    assert all(len(t.encode("utf-8")) <= wecom.MARKDOWN_LIMIT_BYTES for t in texts)
    # Each event once, several per message, and each message but the last too full to take the
    # next message's first event: greedy batching, not one message per event nor one in all.
    per_message = [[sku for sku in skus if f"`{sku}`" in t] for t in texts]
    assert sorted(sku for found in per_message for sku in found) == skus
    assert len(texts) >= 2 and all(len(found) >= 2 for found in per_message)
    for text, following in pairwise(texts):
        first_block = following.split("\n\n")[1]
        assert "`LONG-" in first_block
        assert len(f"{text}\n\n{first_block}".encode()) > wecom.MARKDOWN_LIMIT_BYTES


def test_over_the_robot_rate_limit_events_wait_without_counting_as_failures(app, factory, robot):
    warehouse = factory.warehouse(code="WHR")
    subscribe_wecom(app, warehouse)
    for n in range(30):
        low_stock(app, factory, sku=f"RATE-{n:03d}", name="名称很长的物料 " * 8, warehouse=warehouse)
    key = hashlib.sha256(robot.robot_url.encode()).hexdigest()
    notifications._limiters[key] = wecom.RateLimiter(per_minute=1)

    report = dispatch(app, channel(robot))

    assert report.messages == 1 and len(robot.received) == 1
    assert report.deferred == 30 - report.delivered > 0
    waiting = [e for e in events(app) if e.status == "pending"]
    assert len(waiting) == report.deferred and all(e.attempts == 0 for e in waiting)


def test_generic_webhook_gets_json_signed_with_hmac_sha256(app, factory, robot):
    warehouse = factory.warehouse(code="WHW")
    with app.app_context():
        notifications.create_target(
            name="ERP", kind="webhook", url=f"{robot.url}/hooks/erp", secret="s3cret-signing", warehouses=["WHW"]
        )
    low_stock(app, factory, sku="HOOK-1", warehouse=warehouse)

    dispatch(app, channel(robot))

    [call] = robot.received
    body = call.body
    payload = json.loads(body)
    assert payload["sku"] == "HOOK-1" and payload["quantity"] == "4.000" and payload["type"] == "inventory.low_stock"
    assert payload["url"] == f"{BASE_URL}/items/HOOK-1"
    stamp = call.headers["X-Inventory-Timestamp"]
    assert call.headers["X-Inventory-Signature"] == notifications.sign("s3cret-signing", stamp, body)
    assert call.headers["X-Inventory-Signature"] != notifications.sign("wrong", stamp, body)
    assert call.headers["X-Inventory-Event-Id"] == str(payload["event_id"]) == str(events(app)[0].id)


def test_failures_back_off_then_become_dead_letters_that_an_admin_can_requeue(app, factory, robot):
    warehouse = factory.warehouse(code="WHF")
    subscribe_wecom(app, warehouse)
    low_stock(app, factory, sku="FAIL-1", warehouse=warehouse)
    robot.status = 500
    chan = channel(robot, max_attempts=2)

    first = dispatch(app, chan)
    [event] = events(app)
    assert first.retrying == 1 and event.status == "pending" and event.attempts == 1
    assert event.next_attempt_at > utcnow() + timedelta(seconds=10)
    assert event.last_error.endswith("HTTP 500") and "ROBOT-KEY" not in event.last_error
    assert dispatch(app, chan).claimed == 0  # not due yet

    with app.app_context():
        db.session.execute(update(OutboxEvent).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    second = dispatch(app, chan)
    [event] = events(app)
    assert second.dead == 1 and event.status == "dead" and event.attempts == 2
    with app.app_context():
        [letter] = notifications.list_dead_letters()
        assert letter.sku == "FAIL-1" and "HTTP 500" in letter.last_error
        notifications.retry_dead_letter(event_id=letter.id)
    robot.status = 200
    third = dispatch(app, chan)
    assert third.delivered == 1 and events(app)[0].status == "delivered"
    assert len(robot.markdown()) == 3  # two refused, one accepted


def test_robot_errcode_counts_as_a_failure(app, factory, robot):
    warehouse = factory.warehouse(code="WHE")
    subscribe_wecom(app, warehouse)
    low_stock(app, factory, warehouse=warehouse)
    robot.answer = {"errcode": 93000, "errmsg": "invalid webhook url, key=ROBOT-KEY-0123456789"}

    report = dispatch(app, channel(robot))

    [event] = events(app)
    assert report.retrying == 1 and event.last_error.endswith("robot errcode 93000")
    assert "ROBOT-KEY" not in event.last_error


def test_a_retry_only_resends_to_the_targets_that_failed(app, factory, robot):
    warehouse = factory.warehouse(code="WHP")
    subscribe_wecom(app, warehouse)
    with app.app_context():
        notifications.create_target(name="down", kind="webhook", url="http://127.0.0.1:9/closed", warehouses=["WHP"])
    low_stock(app, factory, sku="PART-1", warehouse=warehouse)

    dispatch(app, channel(robot))
    with app.app_context():
        db.session.execute(update(OutboxEvent).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    dispatch(app, channel(robot))

    assert len(robot.markdown()) == 1
    [event] = events(app)
    assert event.status == "pending" and event.attempts == 2 and event.last_error.startswith("down: connection failed")


def lease_runs_out(app):
    """Move the clock past the claim lease: bring claimed events due again."""
    with app.app_context():
        db.session.execute(update(OutboxEvent).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()


def test_a_crash_while_sending_leaves_the_event_pending_until_the_lease_runs_out(app, factory, robot):
    warehouse = factory.warehouse(code="WHC")
    subscribe_wecom(app, warehouse)
    low_stock(app, factory, warehouse=warehouse)

    def crash(url, text):
        raise KeyboardInterrupt  # the process dies mid-round

    with pytest.raises(KeyboardInterrupt):
        dispatch(app, channel(robot, send_markdown=crash))

    [event] = events(app)
    assert event.status == "pending" and event.attempts == 0
    assert event.next_attempt_at > utcnow() + notifications.CLAIM_LEASE - timedelta(minutes=1)
    with app.app_context():
        assert db.session.scalars(select(NotificationDelivery)).all() == []
    assert dispatch(app, channel(robot)).claimed == 0  # claimed: no other round takes it meanwhile
    lease_runs_out(app)
    assert dispatch(app, channel(robot)).delivered == 1 and len(robot.markdown()) == 1


def test_a_crash_between_send_and_record_redelivers_with_the_same_event_id(app, factory, robot, monkeypatch):
    warehouse = factory.warehouse(code="WHD")
    with app.app_context():
        notifications.create_target(
            name="ERP", kind="webhook", url=f"{robot.url}/hooks/erp", secret="s3cret", warehouses=["WHD"]
        )
    low_stock(app, factory, sku="TWICE-1", warehouse=warehouse)
    record = notifications._record

    def die_before_recording(claim, work):
        raise KeyboardInterrupt  # sent, then the process dies before the outcome is written

    monkeypatch.setattr(notifications, "_record", die_before_recording)
    with pytest.raises(KeyboardInterrupt):
        dispatch(app, channel(robot))
    monkeypatch.setattr(notifications, "_record", record)

    [event] = events(app)
    assert event.status == "pending" and len(robot.received) == 1
    lease_runs_out(app)
    assert dispatch(app, channel(robot)).delivered == 1

    first, second = robot.received
    assert first.body == second.body and first.json()["event_id"] == event.id
    assert first.headers["X-Inventory-Event-Id"] == second.headers["X-Inventory-Event-Id"] == str(event.id)
    [event] = events(app)
    assert event.status == "delivered"
    with app.app_context():
        assert len(db.session.scalars(select(NotificationDelivery)).all()) == 1


def test_no_row_lock_or_transaction_is_held_while_a_message_is_sent(app, factory, robot):
    warehouse = factory.warehouse(code="WHN")
    subscribe_wecom(app, warehouse)
    item, location = low_stock(app, factory, sku="FREE-1", warehouse=warehouse, issue=6)
    seen: list[tuple[bool, int]] = []

    def send_while_others_write(url, text):
        in_transaction = db.session().in_transaction()
        writes: list[int] = []

        def write() -> None:
            # The claimed event row and the stock it is about: both must be free for others.
            with app.app_context():
                db.session.execute(update(OutboxEvent).values(last_error=None))
                db.session.commit()
                stock.issue_stock(sku=item.sku, location=location.code, quantity=1, user="clerk")
                writes.append(1)
                db.session.remove()

        writer = threading.Thread(target=write)
        writer.start()
        writer.join(30)
        seen.append((in_transaction, len(writes)))
        wecom.send_markdown(url, text)

    report = dispatch(app, channel(robot, send_markdown=send_while_others_write))

    assert seen == [(False, 1)]
    assert report.delivered == 1 and len(robot.markdown()) == 1


@pytest.mark.parametrize("backend", [pytest.param("mysql", marks=pytest.mark.mysql)], indirect=True)
def test_two_dispatchers_never_claim_the_same_event_on_mysql(app, factory, robot):
    warehouse = factory.warehouse(code="WHM")
    subscribe_wecom(app, warehouse)
    low_stock(app, factory, sku="LOCK-1", warehouse=warehouse)
    sending, release = threading.Event(), threading.Event()

    def slow_send(url, text):
        sending.set()
        assert release.wait(20)
        wecom.send_markdown(url, text)

    first: list[notifications.DispatchReport] = []
    worker = threading.Thread(target=lambda: first.append(dispatch(app, channel(robot, send_markdown=slow_send))))
    worker.start()
    assert sending.wait(20)
    second = dispatch(app, channel(robot))  # claimed by the first: not due, no waiting
    release.set()
    worker.join(20)

    assert second.claimed == 0
    assert first[0].delivered == 1 and len(robot.markdown()) == 1


def test_ledger_audit_records_the_mismatch_count_and_the_command_fails_on_drift(app, factory):
    item = factory.item(sku="AUDIT-1")
    location = factory.location()
    factory.stock(item, location, 10)
    runner = app.test_cli_runner()

    clean = runner.invoke(args=["notify", "audit"])
    assert clean.exit_code == 0 and "0 mismatch(es)" in clean.output
    with app.app_context():
        from app.models import StockLevel

        db.session.execute(update(StockLevel).values(quantity=Decimal("7")))
        db.session.commit()
    drift = runner.invoke(args=["notify", "audit"])

    assert drift.exit_code == 1 and "1 mismatch(es)" in drift.output
    with app.app_context():
        from app.models.notification import LedgerAudit

        audits = db.session.scalars(select(LedgerAudit).order_by(LedgerAudit.id)).all()
        assert [a.mismatches for a in audits] == [0, 1]


def test_notify_once_command_delivers_through_the_configured_robot(app, make_app, factory, robot):
    warehouse = factory.warehouse(code="WHO")
    subscribe_wecom(app, warehouse)
    low_stock(app, factory, sku="CLI-1", warehouse=warehouse)
    other = make_app(INVENTORY_WECOM_WEBHOOK_URL=robot.robot_url, INVENTORY_BASE_URL=BASE_URL)

    result = other.test_cli_runner().invoke(args=["notify", "once"])

    assert result.exit_code == 0, result.output
    assert "claimed 1, delivered 1" in result.output
    assert "`CLI-1`" in robot.markdown()[0]


# ---------------------------------------------------------------- the admin pages


def sign_in(app, client, user):
    """ "strong" session protection checks the client's address and user agent on every request."""
    environ = {"REMOTE_ADDR": "127.0.0.1", "HTTP_USER_AGENT": client.environ_base["HTTP_USER_AGENT"]}
    with app.test_request_context(environ_base=environ):
        ident = login_manager._session_identifier_generator()
    with client.session_transaction() as session:
        session.update(_user_id=user.get_id(), _fresh=True, _id=ident)


def test_notification_pages_are_for_admins_only(app, client, login_as):
    assert client.get("/notifications").status_code in (302, 401)
    login_as("manager")
    assert client.get("/notifications").status_code == 403
    assert client.post("/notifications/targets", data={"name": "x", "kind": "wecom"}).status_code == 403


def test_an_admin_adds_a_signed_webhook_subscribed_to_two_warehouses(app, client, login_as, factory):
    factory.warehouse(code="WH1")
    factory.warehouse(code="WH2")
    factory.warehouse(code="WH3")
    login_as("admin")

    answer = client.post(
        "/notifications/targets",
        data={
            "name": "ERP 采购",
            "kind": "webhook",
            "url": "https://erp.example.cn/hooks/stock?token=ERP-TOKEN-1",
            "secret": "",
            "warehouses": ["WH1", "WH3"],
        },
    )

    assert answer.status_code == 303
    with app.app_context():
        [target] = notifications.list_targets()
        assert (target.name, target.kind, target.warehouses, target.has_secret) == (
            "ERP 采购",
            "webhook",
            ["WH1", "WH3"],
            True,
        )
    page = client.get("/notifications").get_data(as_text=True)
    assert "ERP 采购" in page and "https://erp.example.cn/…" in page
    assert "ERP-TOKEN-1" not in page  # neither the URL's token nor the signing secret is ever shown


def test_an_invalid_target_is_refused_with_the_form_and_nothing_is_saved(app, client, login_as):
    login_as("admin")
    answer = client.post("/notifications/targets", data={"name": "hook", "kind": "webhook", "url": ""})
    assert answer.status_code == 422 and "webhook needs a URL" in answer.get_data(as_text=True)
    with app.app_context():
        assert notifications.list_targets() == []


def test_an_admin_changes_subscriptions_pauses_and_deletes_a_target(app, client, login_as, factory):
    factory.warehouse(code="WHA")
    factory.warehouse(code="WHB")
    with app.app_context():
        target = notifications.create_target(name="群", kind="wecom", warehouses=["WHA"])
        db.session.remove()
    login_as("admin")

    client.post(f"/notifications/targets/{target.id}/subscriptions", data={f"t{target.id}-warehouses": ["WHB"]})
    client.post(f"/notifications/targets/{target.id}/active")
    with app.app_context():
        [view] = notifications.list_targets()
        assert view.warehouses == ["WHB"] and view.active is False
    client.post(f"/notifications/targets/{target.id}/delete")
    with app.app_context():
        assert notifications.list_targets() == []


def test_dead_letters_are_listed_with_their_error_and_an_admin_requeues_one(app, client, login_as, factory):
    warehouse = factory.warehouse(code="WHD")
    low_stock(app, factory, sku="DEAD-1", warehouse=warehouse)
    with app.app_context():
        db.session.execute(update(OutboxEvent).values(status="dead", attempts=8, last_error="群: HTTP 502"))
        db.session.commit()
        [event_id] = db.session.scalars(select(OutboxEvent.id)).all()
    login_as("admin")

    page = client.get("/notifications").get_data(as_text=True)
    assert "DEAD-1" in page and "群: HTTP 502" in page
    assert client.post(f"/notifications/dead-letters/{event_id}/retry").status_code == 303

    [event] = events(app)
    assert event.status == "pending" and event.attempts == 0
    assert "DEAD-1" not in client.get("/notifications").get_data(as_text=True).split('id="dead-letters"')[1]


def test_admin_forms_need_the_csrf_token(make_app, factory):
    strict = make_app(WTF_CSRF_ENABLED=True)
    admin = factory.user(role="admin")
    client = strict.test_client()
    sign_in(strict, client, admin)
    answer = client.post("/notifications/targets", data={"name": "x", "kind": "wecom"})
    assert answer.status_code == 400
    with strict.app_context():
        assert notifications.list_targets() == []


def test_item_names_and_skus_cannot_post_headings_links_or_tags(app, factory, robot):
    warehouse = factory.warehouse(code="WH7")
    hostile = '螺母\n# 紧急通知 <font color="warning">快</font>\n[点此领奖](http://phish.example/login)'
    item, _location = low_stock(app, factory, sku="NUT`*[x](javascript:alert(1))", name="螺母", warehouse=warehouse)
    with app.app_context():  # stored before names refused line breaks
        db.session.execute(update(Item).where(Item.id == item.id).values(name=hostile))
        db.session.commit()
    subscribe_wecom(app, warehouse)

    dispatch(app, channel(robot))

    [text] = robot.markdown()
    lines = text.split("\n")
    assert not any(line.startswith("#") for line in lines[1:])  # only the message's own header
    links = re.findall(r"(?<!\\)\]\(([^)]*)\)", re.sub(r"`[^`\n]*`", "", text))  # code spans link nothing
    assert links and all(link.startswith(f"{BASE_URL}/items/") for link in links)
    assert "phish.example/login" not in " ".join(links) and "http://phish" not in text
    assert '<font color="warning">快' not in text and "\\[点此领奖\\]" in text
    assert "`NUT'*[x](javascript:alert(1))`" in text  # literal inside its code span, so no link


def test_own_links_drops_targets_outside_the_base_url():
    text = "[ok](https://inventory.example.cn/items/A) [bad](https://inventory.example.cn.evil/x)"
    assert wecom.own_links(text, BASE_URL) == "[ok](https://inventory.example.cn/items/A) [bad]"


def test_reservation_events_reach_webhooks_with_the_order_and_chat_robots_skip_them(app, factory, robot):
    from app.services import reservations

    warehouse = factory.warehouse(code="WHR")
    item, location = factory.item(sku="RES-1"), factory.location(warehouse=warehouse)
    factory.stock(item, location, 5)
    with app.app_context():
        notifications.create_target(
            name="ERP", kind="webhook", url=f"{robot.url}/hooks/erp", secret="s3cret-signing", warehouses=["WHR"]
        )
        made = reservations.reserve(reference="SO-77", lines=[{"sku": "RES-1", "quantity": 2}], user="erp")
        reservations.cancel_reservation(reservation_id=made.id, user="erp")
        db.session.remove()
    subscribe_wecom(app, warehouse)

    report = dispatch(app, channel(robot))

    assert (report.claimed, report.delivered) == (2, 2)
    assert robot.markdown() == []
    payloads = [json.loads(call.body) for call in robot.received]
    assert [(p["type"], p["reference"], p["reservation_id"]) for p in payloads] == [
        ("inventory.reservation_created", "SO-77", made.id),
        ("inventory.reservation_cancelled", "SO-77", made.id),
    ]
    assert payloads[0]["quantity"] == "2.000" and payloads[0]["url"] == f"{BASE_URL}/reservations/{made.id}"
