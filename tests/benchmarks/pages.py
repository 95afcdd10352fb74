"""Page benchmark (a script, not a test): items list, search, filters, item detail and ledger
pages with 100,000 items and 1,000,000 movements on MariaDB, and the lot and serial pages with a
share of lot-tracked items (lots with expiry dates, FEFO issues) and serial-tracked ones.

    .venv/bin/python tests/benchmarks/pages.py [--items 100000] [--movements 1000000] [--runs 40]
        [--lot-items 2000] [--serial-items 500] [--only expiring ...]

Builds (once; re-runs reuse it) the database BENCH_DATABASE_URL (default
mysql+pymysql://root@127.0.0.1:3306/inventory_bench): `flask seed-demo` for the items and their
opening stock, then extra ledger lines through the stock service's bulk paths (receive_lines and
issue_lines) until the ledger holds the target, then the tracked items (LOT-nnnnn: three lots
each, expiring from a month ago to half a year ahead, a FEFO pick from every tenth; SER-nnnnn:
twenty serials each, two issued). Then it requests each page in-process as a
signed-in admin and prints the server-side p50/p95 and the SQL statements each page issued.
`--only TEXT` (repeatable) measures just the pages whose name contains one of the texts, so a
change to one page can be measured before and after without loading the shared machine.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import statistics
import sys
import time
from datetime import timedelta
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
from app.models import Item, Lot, Movement, Serial, User
from app.models.types import utcnow
from app.services import catalog, items, stock, users
from app.services.errors import InsufficientStock

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


LOTS_PER_ITEM = 3
SERIALS_PER_ITEM = 20


def lot_sku(n: int) -> str:
    return f"LOT-{n:05d}"


def serial_sku(n: int) -> str:
    return f"SER-{n:05d}"


def _seed_tracked(app: Any, lot_items: int, serial_items: int) -> None:
    """Lot-tracked and serial-tracked items with their stock, received through the stock service
    (once: a database that has LOT-00001 already keeps what it has)."""
    wh1 = location_codes("WH1")
    with app.app_context():
        if db.session.scalar(select(Item.id).where(Item.sku == lot_sku(1))) is not None:
            return
        started = time.perf_counter()
        items.create_items(
            [
                items.ItemInput(sku=lot_sku(n), name=f"批次药品 {n}", tracking="lot", expiry_warning_days=30)
                for n in range(1, lot_items + 1)
            ]
            + [
                items.ItemInput(sku=serial_sku(n), name=f"序列号设备 {n}", tracking="serial")
                for n in range(1, serial_items + 1)
            ]
        )
        today = utcnow().date()
        lines = [
            stock.PickLine(
                lot_sku(n),
                wh1[n % len(wh1)],  # an item's lots side by side: FEFO chooses among them
                10 + (n + k) % 40,
                lot=f"B{n:05d}-{k}",
                expiry=today + timedelta(days=-30 + (n * 7 + k * 61) % 210),
            )
            for n in range(1, lot_items + 1)
            for k in range(LOTS_PER_ITEM)
        ]
        lines += [
            stock.PickLine(
                serial_sku(n),
                wh1[n % len(wh1)],
                SERIALS_PER_ITEM,
                serials=[f"SN{n:05d}-{k:03d}" for k in range(SERIALS_PER_ITEM)],
            )
            for n in range(1, serial_items + 1)
        ]
        for start in range(0, len(lines), 1000):
            stock.receive_lines(lines=lines[start : start + 1000], user="bench", reference="BENCH-LOTS")
        for n in range(1, lot_items + 1, 10):  # FEFO picks: issues over the earliest lots
            place = wh1[n % len(wh1)]
            with contextlib.suppress(InsufficientStock):  # only expired lots there
                stock.issue_stock(sku=lot_sku(n), location=place, quantity=12, user="bench", reference=f"SO-{n}")
        for n in range(1, serial_items + 1):
            serials = [f"SN{n:05d}-000", f"SN{n:05d}-001"]
            stock.issue_stock(
                sku=serial_sku(n),
                location=wh1[n % len(wh1)],
                quantity=2,
                serials=serials,
                user="bench",
                reference=f"SO-S{n}",
            )
        lots = db.session.scalar(select(func.count()).select_from(Lot))
        serials_count = db.session.scalar(select(func.count()).select_from(Serial))
        db.session.remove()
    print(f"tracked items ready: {lots:,} lots, {serials_count:,} serials in {time.perf_counter() - started:.0f} s")


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
        lot_item = lot_sku(11)  # a FEFO pick took from its earliest lot
        lot_id = db.session.scalar(
            select(Lot.id).join(Item, Item.id == Lot.item_id).where(Item.sku == lot_item).order_by(Lot.id)
        )
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
        "item detail: lot item": f"/items/{lot_item}",
        "item detail: serial item": f"/items/{serial_sku(7)}",
        "lot page": f"/lots/{lot_id}",
        "lot trace CSV": f"/lots/{lot_id}/trace.csv",
        "serial page": f"/items/{serial_sku(7)}/serials/SN00007-005",
        "serial page: issued": f"/items/{serial_sku(7)}/serials/SN00007-000",
        "expiring (30 days)": "/lots/expiring",
        "expiring (180 days)": "/lots/expiring?days=180",
        "expiring, one warehouse": "/lots/expiring?days=90&warehouse=WH1",
        "expiring, one SKU": f"/lots/expiring?days=180&sku={lot_item}",
        "expiring CSV (180 days)": "/lots/expiring.csv?days=180",
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
            response.get_data()  # a streamed CSV is written while it is read
            response.close()
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
    parser.add_argument("--lot-items", type=int, default=2000)
    parser.add_argument("--serial-items", type=int, default=500)
    parser.add_argument("--seed-only", action="store_true")
    parser.add_argument("--only", action="append", default=[], metavar="TEXT", help="pages whose name contains TEXT")
    args = parser.parse_args()
    _create_database()
    app = _app()
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
    _seed_items(app, args.items)
    _seed_movements(app, args.items, args.movements)
    _seed_tracked(app, args.lot_items, args.serial_items)
    if args.seed_only:
        return
    client = _signed_in_client(app)
    # As a worker forked from gunicorn's preloaded master finds it (gunicorn_hooks.pre_fork): what
    # was loaded before serving sits in the collector's permanent generation. The seeding above
    # leaves garbage of its own, collected first so that it is not frozen with the rest.
    gc.collect()
    gc.freeze()
    print(f"\n{'page':34} {'p50 ms':>8} {'p95 ms':>8} {'SQL':>4}")
    pages = _pages(app, args.items)
    chosen = {name: path for name, path in pages.items() if not args.only or any(t in name for t in args.only)}
    if not chosen:
        raise SystemExit(f"no page name contains {' or '.join(args.only)}; the pages: {', '.join(pages)}")
    for name, path in chosen.items():
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
