"""HTTP stock-out benchmark: POST /api/v1/stock/issue under gunicorn against MariaDB, next to the
physical limit (the same locked transaction sent straight through PyMySQL) measured in the same run.

    .venv/bin/python tests/benchmarks/api_stock_out.py [--duration 10] [--connections 16,64]
        [--workers N] [--threads N] [--worker-class sync|gthread] [--profile] [--items 10000]
        [--tracing 0.1]

What it does, in order:
1. creates a fresh MariaDB database (root@127.0.0.1:3306), `flask db upgrade`, `flask seed-demo`,
   a clerk with a write token, and tops up the hot SKU and the 10,000 spread SKUs;
2. starts gunicorn with gunicorn.conf.py in production mode (INVENTORY_ENV=production, JSON logs,
   Prometheus multiprocess metrics on, RATELIMIT_ENABLED=false) and its shipped worker settings
   (4 sync workers), unless --workers/--threads/--worker-class override them;
3. the ceilings, per connection count (issue 19; --no-ceilings skips them): the app's cheapest
   authenticated request (GET /api/v1/warehouses: token from the cache, one small read, metrics, a
   JSON log line) and bare Flask answering the stock-out POST (bare_flask.py: no database, auth,
   metrics or logs) under the same worker settings. No way of applying stock-outs passes either
   rate on this machine, so they bound the ratio the full stack can reach;
4. for each scenario (one hot SKU / 10,000 SKUs spread / `fefo`: one hot lot-tracked SKU with five
   lots at one place, issued without naming a lot so that first-expired-first-out chooses /
   `reserve`: POST /api/v1/reservations reserving one unit of the hot SKU at its place, issue 18)
   and each connection count: wrk with a Lua script posting the body, then the raw PyMySQL
   stock-out transaction on the app's schema from as many processes (for `fefo` and `reserve`, the
   hot SKU's: one hot place's limit);
5. per scenario, the honest limit ("plain"): the seed's plain transaction (SELECT ... FOR UPDATE,
   UPDATE, INSERT of a ledger row, COMMIT) on a bare two-table schema without triggers, in its own
   database, from 1, 2, 4, 8 and 16 threads of one process; the best of them is the limit
   (issue 19: as many Python processes as connections starve the database on a small machine,
   so "raw" alone understates what the database can do);
6. prints req/s, p50/p99, server CPU per request (gunicorn workers and mariadbd/mysqld, from
   /proc), statements per request (the server's global Questions delta: other clients of the
   same server show in it), stock-out batch sizes (from /metrics, when stock-outs are combined),
   the ratios to the plain and to the raw limit, the ceilings' share of the plain limit, and runs
   `flask check-ledger`; with --profile, a py-spy profile of one worker;
7. stops gunicorn and drops the databases.

--tracing RATIO turns OpenTelemetry on in the workers (parent-based trace-id ratio sampling at
RATIO, OTLP/HTTP export to a receiver this script runs on 127.0.0.1), to measure what tracing
costs per request; without it no OTEL_* variable reaches gunicorn and tracing is off.

Needs wrk (`apt-get install -y wrk`) and, for --profile, py-spy (requirements-dev.txt).
The machine's other load shows in the figures: compare ratios within one run, not across runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import random
import re
import runpy
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pymysql

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
MYSQL = dict(host="127.0.0.1", port=3306, user="root", password="", charset="utf8mb4")
HOT_STOCK = Decimal(50_000_000)
SPREAD_STOCK = Decimal(1_000_000)
FEFO_SKU = "FEFO-HOT"


def _combining_default() -> str:
    """What the app does when INVENTORY_COMBINE_STOCK_OUTS is unset, read from its Config."""
    sys.path.insert(0, str(ROOT))
    from app.config import Config

    return f"(default: {'on' if Config.INVENTORY_COMBINE_STOCK_OUTS else 'off'})"


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_app_ms: float | None = None
    cpu_db_ms: float | None = None
    statements: float | None = None  # per request, from the server's Questions counter
    batches: dict[str, dict[str, float]] | None = None  # the batch size histogram before and after

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


# ---------------------------------------------------------------- database and data


def _admin() -> pymysql.connections.Connection:
    return pymysql.connect(**MYSQL, autocommit=True)


def create_database() -> str:
    name = f"inventory_bench_{secrets.token_hex(4)}"
    with _admin() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    return name


def drop_database(name: str) -> None:
    with _admin() as conn, conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


def flask(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [str(VENV_BIN / "flask"), "--app", "wsgi", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"flask {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def prepare_data(env: dict[str, str], items: int) -> tuple[str, list[tuple[str, str]], str]:
    """Schema, demo data, a clerk token; returns the token, the spread (sku, location) pairs, the hot pair's sku."""
    flask(env, "db", "upgrade")
    started = time.monotonic()
    flask(env, "seed-demo", "--items", str(items))
    print(f"seeded {items} items in {time.monotonic() - started:.1f}s", flush=True)
    flask(env, "create-user", "bench-clerk", "--role", "clerk", "--password-stdin", stdin="bench-password-1\n")
    printed = flask(env, "create-token", "bench-clerk", "--scope", "write", "--name", "benchmark")
    token = re.findall(r"^(inv_\S+)$", printed, re.M)[0]
    sys.path.insert(0, str(ROOT))
    os.environ.update(env)
    from app import create_app, demo
    from app.services import items as item_service
    from app.services import stock

    wh1 = demo.location_codes("WH1")
    pairs = [(demo.demo_sku(n), wh1[n % len(wh1)]) for n in range(1, items + 1)]
    app = create_app()
    with app.app_context():
        for start in range(0, len(pairs), 2000):
            lines = [stock.PickLine(sku, loc, SPREAD_STOCK) for sku, loc in pairs[start : start + 2000]]
            stock.receive_lines(lines=lines, user="bench", reference="BENCH-TOPUP")
        stock.receive_stock(sku=pairs[0][0], location=pairs[0][1], quantity=HOT_STOCK, user="bench")
        item_service.create_item(sku=FEFO_SKU, name="批次热销 FEFO hot item", tracking="lot", requires_expiry=True)
        for n in range(1, 6):
            expiry = (datetime.now(UTC) + timedelta(days=30 * n)).date().isoformat()
            stock.receive_stock(
                sku=FEFO_SKU, location=pairs[0][1], quantity=HOT_STOCK, lot=f"LOT-{n}", expiry=expiry, user="bench"
            )
    return token, pairs, pairs[0][0]


