"""Prometheus configuration, recording and alert rules: promtool checks and unit tests, plus
contracts with the app (metric names) and the Kubernetes manifests (pod labels)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.ops.conftest import OPS, REPO, run

PROM = OPS / "prometheus"
REQUIRED_ALERTS = {
    "InstanceDown",
    "InventoryHighErrorRate",
    "InventoryHighLatencyP99",
    "InventoryStockoutRejectionSpike",
    "InventoryTransactionRetrySpike",
    "InventoryLowStockItems",
    "InventoryOutboxBacklog",
    "InventoryNotificationDeadLetters",
    "InventoryLedgerMismatch",
    "InventoryNotReady",
    "InventoryImportJobWaiting",
    "InventoryImportQueueGrowing",
    "InventoryImportJobsFailing",
}


def alert_rules() -> list[dict]:
    rules = []
    for path in sorted((PROM / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules.extend(rule for rule in group["rules"] if "alert" in rule)
    return rules


def all_exprs() -> list[str]:
    exprs = []
    for path in sorted((PROM / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            exprs.extend(rule["expr"] for rule in group["rules"])
    return exprs


def with_token_file(config: dict, tmp_path: Path) -> dict:
    token = tmp_path / "token"
    token.write_text("test-token")
    for job in config["scrape_configs"]:
        job["authorization"]["credentials_file"] = str(token)
    config["rule_files"] = [str(PROM / "rules" / "*.yml")]
    return config


def test_prometheus_config_and_its_rule_files_pass_promtool(tmp_path):
    config = with_token_file(yaml.safe_load((PROM / "prometheus.yml").read_text()), tmp_path)
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    result = run("promtool", "check", "config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_kubernetes_variant_is_valid_with_discovery_stubbed_and_matches_the_pod_labels(tmp_path):
    config = with_token_file(yaml.safe_load((PROM / "prometheus-kubernetes.yml").read_text()), tmp_path)
    [job] = config["scrape_configs"]
    assert job.pop("kubernetes_sd_configs") == [{"role": "pod"}]
    job["file_sd_configs"] = [{"files": [str(tmp_path / "targets.json")]}]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    result = run("promtool", "check", "config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr

    deployment = next(
        doc
        for doc in yaml.safe_load_all((REPO / "ops/k8s/base/web-deployment.yaml").read_text())
        if doc and doc.get("kind") in ("Deployment", "Rollout")
    )
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    ports = {p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
    keep = {tuple(r["source_labels"]): r["regex"] for r in job["relabel_configs"] if r.get("action") == "keep"}
    pod_label = "__meta_kubernetes_pod_label_app_kubernetes_io_"
    name_component = keep[(f"{pod_label}name", f"{pod_label}component")]
    assert name_component == f"{labels['app.kubernetes.io/name']};{labels['app.kubernetes.io/component']}"
    assert keep[("__meta_kubernetes_pod_container_port_name",)] in ports


def test_rules_pass_promtool_check():
    result = run("promtool", "check", "rules", *map(str, sorted((PROM / "rules").glob("*.yml"))))
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass():
    result = run("promtool", "test", "rules", *map(str, sorted((PROM / "tests").glob("*_test.yml"))))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(list((PROM / "tests").glob("*_test.yml")))


def test_the_alerts_the_issue_asks_for_exist():
    assert {rule["alert"] for rule in alert_rules()} >= REQUIRED_ALERTS
    [down] = [r for r in alert_rules() if r["alert"] == "InstanceDown"]
    assert down["for"] == "1m" and down["expr"].replace(" ", "").endswith("==0")


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_every_alert_has_severity_service_summary_description_and_a_runbook_entry(rule):
    assert rule["labels"]["severity"] in {"critical", "warning"}
    assert rule["labels"]["service"] == "inventory"
    notes = rule["annotations"]
    assert notes["summary"] and notes["description"]
    anchor = notes["runbook_url"].split("#", 1)[1]
    assert anchor == rule["alert"].lower()
    headings = {
        re.sub(r"[^a-z0-9-]", "", line.lstrip("#").strip().lower().replace(" ", "-"))
        for line in (OPS / "README.md").read_text().splitlines()
        if line.startswith("#")
    }
    assert anchor in headings, f"ops/README.md needs a heading for {rule['alert']}"


def _evaluations() -> dict[str, list[tuple[str, bool]]]:
    seen: dict[str, list[tuple[str, bool]]] = {}
    for path in (PROM / "tests").glob("*_test.yml"):
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                seen.setdefault(case["alertname"], []).append((case["eval_time"], bool(case["exp_alerts"])))
    return seen


def _minutes(duration: str) -> float:
    value, unit = re.fullmatch(r"(\d+)([smh])", duration).groups()
    return int(value) * {"s": 1 / 60, "m": 1, "h": 60}[unit]


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_every_alert_is_tested_just_before_and_just_after_its_for(rule):
    cases = _evaluations().get(rule["alert"], [])
    quiet = [_minutes(t) for t, fires in cases if not fires]
    firing = [_minutes(t) for t, fires in cases if fires]
    assert quiet and firing, f"{rule['alert']} needs a quiet and a firing evaluation"
    hold = _minutes(rule.get("for", "0s"))
    # The series turn bad at 1 minute in these tests (or at 31 for the audit-age clock).
    assert any(f - q <= 1 for q in quiet for f in firing), "evaluate one step before and one after"
    assert min(firing) - hold >= 1 or hold == 0


def test_every_metric_the_rules_use_is_one_the_app_exports(make_app):
    app = make_app(INVENTORY_METRICS_TOKEN="t")
    registry = app.extensions["inventory_metrics_exporter"].registry
    exported = {metric.name for metric in registry.collect()}
    exported |= {f"{name}_total" for name in exported} | {
        f"{name}_{suffix}" for name in exported for suffix in ("bucket", "count", "sum")
    }
    used = {
        name
        for expr in all_exprs()
        for name in re.findall(r"\b(inventory_[a-z_]+)\b", expr)
        if not re.match(r"^inventory_[a-z_]+:", name)
    }
    assert used, "the rules use no app metric?"
    assert used <= exported, f"not exported by the app: {sorted(used - exported)}"


def test_every_recording_rule_has_a_promtool_expression_test():
    records = {
        rule["record"]
        for path in sorted((PROM / "rules").glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "record" in rule
    }
    tested = {
        case["expr"]
        for path in (PROM / "tests").glob("*_test.yml")
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("promql_expr_test", [])
    }
    assert records and records <= tested, sorted(records - tested)
