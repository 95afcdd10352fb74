"""Alertmanager routes, inhibition, intervals and templates, checked with amtool."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.ops.conftest import OPS, run
from tests.ops.test_prometheus_rules import alert_rules

AM = OPS / "alertmanager"
CONFIG = AM / "alertmanager.yml"


def routes_test(*args: str):
    return run("amtool", "config", "routes", "test", f"--config.file={CONFIG}", *args)


def _seconds(duration: str) -> int:
    total = 0
    for value, unit in re.findall(r"(\d+)([smh])", duration):
        total += int(value) * {"s": 1, "m": 60, "h": 3600}[unit]
    return total


@pytest.mark.parametrize("path", [CONFIG, AM / "alternatives" / "wechat-app.yml"], ids=lambda p: p.name)
def test_configs_pass_amtool_check_config(path):
    result = run("amtool", "check-config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "1 templates" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["alertname=InstanceDown", "severity=critical", "service=inventory"], "wecom-critical"),
        (["alertname=InventoryLedgerMismatch", "severity=critical", "service=inventory"], "wecom-critical"),
        (["alertname=InventoryLowStockItems", "severity=warning", "service=inventory"], "wecom-warning"),
        (["alertname=InventoryImportJobWaiting", "severity=warning", "service=inventory"], "wecom-warning"),
        (["alertname=Something", "severity=info"], "wecom-warning"),
        (["alertname=NoSeverity"], "wecom-warning"),
    ],
)
def test_every_route_resolves_to_its_receiver(labels, receiver):
    result = routes_test(f"--verify.receivers={receiver}", *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver


def test_a_wrong_expectation_fails_so_the_route_tests_can_fail():
    result = routes_test("--verify.receivers=wecom-warning", "severity=critical")
    assert result.returncode != 0


def test_every_alert_severity_has_a_receiver():
    severities = {rule["labels"]["severity"] for rule in alert_rules()}
    for severity in severities:
        result = routes_test(f"severity={severity}")
        assert result.stdout.strip() == f"wecom-{severity}"


def test_warnings_are_inhibited_while_a_critical_alert_fires_for_the_same_service():
    config = yaml.safe_load(CONFIG.read_text())
    [rule] = config["inhibit_rules"]
    assert rule["source_matchers"] == ['severity = "critical"']
    assert rule["target_matchers"] == ['severity = "warning"']
    assert rule["equal"] == ["service"]
    assert config["route"]["group_by"] == ["alertname", "service"]


def test_intervals_keep_the_robot_under_20_messages_a_minute():
    config = yaml.safe_load(CONFIG.read_text())
    root = config["route"]
    alert_names = {rule["alert"] for rule in alert_rules()}
    for route in [root, *root["routes"]]:
        group_interval = _seconds(route.get("group_interval", root["group_interval"]))
        repeat_interval = _seconds(route.get("repeat_interval", root["repeat_interval"]))
        assert group_interval >= 60 and repeat_interval >= 3600
        # At worst every alert group changes at every group_interval: that many messages a minute.
        assert len(alert_names) * 60 / group_interval <= 20
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            assert hook["send_resolved"] is True and hook["url"].endswith("/alertmanager")
            assert "key=" not in hook["url"]  # the robot key lives in the relay's secret only


def test_the_wecom_template_renders():
    result = run(
        "amtool",
        "template",
        "render",
        f"--template.glob={AM / 'templates' / '*.tmpl'}",
        '--template.text={{ template "wecom.inventory.message" . }}',
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("### ")


def test_the_receivers_post_to_the_relay_service_of_the_kubernetes_manifests():
    from urllib.parse import urlsplit

    service = yaml.safe_load((OPS / "k8s" / "base" / "wecom-relay-service.yaml").read_text())
    kustomization = yaml.safe_load((OPS / "k8s" / "overlays" / "production" / "kustomization.yaml").read_text())
    ports = {port["port"] for port in service["spec"]["ports"]}
    for receiver in yaml.safe_load(CONFIG.read_text())["receivers"]:
        for hook in receiver["webhook_configs"]:
            url = urlsplit(hook["url"])
            assert url.hostname == f"{service['metadata']['name']}.{kustomization['namespace']}.svc"
            assert url.port in ports and url.path == "/alertmanager"
