"""The locking contract on the cluster: many clients through nginx and every app instance, on
Galera with one writer and with writers on every node, while database nodes and app instances
die. Each drain issues one hot SKU of 1,000 units one unit at a time.

Cost on a 2-core machine: a drain takes 5-15 s; the node-kill test about 30 s (two IST rejoins).
"""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from tests.cluster.conftest import DrainResult, drain, ledger_clean, node_facts, wait_until

pytestmark = [pytest.mark.mysql, pytest.mark.cluster, pytest.mark.slow]

UNITS = 1000


def assert_nodes_agree_and_reconcile(cluster, hot, issued: int) -> None:
    facts = {node: node_facts(url, hot) for node, url in cluster.node_urls().items()}
    assert set(facts.values()) == {(Decimal(UNITS - issued), issued, Decimal(issued))}, facts
    for node, url in cluster.node_urls().items():
        assert ledger_clean(url) == ([], []), f"check-ledger on {node}"


@pytest.mark.parametrize("writers", ["one", "all"])
def test_64_clients_drain_a_hot_sku_exactly_through_every_app(cluster, seed, writers):
    cluster.up(writers=writers)
    hot = seed(UNITS)

    result = drain(cluster.url, hot, clients=64)

    assert (result.issued, result.refused, result.other) == (UNITS, 64, [])
    assert_nodes_agree_and_reconcile(cluster, hot, UNITS)


def _drain_in_background(cluster, hot, clients: int) -> tuple[threading.Thread, DrainResult, list[DrainResult]]:
    progress = DrainResult()
    finished: list[DrainResult] = []
    thread = threading.Thread(
        target=lambda: finished.append(drain(cluster.url, hot, clients=clients, progress=progress))
    )
    thread.start()
    return thread, progress, finished


def test_losing_a_secondary_then_the_primary_mid_drain_loses_no_acknowledged_movement(cluster, seed):
    cluster.up(writers="one")
    hot = seed(UNITS)
    thread, progress, finished = _drain_in_background(cluster, hot, clients=32)

    wait_until(lambda: progress.issued >= 150, 60, "first stock-outs")
    cluster.kill("db2")
    wait_until(lambda: progress.issued >= 300, 60, "stock-outs with db2 gone")
    cluster.start("db2")  # back by IST, before the primary goes: two of three keep the quorum
    cluster.kill("db1")
    wait_until(lambda: progress.issued >= 600, 90, "stock-outs with db1 gone")
    cluster.start("db1")
    thread.join(timeout=180)

    assert finished, "the drain did not finish"
    result = finished[0]
    # Every 201 the clients saw is a ledger row on every node, and nothing else is.
    assert (result.issued, result.refused, result.other) == (UNITS, 32, [])
    assert_nodes_agree_and_reconcile(cluster, hot, UNITS)


def test_killing_an_app_mid_load_fails_over_and_writes_nothing_partial(cluster, seed):
    cluster.up(writers="one")
    hot = seed(400)
    thread, progress, finished = _drain_in_background(cluster, hot, clients=16)

    wait_until(lambda: progress.issued >= 100, 60, "first stock-outs")
    cluster.kill("app1")
    thread.join(timeout=120)
    cluster.start("app1")

    assert finished, "the drain did not finish"
    result = finished[0]
    assert (result.issued, result.refused, result.other) == (400, 16, [])
    facts = {node: node_facts(url, hot) for node, url in cluster.node_urls().items()}
    assert set(facts.values()) == {(Decimal(0), 400, Decimal(400))}, facts
    assert ledger_clean(cluster.urls["DATABASE_URL"]) == ([], [])