# ---------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_gunicorn(env: dict[str, str], args: argparse.Namespace, port: int) -> subprocess.Popen[bytes]:
    command = [
        str(VENV_BIN / "gunicorn"),
        "-c",
        args.gunicorn_config,
        "--bind",
        f"127.0.0.1:{port}",
        *(["--workers", str(args.workers)] if args.workers else []),
        *(["--threads", str(args.threads)] if args.threads else []),
        *(["--worker-class", args.worker_class] if args.worker_class else []),
        "--max-requests",
        "0",
        args.app,
    ]
    log = open(args.server_log, "wb")  # noqa: SIM115 - closed with the process
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    time.sleep(1.0)  # let every worker finish booting
                    return server
        except OSError:
            time.sleep(0.3)
    server.kill()
    raise SystemExit(f"gunicorn did not come up; see {args.server_log}")


def start_bare(workers: int, threads: int, worker_class: str, port: int, log_path: str) -> subprocess.Popen[bytes]:
    """bare_flask.py under the app's worker settings (see its docstring)."""
    command = [
        str(VENV_BIN / "gunicorn"),
        *("--workers", str(workers), "--threads", str(threads), "--worker-class", worker_class),
        *("--bind", f"127.0.0.1:{port}", "--log-level", "warning"),
        "bare_flask:app",
    ]
    log = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    # Run from its own folder: gunicorn reads ./gunicorn.conf.py, and the app's hooks need the app.
    server = subprocess.Popen(command, cwd=Path(__file__).parent, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                time.sleep(1.0)
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit(f"bare gunicorn did not come up; see {log_path}")


def stop(server: subprocess.Popen[bytes]) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False)
    return [int(p) for p in out.stdout.split()]


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def mariadb_pids() -> list[int]:
    pids = []
    for name in ("mariadbd", "mysqld"):
        out = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True, check=False)
        pids += [int(p) for p in out.stdout.split()]
    return pids


def questions() -> int:
    """Statements the server has executed so far (all clients: the machine's other load counts)."""
    with _admin() as conn, conn.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS LIKE 'Questions'")
        return int(cur.fetchone()[1])


# ---------------------------------------------------------------- load: wrk


