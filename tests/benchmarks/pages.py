"""Page benchmark (a script, not a test): items list, search, filters, item detail and ledger
pages with 100,000 items and 1,000,000 movements on MariaDB.

    .venv/bin/python tests/benchmarks/pages.py [--items 100000] [--movements 1000000] [--runs 40]

Builds (once; re-runs reuse it) the database BENCH_DATABASE_URL (default
mysql+pymysql://root@127.0.0.1:3306/inventory_bench): `flask seed-demo` for the items and their
opening stock, then extra ledger lines through the stock service's bulk paths (receive_lines and
issue_lines) until the ledger holds the target. Then it requests each page in-process as a
signed-in admin and prints the server-side p50/p95 and the SQL statements each page issued.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pymysql
from sqlalchemy import event, func, select
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app import create_app
from app.config import Config
from app.demo import demo_sku, location_codes
from app.extensions import db, login_manager
from app.models import Item, Movement, User
from app.services import catalog, stock, users

URL = os.environ.get("BENCH_DATABASE_URL", "mysql+pymysql://root@127.0.0.1:3306/inventory_bench")
RECEIVE_BATCH = 5000
PICK_BATCH = 500


def _create_database() -> None:
    url = make_url(URL)
    conn = pymysql.connect(host=url.host, port=url.port or 3306, user=url.username, password=url.password or "")
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{url.database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    conn.close()


def _app() -> Any:
    return create_app(
        Config(
            SECRET_KEY="bench-" + "x" * 40, INVENTORY_ENV="testing", SQLALCHEMY_DATABASE_URI=URL + "?charset=utf8mb4"
        )
    )


def _seed_items(app: Any, count: int) -> None:
    with app.app_context():
        have = db.session.scalar(select(func.count()).select_from(Item)) or 0
    if have >= count:
        return
    started = time.perf_counter()
    result = app.test_cli_runner().invoke(args=["seed-demo", "--items", str(count)])
    if result.exit_code != 0:
        raise SystemExit(result.output)
    print(f"seed-demo --items {count}: {time.perf_counter() - started:.0f} s", flush=True)


def _seed_movements(app: Any, items: int, target: int) -> None:
    """Receipts in bulk, then every tenth batch a multi-line pick of what was received, so the
    ledger has issues too and stock never goes negative."""
    wh1 = location_codes("WH1")
    with app.app_context():
        have = db.session.scalar(select(func.count()).select_from(Movement)) or 0
        started, n = time.perf_counter(), have
        batch = 0
        while have < target:
            size = min(RECEIVE_BATCH, target - have)
            lines = [
                stock.PickLine(demo_sku(1 + (n + k) * 7919 % items), wh1[(n + k) % len(wh1)], 1 + (n + k) % 20)
                for k in range(size)
            ]
            have += stock.receive_lines(lines=lines, user="bench", reference=f"BENCH-{batch}")
            n += size
            batch += 1
            if batch % 10 == 0 and have + PICK_BATCH <= target:
                picks = {(line.sku, line.location): line for line in lines[:PICK_BATCH]}.values()
                have += len(stock.issue_lines(lines=list(picks), user="bench", reference=f"PICK-{batch}"))
            if batch % 20 == 0:
                print(f"  {have:,} movements after {time.perf_counter() - started:.0f} s", flush=True)
        db.session.remove()
    print(f"ledger ready: {target:,} movements", flush=True)


def _signed_in_client(app: Any) -> Any:
    with app.app_context():
        admin = db.session.scalar(select(User).where(User.username == "bench-admin"))
        if admin is None:
            admin = users.create_user(username="bench-admin", password="bench-pass-123", role="admin")
        user_id = admin.get_id()
    client = app.test_client()
    environ = {"REMOTE_ADDR": "127.0.0.1", "HTTP_USER_AGENT": client.environ_base["HTTP_USER_AGENT"]}
    with app.test_request_context(environ_base=environ):
        ident = login_manager._session_identifier_generator()
    with client.session_transaction() as session:
        session.update({"_user_id": user_id, "_fresh": True, "_id": ident})
    return client


def _pages(app: Any, items: int) -> dict[str, str]:
    with app.app_context():
        deep_sku = demo_sku(int(items * 0.9))
        deep_item = db.session.scalar(select(Item.id).where(Item.sku == deep_sku))
        deep_movement = (db.session.scalar(select(func.max(Movement.id))) or 0) // 2
        busy = demo_sku(7)
    return {
        "items: first page": "/items",
        "items: deep page (90%)": f"/items?after={catalog.encode_cursor(deep_sku, deep_item)}",
        "items: sorted by name desc": "/items?sort=name&dir=desc",
        "items: search SKU": "/items?q=DEMO-0421",
        "items: search SKU contains": "/items?q=000123",
        "items: search, no match": "/items?q=zzqq",
        "items: search barcode": "/items?q=6900000042",
        "items: search 螺丝": "/items?q=螺丝",
        "items: pinyin initials lsd": "/items?q=lsd",
        "items: pinyin luosi": "/items?q=luosi",
        "items: low stock": "/items?low=1",
        "items: warehouse WH2": "/items?warehouse=WH2",
        "items: category + low": "/items?category=1&low=1",
        "items: category + low, dense": "/items?category=3&low=1",
        "item detail": f"/items/{busy}",
        "item detail: ledger page 2": f"/items/{busy}?after={catalog.encode_cursor(deep_movement * 2)}",
        "ledger: first page": "/movements",
        "ledger: deep page": f"/movements?after={catalog.encode_cursor(deep_movement)}",
        "ledger: by item": f"/movements?sku={busy}",
        "ledger: by location": "/movements?location=WH1-A-01-01",
        "ledger: by kind issue": "/movements?kind=issue",
        "low-stock page": "/low-stock",
        "dashboard": "/",
    }


def _measure(app: Any, client: Any, path: str, runs: int) -> tuple[float, float, int]:
    with app.app_context():
        engine = db.engine
    counts: list[int] = []
    timings: list[float] = []

    def count(*_args: Any) -> None:
        counts[-1] += 1

    event.listen(engine, "before_cursor_execute", count)
    try:
        for n in range(runs + 3):
            counts.append(0)
            started = time.perf_counter()
            response = client.get(path)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                raise SystemExit(f"{path}: HTTP {response.status_code}")
            if n >= 3:  # warm-up requests are not counted
                timings.append(elapsed)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    timings.sort()
    p95 = timings[min(len(timings) - 1, round(0.95 * len(timings)) - 1)]
    return statistics.median(timings), p95, counts[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--movements", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--seed-only", action="store_true")
    args = parser.parse_args()
    _create_database()
    app = _app()
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
    _seed_items(app, args.items)
    _seed_movements(app, args.items, args.movements)
    if args.seed_only:
        return
    client = _signed_in_client(app)
    print(f"\n{'page':34} {'p50 ms':>8} {'p95 ms':>8} {'SQL':>4}")
    for name, path in _pages(app, args.items).items():
        p50, p95, statements = _measure(app, client, path, args.runs)
        print(f"{name:34} {p50:8.1f} {p95:8.1f} {statements:4d}", flush=True)
    with app.app_context():
        totals = (
            db.session.scalar(select(func.count()).select_from(Item)),
            db.session.scalar(select(func.count()).select_from(Movement)),
        )
    print(f"\n{totals[0]:,} items, {totals[1]:,} movements on {make_url(URL).render_as_string(hide_password=True)}")


if __name__ == "__main__":
    main()
