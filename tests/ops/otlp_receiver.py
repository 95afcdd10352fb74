"""A real OTLP/HTTP trace receiver on loopback: decodes the standard protobuf export requests
(opentelemetry-proto) into spans, for the tracing tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.ops.loopback import serve_posts


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]


@dataclass
class OtlpReceiver:
    endpoint: str = ""
    spans: list[ReceivedSpan] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, predicate: Any, timeout: float = 30) -> list[ReceivedSpan]:
        """Block until predicate(spans) is true (an exporter pushes in batches), then return them."""
        with self.arrived:
            assert self.arrived.wait_for(lambda: predicate(self.spans), timeout), f"spans so far: {self.spans}"
            return list(self.spans)


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def _decode(body: bytes) -> list[ReceivedSpan]:
    request = ExportTraceServiceRequest.FromString(body)
    found = []
    for resource_spans in request.resource_spans:
        resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                found.append(
                    ReceivedSpan(
                        service=str(resource.get("service.name", "")),
                        name=span.name,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        attributes={a.key: _value(a.value) for a in span.attributes},
                    )
                )
    return found


@contextmanager
def otlp_receiver() -> Iterator[OtlpReceiver]:
    state = OtlpReceiver()

    def respond(path: str, _headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        spans = _decode(body)
        with state.arrived:
            state.paths.append(path)
            state.spans.extend(spans)
            state.arrived.notify_all()
        return 200, "application/x-protobuf", ExportTraceServiceResponse().SerializeToString()

    with serve_posts(respond) as url:
        state.endpoint = url
        yield state
