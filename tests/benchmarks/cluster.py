"""Stock-out through the production topology: nginx, two app instances, HAProxy and (a) one MariaDB,
(b) Galera with one writer, (c) Galera with writes spread over all three nodes.

    .venv/bin/python tests/benchmarks/cluster.py [--seconds 10] [--connections 16] [--items 2000]

For each topology it brings the local cluster up (ops/cluster/up, under its own directory), seeds
demo items with stock and a clerk's token (the same data as api_stock_out.py), then runs wrk
against nginx: "hot" (every request takes one unit of one SKU) and "spread" (a random SKU of
--items). The raw locked transaction (PyMySQL, no app: resolve, SELECT ... FOR UPDATE, UPDATE,
INSERT, COMMIT) runs on the single node in the same run, as the yardstick: every figure is also a
ratio to it. Retries per commit come from the apps' own counter (inventory_transaction_retries_total
in their multiprocess metric directories). The cluster is taken down at the end.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
import api_stock_out as api

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGIES = (("single", "one"), ("galera", "one"), ("galera", "all"))


def cluster(directory: Path, *args: str) -> dict[str, str]:
    done = subprocess.run(
        [str(ROOT / "ops" / "cluster" / args[0]), *args[1:]],
        env={**os.environ, "INVENTORY_CLUSTER_DIR": str(directory)},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"ops/cluster/{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


def retries(directory: Path) -> float:
    total = 0.0
    for metrics in directory.glob("app*/metrics"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(metrics))
        for family in registry.collect():
            if family.name == "inventory_transaction_retries":
                total += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--items", type=int, default=2000)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="inventory-cluster-bench-"))
    rows: list[tuple[str, str, api.Result, float]] = []
    raw: dict[str, api.Result] = {}
    try:
        seeded_db = None
        for db_mode, writers in TOPOLOGIES:
            urls = cluster(directory, "up", "--apps", "2", "--db", db_mode, "--writers", writers)
            env = {**os.environ, "DATABASE_URL": urls["DATABASE_URL"], "INVENTORY_ENV": "development"}
            if seeded_db != db_mode:
                token, pairs, hot_sku = api.prepare_data(env, args.items)
                seeded_db = db_mode
            hot = [pair for pair in pairs if pair[0] == hot_sku][:1]
            port = int(urls["INVENTORY_URL"].rsplit(":", 1)[1])
            name = f"{db_mode}/{writers}"
            if not raw:
                node = make_url(urls["DATABASE_URL_DB1"])
                api.MYSQL = dict(
                    host="127.0.0.1", port=node.port, user=node.username, password=node.password, charset="utf8mb4"
                )
                raw["hot"] = api.raw_limit(node.database, hot, args.connections, args.seconds, "raw hot")
                raw["spread"] = api.raw_limit(node.database, pairs, args.connections, args.seconds, "raw spread")
            for load, targets in (("hot", hot), ("spread", pairs)):
                before = retries(directory)
                result = api.wrk(port, token, targets, args.connections, args.seconds, f"{name} {load}")
                commits = max(1, result.requests - result.errors)
                rows.append((name, load, result, (retries(directory) - before) / commits))
    finally:
        cluster(directory, "down")
    print(f"\n{args.connections} connections, {args.seconds} s each, through nginx and 2 app instances x 2 workers")
    header = f"{'topology':<14}{'load':<8}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'errors':>8}"
    print(f"{header}{'retries/commit':>16}{'ratio':>7}")
    for load in ("hot", "spread"):
        r = raw[load]
        print(f"{'raw 1 node':<14}{load:<8}{r.rate:>8.0f}{r.p50_ms:>8.1f}{r.p99_ms:>8.1f}{0:>8}{0:>16.2f}{1:>7.2f}")
    for name, load, result, per_commit in rows:
        ratio = result.rate / raw[load].rate if raw[load].rate else 0.0
        print(
            f"{name:<14}{load:<8}{result.rate:>8.0f}{result.p50_ms:>8.1f}{result.p99_ms:>8.1f}"
            f"{result.errors:>8}{per_commit:>16.2f}{ratio:>7.2f}"
        )


if __name__ == "__main__":
    main()
