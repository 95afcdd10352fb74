"""Backups that are taken hot, proven by restoring them, and recoverable to a point in time.

MariaDB/MySQL: a logical dump by `mariadb-dump --single-transaction`, chosen over a physical
`mariadb-backup` because it runs from any pod that reaches the server (mariadb-backup must run on
the database host, next to its data directory) and because, at 100k items / 1M movements, it
measured faster end to end (figures in ops/README.md). To make the manifest describe exactly the
rows in the dump, the backup briefly holds FLUSH TABLES WITH READ LOCK (no commit can land) while
it opens its own consistent snapshot, reads the binary log position, and waits until the dump has
opened its snapshot too; from then on writers run freely. Counts and the ledger checksum come from
that shared snapshot. SQLite: the online backup API copies the file page by page; the manifest is
computed from the copy.

Point-in-time recovery replays the server's binary log from the position in the manifest up to a
moment (`mariadb-binlog --read-from-remote-server --stop-datetime`), so it needs binary logging on
and the logs kept since the backup. SQLite has no such log: there a restore is to the backup only.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess  # noqa: S404, RUF100 - runs the MariaDB client tools with argument lists built here
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, create_engine, inspect, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from app.extensions import db
from app.models import BackupRun, Movement
from app.models.types import utcnow
from app.services import backup_store
from app.services.backup_store import MANIFEST, NAME_PREFIX, Store
from app.services.errors import BackupInvalid, BackupRefused

FORMAT = 1
CHUNK = 1 << 20
CHECKSUM_BATCH = 10_000
# How long FLUSH TABLES WITH READ LOCK may wait for running statements, and then for the dump to
# open its snapshot. Writers queue behind the lock meanwhile; past this the backup gives up rather
# than stall the app.
LOCK_WAIT_SECONDS = 30
DEFINER = re.compile(rb"/\*!50017 DEFINER=`[^`]*`@`[^`]*`\*/ ?|DEFINER=`[^`]*`@`[^`]*` ?")
UNTIL_FORMAT = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class Backup:
    name: str
    url: str
    manifest: dict[str, Any]


@dataclass
class Check:
    what: str
    ok: bool
    detail: str = ""


@dataclass
class Verification:
    name: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)


# ---------------------------------------------------------------- the database the app uses


def _url() -> URL:
    return make_url(db.engine.url)


def _is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupRefused("an in-memory SQLite database cannot be backed up or restored")
    return Path(url.database)


def _client_args(url: URL, *, database: bool = True) -> tuple[list[str], dict[str, str]]:
    """Connection options for the MariaDB command-line tools; the password travels in the
    environment (MYSQL_PWD), never on a command line that `ps` shows."""
    args = [f"--host={url.host or '127.0.0.1'}", f"--port={url.port or 3306}", f"--user={url.username or 'root'}"]
    if database and url.database:
        args.append(url.database)
    env = {**os.environ, "MYSQL_PWD": url.password or "", "TZ": "UTC"}
    return args, env


def _spawn(command: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start one of the MariaDB tools (found on PATH, else a clear error). Every argument is built
    here from the configured URL and the manifest, never from free text."""
    program = shutil.which(command[0])
    if program is None:
        raise BackupInvalid(f"{command[0]} is not installed (Debian/Ubuntu: apt-get install mariadb-client)")
    return subprocess.Popen([program, *command[1:]], **kwargs)  # noqa: S603


def _pipe(stream: IO[bytes] | None) -> IO[bytes]:
    if stream is None:
        raise BackupInvalid("a MariaDB tool started without its pipe")
    return stream


# ---------------------------------------------------------------- manifest contents


def ledger_checksum(conn: Connection) -> tuple[str, int | None]:
    """SHA-256 over every ledger line in id order, and the last movement id; comparable between
    databases of the same kind (a backup and its restore). Never loads the ledger into memory."""
    if conn.dialect.name == "sqlite":
        return _streamed_checksum(conn)
    return _server_side_checksum(conn)


def _movement_columns(conn: Connection) -> list[str]:
    quote = conn.dialect.identifier_preparer.quote
    return [quote(c.name) for c in Movement.__table__.columns]


