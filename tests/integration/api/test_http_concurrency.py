"""Many HTTP clients at once against a real server on MariaDB: a hot SKU issued until it runs out
never goes negative and the ledger reconciles; duplicates under one Idempotency-Key write once."""

from __future__ import annotations

import http.client
import json
import threading
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from app.extensions import db
from app.models import Movement, StockLevel
from app.services.ledger import find_ledger_mismatches

MYSQL_ONLY = pytest.mark.parametrize("backend", [pytest.param("mysql", marks=pytest.mark.mysql)], indirect=True)
CLIENTS = 32


@pytest.fixture
def server(make_app) -> Iterator[tuple[object, int]]:
    """The app behind a threaded HTTP server on a free loopback port."""
    app = make_app(SQLALCHEMY_ENGINE_OPTIONS={"pool_size": CLIENTS + 8, "max_overflow": 10})
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield app, httpd.server_port
    httpd.shutdown()
    thread.join(timeout=10)


def _post(port: int, path: str, body: dict[str, object], headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", path, json.dumps(body), {**headers, "Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def _together(count: int, work) -> list[object]:
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def run(n: int) -> None:
        barrier.wait()
        results[n] = work(n)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a client hung"
    return results


@MYSQL_ONLY
def test_clients_issuing_a_hot_sku_until_it_runs_out_never_oversell(server, factory):
    app, port = server
    item, location = factory.item(), factory.location()
    factory.stock(item, location, 100)
    headers = {"Authorization": f"Bearer {factory.token(factory.user(role='clerk'))}"}
    body = {"sku": item.sku, "location": location.code, "quantity": "1"}

    def drain(_: int) -> Counter[int]:
        statuses: Counter[int] = Counter()
        while True:
            status, _answer = _post(port, "/api/v1/stock/issue", body, headers)
            statuses[status] += 1
            if status != 201:
                return statuses

    totals = sum(_together(CLIENTS, drain), Counter())
    assert totals == Counter({201: 100, 409: CLIENTS})
    with app.app_context():
        assert db.session.scalar(select(StockLevel.quantity).where(StockLevel.item_id == item.id)) == 0
        issued = db.session.scalar(select(func.count()).select_from(Movement).where(Movement.kind == "issue"))
        assert issued == 100
        balances = db.session.scalars(select(Movement.from_balance).where(Movement.kind == "issue")).all()
        assert sorted(balances) == [Decimal(n) for n in range(100)]
        assert find_ledger_mismatches() == []


@MYSQL_ONLY
def test_concurrent_duplicates_with_one_idempotency_key_write_one_movement(server, factory):
    app, port = server
    item, location = factory.item(), factory.location()
    factory.stock(item, location, 50)
    headers = {
        "Authorization": f"Bearer {factory.token(factory.user(role='clerk'))}",
        "Idempotency-Key": "order-777-pick",
    }
    body = {"sku": item.sku, "location": location.code, "quantity": "3", "reference": "SO-777"}
    answers = _together(16, lambda _: _post(port, "/api/v1/stock/issue", body, headers))
    assert {status for status, _ in answers} == {201}
    assert len({json.dumps(answer, sort_keys=True) for _, answer in answers}) == 1
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Movement).where(Movement.kind == "issue")) == 1
        assert db.session.scalar(select(StockLevel.quantity).where(StockLevel.item_id == item.id)) == 47
