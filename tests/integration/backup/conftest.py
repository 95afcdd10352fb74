"""Backup fixtures: a fresh, empty database to restore into, and — for point-in-time recovery — a
MariaDB server of our own with binary logging on.

The shared test server (127.0.0.1:3306) runs without a binary log, and the tests must not change
it, so `binlog_server` installs a throwaway data directory (mariadb-install-db), starts mariadbd on
a free loopback port with `--log-bin --binlog-format=ROW`, and stops it at the end of the session.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pymysql
import pytest
from flask import Flask
from flask_migrate import upgrade

from app import create_app
from app.extensions import db
from tests.conftest import _connect_mysql, make_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_server(port: int, server: subprocess.Popen[bytes], log: Path) -> None:
    """Poll until the server accepts a connection (or has exited), up to 60 s."""
    for _ in range(600):
        if server.poll() is not None:
            pytest.fail(f"mariadbd exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            pymysql.connect(host="127.0.0.1", port=port, user="root", connect_timeout=1).close()
            return
        except pymysql.err.OperationalError:
            try:
                server.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                continue
    pytest.fail(f"mariadbd did not accept connections: {log.read_text(errors='replace')[-2000:]}")


@pytest.fixture(scope="session")
def binlog_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL (no database) of a private MariaDB with binary logging on."""
    base = tmp_path_factory.mktemp("mariadb")
    datadir, log = base / "data", base / "mariadbd.log"
    install = subprocess.run(
        ["mariadb-install-db", "--no-defaults", f"--datadir={datadir}", "--user=root",
         "--auth-root-authentication-method=normal", "--skip-test-db"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr
    port = _free_port()
    with log.open("wb") as out:
        server = subprocess.Popen(
            ["mariadbd", "--no-defaults", f"--datadir={datadir}", f"--port={port}", "--bind-address=127.0.0.1",
             f"--socket={base / 'mariadbd.sock'}", f"--pid-file={base / 'mariadbd.pid'}", "--user=root",
             f"--log-bin={datadir / 'binlog'}", "--binlog-format=ROW", "--server-id=1",
             "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
             "--innodb-buffer-pool-size=64M", "--skip-name-resolve"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _wait_for_server(port, server, log)
        yield f"mysql+pymysql://root@127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=60)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def fresh_database(backend: str, tmp_path: Path) -> Iterator[Callable[[str | None], str]]:
    """fresh_database(server_url=None): the URL of a new, empty database (a SQLite file, or a
    MariaDB database on the shared server or on `server_url`), dropped after the test."""
    made: list[tuple[str, str]] = []

    def _make(server_url: str | None = None) -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / f'fresh-{uuid.uuid4().hex[:8]}.db'}"
        name = f"inventory_restore_{uuid.uuid4().hex[:12]}"
        base = server_url or os.environ.get("TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")
        _execute(base, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        made.append((base, name))
        return f"{base}/{name}?charset=utf8mb4"

    yield _make
    for base, name in made:
        _execute(base, f"DROP DATABASE IF EXISTS `{name}`")


def _execute(server_url: str, sql: str) -> None:
    from sqlalchemy.engine import make_url

    url = make_url(server_url)
    if url.port == 3306 or url.port is None:
        conn = _connect_mysql()
    else:
        conn = pymysql.connect(host=url.host, port=url.port, user=url.username or "root", autocommit=True)
    with conn.cursor() as cur:
        cur.execute(sql)
    conn.close()


@pytest.fixture
def app_on() -> Iterator[Callable[..., Flask]]:
    """app_on(url, migrate=False, **config): an app on that database; disposed after the test."""
    made: list[Flask] = []

    def _make(url: str, migrate: bool = False, **overrides: object) -> Flask:
        app = create_app(make_config(url, **overrides))
        if migrate:
            with app.app_context():
                upgrade()
        made.append(app)
        return app

    yield _make
    for app in made:
        with app.app_context():
            db.engine.dispose()
