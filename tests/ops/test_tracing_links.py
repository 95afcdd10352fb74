"""Logs and traces find each other in the shipped Grafana configuration: the Loki data source's
derived field reads the trace id from the field the app really logs and points at the Tempo data
source; Tempo points back at Loki with a query on that same field; Alloy forwards OTLP to Tempo."""

from __future__ import annotations

import re

import yaml

from tests.ops.conftest import OPS
from tests.ops.test_log_pipeline import parsed

DATASOURCES = OPS / "grafana" / "provisioning" / "datasources" / "inventory.yaml"


def datasources() -> dict[str, dict]:
    return {ds["type"]: ds for ds in yaml.safe_load(DATASOURCES.read_text())["datasources"]}


def derived_field() -> dict:
    [field] = datasources()["loki"]["jsonData"]["derivedFields"]
    return field


def test_the_derived_field_regex_captures_the_trace_id_of_every_line_the_app_writes(captured_log_lines):
    pattern = re.compile(derived_field()["matcherRegex"])
    lines = [line.split(" F ", 1)[1] for line in captured_log_lines]
    traced = [
        (line, entry) for line, entry in zip(lines, parsed(captured_log_lines), strict=True) if "trace_id" in entry
    ]
    requests = [entry for _, entry in traced if entry["logger"] == "inventory.access"]
    assert requests, "the app logged no trace_id on its access lines"
    for line, entry in traced:
        match = pattern.search(line)
        assert match is not None and match.group(1) == entry["trace_id"], line
    assert all(re.fullmatch(r"[0-9a-f]{16}", entry["span_id"]) for entry in requests)


def test_the_derived_field_links_to_the_tempo_data_source_by_uid():
    field, tempo = derived_field(), datasources()["tempo"]
    assert field["datasourceUid"] == tempo["uid"] == "inventory-tempo"
    # An internal link: the captured value is the trace id Tempo opens ("$$" escapes "$").
    assert field["url"] == "$${__value.raw}"


def test_tempo_links_back_to_loki_with_a_query_on_the_logged_field():
    sources = datasources()
    logs = sources["tempo"]["jsonData"]["tracesToLogsV2"]
    assert logs["datasourceUid"] == sources["loki"]["uid"]
    assert 'trace_id = "$${__trace.traceId}"' in logs["query"]
    assert sources["tempo"]["jsonData"]["serviceMap"]["datasourceUid"] == sources["prometheus"]["uid"]


def test_alloy_receives_otlp_and_forwards_traces_to_tempo():
    text = (OPS / "loki" / "alloy" / "config.alloy").read_text()
    assert re.search(r'otelcol\.receiver\.otlp "default".*?endpoint = "0\.0\.0\.0:4318"', text, re.S)
    assert "traces = [otelcol.processor.batch.default.input]" in text
    assert "traces = [otelcol.exporter.otlp.tempo.input]" in text
    assert re.search(r'otelcol\.exporter\.otlp "tempo".*?endpoint = "tempo-distributor', text, re.S)