def _streamed_checksum(conn: Connection) -> tuple[str, int | None]:
    """The driver's rows, hashed a batch at a time (no type processing: the ORM's converters made
    1M lines take minutes)."""
    digest = hashlib.sha256()
    # Column and table names come from the model, quoted; nothing user-typed.
    query = f"SELECT {', '.join(_movement_columns(conn))} FROM movements ORDER BY id"  # noqa: S608
    last = None
    for batch in conn.execution_options(stream_results=True).exec_driver_sql(query).partitions(CHECKSUM_BATCH):
        rows = [tuple(row) for row in batch]
        digest.update(repr(rows).encode())
        last = rows[-1][0]
    return digest.hexdigest(), last


def _server_side_checksum(conn: Connection) -> tuple[str, int | None]:
    """MariaDB hashes each range of ids itself (SHA2 over GROUP_CONCAT); Python only chains the
    range digests. Moving 1M rows through the pure-Python driver took ~150 s of a 185 s backup."""
    conn.exec_driver_sql("SET SESSION group_concat_max_len = 1073741824")
    line = ", ".join(f"COALESCE({column}, 0x5c4e)" for column in _movement_columns(conn))
    # Column names come from the model, quoted; the bounds are bound parameters.
    query = (
        f"SELECT SHA2(GROUP_CONCAT(CONCAT_WS(0x1f, {line}) ORDER BY id SEPARATOR 0x0a), 256) "  # noqa: S608
        "FROM movements WHERE id > %(low)s AND id <= %(high)s"
    )
    last = conn.exec_driver_sql("SELECT MAX(id) FROM movements").scalar()
    digest = hashlib.sha256()
    low = 0
    while last is not None and low < last:
        high = low + CHECKSUM_BATCH
        part = conn.exec_driver_sql(query, {"low": low, "high": high}).scalar()
        if part is not None:
            digest.update(part.encode())
        low = high
    return digest.hexdigest(), last


def row_counts(conn: Connection) -> dict[str, int]:
    counts = {}
    for name in sorted(inspect(conn).get_table_names()):
        # Table names come from the database's own catalogue, quoted; nothing user-typed.
        query = f"SELECT COUNT(*) FROM {conn.dialect.identifier_preparer.quote(name)}"  # noqa: S608
        counts[name] = int(conn.execute(text(query)).scalar_one())
    return counts


def schema_revision(conn: Connection) -> str | None:
    if "alembic_version" not in inspect(conn).get_table_names():
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _describe(conn: Connection) -> dict[str, Any]:
    checksum, last = ledger_checksum(conn)
    return {
        "schema_revision": schema_revision(conn),
        "row_counts": row_counts(conn),
        "last_movement_id": last,
        "ledger_checksum": checksum,
    }


# ---------------------------------------------------------------- create


def _new_name(now: datetime) -> str:
    return f"{NAME_PREFIX}{now:%Y%m%dT%H%M%S}Z"


def _gzip_from(stream: IO[bytes], target: Path) -> None:
    with gzip.open(target, "wb", compresslevel=6) as out:
        while chunk := stream.read(CHUNK):
            out.write(chunk)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _sqlite_copy(source: sqlite3.Connection, target: Path) -> None:
    """Copy the whole database `source` is connected to over `target` with SQLite's backup API
    (a consistent copy, whatever else is connected), then close both."""
    destination = sqlite3.connect(target)
    try:
        source.backup(destination)
    finally:
        destination.close()
        source.close()


def _sqlite_snapshot(url: URL, folder: Path) -> dict[str, Any]:
    copy = folder / "snapshot.sqlite"
    _sqlite_copy(sqlite3.connect(f"file:{_sqlite_path(url)}?mode=ro", uri=True), copy)
    engine = create_engine(f"sqlite:///{copy}")
    try:
        with engine.connect() as conn:
            described = _describe(conn)
    finally:
        engine.dispose()
    with copy.open("rb") as raw:
        _gzip_from(raw, folder / "data.sqlite.gz")
    copy.unlink()
    return {"method": "sqlite-online-backup", "binlog": None, "payload_file": "data.sqlite.gz", **described}


def _await_dump_snapshot(dump: subprocess.Popen[bytes], sink: gzip.GzipFile) -> None:
    """Copy the dump's first lines until it starts on a table: it opens its snapshot before that."""
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while time.monotonic() < deadline:
        line = _pipe(dump.stdout).readline()
        if not line:
            raise BackupInvalid("mariadb-dump stopped before dumping any table: " + _stderr(dump))
        sink.write(line)
        if line.startswith(b"-- Table structure for table"):
            return
    dump.kill()
    raise BackupInvalid(f"mariadb-dump did not open its snapshot within {LOCK_WAIT_SECONDS} s")


