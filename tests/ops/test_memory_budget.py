"""The web pod's memory is sized from a measurement: every render's limit holds gunicorn's master
and its GUNICORN_WORKERS workers at the measured PSS with a stated margin, and its request at
least what they hold (so the scheduler reserves what the pod uses)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ops.test_cluster_manifests import config_of
from tests.ops.test_delivery_manifests import RENDERS, _render, find, tools  # noqa: F401 - fixture

# tests/benchmarks/memory.py on 2026-12-06 (MariaDB, preload_app on, 4 sync workers, 600 mixed
# requests: pages, API reads, stock-outs, probes): PSS of the master and of the largest worker.
# Without preload the same run measured 127.8 MiB per worker (555 MiB for the pod).
MASTER_PSS_MIB = 55.6
WORKER_PSS_MIB = 59.9
# Headroom over the measurement: a worker grows with what a request loads (a big export, an
# import preview), and a recycled worker (max_requests) briefly runs beside the one it replaces.
LIMIT_MARGIN = 1.5
UNITS = {"Mi": 1, "Gi": 1024}


def mib(quantity: str) -> float:
    return float(quantity[:-2]) * UNITS[quantity[-2:]]


def measured(workers: int) -> float:
    return MASTER_PSS_MIB + workers * WORKER_PSS_MIB


@pytest.mark.parametrize("name", [*RENDERS, "helm-production"])
def test_the_web_pods_memory_holds_its_workers_at_the_measured_pss(tools: Path, name: str) -> None:  # noqa: F811
    docs = _render(tools, name)
    workers = int(config_of(docs)["GUNICORN_WORKERS"])
    kinds = [
        d["kind"] for d in docs if d["metadata"]["name"] == "inventory-web" and d["kind"] in ("Deployment", "Rollout")
    ]
    (web,) = [
        c for c in find(docs, kinds[0], "inventory-web")["spec"]["template"]["spec"]["containers"] if c["name"] == "web"
    ]
    resources = web["resources"]
    assert mib(resources["limits"]["memory"]) >= LIMIT_MARGIN * measured(workers), (name, workers, resources)
    assert mib(resources["requests"]["memory"]) >= measured(workers), (name, workers, resources)
