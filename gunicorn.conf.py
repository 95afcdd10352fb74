"""Gunicorn settings for Inventory, every knob read from the environment.

The defaults suit a container with one or two CPUs behind a buffering proxy (the ingress): four
single-threaded sync workers, a graceful timeout shorter than the pod's
terminationGracePeriodSeconds minus its preStop sleep (see ops/k8s/base/web-deployment.yaml), and
worker heartbeats on tmpfs because the root filesystem is read-only.

Why sync workers: tests/benchmarks/api_stock_out.py (hot SKU, 16 connections, 2 CPUs shared with
MariaDB) measured, in one session, 4 sync workers at 0.58 of the raw PyMySQL limit (p99 25 ms),
4 gthread workers x 1 thread at 0.49, 6 x 1 at 0.51, and the former 2 x 4 threads at 0.41: with
threads, a request holding a row lock waits for its process's GIL while the other threads parse
requests, so every queued stock-out on that row waits too. Set GUNICORN_THREADS above 1 to get
gthread workers again (gunicorn switches by itself), e.g. to ride out slow clients without a
buffering proxy in front. A sync worker takes a connection only when it is free: one still queued
when SIGTERM arrives is reset, which the pod's preStop sleep (no new traffic by then) makes rare.
"""

from __future__ import annotations

import os
from pathlib import Path

# Multiprocess metrics (wipe the directory on start, mark dead workers) and JSON logs for gunicorn's
# own error and access lines. They import nothing of prometheus_client at load time.
from app.observability.gunicorn_hooks import child_exit, logconfig_dict, on_starting, post_fork, pre_fork

__all__ = ["child_exit", "logconfig_dict", "logger_class", "on_starting", "post_fork", "pre_fork"]


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


wsgi_app = "wsgi:app"
# Build the app once in the master and fork the workers from it: they share its code and data
# pages until they write to them (copy-on-write). tests/benchmarks/memory.py (2026-12-06) measured
# master + 4 workers at 555 MiB PSS without, 295 MiB with. Loading opens no database connection
# and starts no thread (tests/integration/test_preload.py; with tracing on, the OpenTelemetry
# SDK's export thread restarts itself in each worker through os.register_at_fork); post_fork
# empties each worker's copy of the engine's pool all the same (a connection two processes
# share interleaves their protocol). A SIGHUP re-forks workers from the code already loaded:
# new code needs a new pod. GUNICORN_PRELOAD=false turns preloading off.
preload_app = os.environ.get("GUNICORN_PRELOAD", "").strip().lower() not in {"0", "false", "no", "off"}
bind = [os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")]  # the container port, behind a Service
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "").strip() or "sync"
# About two per CPU: a worker waiting on MariaDB leaves its CPU to the others.
workers = _int("GUNICORN_WORKERS", 4)
threads = _int("GUNICORN_THREADS", 1)
# A request slower than this is a stuck worker: the master kills and replaces it. A sync worker's
# heartbeat waits for its request, so this must cover the slowest honest one (a 100,000-row import
# commits in about 25 s).
timeout = _int("GUNICORN_TIMEOUT", 120)
# SIGTERM/SIGHUP: workers stop accepting and get this long to finish in-flight requests.
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 25)
# Longer than the load balancer's idle timeout would invite races on reused connections; shorter is safe.
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Recycle workers now and then so slow leaks never become outages; jitter avoids all restarting at once.
max_requests = _int("GUNICORN_MAX_REQUESTS", 2000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 200)
# Heartbeat files on tmpfs: a disk-backed (or read-only) /tmp can stall or break the worker timeout check.
worker_tmp_dir = os.environ.get("GUNICORN_WORKER_TMP_DIR") or ("/dev/shm" if Path("/dev/shm").is_dir() else None)  # noqa: S108
# The ingress terminates TLS; trust X-Forwarded-* only from the addresses configured for it.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")
# The app writes one JSON access line per request (inventory.access: route, user, status,
# duration, request id). Gunicorn's own access line says less and cost 6 % of a stock-out's CPU,
# so it is off unless GUNICORN_ACCESS_LOG=true (then JSON too, through logconfig_dict).
logger_class = "app.observability.gunicorn_hooks.GunicornLogger"
accesslog = "-" if os.environ.get("GUNICORN_ACCESS_LOG", "").strip().lower() in {"1", "true", "yes", "on"} else None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
proc_name = "inventory"
# No gunicornc control socket: nothing in a pod uses it, and $HOME is on the read-only filesystem.
control_socket_disable = True
