"""Memory of the web pod: PSS of gunicorn's master and each worker after a mixed load, on MariaDB.

    python tests/benchmarks/memory.py [--requests 600] [--items 200] [--workers 4] [--no-preload]

Starts gunicorn with gunicorn.conf.py in production mode (as api_stock_out.py does), sends
`requests` requests from four clients, mixed as a shift sends them: signed-in pages (item list,
item page, stock-out form), API item reads and stock-outs, probes and a /metrics scrape. Then it
reads each process's proportional set size (/proc/PID/smaps_rollup: shared pages are split
between the processes that share them, so the figures add up to what the pod is charged) and
prints master, per worker and total in MiB. Run it with and without --no-preload to see what
preload_app saves; tests/ops/test_memory_budget.py holds the figure the manifests are sized from.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import secrets
import sys
import tempfile
import threading
import urllib.parse
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.benchmarks.api_stock_out import (
    children,
    create_database,
    drop_database,
    free_port,
    prepare_data,
    start_gunicorn,
)

PASSWORD = "bench-password-1"  # prepare_data's clerk
STATUSES: Counter[int] = Counter()


def pss_mib(pid: int) -> float:
    text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    return int(re.search(r"^Pss:\s+(\d+) kB", text, re.M).group(1)) / 1024  # type: ignore[union-attr]


class Client:
    """One keep-alive connection with a signed-in session and an API token."""

    def __init__(self, port: int, token: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.token = token
        self.cookie = ""

    def send(self, method: str, path: str, body: str | None = None, headers: dict[str, str] | None = None) -> str:
        headers = {"Cookie": self.cookie, **(headers or {})}
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        STATUSES[response.status] += 1
        if cookie := response.getheader("Set-Cookie"):
            self.cookie = cookie.split(";", 1)[0]
        if response.status >= 500:
            raise SystemExit(f"{method} {path}: {response.status}")
        return text

    def sign_in(self) -> None:
        page = self.send("GET", "/login")
        csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
        form = {"username": "bench-clerk", "password": PASSWORD, "csrf_token": csrf.group(1) if csrf else ""}
        content = {"Content-Type": "application/x-www-form-urlencoded"}
        self.send("POST", "/login", urllib.parse.urlencode(form), content)

    def api(self, method: str, path: str, body: str | None = None) -> str:
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        return self.send(method, path, body, headers)


def mixed_load(port: int, token: str, pairs: list[tuple[str, str]], requests: int, clients: int = 4) -> None:
    def run(n: int) -> None:
        client = Client(port, token)
        client.sign_in()
        for i in range(requests // clients):
            sku, location = pairs[(n * 7919 + i) % len(pairs)]
            step = i % 8
            if step == 0:
                client.send("GET", "/items")
            elif step == 1:
                client.send("GET", f"/items/{sku}")
            elif step == 2:
                client.send("GET", "/movements/issue")
            elif step in (3, 4):
                client.api("GET", f"/api/v1/items?limit=50&q={sku[:6]}")
            elif step == 5:
                body = f'{{"sku": "{sku}", "location": "{location}", "quantity": "1"}}'
                client.api("POST", "/api/v1/stock/issue", body)
            elif step == 6:
                client.send("GET", "/readyz")
            else:
                client.send("GET", "/healthz")

    threads = [threading.Thread(target=run, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--no-preload", action="store_true", help="GUNICORN_PRELOAD=false")
    parser.add_argument("--server-log", default=str(Path(tempfile.gettempdir()) / "inventory-bench-memory.log"))
    args = parser.parse_args()
    args.gunicorn_config, args.app, args.threads, args.worker_class = "gunicorn.conf.py", "wsgi:app", None, None

    database = create_database()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "GUNICORN_"))},
        "DATABASE_URL": f"mysql+pymysql://root@127.0.0.1:3306/{database}?charset=utf8mb4",
        "INVENTORY_ENV": "production",
        "SECRET_KEY": secrets.token_hex(32),
        "RATELIMIT_ENABLED": "false",
        "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="inventory-bench-metrics-"),
        "GUNICORN_PRELOAD": "false" if args.no_preload else "true",
    }
    server = None
    try:
        token, pairs, _ = prepare_data(env, args.items)
        port = free_port()
        server = start_gunicorn(env, args, port)
        mixed_load(port, token, pairs, args.requests)
        workers = children(server.pid)
        master, each = pss_mib(server.pid), [pss_mib(pid) for pid in workers]
        total = master + sum(each)
        print(f"preload_app          {'off' if args.no_preload else 'on'}")
        print(f"requests             {args.requests} (mixed: pages, API reads and stock-outs, probes)")
        print(f"statuses             {dict(sorted(STATUSES.items()))}")
        print(f"master PSS           {master:>8.1f} MiB")
        print(f"worker PSS           {' '.join(f'{w:.1f}' for w in each)} MiB (max {max(each):.1f})")
        print(f"total PSS            {total:>8.1f} MiB for {len(each)} workers")
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=60)
        drop_database(database)


if __name__ == "__main__":
    main()
