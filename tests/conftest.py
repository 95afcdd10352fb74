"""Fixtures shared by every test: app, db, client, factory, login_as — on SQLite and on MariaDB.

Each test session creates its own databases (a SQLite file in a temporary folder and, for the
`mysql` parameter, a uniquely named MariaDB database it drops at the end), builds the schema by
running the Alembic migrations, and empties every table after each test.

The `mysql` parameter needs a MariaDB/MySQL server (TEST_MYSQL_URL, default root@127.0.0.1:3306).
It is never skipped: when the server cannot be reached, those tests fail. Deselect them explicitly
with `-m "not mysql"` on a machine without one.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app import create_app
from app.config import Config, parse_bool
from app.extensions import db as _db
from app.extensions import login_manager
from app.models import User
from tests.factories import Factory

MYSQL_URL = os.environ.get("TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")
BACKENDS = ["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)]


def _connect_mysql(database: str | None = None) -> pymysql.connections.Connection:
    url = make_url(MYSQL_URL)
    return pymysql.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
        database=database,
        charset="utf8mb4",
        autocommit=True,
    )


@pytest.fixture(scope="session")
def mysql_database() -> Iterator[str]:
    """A fresh MariaDB database for this session; its URL. Fails loudly when no server answers."""
    name = f"inventory_test_{uuid.uuid4().hex[:12]}"
    try:
        conn = _connect_mysql()
    except pymysql.err.OperationalError as exc:
        pytest.fail(f"MariaDB/MySQL not reachable at {MYSQL_URL} ({exc}); start it or deselect with -m 'not mysql'")
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    try:
        yield f"{MYSQL_URL}/{name}?charset=utf8mb4"
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


def make_config(database_url: str, **overrides: Any) -> Config:
    values: dict[str, Any] = dict(
        SECRET_KEY="test-secret-key-" + "x" * 32,
        INVENTORY_ENV="testing",
        SQLALCHEMY_DATABASE_URI=database_url,
        TESTING=True,
        WTF_CSRF_ENABLED=False,
    )
    # INVENTORY_COMBINE_STOCK_OUTS=on runs the stock tests combined (issue 19: both paths stay tested).
    if os.environ.get("INVENTORY_COMBINE_STOCK_OUTS"):
        values["INVENTORY_COMBINE_STOCK_OUTS"] = parse_bool(os.environ["INVENTORY_COMBINE_STOCK_OUTS"])
    values.update(overrides)
    return Config(**values)


@pytest.fixture(scope="session")
def database_urls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return {"sqlite": f"sqlite:///{tmp_path_factory.mktemp('db') / 'inventory-test.db'}"}


def _migrated_app(url: str) -> Flask:
    app = create_app(make_config(url))
    with app.app_context():
        upgrade()
    return app


@pytest.fixture(scope="session")
def _apps() -> dict[str, Flask]:
    return {}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """ "sqlite" or "mysql": which database the test runs on."""
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, database_urls: dict[str, str]) -> str:
    if backend == "mysql":
        return str(request.getfixturevalue("mysql_database"))
    return database_urls["sqlite"]


@pytest.fixture
def app(database_url: str, _apps: dict[str, Flask]) -> Iterator[Flask]:
    """The app on a migrated database that is emptied after each test."""
    if database_url not in _apps:
        _apps[database_url] = _migrated_app(database_url)
    application = _apps[database_url]
    yield application
    _empty_tables(application)


@pytest.fixture
def make_app(database_url: str, app: Flask) -> Iterator[Callable[..., Flask]]:
    """Another app on the same (migrated, per-test emptied) database with config overrides,
    e.g. make_app(WTF_CSRF_ENABLED=True). Its connections are closed after the test."""
    made: list[Flask] = []

    def _make(**overrides: Any) -> Flask:
        made.append(create_app(make_config(database_url, **overrides)))
        return made[-1]

    yield _make
    for other in made:
        with other.app_context():
            _db.engine.dispose()


def _empty_tables(app: Flask) -> None:
    with app.app_context():
        session = _db.session()
        session.rollback()
        mysql = _db.engine.dialect.name != "sqlite"
        if mysql:
            session.execute(text("SET FOREIGN_KEY_CHECKS=0"))
        for table in reversed(_db.metadata.sorted_tables):
            session.execute(table.delete())
        if mysql:
            session.execute(text("SET FOREIGN_KEY_CHECKS=1"))
        session.commit()
        _db.session.remove()


@pytest.fixture
def app_ctx(app: Flask) -> Iterator[Flask]:
    """An app context for calling services directly. Do not combine with `client` in one test:
    requests would share this context's session."""
    with app.app_context():
        yield app
        _db.session.remove()


@pytest.fixture
def db(app_ctx: Flask) -> Any:
    return _db


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def factory(app: Flask) -> Factory:
    return Factory(app)


@pytest.fixture
def login_as(app: Flask, client: FlaskClient, factory: Factory) -> Callable[..., User]:
    """login_as("manager") or login_as(user): signs the test client in as that user."""

    def _login(who: str | User) -> User:
        user = factory.user(role=who) if isinstance(who, str) else who
        # The same address and browser the test client sends: "strong" session protection
        # drops a session whose identifier does not match them.
        environ = {"REMOTE_ADDR": "127.0.0.1", "HTTP_USER_AGENT": client.environ_base["HTTP_USER_AGENT"]}
        with app.test_request_context(environ_base=environ):
            ident = login_manager._session_identifier_generator()
        with client.session_transaction() as session:
            session["_user_id"] = user.get_id()
            session["_fresh"] = True
            session["_id"] = ident
        return user

    return _login


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skipped test is a failure: nothing may quietly not run."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if os.environ.get("CI") == "true" and skipped and session.exitstatus == 0:
        reporter.write_line(f"CI: {skipped} test(s) skipped; failing the run", red=True)
        session.exitstatus = 1
