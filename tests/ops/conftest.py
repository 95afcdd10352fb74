"""Helpers for the ops tests: the Prometheus/Alertmanager tools (installed by `make deps`, i.e. .ci/deps)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OPS = REPO / "ops"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run `make deps`")
    return path


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool(args[0]), *args[1:]], capture_output=True, text=True, cwd=cwd, timeout=60, check=False)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _app_lines(tmp: Path) -> list[str]:
    """JSON lines the app writes for a normal request, a 404 and an unhandled error."""
    import contextlib
    import io

    from flask_migrate import upgrade

    from app import create_app
    from app.config import Config
    from app.observability.logging import configure_root_logger

    app = create_app(Config(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp / 'logs.db'}", SECRET_KEY="x" * 40, TESTING=False))
    with app.app_context():
        upgrade()
    configure_root_logger()  # Alembic's fileConfig replaced the root handlers

    def boom() -> str:
        raise RuntimeError("contract test failure")

    app.add_url_rule("/probe/<name>", "probe", lambda name: "ok")
    app.add_url_rule("/boom", "boom", boom)
    client = app.test_client()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        client.get("/probe/x", headers={"X-Request-ID": "contract-req-1"})
        client.get("/missing")
        client.get("/boom", headers={"X-Request-ID": "contract-req-2"})
    return out.getvalue().splitlines()


def _gunicorn_lines(tmp: Path) -> list[str]:
    """What gunicorn itself writes (error log and access log) under the repo's gunicorn.conf.py."""
    import contextlib
    import os
    import sys
    import time
    import urllib.request

    port = _free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": f"sqlite:///{tmp / 'logs.db'}",
        "SECRET_KEY": "x" * 40,
        "INVENTORY_ENV": "testing",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "1",
        "GUNICORN_ACCESS_LOG": "true",
        "GUNICORN_WORKER_TMP_DIR": str(tmp),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp / "multiproc"),
    }
    log = tmp / "gunicorn.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(REPO / "gunicorn.conf.py"), "wsgi:app"],
            cwd=REPO,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            url = f"http://127.0.0.1:{port}/gunicorn-contract?token=secret"
            request = urllib.request.Request(url, headers={"X-Request-ID": "contract-g-1"})
            with contextlib.suppress(urllib.error.HTTPError):
                urllib.request.urlopen(request, timeout=5)  # noqa: S310
        finally:
            proc.terminate()
            proc.wait(20)
    return log.read_text().splitlines()


@pytest.fixture(scope="session")
def captured_log_lines(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Real stdout lines of the running app and of gunicorn, as a container runtime stores them."""
    tmp = tmp_path_factory.mktemp("logs")
    (tmp / "multiproc").mkdir()
    lines = [line for line in _app_lines(tmp) + _gunicorn_lines(tmp) if line.strip()]
    return [f"2026-11-25T10:00:00.{n:09d}Z stdout F {line}" for n, line in enumerate(lines)]
