"""Traces linked to logs: one stock-out request is one trace (HTTP request, unit of work, lock, SQL)
whose id every log line of the request carries; a caller's traceparent is continued; an outbox
delivery, later, is a trace linked to the request that wrote the event; with tracing off, nothing
is recorded but the log lines still carry ids; and gunicorn exports real OTLP to a receiver."""

from __future__ import annotations

import http.client
import json
import os
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.instrumentation.urllib import URLLibInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy.exc import OperationalError

from app.extensions import db
from app.models import Item, Location
from app.observability.logging import configure_root_logger
from app.services import notifications
from app.services.transaction import run_in_transaction
from tests.integration.served import flask_cli, free_port, gunicorn
from tests.ops.fake_receiver import fake_receiver
from tests.ops.otlp_receiver import otlp_receiver

HEX32, HEX16 = re.compile(r"^[0-9a-f]{32}$"), re.compile(r"^[0-9a-f]{16}$")
CALLER_TRACE, CALLER_SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


@pytest.fixture(scope="session")
def exporter() -> InMemorySpanExporter:
    """The process's tracer provider, recording into memory (the app uses one it finds installed)."""
    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    trace.set_tracer_provider(provider)
    return memory


@pytest.fixture
def spans(exporter: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    """The spans of this test. The SQLAlchemy and urllib instrumentations patch process-wide (one
    app per process in production): they are removed afterwards, so later apps are untraced."""
    exporter.clear()
    yield exporter
    exporter.clear()
    SQLAlchemyInstrumentor().uninstrument()
    URLLibInstrumentor().uninstrument()


@pytest.fixture
def capsys(app, capsys):
    """Our JSON handler on the root logger (the session app ran Alembic's fileConfig, which
    replaces root handlers), and stdout captured."""
    configure_root_logger()
    return capsys


def json_lines(text: str) -> list[dict]:
    return [json.loads(raw) for raw in text.splitlines() if raw.startswith("{")]


def issue(client, bearer, stocked, quantity: str = "1", **headers: str):
    body = {"sku": stocked.item.sku, "location": stocked.location.code, "quantity": quantity}
    return client.post("/api/v1/stock/issue", json=body, headers={**bearer, **headers})


@pytest.fixture
def bearer(factory) -> dict[str, str]:
    return {"Authorization": f"Bearer {factory.token(factory.user(role='clerk'), scope='write')}"}


@dataclass
class Stocked:
    item: Item
    location: Location


@pytest.fixture
def stocked(factory):
    """10 on hand at a location in warehouse WHT; the reorder point is 3."""
    item, location = factory.item(reorder_point=3), factory.location(warehouse=factory.warehouse(code="WHT"))
    factory.stock(item, location, 10)
    return Stocked(item, location)


def by_name(found: tuple[ReadableSpan, ...]) -> dict[str, list[ReadableSpan]]:
    named: dict[str, list[ReadableSpan]] = {}
    for span in found:
        named.setdefault(span.name, []).append(span)
    return named


def statement(span: ReadableSpan) -> str:
    attributes = span.attributes or {}
    return str(attributes.get("db.statement") or attributes.get("db.query.text"))


def ancestors(span: ReadableSpan, found: tuple[ReadableSpan, ...]) -> list[str]:
    ids = {s.context.span_id: s for s in found}
    chain = []
    while span.parent is not None and span.parent.span_id in ids:
        span = ids[span.parent.span_id]
        chain.append(span.name)
    return chain


def test_one_stock_out_request_is_one_trace_of_request_unit_of_work_lock_and_sql(
    make_app, spans, bearer, stocked, capsys
):
    traced = make_app(TRACING_ENABLED=True)
    spans.clear()
    capsys.readouterr()

    response = issue(traced.test_client(), bearer, stocked, "2")

    assert response.status_code == 201
    found = spans.get_finished_spans()
    trace_ids = {span.context.trace_id for span in found}
    assert len(trace_ids) == 1, [(s.name, s.context.trace_id % 1000, s.parent and s.parent.span_id) for s in found]
    [server] = [s for s in found if s.kind is SpanKind.SERVER]
    assert server.name == "POST /api/v1/stock/issue" and server.parent is None
    named = by_name(found)
    [work] = named["unit_of_work issue_stock"]
    assert ancestors(work, found) == [server.name]
    [lock] = named["stock.lock"]
    assert ancestors(lock, found)[:1] == ["unit_of_work issue_stock"]
    sql = [s for s in found if "db.statement" in (s.attributes or {}) or "db.query.text" in (s.attributes or {})]
    statements = [statement(s) for s in sql]
    [locking] = [s for s in sql if s.parent is not None and s.parent.span_id == lock.context.span_id]
    assert "FROM stock_levels" in statement(locking) and "item_id = " in statement(locking), statements
    assert all("unit_of_work issue_stock" in ancestors(s, found) for s in sql if "movements" in str(s.attributes))
    # Statements only, never their parameters: the SKU is bound, not written into the text.
    assert not any(stocked.item.sku in json.dumps(dict(s.attributes or {}), default=str) for s in sql)

    trace_id = format(trace_ids.pop(), "032x")
    assert response.headers["X-Trace-Id"] == trace_id
    lines = [line for line in json_lines(capsys.readouterr().out) if line.get("request_id")]
    assert lines and all(line["trace_id"] == trace_id and HEX16.match(line["span_id"]) for line in lines)


def test_a_traceparent_sent_by_the_client_is_continued(make_app, spans, bearer, stocked, capsys):
    traced = make_app(TRACING_ENABLED=True)
    spans.clear()
    capsys.readouterr()

    response = issue(traced.test_client(), bearer, stocked, traceparent=f"00-{CALLER_TRACE}-{CALLER_SPAN}-01")

    [server] = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert format(server.context.trace_id, "032x") == CALLER_TRACE
    assert format(server.parent.span_id, "016x") == CALLER_SPAN and server.parent.is_remote
    assert response.headers["X-Trace-Id"] == CALLER_TRACE
    [access] = [line for line in json_lines(capsys.readouterr().out) if line["logger"] == "inventory.access"]
    assert access["trace_id"] == CALLER_TRACE


def test_a_low_stock_event_delivered_later_is_in_a_span_linked_to_the_request(make_app, spans, bearer, stocked, capsys):
    traced = make_app(TRACING_ENABLED=True)
    with fake_receiver() as receiver:
        with traced.app_context():
            notifications.create_target(name="ERP", kind="webhook", url=f"{receiver.url}/hooks", warehouses=["WHT"])
        response = issue(traced.test_client(), bearer, stocked, "8")  # 10 -> 2, below the reorder point 3
        request_trace = int(response.headers["X-Trace-Id"], 16)
        spans.clear()
        capsys.readouterr()
        with traced.app_context():
            report = notifications.dispatch_once(notifications.Channel(robot_url="", base_url="https://x.example"))
            db.session.remove()

    assert report.delivered == 1
    found = spans.get_finished_spans()
    named = by_name(found)
    [delivery] = named["outbox.delivery"]
    [send] = named["outbox.send"]
    assert delivery.parent is None and delivery.context.trace_id != request_trace
    assert [link.context.trace_id for link in delivery.links] == [request_trace]
    assert [link.context.trace_id for link in send.links] == [request_trace]
    assert {"outbox.claim", "outbox.send", "unit_of_work outbox_record"} <= set(named)
    delivery_trace = format(delivery.context.trace_id, "032x")
    [call] = receiver.received
    sent = {name.lower(): value for name, value in call.headers.items()}
    assert sent["traceparent"].split("-")[1] == delivery_trace
    [line] = [line for line in json_lines(capsys.readouterr().out) if line["message"] == "low-stock events dispatched"]
    assert line["trace_id"] == delivery_trace and HEX16.match(line["span_id"])


def test_with_tracing_off_nothing_is_recorded_but_log_lines_and_the_header_carry_ids(
    make_app, spans, bearer, stocked, capsys
):
    plain = make_app()
    capsys.readouterr()

    response = issue(plain.test_client(), bearer, stocked)
    continued = issue(plain.test_client(), bearer, stocked, traceparent=f"00-{CALLER_TRACE}-{CALLER_SPAN}-01")

    assert spans.get_finished_spans() == ()
    first, second = (line for line in json_lines(capsys.readouterr().out) if line["logger"] == "inventory.access")
    assert HEX32.match(first["trace_id"]) and HEX16.match(first["span_id"])
    assert response.headers["X-Trace-Id"] == first["trace_id"]
    assert second["trace_id"] == CALLER_TRACE == continued.headers["X-Trace-Id"]
    assert second["span_id"] != CALLER_SPAN


# ---------------------------------------------------------------- gunicorn -> OTLP/HTTP receiver


def _get(port: int, path: str, headers: dict[str, str]) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=90)  # the worker may still be booting
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


