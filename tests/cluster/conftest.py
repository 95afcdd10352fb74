"""The production topology on this machine (ops/cluster): one session-wide cluster brought up by
`ops/cluster/up` under a directory of its own and taken down at the end, plus the helpers the
tests share: seeding through the services, HTTP clients from distinct loopback addresses, a drain
of one hot SKU by many clients, and per-node ledger checks.

Needs what ops/cluster starts: mariadbd with galera-4, haproxy, nginx, redis-server and rsync.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pymysql
import pytest
import requests
from flask import Flask
from requests.adapters import HTTPAdapter
from sqlalchemy.engine import make_url

from app import create_app
from app.extensions import db
from app.services import items, locations, stock, users
from app.services.ledger import find_ledger_mismatches, find_total_mismatches
from tests.conftest import make_config
from tests.factories import DEFAULT_PASSWORD

ROOT = Path(__file__).resolve().parents[2]
# Low enough to prove a per-token limit is shared by every instance, high enough for the drains
# (they write; reads are limited separately).
READ_LIMIT_PER_MINUTE = 120
# Short, so that a job whose worker was killed runs again within seconds.
JOB_LEASE_SECONDS = 6


@dataclass
class Cluster:
    directory: Path
    urls: dict[str, str] = field(default_factory=dict)

    def _run(self, *args: str) -> str:
        env = {**os.environ, "INVENTORY_CLUSTER_DIR": str(self.directory)}
        env["INVENTORY_API_READ_LIMIT"] = f"{READ_LIMIT_PER_MINUTE}/minute"
        env["INVENTORY_JOBS_LEASE_SECONDS"] = str(JOB_LEASE_SECONDS)
        result = subprocess.run(
            [str(ROOT / "ops" / "cluster" / args[0]), *args[1:]],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, f"ops/cluster/{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def up(self, *, writers: str = "one", apps: int = 2) -> None:
        out = self._run("up", "--apps", str(apps), "--writers", writers)
        self.urls = dict(line.split("=", 1) for line in out.splitlines() if re.match(r"^[A-Z0-9_]+=", line))

    def kill(self, name: str) -> None:
        self._run("kill", name)

    def start(self, name: str) -> None:
        self._run("start", name)

    def down(self) -> None:
        self._run("down")

    @property
    def url(self) -> str:
        return self.urls["INVENTORY_URL"]

    def node_urls(self) -> dict[str, str]:
        return {key.removeprefix("DATABASE_URL_").lower(): v for key, v in self.urls.items() if key[-4:-1] == "_DB"}


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    directory = Path(tempfile.mkdtemp(prefix="inventory-cluster-"))
    cluster = Cluster(directory)
    try:
        cluster.up()
        yield cluster
    finally:
        cluster.down()


@pytest.fixture(scope="session")
def cluster_app(cluster: Cluster) -> Flask:
    """An app in the test process, on the cluster's database through the router: for seeding."""
    return create_app(make_config(cluster.urls["DATABASE_URL"]))


@dataclass(frozen=True)
class HotSku:
    sku: str
    location: str
    token: str


def seed_hot_sku(app: Flask, quantity: int) -> HotSku:
    """A new item with `quantity` units at a new location, and a write token of a new clerk."""
    tag = uuid.uuid4().hex[:8].upper()
    with app.app_context():
        warehouse = locations.create_warehouse(code=f"W{tag}", name="集群仓库")
        location = locations.create_location(warehouse=warehouse.code, code=f"W{tag}-A-01-01")
        item = items.create_item(sku=f"HOT-{tag}", name="热销螺丝 Hot screw")
        if quantity:
            stock.receive_stock(sku=item.sku, location=location.code, quantity=quantity, user="seed")
        users.create_user(username=f"clerk{tag.lower()}", password=DEFAULT_PASSWORD, role="clerk")
        _, token = users.create_token(username=f"clerk{tag.lower()}", scope="write", name="cluster test")
        db.session.remove()
    return HotSku(sku=item.sku, location=location.code, token=token)