def _stderr(process: subprocess.Popen[bytes]) -> str:
    process.wait()
    return (
        process.stderr.read().decode(errors="replace").strip() if process.stderr else ""
    ) or f"exit {process.returncode}"


def _binlog_position(conn: Connection) -> dict[str, Any] | None:
    row = conn.exec_driver_sql("SHOW MASTER STATUS").first()
    if row is None:
        return None
    gtid = conn.exec_driver_sql("SELECT @@GLOBAL.gtid_binlog_pos").scalar()
    return {"file": row[0], "position": int(row[1]), "gtid": gtid or ""}


def _copy_rest(dump: subprocess.Popen[bytes], out: gzip.GzipFile) -> None:
    with out:
        while chunk := _pipe(dump.stdout).read(CHUNK):
            out.write(chunk)


def _mysql_snapshot(url: URL, folder: Path) -> dict[str, Any]:
    """Lock only this database's tables (FLUSH TABLES … WITH READ LOCK, not the global lock, so other
    databases on the server never wait), open our snapshot and let the dump open its own, read the
    binary log position, unlock. Our snapshot and the dump's then hold the same committed rows."""
    args, env = _client_args(url)
    command = [
        "stdbuf", "-oL",  # line-buffered, so the first "Table structure" line arrives at once
        "mariadb-dump", "--single-transaction", "--quick", "--triggers", "--routines", "--hex-blob",
        "--no-tablespaces", "--skip-dump-date", *args,
    ]  # fmt: skip
    payload = folder / "data.sql.gz"
    # Connections of our own, closed afterwards: the session settings below never reach the pool.
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as locker, engine.connect() as reader:
            quote = locker.dialect.identifier_preparer.quote
            tables = ", ".join(quote(name) for name in inspect(locker).get_table_names())
            locker.exec_driver_sql(f"SET SESSION lock_wait_timeout = {LOCK_WAIT_SECONDS}")
            locker.exec_driver_sql(f"FLUSH TABLES {tables} WITH READ LOCK")
            try:
                reader.exec_driver_sql("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                reader.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT")
                binlog = _binlog_position(locker)
                out = gzip.open(payload, "wb", compresslevel=6)  # noqa: SIM115 - closed by _copy_rest or below
                dump = _spawn(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
                try:
                    _await_dump_snapshot(dump, out)
                except BaseException:
                    out.close()
                    raise
            finally:
                locker.exec_driver_sql("UNLOCK TABLES")
            copier = threading.Thread(target=_copy_rest, args=(dump, out), daemon=True)
            copier.start()
            described = _describe(reader)
            reader.rollback()
            copier.join()
    finally:
        engine.dispose()
    if dump.wait() != 0:
        raise BackupInvalid("mariadb-dump failed: " + _stderr(dump))
    return {"method": "mariadb-dump --single-transaction", "binlog": binlog, "payload_file": payload.name, **described}


def create_backup(*, target: str, app_version: str, s3_endpoint_url: str = "") -> Backup:
    """Take a consistent backup of the app's database while it keeps writing, and store it in
    `target`. Records the run (ok or not) for the metrics. Raises BackupInvalid when a tool fails."""
    store = backup_store.open_store(target, s3_endpoint_url=s3_endpoint_url)
    started, clock = utcnow(), time.monotonic()
    name = _new_name(started)
    url = _url()
    try:
        with tempfile.TemporaryDirectory(prefix="inventory-backup-") as tmp:
            folder = Path(tmp)
            snapshot = _sqlite_snapshot(url, folder) if _is_sqlite(url) else _mysql_snapshot(url, folder)
            payload = folder / snapshot.pop("payload_file")
            manifest = {
                "format": FORMAT,
                "name": name,
                "created_at": started.isoformat(),
                "app_version": app_version,
                "backend": "sqlite" if _is_sqlite(url) else "mysql",
                "database": url.database if not _is_sqlite(url) else Path(url.database or "").name,
                **snapshot,
                "payload": {"file": payload.name, "bytes": payload.stat().st_size, "sha256": _file_sha256(payload)},
                "duration_seconds": round(time.monotonic() - clock, 3),
            }
            (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
            store.upload(name, folder)
    except Exception as exc:
        _record("create", name, ok=False, started=started, clock=clock, detail=str(exc))
        raise
    _record("create", name, ok=True, started=started, clock=clock, size=manifest["payload"]["bytes"])
    return Backup(name=name, url=store.url(name), manifest=manifest)


def _record(
    kind: str, name: str, *, ok: bool, started: datetime, clock: float, size: int = 0, detail: str = ""
) -> None:
    db.session.rollback()
    db.session.add(
        BackupRun(
            kind=kind,
            name=name,
            ok=ok,
            started_at=started,
            finished_at=utcnow(),
            duration_seconds=round(time.monotonic() - clock, 3),
            size_bytes=size,
            detail=detail[:1000],
        )
    )
    db.session.commit()


# ---------------------------------------------------------------- list and read


def list_backups(*, target: str, s3_endpoint_url: str = "") -> list[Backup]:
    """Every complete backup in `target`, newest first (a backup without a manifest is not listed)."""
    store = backup_store.open_store(target, s3_endpoint_url=s3_endpoint_url)
    return [Backup(name, store.url(name), store.read_manifest(name)) for name in reversed(store.names())]


def recent_runs(limit: int = 20) -> list[BackupRun]:
    return list(db.session.scalars(select(BackupRun).order_by(BackupRun.id.desc()).limit(limit)))


def last_successful(kind: str) -> BackupRun | None:
    return db.session.scalars(
        select(BackupRun).where(BackupRun.kind == kind, BackupRun.ok.is_(True)).order_by(BackupRun.id.desc()).limit(1)
    ).first()


def _fetch(store: Store, name: str, folder: Path) -> tuple[dict[str, Any], Path]:
    """Download a backup and prove its payload is the one the manifest names, byte for byte."""
    store.download(name, folder)
    manifest = backup_store._parse_manifest((folder / MANIFEST).read_bytes(), store.url(name))
    if manifest.get("format") != FORMAT:
        raise BackupInvalid(
            f"{store.url(name)}: manifest format {manifest.get('format')!r}, this release reads {FORMAT}"
        )
    payload = folder / manifest["payload"]["file"]
    if not payload.is_file():
        raise BackupInvalid(f"{store.url(name)}: the payload {payload.name} is missing")
    size, expected = payload.stat().st_size, manifest["payload"]["bytes"]
    if size != expected:
        raise BackupInvalid(
            f"{store.url(name)}: the payload has {size} bytes, the manifest says {expected}: truncated or altered"
        )
    if _file_sha256(payload) != manifest["payload"]["sha256"]:
        raise BackupInvalid(f"{store.url(name)}: the payload's SHA-256 differs from the manifest: altered or damaged")
    return manifest, payload


# ---------------------------------------------------------------- loading a payload


def _load_sqlite(payload: Path, target: Path) -> None:
    """Decompress to a temporary file, then copy it over `target` with the backup API, so that the
    target is never half-written and open connections see the whole change at once."""
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        plain = Path(tmp) / "restore.sqlite"
        try:
            with gzip.open(payload, "rb") as src, plain.open("wb") as out:
                shutil.copyfileobj(src, out, CHUNK)
            source = sqlite3.connect(plain)
            source.execute("PRAGMA quick_check").fetchall()
        except (OSError, EOFError, sqlite3.DatabaseError) as exc:
            raise BackupInvalid(f"the SQLite payload does not decompress into a database ({exc})") from exc
        _sqlite_copy(source, target)


def _sql_lines(payload: Path) -> Iterator[bytes]:
    """The dump's statements, with DEFINER clauses removed so a user without SUPER can load triggers."""
    try:
        with gzip.open(payload, "rb") as src:
            for line in src:
                yield DEFINER.sub(b"", line) if b"DEFINER=" in line else line
    except (OSError, EOFError) as exc:
        raise BackupInvalid(f"the payload does not decompress: {exc}") from exc


def _pipe_into_mariadb(url: URL, lines: Iterator[bytes]) -> None:
    args, env = _client_args(url)
    client = _spawn(["mariadb", "--binary-mode", *args], stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    stdin = _pipe(client.stdin)
    try:
        for line in lines:
            stdin.write(line)
    except BrokenPipeError:
        pass
    except BaseException:
        client.kill()
        client.wait()
        raise
    finally:
        if not stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                stdin.close()
    if client.wait() != 0:
        raise BackupInvalid("loading the dump failed: " + _stderr(client))


def _empty_mysql_database(conn: Connection) -> None:
    conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 0")
    for name in inspect(conn).get_table_names():
        conn.exec_driver_sql(f"DROP TABLE {conn.dialect.identifier_preparer.quote(name)}")
    for (view,) in conn.exec_driver_sql("SHOW FULL TABLES WHERE Table_type = 'VIEW'"):
        conn.exec_driver_sql(f"DROP VIEW {conn.dialect.identifier_preparer.quote(view)}")
    conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 1")


def _check_backend(manifest: dict[str, Any], url: URL) -> None:
    backend = "sqlite" if _is_sqlite(url) else "mysql"
    if manifest.get("backend") != backend:
        raise BackupRefused(f"this is a {manifest.get('backend')} backup; the configured database is {backend}")


# ---------------------------------------------------------------- verify


def _compare(manifest: dict[str, Any], conn: Connection) -> list[Check]:
    found = _describe(conn)
    checks = []
    for table, expected in sorted(manifest["row_counts"].items()):
        got = found["row_counts"].get(table)
        checks.append(Check(f"rows in {table}", got == expected, f"manifest {expected}, restored {got}"))
    extra = sorted(set(found["row_counts"]) - set(manifest["row_counts"]))
    checks.append(Check("no unexpected tables", not extra, ", ".join(extra)))
    checks.append(
        Check(
            "last movement id",
            found["last_movement_id"] == manifest["last_movement_id"],
            f"manifest {manifest['last_movement_id']}, restored {found['last_movement_id']}",
        )
    )
    checks.append(
        Check("ledger checksum", found["ledger_checksum"] == manifest["ledger_checksum"], found["ledger_checksum"])
    )
    checks.append(
        Check("schema revision", found["schema_revision"] == manifest["schema_revision"], str(found["schema_revision"]))
    )
    return checks


def _check_in_scratch(scratch_url: str) -> list[Check]:
    """Migrate the scratch copy to this release's head, then run the migrations' check and the ledger
    reconciliation there, in an app of its own."""
    from alembic import command
    from alembic.util import CommandError

    from app import create_app
    from app.config import settings
    from app.services.ledger import find_ledger_mismatches, find_total_mismatches

    app = create_app(replace(settings(), SQLALCHEMY_DATABASE_URI=scratch_url, SQLALCHEMY_ENGINE_OPTIONS={}))
    checks = []
    with app.app_context():
        migrate_config = app.extensions["migrate"].migrate.get_config()
        try:
            command.upgrade(migrate_config, "head")
            command.check(migrate_config)
            checks.append(Check("migrations check", True, "schema at head matches the models"))
        except CommandError as exc:
            checks.append(Check("migrations check", False, str(exc)))
        levels, totals = find_ledger_mismatches(), find_total_mismatches()
        checks.append(
            Check(
                "check-ledger",
                not levels and not totals,
                f"{len(levels)} stock level(s), {len(totals)} item total(s) off",
            )
        )
        db.session.remove()
        db.engine.dispose()
    return checks


def _scratch_sqlite(payload: Path, folder: Path) -> str:
    path = folder / "scratch.sqlite"
    path.touch()
    _load_sqlite(payload, path)
    return f"sqlite:///{path}"


def _scratch_mysql(url: URL, payload: Path) -> str:
    scratch = f"inventory_verify_{uuid.uuid4().hex[:12]}"
    with db.engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{scratch}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    scratch_url = url.set(database=scratch)
    _pipe_into_mariadb(scratch_url, _sql_lines(payload))
    return scratch_url.render_as_string(hide_password=False)


def _drop_scratch_mysql(scratch_url: str) -> None:
    with db.engine.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{make_url(scratch_url).database}`")


def verify_backup(*, backup: str, target: str, s3_endpoint_url: str = "") -> Verification:
    """Restore BACKUP into a scratch database (or file), compare it with its manifest, run the
    migrations' check and the ledger reconciliation there, and drop the scratch copy. Records the
    outcome. A damaged backup gives a failed check, not an exception."""
    store, name = backup_store.locate(backup, target, s3_endpoint_url=s3_endpoint_url)
    started, clock = utcnow(), time.monotonic()
    result = Verification(name=name)
    url = _url()
    try:
        with tempfile.TemporaryDirectory(prefix="inventory-verify-") as tmp:
            folder = Path(tmp)
            manifest, payload = _fetch(store, name, folder)
            result.checks.append(Check("payload size and SHA-256", True, manifest["payload"]["sha256"]))
            _check_backend(manifest, url)
            scratch = _scratch_sqlite(payload, folder) if _is_sqlite(url) else _scratch_mysql(url, payload)
            try:
                engine = create_engine(scratch)
                try:
                    with engine.connect() as conn:
                        result.checks += _compare(manifest, conn)
                finally:
                    engine.dispose()
                result.checks += _check_in_scratch(scratch)
            finally:
                if not _is_sqlite(url):
                    _drop_scratch_mysql(scratch)
    except (BackupInvalid, BackupRefused) as exc:
        result.checks.append(Check("backup readable and restorable", False, exc.message))
    failed = "; ".join(f"{c.what}: {c.detail}" for c in result.checks if not c.ok)
    _record("verify", name, ok=result.ok, started=started, clock=clock, detail=failed)
    return result


# ---------------------------------------------------------------- restore


def _ancestors(revision: str) -> set[str] | None:
    """Every revision `revision` builds on (itself included); None when this release does not know it."""
    from alembic.script import ScriptDirectory
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError
    from flask import current_app

    scripts = ScriptDirectory.from_config(current_app.extensions["migrate"].migrate.get_config())
    try:
        return {script.revision for script in scripts.iterate_revisions(revision, "base")}
    except (CommandError, RevisionError):
        return None


def _refuse_newer_schema(manifest: dict[str, Any], over_newer_schema: bool) -> None:
    with db.engine.connect() as conn:
        current = schema_revision(conn)
    backed_up = manifest.get("schema_revision")
    if current is None or current == backed_up or over_newer_schema:
        return
    ancestors = _ancestors(current)
    if ancestors is None or (backed_up in ancestors):
        raise BackupRefused(
            f"the database's schema ({current}) is newer than the backup's ({backed_up}); restoring would take "
            "the schema back. Pass --over-newer-schema to do it anyway, then run `flask db upgrade`."
        )


def parse_until(value: str) -> datetime:
    """`YYYY-MM-DD HH:MM:SS`, in UTC (the binary log's clock)."""
    try:
        return datetime.strptime(value.strip(), UNTIL_FORMAT).replace(tzinfo=UTC)
    except ValueError as exc:
        raise BackupRefused(f"--until {value!r}: expected UTC time as YYYY-MM-DD HH:MM:SS") from exc


def _binlog_files(manifest: dict[str, Any], until: datetime) -> list[str]:
    """The binary logs to replay, from the backup's own onwards; refuses what cannot be replayed."""
    binlog = manifest.get("binlog")
    if not binlog:
        raise BackupRefused(
            "point-in-time recovery needs the binary log position, and this backup has none: "
            "binary logging was off when it was taken"
        )
    if until < datetime.fromisoformat(manifest["created_at"]):
        raise BackupRefused(
            f"--until {until:%Y-%m-%d %H:%M:%S} is before the backup was taken ({manifest['created_at']}); "
            "restore an older backup"
        )
    if until > utcnow():
        raise BackupRefused(f"--until {until:%Y-%m-%d %H:%M:%S} is in the future")
    with db.engine.connect() as conn:
        files = [row[0] for row in conn.exec_driver_sql("SHOW BINARY LOGS")]
    if binlog["file"] not in files:
        raise BackupRefused(
            f"the binary log {binlog['file']} the backup starts from has been purged; "
            "point-in-time recovery from this backup is no longer possible"
        )
    return files[files.index(binlog["file"]) :]


def _replay_binlogs(url: URL, manifest: dict[str, Any], files: list[str], until: datetime) -> None:
    args, env = _client_args(url, database=False)
    source_db, target_db = manifest["database"], url.database or ""
    reader_cmd = [
        "mariadb-binlog", "--read-from-remote-server", *args,
        f"--start-position={manifest['binlog']['position']}",
        f"--stop-datetime={until:%Y-%m-%d %H:%M:%S}",
        f"--database={target_db}",
        *([f"--rewrite-db={source_db}->{target_db}"] if source_db != target_db else []),
        *files,
    ]  # fmt: skip
    reader = _spawn(reader_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    applier = _spawn(["mariadb", "--binary-mode", *args], stdin=_pipe(reader.stdout), stderr=subprocess.PIPE, env=env)
    _pipe(reader.stdout).close()
    if applier.wait() != 0:
        reader.kill()
        raise BackupInvalid("replaying the binary log failed: " + _stderr(applier))
    if reader.wait() != 0:
        raise BackupInvalid("reading the binary log failed: " + _stderr(reader))


def restore_backup(
    *,
    backup: str,
    target: str,
    confirmed: bool,
    until: datetime | None = None,
    over_newer_schema: bool = False,
    s3_endpoint_url: str = "",
) -> dict[str, Any]:
    """Replace the configured database with BACKUP and, with `until`, replay the binary log up to
    that moment. Refuses (BackupRefused) without confirmation, over a newer schema, on SQLite with
    `until`, and when the logs needed are gone; every refusal happens before anything changes.
    Returns the manifest."""
    if not confirmed:
        raise BackupRefused("restoring replaces every row of the configured database; pass --yes to confirm")
    url = _url()
    if until is not None and _is_sqlite(url):
        raise BackupRefused(
            "point-in-time recovery (--until) is not available on SQLite: it keeps no binary log. "
            "Restore the backup without --until."
        )
    store, name = backup_store.locate(backup, target, s3_endpoint_url=s3_endpoint_url)
    with tempfile.TemporaryDirectory(prefix="inventory-restore-") as tmp:
        manifest, payload = _fetch(store, name, Path(tmp))
        _check_backend(manifest, url)
        _refuse_newer_schema(manifest, over_newer_schema)
        files = _binlog_files(manifest, until) if until is not None else []
        db.session.remove()
        if _is_sqlite(url):
            db.engine.dispose()
            _load_sqlite(payload, _sqlite_path(url))
        else:
            with db.engine.begin() as conn:
                _empty_mysql_database(conn)
            _pipe_into_mariadb(url, _sql_lines(payload))
            if until is not None:
                _replay_binlogs(url, manifest, files, until)
        db.engine.dispose()
    return manifest


# ---------------------------------------------------------------- retention


def _created(backup: Backup) -> datetime:
    return datetime.fromisoformat(backup.manifest["created_at"])


def backups_to_keep(backups: list[Backup], *, keep_daily: int, keep_weekly: int) -> set[str]:
    """The newest backup of each of the last `keep_daily` days that have one, and of each of the last
    `keep_weekly` ISO weeks; the newest backup of all is always kept."""
    newest_first = sorted(backups, key=_created, reverse=True)
    keep: set[str] = {newest_first[0].name} if newest_first else set()
    days: dict[date, str] = {}
    weeks: dict[tuple[int, int], str] = {}
    for b in newest_first:
        day = _created(b).date()
        if day not in days and len(days) < keep_daily:
            days[day] = b.name
        week = tuple(_created(b).isocalendar())[:2]
        if week not in weeks and len(weeks) < keep_weekly:
            weeks[week] = b.name  # type: ignore[index]
    return keep | set(days.values()) | set(weeks.values())


def prune_backups(*, target: str, keep_daily: int, keep_weekly: int, s3_endpoint_url: str = "") -> list[str]:
    """Delete the backups retention does not keep; the names deleted."""
    store = backup_store.open_store(target, s3_endpoint_url=s3_endpoint_url)
    backups = list_backups(target=target, s3_endpoint_url=s3_endpoint_url)
    keep = backups_to_keep(backups, keep_daily=keep_daily, keep_weekly=keep_weekly)
    doomed = [b.name for b in backups if b.name not in keep]
    for name in doomed:
        store.delete(name)
    return doomed


def within(hours: float, moment: datetime) -> bool:
    return utcnow() - moment <= timedelta(hours=hours)


@dataclass(frozen=True)
class Overview:
    backups: list[Backup]
    problem: str
    runs: list[BackupRun]
    last_backup: BackupRun | None
    last_verification: BackupRun | None


def overview(*, target: str, s3_endpoint_url: str = "") -> Overview:
    """What the admin page shows: the backups in the target (or why they cannot be listed), the
    recent runs and the last successes."""
    from botocore.exceptions import BotoCoreError, ClientError

    problem = ""
    try:
        found = list_backups(target=target, s3_endpoint_url=s3_endpoint_url)
    except BackupInvalid as exc:
        found, problem = [], exc.message
    except (OSError, BotoCoreError, ClientError) as exc:
        found, problem = [], f"{target}: {exc}"
    return Overview(found, problem, recent_runs(), last_successful("create"), last_successful("verify"))
