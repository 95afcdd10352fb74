"""Grafana provisioning and dashboards: fixed uids, data source references, every PromQL query
through promtool, every LogQL query against the labels and fields the app really logs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.ops.conftest import OPS, run
from tests.ops.test_log_pipeline import BOUNDED_LABELS, parsed

GRAFANA = OPS / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards" / "inventory").glob("*.json"))
EXPECTED_UIDS = {"inventory-red", "inventory-business", "inventory-logs"}
DATASOURCE_UIDS = {"prometheus": "inventory-prometheus", "loki": "inventory-loki", "tempo": "inventory-tempo"}
# Grafana's variables replaced by values the query languages accept.
SUBSTITUTIONS = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "$job": ".*",
    "$route": ".*",
    "$namespace": ".*",
    "$request_id": "abc123",
    "$trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
}


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def targets(kind: str) -> list[tuple[str, str]]:
    found = []
    for path in DASHBOARDS:
        for panel in load(path)["panels"]:
            if panel["datasource"]["type"] == kind:
                found.extend((f"{path.stem}: {panel['title']}", t["expr"]) for t in panel["targets"])
    return found


def substitute(expr: str) -> str:
    for variable, value in SUBSTITUTIONS.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unknown variable in {expr}"
    return expr


def test_data_sources_are_provisioned_with_fixed_uids():
    config = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "inventory.yaml").read_text())
    assert {ds["type"]: ds["uid"] for ds in config["datasources"]} == DATASOURCE_UIDS


def test_dashboards_are_provisioned_from_their_folder_with_stable_unique_uids():
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "inventory.yaml").read_text())["providers"][0]
    assert provider["options"]["path"].endswith("/dashboards/inventory")
    uids = [load(path)["uid"] for path in DASHBOARDS]
    assert sorted(uids) == sorted(EXPECTED_UIDS)
    assert all(path.stem == load(path)["uid"] for path in DASHBOARDS)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_panel_uses_the_dashboard_datasource_variable_of_the_right_type(path):
    dashboard = load(path)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    kind = variables["datasource"]["query"]
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["current"]["value"] == DATASOURCE_UIDS[kind]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": kind, "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == {"type": kind, "uid": "${datasource}"}
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == {"type": kind, "uid": "${datasource}"}


def test_every_promql_query_passes_promtool(tmp_path):
    rules = [
        {"record": f"dashboard:query_{n}:check", "expr": substitute(expr)}
        for n, (_, expr) in enumerate(targets("prometheus"))
    ]
    assert len(rules) >= 15
    path = tmp_path / "dashboards.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = run("promtool", "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promql_queries_use_only_metrics_the_app_exports(make_app):
    registry = make_app().extensions["inventory_metrics_exporter"].registry
    exported = {metric.name for metric in registry.collect()}
    exported |= {f"{n}_total" for n in exported} | {f"{n}_{s}" for n in exported for s in ("bucket", "count", "sum")}
    used = {name for _, expr in targets("prometheus") for name in re.findall(r"\b(inventory_[a-z_]+)\b", expr)}
    assert used <= exported, sorted(used - exported)


def _selectors(expr: str) -> list[str]:
    return re.findall(r"\{([^{}]*)\}", expr)


def test_logql_stream_selectors_use_only_the_bounded_labels():
    for where, expr in targets("loki"):
        for selector in _selectors(substitute(expr)):
            names = set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", selector))
            assert names and names <= BOUNDED_LABELS, f"{where}: {names}"


def test_logql_fields_and_values_are_ones_the_app_really_logs(captured_log_lines):
    entries = parsed(captured_log_lines)
    fields = set().union(*(entry.keys() for entry in entries))
    loggers = {entry["logger"] for entry in entries}
    for where, expr in targets("loki"):
        pipeline = re.sub(r"\{[^{}]*\}", "", substitute(expr))
        filters = re.findall(r"\|\s*(\w+)\s*(?:>=|<=|=~|!=|==|=|>|<)\s*\"?([^\"\s|\[\)]*)", pipeline)
        for name, value in filters:
            assert name in fields, f"{where}: the app never logs {name!r}"
            if name == "logger":
                assert value in loggers, f"{where}: no line comes from logger {value!r}"
        for name in re.findall(r"unwrap\s+(\w+)", pipeline) + re.findall(r"by\s*\(([\w, ]+)\)", pipeline):
            for field in (n.strip() for n in name.split(",")):
                assert field in fields | BOUNDED_LABELS, f"{where}: {field!r} is neither a field nor a label"
    assert any("request_id" in expr for _, expr in targets("loki"))
    assert any("trace_id" in expr for _, expr in targets("loki"))
