"""Contract tests of the log pipeline (ops/loki): the Alloy and Promtail configs read fields the
app and gunicorn really write. No Loki/Alloy/Promtail binary exists here, so the pipeline stages
are applied by hand to real captured lines, exactly as the configs declare them."""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest
import yaml

from tests.ops.conftest import OPS, REPO

LOKI = OPS / "loki"
BOUNDED_LABELS = {"namespace", "app", "container", "level"}
LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
# Promtail's and Alloy's CRI stage: "<time> <stream> <P|F> <content>".
CRI = re.compile(r"^(?P<time>\S+) (?P<stream>stdout|stderr) (?P<flags>\S+) (?P<content>.*)$")
RFC3339NANO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")


def _alloy_block(text: str, name: str) -> str:
    start = text.index(name)
    depth, i = 0, text.index("{", start)
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1 : j]
    raise AssertionError(f"unclosed block {name}")


def _alloy_map(block: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)\s*=\s*"([^"]*)"', block))


def alloy_pipeline() -> dict:
    text = (LOKI / "alloy" / "config.alloy").read_text()
    process = _alloy_block(text, 'loki.process "inventory"')
    timestamp = _alloy_map(_alloy_block(process, "stage.timestamp"))
    relabel = _alloy_block(text, 'discovery.relabel "inventory"')
    return {
        "cri": "stage.cri" in process,
        "json": _alloy_map(_alloy_block(_alloy_block(process, "stage.json"), "expressions")),
        "timestamp": (timestamp["source"], timestamp["format"]),
        "labels": set(_alloy_map(_alloy_block(_alloy_block(process, "stage.labels"), "values"))),
        "metadata": set(_alloy_map(_alloy_block(_alloy_block(process, "stage.structured_metadata"), "values"))),
        "keep": set(re.findall(r'"(\w+)"', _alloy_block(process, "stage.label_keep"))),
        "targets": set(re.findall(r'target_label\s*=\s*"(\w+)"', relabel)) - {"__path__"},
    }


def promtail_pipeline() -> dict:
    config = yaml.safe_load((LOKI / "promtail" / "promtail.yaml").read_text())
    [job] = config["scrape_configs"]
    stages = {next(iter(stage)): next(iter(stage.values())) for stage in job["pipeline_stages"]}
    return {
        "cri": "cri" in stages,
        "json": stages["json"]["expressions"],
        "timestamp": (stages["timestamp"]["source"], stages["timestamp"]["format"]),
        "labels": set(stages["labels"]),
        "metadata": set(stages["structured_metadata"]),
        "keep": set(stages["labelallow"]),
        "targets": {r["target_label"] for r in job["relabel_configs"] if "target_label" in r} - {"__path__"},
    }


def parsed(captured_log_lines: list[str]) -> list[dict]:
    entries = []
    for line in captured_log_lines:
        match = CRI.match(line)
        assert match, f"not a CRI line: {line!r}"
        entries.append(json.loads(match["content"]))
    return entries


def test_alloy_and_promtail_declare_the_same_pipeline():
    assert alloy_pipeline() == promtail_pipeline()


def test_only_bounded_labels_are_kept_and_the_request_and_trace_ids_are_structured_metadata():
    pipeline = alloy_pipeline()
    assert pipeline["cri"]
    assert pipeline["keep"] == BOUNDED_LABELS
    assert pipeline["targets"] | pipeline["labels"] == BOUNDED_LABELS
    assert pipeline["metadata"] == {"request_id", "trace_id"}
    assert not pipeline["metadata"] & pipeline["keep"]


def test_every_captured_line_is_json_with_the_fields_the_pipelines_extract(captured_log_lines):
    entries = parsed(captured_log_lines)
    loggers = {entry["logger"] for entry in entries}
    assert {"inventory.access", "gunicorn.error", "gunicorn.access"} <= loggers, loggers
    source_fields = set(alloy_pipeline()["json"].values())
    for entry in entries:
        assert {"timestamp", "level", "logger", "message"} <= entry.keys(), entry
    requests = [e for e in entries if e["logger"] in ("inventory.access", "gunicorn.access")]
    assert requests and all(source_fields <= e.keys() for e in requests)
    assert {e["request_id"] for e in requests} >= {"contract-req-1", "contract-req-2", "contract-g-1"}


def test_the_timestamp_field_parses_as_the_configured_format(captured_log_lines):
    source, form = alloy_pipeline()["timestamp"]
    assert form == "RFC3339Nano"
    for entry in parsed(captured_log_lines):
        assert RFC3339NANO.match(entry[source]), entry[source]
        assert datetime.fromisoformat(entry[source]).utcoffset() is not None


def test_level_values_are_few_so_the_level_label_stays_bounded(captured_log_lines):
    levels = {entry["level"] for entry in parsed(captured_log_lines)}
    assert levels <= LEVELS and "ERROR" in levels


def test_request_lines_carry_method_route_status_and_duration_and_no_headers(captured_log_lines):
    entries = parsed(captured_log_lines)
    [probe] = [e for e in entries if e.get("request_id") == "contract-req-1" and e["logger"] == "inventory.access"]
    assert (probe["method"], probe["route"], probe["status"]) == ("GET", "/probe/<name>", 200)
    assert isinstance(probe["duration_ms"], float)
    [error] = [e for e in entries if e.get("request_id") == "contract-req-2" and e["level"] == "ERROR"]
    assert error["route"] == "/boom" and "RuntimeError" in error["exc_info"]
    access = [e for e in entries if e["logger"] == "gunicorn.access" and e["request_id"] == "contract-g-1"]
    assert len(access) == 1, "gunicorn writes one access line per request"
    assert {"request_id", "user_id", "method", "route", "status", "duration_ms"} <= access[0].keys()
    assert (access[0]["method"], access[0]["path"], access[0]["status"]) == ("GET", "/gunicorn-contract", 404)
    assert not [e for e in entries if e["logger"] == "gunicorn.access" and e["path"] == "/healthz"]
    text = "\n".join(captured_log_lines).lower()
    for leaked in ("token=secret", "user-agent", "x-request-id:", "cookie"):
        assert leaked not in text


@pytest.mark.parametrize("path", ["ops/k8s/base/web-deployment.yaml"])
def test_the_pipelines_select_the_pods_the_deployment_labels(path):
    docs = [d for d in yaml.safe_load_all((REPO / path).read_text()) if d]
    labels = next(d for d in docs if d["kind"] in ("Deployment", "Rollout"))["spec"]["template"]["metadata"]["labels"]
    config = yaml.safe_load((LOKI / "promtail" / "promtail.yaml").read_text())
    [keep] = [r for r in config["scrape_configs"][0]["relabel_configs"] if r.get("action") == "keep"]
    assert keep["regex"] == labels["app.kubernetes.io/name"]
    assert 'regex         = "inventory"' in (LOKI / "alloy" / "config.alloy").read_text()
