"""Gunicorn server hooks and log configuration; gunicorn.conf.py imports these names.

PROMETHEUS_MULTIPROC_DIR must already be in the environment when gunicorn starts (the container
sets it): prometheus_client decides at import time whether samples go to files. This module
imports prometheus_client only inside the hooks, so importing it early changes nothing.
"""

from __future__ import annotations

import gc
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from gunicorn.glogging import Logger

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Probes and scrapes arrive every few seconds: an access line each would drown the useful ones.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def on_starting(server: Any) -> None:
    """Empty the multiprocess directory: samples of a previous run's workers must not be added."""
    directory = os.environ.get(MULTIPROC_ENV)
    if not directory:
        return
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink(missing_ok=True)


def post_fork(server: Any, worker: Any) -> None:
    """In a worker forked from a preloaded master: drop the pool the master's engine may hold
    (without closing its connections, which are the master's) so the worker opens its own."""
    if not server.cfg.preload_app:
        return
    from app.extensions import db

    with server.app.wsgi().app_context():
        db.engine.dispose(close=False)


def pre_fork(server: Any, worker: Any) -> None:
    """In a preloaded master, just before a worker is forked: move every object the master holds
    (the app, its modules, pypinyin's dictionaries: some 350,000) into the collector's permanent
    generation (gc.freeze, as Python's documentation advises before fork). A worker's full
    collection then scans only what it made itself: it took 110 ms with them, several times per
    hundred page requests, and they are never garbage; nor does the collector write to those
    pages, so they stay shared with the master. tests/benchmarks/pages.py (in-process, frozen
    the same way, 2026-12-06): items first page p50 26.4 -> 18.3 ms."""
    if server.cfg.preload_app:
        gc.freeze()


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges (its counters and histograms keep counting in the sum)."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


class GunicornLogger(Logger):
    """Gunicorn's logger, with access lines only when `accesslog` is set (GUNICORN_ACCESS_LOG).

    With a logconfig_dict, stock gunicorn builds and formats an access record for every request
    even when `accesslog` is unset; the app's own line already covers each request.
    """

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        if self.cfg.accesslog:
            super().access(resp, req, environ, request_time)


class GunicornAccessFilter(logging.Filter):
    """Turns gunicorn's access record into our JSON fields; no headers, no query string.

    Gunicorn passes its "atoms" as the record's args: m method, U path without query, s status,
    D duration in microseconds, and `{x-request-id}o` / `{x-trace-id}o` the response headers the app
    set (the line is written after the request's span ended: it has the trace id, not a span id).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        atoms = record.args if isinstance(record.args, dict) else None
        if atoms is None:
            return True
        method, path, status = atoms.get("m", "-"), atoms.get("U", "-"), atoms.get("s", "-")
        if path in QUIET_PATHS:
            return False
        record.method = method
        record.path = path
        record.status = int(status) if str(status).isdigit() else status
        micros = str(atoms.get("D"))
        record.duration_ms = round(int(micros) / 1000, 2) if micros.isdigit() else None
        request_id = atoms.get("{x-request-id}o", "-")
        record.request_id = None if request_id in ("-", "") else request_id
        trace_id = atoms.get("{x-trace-id}o", "-")
        record.trace_id = None if trace_id in ("-", "") else trace_id
        # Gunicorn knows neither the URL rule nor the user: the app's own line has them.
        record.route = None
        record.user_id = None
        record.msg = f"{method} {path} {status}"
        record.args = ()
        return True


logconfig_dict: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "app.observability.logging.JsonFormatter"}},
    "filters": {"access": {"()": "app.observability.gunicorn_hooks.GunicornAccessFilter"}},
    "handlers": {
        "stdout": {"class": "app.observability.logging.StdoutHandler", "formatter": "json"},
        "access": {"class": "app.observability.logging.StdoutHandler", "formatter": "json", "filters": ["access"]},
    },
    "root": {"level": "INFO", "handlers": ["stdout"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["stdout"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
    },
}