@pytest.fixture
def seed(cluster_app: Flask) -> Callable[[int], HotSku]:
    return lambda quantity: seed_hot_sku(cluster_app, quantity)


class SourceAddressAdapter(HTTPAdapter):
    """Connect from a given loopback address: to nginx, each one is another client."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__(pool_maxsize=4)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def client_from(address: str = "127.0.0.1") -> requests.Session:
    session = requests.Session()
    session.mount("http://", SourceAddressAdapter(address))
    return session


@dataclass
class DrainResult:
    issued: int = 0
    refused: int = 0
    other: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def issue_once(session: requests.Session, url: str, hot: HotSku, deadline: float) -> int:
    """One stock-out of 1 unit under its own Idempotency-Key, re-sent on 5xx or a broken connection
    until it is answered 201 or 409: a response lost with its node or app must not hide whether
    the movement was written (a replayed key returns the movement that was). An app killed while
    nginx relays its answer breaks the body mid-way (ChunkedEncodingError, not a ConnectionError:
    seen in CI), and one killed after the request was sent may leave it unanswered (a read timeout);
    both are lost responses, re-sent under the same key."""
    key = uuid.uuid4().hex
    body = {"sku": hot.sku, "location": hot.location, "quantity": "1"}
    headers = {"Authorization": f"Bearer {hot.token}", "Idempotency-Key": key}
    while time.monotonic() < deadline:
        try:
            response = session.post(f"{url}/api/v1/stock/issue", json=body, headers=headers, timeout=30)
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError, requests.Timeout):
            continue
        if response.status_code < 500:
            return response.status_code
    raise AssertionError("a stock-out never got an answer before the deadline")


def drain(
    url: str, hot: HotSku, *, clients: int = 64, deadline_seconds: float = 150, progress: DrainResult | None = None
) -> DrainResult:
    """`clients` threads issue one unit at a time until each is refused (409)."""
    result = progress or DrainResult()
    deadline = time.monotonic() + deadline_seconds
    errors: list[BaseException] = []

    def run(n: int) -> None:
        session = client_from()
        try:
            while True:
                status = issue_once(session, url, hot, deadline)
                with result.lock:
                    if status == 201:
                        result.issued += 1
                    elif status == 409:
                        result.refused += 1
                        return
                    else:
                        result.other.append(status)
                        return
        except BaseException as error:
            errors.append(error)
        finally:
            session.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=deadline_seconds + 35)
    assert not any(thread.is_alive() for thread in threads), "a client hung"
    if errors:
        raise errors[0]
    return result


def wait_until(condition: Callable[[], bool], deadline: float, what: str) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {deadline} s")


def connect(url: str) -> pymysql.connections.Connection:
    """A plain connection to the database `url` names (a node, or the router)."""
    parsed = make_url(url)
    return pymysql.connect(
        host=parsed.host,
        port=parsed.port,
        user=parsed.username,
        password=parsed.password,
        database=parsed.database,
        charset="utf8mb4",
    )


def node_facts(url: str, hot: HotSku) -> tuple[Decimal, int, Decimal]:
    """On one node: the hot level's quantity, the number of its issue movements and their total."""
    connection = connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT s.quantity FROM stock_levels s JOIN items i ON i.id = s.item_id "
                "JOIN locations l ON l.id = s.location_id WHERE i.sku = %s AND l.code = %s",
                (hot.sku, hot.location),
            )
            (quantity,) = cursor.fetchone()
            cursor.execute(
                "SELECT COUNT(*), COALESCE(SUM(m.quantity), 0) FROM movements m JOIN items i ON i.id = m.item_id "
                "WHERE i.sku = %s AND m.kind = 'issue'",
                (hot.sku,),
            )
            count, total = cursor.fetchone()
    finally:
        connection.close()
    return Decimal(quantity), int(count), Decimal(total)


def ledger_clean(url: str) -> tuple[list[Any], list[Any]]:
    app = create_app(make_config(url))
    with app.app_context():
        found = (find_ledger_mismatches(), find_total_mismatches())
        db.session.remove()
        db.engine.dispose()
    return found
