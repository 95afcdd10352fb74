"""Backup benchmark (a script, not a test): logical `flask backup create` (mariadb-dump
--single-transaction) against a physical `mariadb-backup`, then verify and restore, on the
100,000-item / 1,000,000-movement database that tests/benchmarks/pages.py builds.

    BENCH_DATABASE_URL=mysql+pymysql://root@127.0.0.1:3306/inventory_bench \\
        .venv/bin/python tests/benchmarks/backup.py [--datadir /var/lib/mysql]

mariadb-backup reads the server's data directory, so --datadir must be that server's (run it on
the database host); without --datadir only the logical path is measured. Prints seconds and bytes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app import create_app
from app.config import Config
from app.extensions import db
from app.services import backup as backups

URL = os.environ.get("BENCH_DATABASE_URL", "mysql+pymysql://root@127.0.0.1:3306/inventory_bench")


def _app(url: str):
    return create_app(Config(SECRET_KEY="bench-" + "x" * 40, INVENTORY_ENV="testing", SQLALCHEMY_DATABASE_URI=url))


def _timed(label: str, action):
    started = time.perf_counter()
    result = action()
    print(f"{label}: {time.perf_counter() - started:.1f} s", flush=True)
    return result


def _physical(datadir: str, folder: Path) -> None:
    url = make_url(URL)
    target = folder / "physical"
    args = [f"--host={url.host}", f"--port={url.port or 3306}", f"--user={url.username or 'root'}"]
    env = {**os.environ, "MYSQL_PWD": url.password or ""}
    _timed(
        "mariadb-backup --backup",
        lambda: subprocess.run(
            ["mariadb-backup", "--backup", f"--target-dir={target}", f"--datadir={datadir}", *args,
             f"--databases={url.database}"],
            check=True, env=env, capture_output=True,
        ),
    )  # fmt: skip
    _timed(
        "mariadb-backup --prepare",
        lambda: subprocess.run(
            ["mariadb-backup", "--prepare", f"--target-dir={target}"], check=True, capture_output=True
        ),
    )
    archive = folder / "physical.tar.gz"
    _timed(
        "tar | gzip of the prepared copy",
        lambda: subprocess.run(["tar", "-czf", str(archive), "-C", str(target), "."], check=True),
    )
    print(f"physical backup, compressed: {archive.stat().st_size / 1e6:.1f} MB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datadir", help="the server's data directory, to measure mariadb-backup too")
    options = parser.parse_args()
    app = _app(URL + "?charset=utf8mb4")
    with app.app_context():
        movements = db.session.scalar(text("SELECT COUNT(*) FROM movements"))
        items = db.session.scalar(text("SELECT COUNT(*) FROM items"))
        db.session.remove()
    print(f"database: {items:,} items, {movements:,} movements", flush=True)
    with tempfile.TemporaryDirectory(prefix="backup-bench-") as tmp:
        folder = Path(tmp)
        with app.app_context():
            made = _timed(
                "flask backup create (mariadb-dump)", lambda: backups.create_backup(target=tmp, app_version="bench")
            )
            print(f"logical backup, compressed: {made.manifest['payload']['bytes'] / 1e6:.1f} MB", flush=True)
            result = _timed("flask backup verify", lambda: backups.verify_backup(backup=made.url, target=tmp))
            print(f"verified: {result.ok}", flush=True)
        restore_db = f"inventory_bench_restore_{uuid.uuid4().hex[:8]}"
        with app.app_context():
            db.session.execute(text(f"CREATE DATABASE `{restore_db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
            db.session.remove()
        target = _app(make_url(URL).set(database=restore_db).render_as_string(hide_password=False) + "?charset=utf8mb4")
        try:
            with target.app_context():
                _timed(
                    "flask backup restore", lambda: backups.restore_backup(backup=made.url, target=tmp, confirmed=True)
                )
        finally:
            with app.app_context():
                db.session.execute(text(f"DROP DATABASE `{restore_db}`"))
                db.session.remove()
        if options.datadir and shutil.which("mariadb-backup"):
            _physical(options.datadir, folder)


if __name__ == "__main__":
    main()
