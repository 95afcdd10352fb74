"""Structured JSON logs on stdout, one object per line, with a request id on every request.

The field names are a contract: Promtail/Alloy pipelines and Grafana's LogQL panels (ops/loki,
ops/grafana) read `timestamp`, `level`, `logger`, `message`, `request_id`, `trace_id`, `span_id`,
`user_id`, `method`, `route`, `status` and `duration_ms`; tests/ops checks them against lines the app really writes.
Nothing here ever logs request headers, cookies, form bodies or URLs with query strings, and a
last-line filter masks anything shaped like a secret that a library might still emit.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any, TextIO

import click
from flask import Flask, g, has_request_context, request
from flask.wrappers import Response
from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from app.config import settings

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_CONTEXT_FIELDS = ("request_id", "user_id", "method", "route")
_HANDLER_MARK = "_inventory_json_handler"
_SERVICE_COMMAND = "inventory.log_to_stdout"
access_log = logging.getLogger("inventory.access")

# Secret shapes masked in every log line, whoever wrote it: bearer tokens, our API tokens
# ("inv_" prefix), the WeCom robot key in a URL, password/token/secret key-value pairs, cookies.
_SECRET_PATTERNS = (
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1[REDACTED]"),
    (re.compile(r"(?i)([?&](?:key|token|access_token|secret|signature)=)[^&\s\"']+"), r"\1[REDACTED]"),
    (
        re.compile(
            r"(?i)((?:password|passwd|secret|token|api_key|csrf_token|session|cookie)[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,;]+"
        ),
        r"\1[REDACTED]",
    ),
)


# Extra fields whose names say they hold a credential are never written, whatever their value.
_SECRET_KEYS = re.compile(r"(?i)password|passwd|secret|token|authorization|cookie|api_key|webhook_url")


# Every word the patterns above start from, so that one search clears the usual line (an access
# line has ten fields) instead of three substitutions per field.
_MAYBE_SECRET = re.compile(r"(?i)bearer|key|token|secret|signature|passw|session|cookie")
# Fields the formatter itself fills with fixed vocabulary: never a credential.
_OWN_FIELDS = frozenset({"timestamp", "level", "logger"})


def redact(text: str) -> str:
    """`text` with anything shaped like a credential replaced by [REDACTED]."""
    if not _MAYBE_SECRET.search(text):
        return text
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(_JsonFormatter):
    """python-json-logger with our fixed field names and an RFC 3339 UTC timestamp."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("reserved_attrs", None)
        super().__init__("%(levelname)s %(name)s %(message)s", *args, **kwargs)

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_data, record, message_dict)
        log_data["timestamp"] = (
            datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        )

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        ordered = {"timestamp": log_data.pop("timestamp")}
        ordered.update(log_data)
        return {key: _clean(key, value) for key, value in ordered.items()}


def _clean(key: str, value: Any) -> Any:
    if key in _OWN_FIELDS:
        return value
    if value is not None and _SECRET_KEYS.search(key):
        return "[REDACTED]"
    return redact(value) if isinstance(value, str) else value


class RequestContextFilter(logging.Filter):
    """Adds the trace and span ids of the request, job or delivery in progress (32 and 16 hex
    characters), and the request id, user id, method and route of the request being served."""

    def filter(self, record: logging.LogRecord) -> bool:
        ids = trace.get_current_span().get_span_context()
        if ids.is_valid and not hasattr(record, "trace_id"):
            record.trace_id = format(ids.trace_id, "032x")
            record.span_id = format(ids.span_id, "016x")
        if has_request_context():
            for name, value in request_fields().items():
                if not hasattr(record, name):
                    setattr(record, name, value)
        return True


class StdoutHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever sys.stdout is now (so pytest's capture and gunicorn's redirection work).

    Inside a one-shot `flask` command stdout is the command's output (a new API token, a report)
    that scripts read, so its log lines go to stderr; long-running commands mark themselves with
    `log_to_stdout()` and log to stdout like the web app.
    """

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self) -> Any:
        context = click.get_current_context(silent=True)
        if context is not None and not context.find_root().meta.get(_SERVICE_COMMAND, False):
            return sys.stderr
        return sys.stdout

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def log_to_stdout() -> None:
    """Called by long-running commands (`flask notify run`, `flask wecom-relay`): they are services."""
    context = click.get_current_context(silent=True)
    if context is not None:
        context.find_root().meta[_SERVICE_COMMAND] = True


def json_handler() -> logging.Handler:
    handler = StdoutHandler()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContextFilter())
    return handler


def request_fields() -> dict[str, Any]:
    rule = request.url_rule
    return {
        "request_id": g.get("request_id"),
        "user_id": _user_id(),
        "method": request.method,
        "route": rule.rule if rule is not None else None,
    }


def _user_id() -> str | None:
    # Only a user Flask-Login already loaded: a log line must never cause a database query.
    user = g.get("_login_user")
    if user is not None and getattr(user, "is_authenticated", False):
        return str(user.id)  # get_id() also carries the credential version
    return None


def _start_request() -> None:
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
    g.request_started = time.perf_counter()


def _finish_request(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = g.get("request_id") or ""
    started = g.get("request_started")
    duration_ms = round((time.perf_counter() - started) * 1000, 2) if started else None
    if request.url_rule is None or request.url_rule.endpoint not in _QUIET_ENDPOINTS:
        access_log.info(
            "%s %s %s",
            request.method,
            request.url_rule.rule if request.url_rule else "<unmatched>",
            response.status_code,
            extra={"status": response.status_code, "duration_ms": duration_ms},
        )
    return response


# Probes and scrapes arrive every few seconds; logging each would drown the useful lines.
_QUIET_ENDPOINTS = frozenset({"health.healthz", "health.readyz", "prometheus_metrics"})


def configure_root_logger(level: str = "INFO") -> None:
    """One JSON handler on the root logger (idempotent: many test apps share one process)."""
    root = logging.getLogger()
    if not any(getattr(h, _HANDLER_MARK, False) for h in root.handlers):
        for existing in list(root.handlers):
            if isinstance(existing, logging.StreamHandler) and getattr(existing, "stream", None) in (
                sys.stdout,
                sys.stderr,
            ):
                root.removeHandler(existing)
        handler = json_handler()
        setattr(handler, _HANDLER_MARK, True)
        root.addHandler(handler)
    root.setLevel(level)
    # logging.config.fileConfig (Alembic's env.py) disables every logger that exists when it runs.
    for name, known in logging.Logger.manager.loggerDict.items():
        if isinstance(known, logging.Logger) and name.split(".")[0] in {"app", "inventory"}:
            known.disabled = False
    # Library loggers that print URLs (with the robot key) or raw request lines at DEBUG/INFO.
    for noisy in ("urllib3", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def init_logging(app: Flask) -> None:
    configure_root_logger(settings(app).INVENTORY_LOG_LEVEL)
    # Flask's own handler would print a second, plain-text copy of app.logger lines.
    app.logger.handlers.clear()
    app.logger.propagate = True
    app.before_request(_start_request)
    app.after_request(_finish_request)