# Each wrk run ends by printing one JSON line of its figures (the formats below are %-templates).
LUA_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "JSON {\\"requests\\":%%d,\\"seconds\\":%%f,\\"p50\\":%%f,\\"p99\\":%%f,\\"non2xx\\":%%d,\\"errors\\":%%d}\\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""

LUA = (
    """
local token = "%(token)s"
local pairs = %(pairs)s
local reserve = %(reserve)s
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
request = function()
  n = n + 1
  local p = pairs[math.random(#pairs)]
  if reserve then
    local line = '{"sku":"' .. p[1] .. '","location":"' .. p[2] .. '","quantity":"1"}'
    return wrk.format(nil, "/api/v1/reservations", nil, '{"reference":"BENCH-' .. n .. '","lines":[' .. line .. ']}')
  end
  local body = '{"sku":"' .. p[1] .. '","location":"' .. p[2] .. '","quantity":"1","reference":"BENCH-' .. n .. '"}'
  return wrk.format(nil, "/api/v1/stock/issue", nil, body)
end
"""
    + LUA_DONE
)


GET_LUA = (
    """
wrk.headers["Authorization"] = "Bearer %(token)s"
"""
    + LUA_DONE
)


def _wrk_run(script_text: str, url: str, connections: int, duration: int, name: str) -> Result:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(script_text)
    threads = min(2, connections)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "-s", script.name]
    done = subprocess.run([*command, url], capture_output=True, text=True, check=False)
    os.unlink(script.name)
    found = re.search(r"^JSON (.*)$", done.stdout, re.M)
    if found is None:
        raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    data = json.loads(found.group(1))
    return Result(name, data["requests"], data["seconds"], data["p50"], data["p99"], data["non2xx"] + data["errors"])


def wrk_get(port: int, token: str, path: str, connections: int, duration: int, name: str) -> Result:
    """GET `path` with the token as fast as wrk can (the ceilings: no stock-out)."""
    return _wrk_run(GET_LUA % {"token": token}, f"http://127.0.0.1:{port}{path}", connections, duration, name)


def wrk(
    port: int,
    token: str,
    pairs: list[tuple[str, str]],
    connections: int,
    duration: int,
    name: str,
    reserve: bool = False,
) -> Result:
    lua_pairs = "{" + ",".join(f'{{"{s}","{loc}"}}' for s, loc in pairs) + "}"
    script = LUA % {"token": token, "pairs": lua_pairs, "reserve": "true" if reserve else "false"}
    return _wrk_run(script, f"http://127.0.0.1:{port}", connections, duration, name)


# ---------------------------------------------------------------- load: the raw limit


RESOLVE = (
    "SELECT items.id, items.sku, items.archived, items.reorder_point, locations.id, locations.code, locations.active "
    "FROM items, locations WHERE items.sku = %s AND locations.code = %s"
)
LOCK = "SELECT id, quantity FROM stock_levels WHERE item_id = %s AND location_id = %s FOR UPDATE"
UPDATE = "UPDATE stock_levels SET quantity = %s, updated_at = %s WHERE id = %s"
INSERT = (
    "INSERT INTO movements (kind, item_id, from_location_id, quantity, from_balance, reference, note, username, "
    "created_at, idempotency_key, request_hash) VALUES ('issue', %s, %s, %s, %s, %s, NULL, 'raw', %s, NULL, NULL)"
)


def _raw_worker(
    database: str, pairs: list[tuple[str, str]], seconds: float, start_at: float, queue: multiprocessing.Queue
) -> None:
    conn = pymysql.connect(**MYSQL, database=database, autocommit=False)
    with conn.cursor() as cur:
        cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
    rng = random.Random(os.getpid())
    latencies: list[float] = []
    while time.time() < start_at:
        time.sleep(0.001)
    end = start_at + seconds
    n = 0
    while time.time() < end:
        sku, code = pairs[rng.randrange(len(pairs))]
        began = time.perf_counter()
        with conn.cursor() as cur:
            cur.execute(RESOLVE, (sku, code))
            item_id, _, _, _, location_id, _, _ = cur.fetchone()
            cur.execute(LOCK, (item_id, location_id))
            level_id, quantity = cur.fetchone()
            now = datetime.now(UTC).replace(tzinfo=None)
            balance = quantity - 1
            cur.execute(UPDATE, (balance, now, level_id))
            n += 1
            cur.execute(INSERT, (item_id, location_id, Decimal(1), balance, f"RAW-{os.getpid()}-{n}", now))
        conn.commit()
        latencies.append(time.perf_counter() - began)
    conn.close()
    queue.put(latencies)


