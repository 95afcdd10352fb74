"""Stock-out throughput of the stock service against the physical limit, on MariaDB.

    python tests/benchmarks/stock_out.py [--seconds 4] [--workers 1,4,16] [--mysql-url URL]

Creates its own database, 10,000 items spread over one location plus one hot item, then for each
target (one hot stock level / 10,000 spread), worker count and worker kind (threads / processes)
runs for a few seconds:
  service  app.services.stock.issue_stock(...) in an app context, as views and the API call it
  raw      the same transaction as plain PyMySQL statements (resolve, SELECT ... FOR UPDATE,
           UPDATE, INSERT, COMMIT), READ COMMITTED: the physical limit of this machine
and prints tx/s, p50/p99 latency and service/raw. Verifies the ledger and drops the database.
Goal: service >= 0.6 x raw on the hot item with 4 worker processes.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pymysql

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

LOCATION = "BW-A-01-01"
HOT = "HOT-000001"
SPREAD = 10_000


def spread_sku(n: int) -> str:
    return f"BENCH-{n:06d}"


@dataclass
class Result:
    count: int
    latencies: list[float]


def make_app(url: str):  # type: ignore[no-untyped-def]
    from app import create_app
    from app.config import Config

    return create_app(Config(SECRET_KEY="bench-" + "x" * 32, SQLALCHEMY_DATABASE_URI=url, INVENTORY_ENV="testing"))


def setup_database(server: str) -> tuple[str, str]:
    from flask_migrate import upgrade

    from app.extensions import db
    from app.services import items, locations, stock

    name = f"inventory_bench_{uuid.uuid4().hex[:8]}"
    conn = connect(server)
    conn.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    conn.close()
    url = f"{server}/{name}?charset=utf8mb4"
    app = make_app(url)
    with app.app_context():
        upgrade()
        locations.create_warehouse(code="BW", name="Bench")
        locations.create_location(warehouse="BW", code=LOCATION)
        rows = [items.check_item(sku=spread_sku(n), name=f"螺丝钉 {n}") for n in range(1, SPREAD + 1)]
        rows.append(items.check_item(sku=HOT, name="热门 Hot item"))
        items.create_items(rows)
        for start in range(0, len(rows), 2000):
            lines = [stock.PickLine(r.sku, LOCATION, 10**9) for r in rows[start : start + 2000]]
            stock.receive_lines(lines=lines, user="bench", reference="OPENING")
        db.session.remove()
        db.engine.dispose()
    return name, url


def connect(server_or_url: str, database: str | None = None) -> pymysql.connections.Connection:
    from sqlalchemy.engine import make_url

    u = make_url(server_or_url)
    return pymysql.connect(
        host=u.host or "127.0.0.1",
        port=u.port or 3306,
        user=u.username or "root",
        password=u.password or "",
        database=database,
        charset="utf8mb4",
        autocommit=True,
    )


def skus_for(target: str, worker: int) -> list[str]:
    if target == "hot":
        return [HOT]
    rng = random.Random(worker)
    return [spread_sku(rng.randint(1, SPREAD)) for _ in range(5000)]


def run_service(url: str, target: str, worker: int, start_at: float, seconds: float, app=None) -> Result:  # type: ignore[no-untyped-def]
    from app.extensions import db
    from app.services.stock import issue_stock

    app = app or make_app(url)
    skus = skus_for(target, worker)
    latencies: list[float] = []
    with app.app_context():
        issue_stock(sku=skus[0], location=LOCATION, quantity=1, user="warmup")
        _sleep_until(start_at)
        end = start_at + seconds
        n = 0
        while (now := time.perf_counter_ns()) < end * 1e9 + 0 and time.time() < end:
            issue_stock(sku=skus[n % len(skus)], location=LOCATION, quantity=1, user="bench", reference="SO-1")
            latencies.append((time.perf_counter_ns() - now) / 1e6)
            n += 1
        db.session.remove()
    return Result(len(latencies), latencies)


RESOLVE = (
    "SELECT items.id, items.archived, items.reorder_point, locations.id, locations.active "
    "FROM items JOIN locations ON 1 = 1 WHERE items.sku = %s AND locations.code = %s"
)
LOCK = "SELECT id, quantity FROM stock_levels WHERE item_id = %s AND location_id = %s FOR UPDATE"
UPDATE = "UPDATE stock_levels SET quantity = %s, updated_at = %s WHERE id = %s"
INSERT = (
    "INSERT INTO movements (kind, item_id, from_location_id, quantity, from_balance, reference, username, created_at) "
    "VALUES ('issue', %s, %s, %s, %s, %s, %s, %s)"
)


def run_raw(url: str, target: str, worker: int, start_at: float, seconds: float, app=None) -> Result:  # type: ignore[no-untyped-def]
    from sqlalchemy.engine import make_url

    conn = connect(url, make_url(url).database)
    conn.autocommit(False)
    cur = conn.cursor()
    cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
    skus = skus_for(target, worker)
    latencies: list[float] = []
    _sleep_until(start_at)
    end = start_at + seconds
    n = 0
    while time.time() < end:
        began = time.perf_counter_ns()
        cur.execute(RESOLVE, (skus[n % len(skus)], LOCATION))
        item_id, _archived, _rp, location_id, _active = cur.fetchone()
        cur.execute(LOCK, (item_id, location_id))
        level_id, quantity = cur.fetchone()
        balance = quantity - 1
        now = datetime.now(UTC).replace(tzinfo=None)
        cur.execute(UPDATE, (balance, now, level_id))
        cur.execute(INSERT, (item_id, location_id, Decimal(1), balance, "SO-1", "raw", now))
        conn.commit()
        latencies.append((time.perf_counter_ns() - began) / 1e6)
        n += 1
    conn.close()
    return Result(len(latencies), latencies)


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))


_barrier = None


def _init_process(barrier) -> None:  # type: ignore[no-untyped-def]
    global _barrier
    _barrier = barrier


def _process_job(args: tuple[str, str, str, int, float]) -> Result:
    """Build the app (imports take a while in a fresh interpreter), then start with the others."""
    impl, url, target, worker, seconds = args
    app = make_app(url) if impl == "service" else None
    _barrier.wait()  # type: ignore[union-attr]
    start_at = time.time() + 0.2
    return (run_service if impl == "service" else run_raw)(url, target, worker, start_at, seconds, app=app)


def measure(impl: str, kind: str, url: str, target: str, workers: int, seconds: float) -> Result:
    if kind == "process":
        context = multiprocessing.get_context("spawn")
        jobs = [(impl, url, target, w, seconds) for w in range(workers)]
        barrier = context.Barrier(workers)
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_process, initargs=(barrier,)) as pool:
            parts = list(pool.map(_process_job, jobs))
    else:
        app = make_app(url) if impl == "service" else None
        start_at = time.time() + 1.0
        parts = [Result(0, []) for _ in range(workers)]
        fn = run_service if impl == "service" else run_raw

        def job(w: int) -> None:
            parts[w] = fn(url, target, w, start_at, seconds, app=app)

        threads = [threading.Thread(target=job, args=(w,)) for w in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if app is not None:
            from app.extensions import db

            with app.app_context():
                db.engine.dispose()
    latencies = [x for p in parts for x in p.latencies]
    return Result(sum(p.count for p in parts), latencies)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def verify_ledger(url: str) -> int:
    from app.extensions import db
    from app.services.ledger import find_ledger_mismatches

    app = make_app(url)
    with app.app_context():
        mismatches = find_ledger_mismatches()
        db.engine.dispose()
    return len(mismatches)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--workers", default="1,4,16")
    parser.add_argument("--kinds", default="thread,process")
    parser.add_argument("--targets", default="hot,spread")
    parser.add_argument("--mysql-url", default="mysql+pymysql://root@127.0.0.1:3306")
    args = parser.parse_args()
    print(f"setting up a database with {SPREAD:,} items and one hot item ...", flush=True)
    name, url = setup_database(args.mysql_url)
    rows = []
    try:
        header = (
            f"{'target':7} {'kind':8} {'workers':>7} | {'service tx/s':>12} {'p50 ms':>7} {'p99 ms':>7} | "
            f"{'raw tx/s':>9} {'p50 ms':>7} {'p99 ms':>7} | {'ratio':>5}"
        )
        print(header)
        print("-" * len(header))
        for target in args.targets.split(","):
            for kind in args.kinds.split(","):
                for workers in (int(w) for w in args.workers.split(",")):
                    service = measure("service", kind, url, target, workers, args.seconds)
                    raw = measure("raw", kind, url, target, workers, args.seconds)
                    s_tps, r_tps = service.count / args.seconds, raw.count / args.seconds
                    row = (
                        target,
                        kind,
                        workers,
                        s_tps,
                        percentile(service.latencies, 50),
                        percentile(service.latencies, 99),
                        r_tps,
                        percentile(raw.latencies, 50),
                        percentile(raw.latencies, 99),
                        s_tps / r_tps if r_tps else float("nan"),
                    )
                    rows.append(row)
                    print(
                        f"{row[0]:7} {row[1]:8} {row[2]:>7} | {row[3]:>12.0f} {row[4]:>7.2f} {row[5]:>7.2f} | "
                        f"{row[6]:>9.0f} {row[7]:>7.2f} {row[8]:>7.2f} | {row[9]:>5.2f}",
                        flush=True,
                    )
        mismatches = verify_ledger(url)
        print(f"ledger check: {'OK, every stock level reconciles' if not mismatches else f'{mismatches} MISMATCHES'}")
        goal = [r for r in rows if r[0] == "hot" and r[1] == "process" and r[2] == 4]
        if goal:
            verdict = "met" if goal[0][9] >= 0.6 else "NOT met"
            print(f"goal (hot item, 4 processes, service >= 0.6 x raw): {goal[0][9]:.2f} -> {verdict}")
        return 1 if mismatches else 0
    finally:
        conn = connect(args.mysql_url)
        conn.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


if __name__ == "__main__":
    raise SystemExit(main())