@pytest.mark.slow
def test_gunicorn_exports_its_spans_over_otlp_http_to_a_real_receiver(tmp_path: Path) -> None:
    port = free_port()
    metrics = tmp_path / "prometheus"
    metrics.mkdir()
    with otlp_receiver() as receiver:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("INVENTORY_", "GUNICORN_", "OTEL_", "FLASK_"))}
        env |= {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'inventory.db'}",
            "SECRET_KEY": "tracing-test-" + "k" * 32,
            "PROMETHEUS_MULTIPROC_DIR": str(metrics),
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "GUNICORN_WORKERS": "1",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_SERVICE_NAME": "inventory-test",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        flask_cli(env, "db", "upgrade")
        with gunicorn(env, tmp_path / "gunicorn.log") as process:
            response = _get(port, "/login", {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"})
            assert response.getheader("X-Trace-Id") == CALLER_TRACE, process
            found = receiver.wait_for(lambda got: any(s.trace_id == CALLER_TRACE for s in got))

    [server] = [s for s in found if s.trace_id == CALLER_TRACE and s.parent_span_id == CALLER_SPAN]
    assert server.service == "inventory-test" and server.name == "GET /login"
    assert set(receiver.paths) == {"/v1/traces"}


def test_a_retried_unit_of_work_records_each_retry_as_an_event_with_its_reason(make_app, spans):
    traced = make_app(TRACING_ENABLED=True)
    attempts: list[int] = []

    def locked_once() -> int:
        attempts.append(1)
        if len(attempts) == 1:
            raise OperationalError("UPDATE stock_levels ...", {}, sqlite3.OperationalError("database is locked"))
        return len(attempts)

    with traced.app_context():
        assert run_in_transaction(locked_once, name="probe") == 2

    [work] = by_name(spans.get_finished_spans())["unit_of_work probe"]
    assert [(e.name, dict(e.attributes)) for e in work.events] == [
        ("retry", {"reason": "database_locked", "attempt": 1})
    ]
