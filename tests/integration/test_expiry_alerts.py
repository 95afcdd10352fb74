"""The daily expiry check (issue 17): lots expiring within their item's warning days and lots
expired with stock become outbox events once per lot, place and day, delivered to WeCom (escaped,
batched per kind) and webhooks like low stock; the gauge counts them; on SQLite and MariaDB."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.extensions import db
from app.models import Item, Lot, OutboxEvent, Warehouse
from app.models.types import utcnow
from app.observability.logging import configure_root_logger
from app.services import expiry, notifications, stock
from tests.integration.test_metrics import TOKEN, scrape
from tests.integration.test_notifications import BASE_URL, channel, dispatch, low_stock, subscribe_wecom
from tests.ops.fake_receiver import fake_receiver

TODAY = utcnow().date()


@pytest.fixture(autouse=True)
def _json_logs(app):
    configure_root_logger()


@pytest.fixture(autouse=True)
def _fresh_limiters():
    notifications._limiters.clear()
    yield
    notifications._limiters.clear()


@pytest.fixture
def robot():
    with fake_receiver() as receiver:
        receiver.robot_url = f"{receiver.url}/cgi-bin/webhook/send?key=ROBOT-KEY-0123456789"
        yield receiver


@pytest.fixture
def shelf(factory):
    return factory.location("WHE-A-01", warehouse=factory.warehouse("WHE"))


def receive(app, sku, location, lot, days, quantity=5):
    with app.app_context():
        stock.receive_stock(
            sku=sku, location=location.code, quantity=quantity, lot=lot, expiry=TODAY + timedelta(days=days), user="rx"
        )


@pytest.fixture
def milk(app, factory, shelf):
    """MILK-1 warns 7 days ahead: lot OLD expired yesterday, SOON expires in 3 days (at two
    places), LATE in 30; lot GONE expired but none left. YOGURT (no warning) has an expired lot."""
    factory.item("MILK-1", name="牛奶", tracking="lot", requires_expiry=True, expiry_warning_days=7)
    factory.item("YOGURT-1", name="酸奶", tracking="lot")
    other = factory.location("WHF-A-02", warehouse=factory.warehouse("WHF"))
    receive(app, "MILK-1", shelf, "OLD", -1)
    receive(app, "MILK-1", shelf, "SOON", 3)
    receive(app, "MILK-1", other, "SOON", 3, quantity=2)
    receive(app, "MILK-1", shelf, "LATE", 30)
    receive(app, "MILK-1", shelf, "GONE", -3, quantity=1)
    receive(app, "YOGURT-1", shelf, "Y-OLD", -2)
    receive(app, "YOGURT-1", shelf, "Y-SOON", 1)
    with app.app_context():
        stock.issue_stock(
            sku="MILK-1", location=shelf.code, quantity=1, lot="GONE", allow_expired=True, note="disposal", user="px"
        )
    return shelf


def expiry_events(app):
    with app.app_context():
        rows = db.session.execute(
            select(OutboxEvent.kind, OutboxEvent.lot_id, OutboxEvent.location_id, OutboxEvent.event_day)
            .where(OutboxEvent.kind != "low_stock")
            .order_by(OutboxEvent.id)
        ).all()
        db.session.remove()
        return rows


def check(app, **kw):
    with app.app_context():
        try:
            return expiry.check_expiry(**kw)
        finally:
            db.session.remove()


def lot_ids(app):
    with app.app_context():
        found = dict(db.session.execute(select(Lot.code, Lot.id)).tuples().all())
        db.session.remove()
        return found


def test_the_check_writes_expired_and_expiring_events_once_a_day(app, milk):
    first = check(app)

    ids = lot_ids(app)
    found = expiry_events(app)
    by_lot = sorted((kind, lot) for kind, lot, _place, _day in found)
    # OLD expired with stock; SOON within MILK-1's 7 days, at both places; YOGURT warns of nothing
    # ahead but its expired lot is reported; LATE is too far; GONE has no stock left.
    assert by_lot == sorted(
        [
            ("lot_expired", ids["OLD"]),
            ("lot_expiring", ids["SOON"]),
            ("lot_expiring", ids["SOON"]),
            ("lot_expired", ids["Y-OLD"]),
        ]
    )
    assert (first.expiring, first.expired) == (2, 2)
    assert {day for *_rest, day in found} == {TODAY}
    # Again the same day: nothing new.
    again = check(app)
    assert (again.expiring, again.expired) == (0, 0) and len(expiry_events(app)) == 4
    # The next day: each again (SOON is a day closer, OLD still expired).
    tomorrow = check(app, on=TODAY + timedelta(days=1))
    assert (tomorrow.expiring, tomorrow.expired) == (2, 2) and len(expiry_events(app)) == 8


def test_the_cli_command_runs_the_check(app, milk):
    result = app.test_cli_runner().invoke(args=["lots", "check-expiry"])
    assert result.exit_code == 0, result.output
    assert "2 expiring, 2 expired" in result.output
    result = app.test_cli_runner().invoke(args=["lots", "check-expiry"])
    assert "0 expiring, 0 expired" in result.output


def test_expiry_events_reach_the_robot_batched_per_kind_beside_low_stock(app, factory, milk, robot):
    subscribe_wecom(app, _warehouse(app, "WHE"), _warehouse(app, "WHF"))
    low_stock(app, factory, sku="BOLT-1", warehouse=_warehouse(app, "WHE"))
    check(app)

    report = dispatch(app, channel(robot))

    assert report.claimed == 5 and report.delivered == 5
    texts = robot.markdown()
    assert len(texts) == 3  # low stock, expiring, expired: one message each
    [low] = [t for t in texts if t.startswith(notifications.HEADER)]
    [soon] = [t for t in texts if t.startswith(notifications.HEADERS["lot_expiring"])]
    [gone] = [t for t in texts if t.startswith(notifications.HEADERS["lot_expired"])]
    assert "`BOLT-1`" in low and "SOON" not in low
    assert soon.count("`SOON`") == 2 and "WHE-A-01" in soon and "WHF-A-02" in soon
    assert (TODAY + timedelta(days=3)).isoformat() in soon
    assert f"({BASE_URL}/lots/{lot_ids(app)['SOON']})" in soon
    assert "`OLD`" in gone and "`Y-OLD`" in gone and "已过期" in gone
    with app.app_context():
        statuses = set(db.session.scalars(select(OutboxEvent.status)))
        db.session.remove()
    assert statuses == {"delivered"}


def _warehouse(app, code):
    with app.app_context():
        found = db.session.scalars(select(Warehouse).where(Warehouse.code == code)).one()
        db.session.expunge(found)
        db.session.remove()
        return found


def test_a_webhook_gets_the_lot_and_expiry(app, milk, robot):
    with app.app_context():
        notifications.create_target(
            name="ERP", kind="webhook", url=f"{robot.url}/hooks/erp", secret="s3cret", warehouses=["WHF"]
        )
    check(app)

    dispatch(app, channel(robot))

    [call] = robot.received  # WHF holds only lot SOON
    payload = json.loads(call.body)
    assert payload["type"] == "inventory.lot_expiring" and call.headers["X-Inventory-Event"] == "lot_expiring"
    assert payload["lot"] == "SOON" and payload["expiry"] == (TODAY + timedelta(days=3)).isoformat()
    assert payload["quantity"] == "2.000" and payload["location"] == "WHF-A-02"
    assert payload["url"] == f"{BASE_URL}/lots/{lot_ids(app)['SOON']}" and "reorder_point" not in payload


def test_lot_codes_and_names_cannot_post_headings_or_links(app, factory, shelf, robot):
    factory.item("EVIL-1", name="牛奶", tracking="lot")
    receive(app, "EVIL-1", shelf, "L`](http://phish.example/x)", -1)
    with app.app_context():
        db.session.execute(
            update(Item).where(Item.sku == "EVIL-1").values(name="奶\n# 紧急 [领奖](http://phish.example/login)")
        )
        db.session.commit()
    subscribe_wecom(app, _warehouse(app, "WHE"))
    check(app)

    dispatch(app, channel(robot))

    [text] = robot.markdown()
    assert not any(line.startswith("#") for line in text.split("\n")[1:])
    links = re.findall(r"(?<!\\)\]\(([^)]*)\)", re.sub(r"`[^`\n]*`", "", text))
    assert links and all(link.startswith(f"{BASE_URL}/lots/") for link in links)
    assert "http://phish" not in text


def test_the_gauge_counts_lots_expired_and_expiring(app, milk):
    with app.app_context():
        assert expiry.count_lots_by_state() == {"expired": 2, "expiring": 1}
        # In 10 days SOON and Y-SOON have expired too, and LATE is not yet within 7 days.
        assert expiry.count_lots_by_state(on=TODAY + timedelta(days=10)) == {"expired": 4, "expiring": 0}
        db.session.remove()


def test_the_gauge_is_scraped(app, make_app, milk):
    scraper = make_app(INVENTORY_METRICS_TOKEN=TOKEN).test_client()

    samples = scrape(scraper)

    assert samples[("inventory_lots_expiring", (("state", "expired"),))] == 2
    assert samples[("inventory_lots_expiring", (("state", "expiring"),))] == 1


def test_the_worker_checks_on_its_first_round_then_once_a_day(app, milk):
    with app.app_context():
        daily = expiry.DailyCheck()
        first = daily.run_if_due()
        assert first is not None and (first.expiring, first.expired) == (2, 2)
        assert daily.run_if_due() is None  # the same day: not again
        daily.checked_on = TODAY - timedelta(days=1)  # as if the day has changed since
        again = daily.run_if_due()
        assert again is not None and again.day == TODAY and (again.expiring, again.expired) == (0, 0)
        db.session.remove()
    assert len(expiry_events(app)) == 4