def raw_limit(database: str, pairs: list[tuple[str, str]], connections: int, duration: int, name: str) -> Result:
    ctx = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue = ctx.Queue()
    start_at = time.time() + 1.5
    procs = [
        ctx.Process(target=_raw_worker, args=(database, pairs, duration, start_at, queue)) for _ in range(connections)
    ]
    db_before = cpu_seconds(mariadb_pids())
    for proc in procs:
        proc.start()
    latencies = [lat for _ in procs for lat in queue.get()]
    for proc in procs:
        proc.join()
    db_cpu = cpu_seconds(mariadb_pids()) - db_before
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else 0.0
    result = Result(name, len(latencies), float(duration), statistics.median(latencies) * 1000, p99 * 1000, 0)
    result.cpu_db_ms = db_cpu * 1000 / max(1, len(latencies))
    return result


# ---------------------------------------------------------------- load: the plain limit (issue 19)


PLAIN_SCHEMA = (
    "CREATE TABLE levels (id BIGINT PRIMARY KEY, quantity DECIMAL(18, 3) NOT NULL, updated_at DATETIME(6) NOT NULL)",
    "CREATE TABLE ledger (id BIGINT AUTO_INCREMENT PRIMARY KEY, level_id BIGINT NOT NULL, "
    "quantity DECIMAL(18, 3) NOT NULL, balance DECIMAL(18, 3) NOT NULL, reference VARCHAR(100), "
    "created_at DATETIME(6) NOT NULL)",
)
PLAIN_LOCK = "SELECT quantity FROM levels WHERE id = %s FOR UPDATE"
PLAIN_UPDATE = "UPDATE levels SET quantity = %s, updated_at = %s WHERE id = %s"
PLAIN_INSERT = "INSERT INTO ledger (level_id, quantity, balance, reference, created_at) VALUES (%s, 1, %s, %s, %s)"
PLAIN_THREADS = (1, 2, 4, 8, 16)


def create_plain_database(rows: int) -> str:
    """The seed's two tables, no triggers, `rows` stock levels of HOT_STOCK each (id 1 is the hot one)."""
    name = create_database()
    with pymysql.connect(**MYSQL, database=name, autocommit=True) as conn, conn.cursor() as cur:
        for statement in PLAIN_SCHEMA:
            cur.execute(statement)
        now = datetime.now(UTC).replace(tzinfo=None)
        cur.executemany(
            "INSERT INTO levels (id, quantity, updated_at) VALUES (%s, %s, %s)",
            [(n, HOT_STOCK, now) for n in range(1, rows + 1)],
        )
    return name


def _plain_thread(database: str, rows: int, end: float, latencies: list[float], seed: int) -> None:
    conn = pymysql.connect(**MYSQL, database=database, autocommit=False)
    with conn.cursor() as cur:
        cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
    rng = random.Random(seed)
    n = 0
    while time.time() < end:
        level_id = 1 if rows == 1 else rng.randint(1, rows)
        began = time.perf_counter()
        with conn.cursor() as cur:
            cur.execute(PLAIN_LOCK, (level_id,))
            (quantity,) = cur.fetchone()
            now = datetime.now(UTC).replace(tzinfo=None)
            n += 1
            cur.execute(PLAIN_UPDATE, (quantity - 1, now, level_id))
            cur.execute(PLAIN_INSERT, (level_id, quantity - 1, f"PLAIN-{seed}-{n}", now))
        conn.commit()
        latencies.append(time.perf_counter() - began)
    conn.close()


