"""Distributed tracing: OpenTelemetry, configured only by the standard OTEL_* variables, and the
trace and span ids that every log line carries.

With an OTLP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) the
SDK records spans: the Flask request (an incoming W3C `traceparent` continues the caller's trace),
each SQL statement (SQLAlchemy; statements only, never their parameters), outgoing HTTP calls
(urllib: webhooks and WeCom, which receive `traceparent`), the stock unit of work with its retries,
lock waits, and the outbox claim and send. Sampling, service name, resource attributes and
exporter settings come from the SDK's own OTEL_* variables.

Without an endpoint nothing is instrumented and nothing is recorded: a request, job or delivery
only gets ids (the caller's trace id when it sent one), so its log lines and the `X-Trace-Id`
response header still tie it together, for the cost of two random numbers.

Background work (outbox deliveries, import jobs) runs in `job(name, traceparents)`: a trace of its
own, linked to the traces whose transactions queued it (`current_traceparent()` when queueing).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from flask import Flask, current_app, g, has_app_context, request
from flask.wrappers import Response
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, NonRecordingSpan, Span, SpanContext, SpanKind, TraceFlags, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from app.config import settings

TRACE_HEADER = "X-Trace-Id"
_EXTENSION = "inventory_tracer"
_CONTEXT_KEY = "_inventory_trace_context"
# Probes, scrapes and static files: thousands a day, none worth a trace.
_EXCLUDED_URLS = "/healthz,/readyz,/metrics,/static/"
_w3c = TraceContextTextMapPropagator()
_NOTHING: AbstractContextManager[None] = nullcontext()
_SPAN_BITS = (1 << 64) - 1


def init_tracing(app: Flask) -> None:
    if settings(app).TRACING_ENABLED:
        provider = _process_provider()
        _instrument(app, provider)
        app.extensions[_EXTENSION] = provider.get_tracer("inventory")
    else:
        app.extensions[_EXTENSION] = None
        app.before_request(_start_ids)
        app.teardown_request(_end_ids)
    app.after_request(_trace_header)


def _process_provider() -> Any:
    """The process's SDK provider: one already installed (opentelemetry-instrument, a test) or a new
    one exporting over OTLP in batches, sampled as OTEL_TRACES_SAMPLER(_ARG) say."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return trace.get_tracer_provider()


def _instrument(app: Flask, provider: Any) -> None:
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    from opentelemetry.instrumentation.urllib import URLLibInstrumentor

    from app.extensions import db

    flask: Any = FlaskInstrumentor  # untyped package
    flask.instrument_app(app, tracer_provider=provider, excluded_urls=_EXCLUDED_URLS, enable_commenter=False)
    with app.app_context():
        engine = db.engine
    # The instrumentor is one per process; a second app in the same process (tests) takes it over.
    sqlalchemy = SQLAlchemyInstrumentor()
    if sqlalchemy.is_instrumented_by_opentelemetry:
        sqlalchemy.uninstrument()
    sqlalchemy.instrument(engine=engine, tracer_provider=provider, enable_commenter=False)
    urllib = URLLibInstrumentor()
    if not urllib.is_instrumented_by_opentelemetry:
        urllib.instrument(tracer_provider=provider)


def _ids(parent: SpanContext | None = None) -> NonRecordingSpan:
    """A span that records nothing, with fresh ids (in the parent's trace when there is one)."""
    # Both ids from one read of the system's random source (two reads were a system call more on
    # every request); an all-zero id would be invalid, and is 2**-128 away.
    bits = int.from_bytes(os.urandom(24), "big")
    fresh_trace, span_id = (bits >> 64) or 1, (bits & _SPAN_BITS) or 1
    trace_id = parent.trace_id if parent is not None and parent.is_valid else fresh_trace
    flags = parent.trace_flags if parent is not None and parent.is_valid else TraceFlags(TraceFlags.DEFAULT)
    return NonRecordingSpan(SpanContext(trace_id, span_id, is_remote=False, trace_flags=flags))


def _start_ids() -> None:
    # Most requests carry no traceparent: then there is nothing to parse.
    header = request.environ.get("HTTP_TRACEPARENT")
    caller = trace.get_current_span(_w3c.extract({"traceparent": header})).get_span_context() if header else None
    g.setdefault(_CONTEXT_KEY, otel_context.attach(trace.set_span_in_context(_ids(caller))))


def _end_ids(_exc: BaseException | None) -> None:
    token = g.pop(_CONTEXT_KEY, None)
    if token is not None:
        otel_context.detach(token)


def _trace_header(response: Response) -> Response:
    ids = trace.get_current_span().get_span_context()
    if ids.is_valid:
        response.headers[TRACE_HEADER] = format(ids.trace_id, "032x")
    return response


def tracer() -> Tracer | None:
    """The app's tracer, or None when tracing is off (then spans are skipped, not made)."""
    if not has_app_context():
        return None
    found: Tracer | None = current_app.extensions.get(_EXTENSION)
    return found


def span(name: str, **attributes: Any) -> AbstractContextManager[Span | None]:
    """A child span of whatever is current; nothing at all when tracing is off (one shared
    null context: a stock-out enters two of these, on the hot path)."""
    found = tracer()
    if found is None:
        return _NOTHING
    return found.start_as_current_span(name, attributes=attributes)


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span, to store beside work queued for later."""
    ids = trace.get_current_span().get_span_context()
    if not ids.is_valid:
        return None
    return f"00-{ids.trace_id:032x}-{ids.span_id:016x}-{int(ids.trace_flags):02x}"


def links(traceparents: Iterable[str | None]) -> list[Link]:
    """Links to the spans that stored these traceparents (unreadable ones are skipped)."""
    found = []
    for value in traceparents:
        if value:
            ids = trace.get_current_span(_w3c.extract({"traceparent": value})).get_span_context()
            if ids.is_valid:
                found.append(Link(ids))
    return found


@contextmanager
def job(name: str, traceparents: Iterable[str | None] = (), **attributes: Any) -> Iterator[Span | None]:
    """Background work as a trace of its own, linked to the traces that queued it; its log lines
    carry its ids whether or not tracing is on."""
    found = tracer()
    if found is None:
        token = otel_context.attach(trace.set_span_in_context(_ids()))
        try:
            yield None
        finally:
            otel_context.detach(token)
        return
    with found.start_as_current_span(
        name,
        context=otel_context.Context(),
        kind=SpanKind.CONSUMER,
        links=links(traceparents),
        attributes=attributes,
    ) as current:
        yield current
