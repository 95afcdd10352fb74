"""Production describes the topology ops/cluster runs: a 3-node Galera cluster through
mariadb-operator, a Redis for the shared rate limits, the ingress's body size for imports, and
exactly one trusted proxy hop."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.ops.test_delivery_manifests import HASHED_CONFIGMAP, ROOT, _render, find, tools  # noqa: F401 - fixture

Doc = dict


def config_of(docs: list[Doc]) -> dict[str, str]:
    (config,) = [
        d
        for d in docs
        if d["kind"] == "ConfigMap" and HASHED_CONFIGMAP.sub(r"\1", d["metadata"]["name"]) == "inventory-config"
    ]
    return config["data"]


@pytest.mark.parametrize("name", ["production", "helm-production"])
def test_production_runs_galera_through_the_operator_and_shares_limits_in_redis(tools: Path, name: str) -> None:  # noqa: F811
    docs = _render(tools, name)
    galera = find(docs, "MariaDB", "inventory-db")["spec"]
    assert galera["replicas"] == 3 and galera["galera"]["enabled"] is True
    assert galera["galera"]["primary"]["automaticFailover"] is True
    assert "wsrep_sync_wait=1" in galera["myCnf"]
    find(docs, "Redis", "inventory-redis")
    config = config_of(docs)
    assert config["REDIS_URL"] == "redis://inventory-redis:6379/0"
    egress = find(docs, "NetworkPolicy", "inventory-default-deny")["spec"]["egress"]
    assert {"port": 6379, "protocol": "TCP"} in [port for rule in egress for port in rule.get("ports", [])]


def test_every_render_trusts_one_proxy_hop_and_takes_20_mb_imports(tools: Path) -> None:  # noqa: F811
    for name in ("base", "staging", "production", "production-bluegreen", "helm", "helm-production"):
        docs = _render(tools, name)
        assert config_of(docs)["INVENTORY_TRUSTED_PROXY_HOPS"] == "1", name
        ingresses = [d for d in docs if d["kind"] == "Ingress" and "preview" not in d["metadata"]["name"]]
        for ingress in ingresses:
            assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == "21m", name


def test_galera_schema_rejects_an_even_cluster_and_a_misspelt_field(tools: Path, tmp_path: Path) -> None:  # noqa: F811
    docs = _render(tools, "production")
    validate = [str(tools / "python"), str(ROOT / "ops/schemas/validate.py")]
    for change, word in (
        (("replicas", 2), "replicas"),
        (("galera", {"enabled": True, "sstMethod": "rsync"}), "sstMethod"),
    ):
        broken = copy.deepcopy(docs)
        find(broken, "MariaDB", "inventory-db")["spec"][change[0]] = change[1]
        bad = tmp_path / "bad.yaml"
        bad.write_text(yaml.safe_dump_all(broken))
        done = subprocess.run([*validate, str(bad)], capture_output=True, text=True, check=False)
        assert done.returncode == 1 and word in done.stderr, done.stderr


def test_the_chart_runs_galera_and_redis_only_when_asked(tools: Path) -> None:  # noqa: F811
    docs = _render(tools, "helm")
    assert not [d for d in docs if d["kind"] in ("MariaDB", "Redis")]
    assert "REDIS_URL" not in config_of(docs)
    egress = find(docs, "NetworkPolicy", "inventory-default-deny")["spec"]["egress"]
    assert 6379 not in [port["port"] for rule in egress for port in rule.get("ports", [])]


def test_the_charts_values_refuse_an_even_galera_cluster(tmp_path: Path, tools: Path) -> None:  # noqa: F811
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"galera": {"enabled": True, "replicas": 2}}))
    command = [str(tools / "python"), str(ROOT / "ops/helm/render.py"), "--values", str(values)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    assert done.returncode != 0 and "replicas" in done.stderr, done.stderr