def plain_limit(database: str, rows: int, duration: int, name: str) -> tuple[Result, dict[int, float]]:
    """The best rate of the plain transaction over PLAIN_THREADS threads (one process), and each rate."""
    import threading

    rates: dict[int, float] = {}
    best: Result | None = None
    for threads in PLAIN_THREADS:
        per_thread: list[list[float]] = [[] for _ in range(threads)]
        db_before, asked = cpu_seconds(mariadb_pids()), questions()
        end = time.time() + duration
        workers = [
            threading.Thread(target=_plain_thread, args=(database, rows, end, per_thread[n], n)) for n in range(threads)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        latencies = sorted(lat for chunk in per_thread for lat in chunk)
        result = Result(
            f"{name} plain x{threads}",
            len(latencies),
            float(duration),
            statistics.median(latencies) * 1000 if latencies else 0.0,
            latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000 if latencies else 0.0,
            0,
        )
        result.cpu_db_ms = (cpu_seconds(mariadb_pids()) - db_before) * 1000 / max(1, len(latencies))
        result.statements = (questions() - asked) / max(1, len(latencies))
        rates[threads] = result.rate
        print(
            f"  {name}: plain x{threads} {result.rate:.0f} tx/s p50 {result.p50_ms:.1f} p99 {result.p99_ms:.1f} "
            f"db CPU {result.cpu_db_ms:.2f} ms/tx, {result.statements:.1f} statements/tx (4 sent: other clients show)",
            flush=True,
        )
        if best is None or result.rate > best.rate:
            best = result
    assert best is not None
    return best, rates


# ---------------------------------------------------------------- stock-out batches (issue 19)


BATCH_LINE = re.compile(r'^inventory_stock_out_batch_size_bucket\{le="([^"]+)"\} ([0-9.e+]+)$', re.M)
BATCH_SUM = re.compile(r"^inventory_stock_out_batch_size_sum ([0-9.e+]+)$", re.M)


def batch_buckets(port: int, token: str) -> dict[str, float]:
    """The cumulative stock-out batch size histogram from /metrics ({} when nothing is combined)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - our own server, http
            text = answer.read().decode()
    except OSError:
        return {}
    found = {le: float(count) for le, count in BATCH_LINE.findall(text)}
    if (summed := BATCH_SUM.search(text)) is not None:
        found["sum"] = float(summed.group(1))
    return found


def batch_summary(before: dict[str, float], after: dict[str, float]) -> str:
    """Batches run between two scrapes, per size range, and the mean size."""
    cumulative = {le: after.get(le, 0.0) - before.get(le, 0.0) for le in after}
    combined = cumulative.pop("sum", 0.0)
    total = cumulative.get("+Inf", 0.0)
    if not total:
        return "none"
    count_key = "+Inf"
    ranges, previous, low = [], 0.0, 1
    for le, count in sorted(cumulative.items(), key=lambda kv: float(kv[0]) if kv[0] != count_key else 1e18):
        if count > previous:
            high = le if le == count_key else str(int(float(le)))
            label = f"{low}-{high}" if str(low) != high else high
            ranges.append(f"{label}:{100 * (count - previous) / total:.0f}%")
        previous = count
        low = int(float(le)) + 1 if le != count_key else low
    return f"{total:.0f} batches of {combined / total:.1f} on average; by size " + " ".join(ranges)


# ---------------------------------------------------------------- profile


PROFILE_GROUPS = (
    "pymysql",
    "sqlalchemy",
    "pydantic",
    "pythonjsonlogger",
    "logging",
    "prometheus_client",
    "prometheus_flask_exporter",
    "flask_limiter",
    "flask_login",
    "flask",
    "werkzeug",
    "gunicorn",
    "json",
    "app",
)
PROFILE_PHASES = (
    "authenticate (app/api/auth.py",
    "parse_body (app/api/openapi.py",
    "issue_stock (app/services/stock.py",
    "_json (app/api/openapi.py",
    "commit (sqlalchemy",
    "_start_request (app/observability",
    "_finish_request (app/observability",
    "_on_stock_moved (app/observability",
    "do_teardown_request (flask",
    "process_response (flask",
)


def _group(frame: str) -> str:
    for group in PROFILE_GROUPS:
        if f"{group}/" in frame or f"({group}" in frame:
            return group
    return "other (stdlib, C)"


def profile(server_pid: int, seconds: int, out: Path) -> str:
    """py-spy on one worker while load runs, counting only samples that hold the GIL (CPU spent in
    Python, not waiting on MariaDB): where the leaf frame is, and time inside key functions."""
    worker = children(server_pid)[0]
    py_spy = shutil.which("py-spy") or str(VENV_BIN / "py-spy")
    subprocess.run(
        [py_spy, "record", "-p", str(worker), "-d", str(seconds), "-r", "250", "-f", "raw", "-o", str(out), "--gil"],
        capture_output=True,
        check=False,
    )
    if not out.exists():
        return "py-spy produced no profile"
    total = 0
    leaf_groups: Counter[str] = Counter()
    own: Counter[str] = Counter()
    phases: Counter[str] = Counter()
    for line in out.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = stack.split(";")
        total += count
        own[frames[-1]] += count
        leaf_groups[_group(frames[-1])] += count
        for phase in PROFILE_PHASES:
            if any(phase.split(" (")[0] + " (" in f and phase.split(" (")[1] in f for f in frames):
                phases[phase.split(" (")[0]] += count
    if not total:
        return "py-spy recorded no samples"
    lines = [f"{total} GIL-holding samples of worker {worker}; CPU by package of the leaf frame:"]
    lines += [f"  {g:<26} {100 * c / total:5.1f}%" for g, c in leaf_groups.most_common()]
    lines.append("inclusive share of request phases:")
    lines += [f"  {p:<26} {100 * c / total:5.1f}%" for p, c in phases.most_common()]
    lines.append("top self time:")
    lines += [f"  {100 * c / total:5.1f}%  {f[:140]}" for f, c in own.most_common(12)]
    return "\n".join(lines)


# ---------------------------------------------------------------- the run


def measure_app(
    server_pid: int,
    port: int,
    token: str,
    pairs: list[tuple[str, str]],
    connections: int,
    duration: int,
    name: str,
    metrics_token: str,
    reserve: bool = False,
) -> Result:
    workers = [server_pid, *children(server_pid)]
    batches = batch_buckets(port, metrics_token)
    app_before, db_before, asked = cpu_seconds(workers), cpu_seconds(mariadb_pids()), questions()
    result = wrk(port, token, pairs, connections, duration, name, reserve)
    requests = max(1, result.requests)
    result.cpu_app_ms = (cpu_seconds(workers) - app_before) * 1000 / requests
    result.cpu_db_ms = (cpu_seconds(mariadb_pids()) - db_before) * 1000 / requests
    result.statements = (questions() - asked) / requests
    result.batches = {"before": batches, "after": batch_buckets(port, metrics_token)}
    return result


def measure_ceilings(
    server_pid: int,
    port: int,
    token: str,
    hot: list[tuple[str, str]],
    settings: tuple[int, int, str],
    args: argparse.Namespace,
) -> list[tuple[Result, Result]]:
    """What this machine serves with no stock-out at all, per connection count: the app's cheapest
    authenticated request (GET /api/v1/warehouses: the token from the cache, one small read,
    metrics, a JSON log line) and bare Flask answering the stock-out POST (bare_flask.py) under
    the same worker settings. A stock-out costs at least as much as either, so neither rate can
    be passed by any way of applying stock-outs (issue 19)."""
    found = []
    bare_port = free_port()
    bare = start_bare(*settings, bare_port, args.server_log + ".bare")
    try:
        for connections in (int(c) for c in args.connections.split(",")):
            workers = [server_pid, *children(server_pid)]
            before = cpu_seconds(workers)
            app_get = wrk_get(port, token, "/api/v1/warehouses", connections, args.duration, f"{connections} conns")
            app_get.cpu_app_ms = (cpu_seconds(workers) - before) * 1000 / max(1, app_get.requests)
            workers = [bare.pid, *children(bare.pid)]
            before = cpu_seconds(workers)
            floor = wrk(bare_port, token, hot, connections, args.duration, f"{connections} conns")
            floor.cpu_app_ms = (cpu_seconds(workers) - before) * 1000 / max(1, floor.requests)
            found.append((app_get, floor))
            print(
                f"  ceiling, {connections} conns: app GET {app_get.rate:.0f} req/s p99 {app_get.p99_ms:.1f} ms; "
                f"bare Flask POST {floor.rate:.0f} req/s p99 {floor.p99_ms:.1f} ms",
                flush=True,
            )
    finally:
        stop(bare)
    return found


def report_ceilings(ceilings: list[tuple[Result, Result]], plain: Result) -> None:
    print(f"ceilings with no stock-out, as a share of the hot plain limit ({plain.rate:.0f} tx/s):")
    for app_get, floor in ceilings:
        print(
            f"  {app_get.name}: the app's authenticated GET {app_get.rate:.0f} req/s, {app_get.cpu_app_ms or 0:.2f} "
            f"ms CPU/req ({app_get.rate / plain.rate:.2f}x plain); bare Flask POST {floor.rate:.0f} req/s, "
            f"{floor.cpu_app_ms or 0:.2f} ms CPU/req ({floor.rate / plain.rate:.2f}x plain)"
        )


def median_result(runs: list[Result]) -> Result:
    """The run with the median rate (its latencies and CPU figures come with it)."""
    return sorted(runs, key=lambda r: r.rate)[len(runs) // 2]


def report(results: list[tuple[Result, Result, Result]]) -> None:
    """One line per measurement: the app, the plain limit (best thread count) and raw on the app's
    schema, with the app's ratio to each; then the batch sizes the app's stock-outs ran in."""
    print()
    header = f"{'scenario':<22}{'req/s':>7}{'p50 ms':>8}{'p99 ms':>8}{'errors':>7}{'app CPU':>9}{'db CPU':>8}"
    header += f"{'stmts':>7}{'plain/s':>9}{'plain db CPU':>13}{'raw/s':>7}{'x plain':>8}{'x raw':>7}"
    print(header)
    print(f"{'':<22}{'':>7}{'':>8}{'':>8}{'':>7}{'ms/req':>9}{'ms/req':>8}{'/req':>7}{'':>9}{'ms/tx':>13}")
    for app_result, plain, raw in results:
        to_plain = app_result.rate / plain.rate if plain.rate else 0.0
        to_raw = app_result.rate / raw.rate if raw.rate else 0.0
        print(
            f"{app_result.name:<22}{app_result.rate:>7.0f}{app_result.p50_ms:>8.1f}{app_result.p99_ms:>8.1f}"
            f"{app_result.errors:>7}{app_result.cpu_app_ms or 0:>9.2f}{app_result.cpu_db_ms or 0:>8.2f}"
            f"{app_result.statements or 0:>7.1f}{plain.rate:>9.0f}{plain.cpu_db_ms or 0:>13.2f}{raw.rate:>7.0f}"
            f"{to_plain:>8.2f}{to_raw:>7.2f}"
        )
    print()
    for app_result, plain, _raw in results:
        marks = app_result.batches or {}
        print(f"{app_result.name}: batches {batch_summary(marks.get('before', {}), marks.get('after', {}))}")
        print(f"{app_result.name}: plain limit at {plain.name.rsplit(' ', 1)[-1]} threads")
    print(
        "CPU bound: app CPU ms/req x req/s cannot exceed the machine's "
        f"{os.cpu_count()} cores ({os.cpu_count() or 1}000 ms of CPU a second, shared with the database)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument(
        "--rounds", type=int, default=3, help="app/raw measurements alternated this many times; medians reported"
    )
    parser.add_argument("--connections", default="16,64")
    parser.add_argument("--scenarios", default="hot,spread")
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--workers", type=int, help="default: gunicorn.conf.py's")
    parser.add_argument("--threads", type=int, help="default: gunicorn.conf.py's")
    parser.add_argument("--worker-class", help="default: gunicorn.conf.py's")
    parser.add_argument("--app", default="wsgi:app", help="WSGI app gunicorn loads (to try variants)")
    parser.add_argument("--gunicorn-config", default="gunicorn.conf.py", help="(to try variants)")
    parser.add_argument("--profile", action="store_true", help="py-spy one worker during the first app run")
    parser.add_argument("--no-raw", action="store_true", help="skip the raw PyMySQL limit")
    parser.add_argument(
        "--no-ceilings", action="store_true", help="skip the ceilings with no stock-out (app GET, bare Flask)"
    )
    parser.add_argument("--plain-duration", type=int, default=5, help="seconds per thread count of the plain limit")
    parser.add_argument("--server-log", default=str(Path(tempfile.gettempdir()) / "inventory-bench-gunicorn.log"))
    parser.add_argument("--tracing", type=float, help="sampling ratio; traces go to a local OTLP receiver")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        run(args, stack)


def run(args: argparse.Namespace, stack: contextlib.ExitStack) -> None:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install -y wrk")

    database = create_database()
    metrics_dir = tempfile.mkdtemp(prefix="inventory-bench-metrics-")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
        "DATABASE_URL": f"mysql+pymysql://root@127.0.0.1:3306/{database}?charset=utf8mb4",
        "INVENTORY_ENV": "production",
        "SECRET_KEY": secrets.token_hex(32),
        "RATELIMIT_ENABLED": "false",
        "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
        "INVENTORY_METRICS_TOKEN": secrets.token_hex(16),
        "INVENTORY_LOG_LEVEL": "INFO",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    receiver = None
    if args.tracing is not None:
        sys.path.insert(0, str(ROOT))
        from tests.ops.otlp_receiver import otlp_receiver

        receiver = stack.enter_context(otlp_receiver())
        env |= {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_SERVICE_NAME": "inventory-bench",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": str(args.tracing),
        }
    server = None
    metrics_token = env["INVENTORY_METRICS_TOKEN"]
    try:
        token, pairs, hot_sku = prepare_data(env, args.items)
        hot = [p for p in pairs if p[0] == hot_sku]
        port = free_port()
        server = start_gunicorn(env, args, port)
        shipped = runpy.run_path(str(ROOT / args.gunicorn_config))
        workers, threads = args.workers or shipped["workers"], args.threads or shipped["threads"]
        worker_class = args.worker_class or shipped["worker_class"]
        worker_class = "gthread" if worker_class == "sync" and threads > 1 else worker_class
        print(
            f"gunicorn: {worker_class}, {workers} worker(s) x {threads} thread(s); "
            f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}; "
            f"INVENTORY_COMBINE_STOCK_OUTS={env.get('INVENTORY_COMBINE_STOCK_OUTS', _combining_default())}",
            flush=True,
        )
        wrk(port, token, hot, 4, 2, "warm-up")
        ceilings = []
        if not args.no_ceilings:
            ceilings = measure_ceilings(server.pid, port, token, hot, (workers, threads, worker_class), args)
        results = []
        profiled = False
        for scenario in args.scenarios.split(","):
            chosen = {"hot": hot, "reserve": hot, "fefo": [(FEFO_SKU, hot[0][1])]}.get(scenario, pairs)
            raw_pairs = hot if scenario == "fefo" else chosen  # one hot place's limit, untracked
            names = {"hot": "hot SKU", "fefo": "FEFO lot SKU", "reserve": "reserve 1 line"}
            plain_database = create_plain_database(len(raw_pairs))
            try:
                plain, _rates = plain_limit(plain_database, len(raw_pairs), args.plain_duration, scenario)
            finally:
                drop_database(plain_database)
            for connections in (int(c) for c in args.connections.split(",")):
                name = names.get(scenario, "spread") + f", {connections} conns"
                app_runs, raw_runs = [], []
                for _ in range(args.rounds):
                    spy = None
                    if args.profile and not profiled:
                        spy_out = Path(tempfile.gettempdir()) / "inventory-bench-profile.txt"
                        spy_out.unlink(missing_ok=True)
                        spy = multiprocessing.get_context("fork").Pool(1)
                        pending = spy.apply_async(profile, (server.pid, max(2, args.duration - 2), spy_out))
                    app_runs.append(
                        measure_app(
                            server.pid,
                            port,
                            token,
                            chosen,
                            connections,
                            args.duration,
                            name,
                            metrics_token,
                            scenario == "reserve",
                        )
                    )
                    if spy is not None:
                        print(pending.get(timeout=args.duration + 30), flush=True)
                        spy.close()
                        profiled = True
                    if not args.no_raw:
                        raw_runs.append(raw_limit(database, raw_pairs, connections, args.duration, name))
                    last_raw = raw_runs[-1] if raw_runs else Result(name, 0, 1, 0, 0, 0)
                    print(
                        f"  {name}: app {app_runs[-1].rate:.0f} req/s p50 {app_runs[-1].p50_ms:.1f} ms "
                        f"p99 {app_runs[-1].p99_ms:.1f} ms errors {app_runs[-1].errors}; "
                        f"raw {last_raw.rate:.0f} tx/s p50 {last_raw.p50_ms:.1f} p99 {last_raw.p99_ms:.1f}",
                        flush=True,
                    )
                raw = median_result(raw_runs) if raw_runs else Result(name, 0, 1, 0, 0, 0)
                results.append((median_result(app_runs), plain, raw))
        report(results)
        print()
        if ceilings:
            report_ceilings(ceilings, results[0][1])
            print()
        if receiver is not None:
            traces = {span.trace_id for span in receiver.spans}
            print(f"tracing at {args.tracing:g}: {len(receiver.spans)} spans in {len(traces)} traces received")
        print(flask(env, "check-ledger").strip())
    finally:
        if server is not None:
            stop(server)
        drop_database(database)
        shutil.rmtree(metrics_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
