"""Import jobs on SQLite and MariaDB: uploads kept in the database, one claim per job among
concurrent workers, a lapsed lease runs the job again (never twice into the data), a job out of
attempts fails clearly, progress visible to other connections, and retention."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, text, update

from app import jobs as runner
from app.config import SETTINGS_KEY, settings
from app.extensions import db
from app.models import ImportBatch, ImportJob, ImportUpload, ImportUploadChunk, Item
from app.models.job import CHUNK_BYTES
from app.models.types import utcnow
from app.services import imports, jobs

ROOT = Path(__file__).resolve().parents[2]
MYSQL_ONLY = pytest.mark.parametrize("backend", [pytest.param("mysql", marks=pytest.mark.mysql)], indirect=True)


def _csv(tag: str, rows: int = 3) -> bytes:
    return ("sku,name\n" + "".join(f"{tag}-{n},导入物品 {n}\n" for n in range(rows))).encode()


def _queue(data: bytes, filename: str = "items.csv") -> int:
    digest = jobs.store_upload(data=data, filename=filename, user="boss")
    return jobs.enqueue_import(digest=digest, filename=filename, user="boss", rows=data.count(b"\n") - 1)


def _imported(prefix: str) -> tuple[int, int]:
    db.session.rollback()
    items = db.session.scalar(select(func.count()).select_from(Item).where(Item.sku.like(f"{prefix}-%")))
    return int(items or 0), int(db.session.scalar(select(func.count()).select_from(ImportBatch)) or 0)


def _lapsed() -> Any:
    return utcnow() + timedelta(seconds=settings().INVENTORY_JOBS_LEASE_SECONDS + 1)


def test_an_upload_is_kept_in_chunks_and_read_back_whole(db: Any) -> None:
    data = b"sku,name\n" + b"X" * (2 * CHUNK_BYTES + 10) + b",y\n"
    digest = jobs.store_upload(data=data, filename="big.csv", user="boss")
    assert jobs.store_upload(data=data, filename="big.csv", user="boss") == digest == imports.digest_of(data)
    assert db.session.scalar(select(func.count()).select_from(ImportUploadChunk)) == 3
    assert jobs.read_upload(digest) == data
    assert jobs.read_upload("0" * 64) is None


def test_two_workers_racing_for_one_job_claim_it_once(app: Flask, db: Any) -> None:
    job_id = _queue(_csv("RACE"))
    start = threading.Barrier(2)
    claims: dict[str, jobs.Claim | None] = {}

    def worker(name: str) -> None:
        # Each thread has its own app context, so its own session and its own connection.
        with app.app_context():
            start.wait()
            claims[name] = jobs.claim_next(owner=name)
            db.session.remove()

    threads = [threading.Thread(target=worker, args=(name,)) for name in ("w1", "w2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    winners = [name for name, claim in claims.items() if claim is not None]
    assert len(claims) == 2 and len(winners) == 1, claims
    job = jobs.get_job(job_id)
    assert job is not None and (job.state, job.lease_owner, job.attempts) == ("running", winners[0], 1)


@MYSQL_ONLY
def test_a_job_locked_by_another_claim_is_skipped_not_waited_for(app: Flask, db: Any) -> None:
    locked, free = _queue(_csv("LOCK-A")), _queue(_csv("LOCK-B"))
    with db.engine.connect() as other:
        # Another worker's claim transaction, still open, holds the oldest job's row.
        other.execute(text("SET SESSION innodb_lock_wait_timeout = 50"))
        other.execute(text("SELECT id FROM import_jobs WHERE id = :id FOR UPDATE"), {"id": locked})
        claim = jobs.claim_next(owner="w2")
        other.rollback()
    assert claim is not None and claim.job_id == free


def test_a_job_whose_worker_died_runs_again_once_its_lease_lapses(db: Any) -> None:
    job_id = _queue(_csv("AGAIN"))
    assert jobs.claim_next(owner="dead") is not None  # the worker dies without a word
    assert jobs.claim_next(owner="w2") is None  # its lease still holds

    claim = jobs.claim_next(owner="w2", now=_lapsed())

    assert claim is not None and (claim.job_id, claim.attempt) == (job_id, 2)
    assert runner.run_claimed(claim) == "done"
    job = jobs.get_job(job_id)
    assert job is not None and (job.state, job.rows_done, job.rows_total) == ("done", 3, 3)
    assert _imported("AGAIN") == (3, 1)


def test_a_worker_taken_for_dead_writes_nothing_when_it_finishes_late(db: Any) -> None:
    data = _csv("LATE")
    _queue(data)
    slow = jobs.claim_next(owner="slow")
    taker = jobs.claim_next(owner="taker", now=_lapsed())
    assert slow is not None and taker is not None

    with pytest.raises(jobs.LeaseLost):
        jobs.commit_claimed(slow, data)

    assert _imported("LATE") == (0, 0)
    assert runner.run_claimed(taker) == "done"
    assert _imported("LATE") == (3, 1)


def test_a_job_out_of_attempts_fails_clearly(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], db: Any
) -> None:
    job_id = _queue(_csv("DIES"))
    now = utcnow()
    for attempt in range(settings().INVENTORY_JOBS_MAX_ATTEMPTS):
        now += timedelta(seconds=settings().INVENTORY_JOBS_LEASE_SECONDS + 1)
        claim = jobs.claim_next(owner=f"w{attempt}", now=now)
        assert claim is not None and claim.attempt == attempt + 1

    assert jobs.claim_next(owner="last", now=now + timedelta(hours=1)) is None
    db.session.remove()
    login_as("manager")
    state = client.get(f"/imports/jobs/{job_id}/progress").get_json()
    assert (state["state"], state["error"], state["final"]) == ("failed", jobs.WORKER_DIED, True)
    assert "未导入任何内容" in state["message"] and "3" in state["message"]
    assert _imported("DIES") == (0, 0)


def test_an_invalid_file_fails_its_job_with_the_reason(db: Any) -> None:
    job_id = _queue(b"sku,name\n,no sku\n")
    claim = jobs.claim_next(owner="w")
    assert claim is not None and runner.run_claimed(claim) == "failed"
    job = jobs.get_job(job_id)
    assert job is not None and (job.state, job.error, job.lease_expires_at) == ("failed", "import_invalid", None)


@MYSQL_ONLY
def test_progress_is_visible_to_other_connections_while_the_import_runs(app: Flask, db: Any) -> None:
    data = _csv("SEEN")
    job_id = _queue(data)
    claim = jobs.claim_next(owner="w")
    assert claim is not None
    seen: list[tuple[str, int, int]] = []

    def probe(phase: str, done: int, total: int) -> None:
        assert jobs.renew_lease(claim, phase=phase, done=done, total=total)
        # Read by another connection while the import's transaction is still open.
        with db.engine.connect() as other:
            row = other.execute(
                select(ImportJob.phase, ImportJob.rows_done, ImportJob.rows_total).where(ImportJob.id == job_id)
            ).one()
            seen.append(tuple(row))
            assert other.scalar(select(func.count()).select_from(Item).where(Item.sku.like("SEEN-%"))) == 0

    jobs.commit_claimed(claim, data, probe)

    assert seen == [("writing", 3, 3)]
    assert _imported("SEEN") == (3, 1)


def test_a_queued_job_no_worker_takes_up_reads_as_stalled_and_final(
    app: Flask, client: FlaskClient, login_as: Callable[..., Any], db: Any
) -> None:
    job_id = _queue(_csv("IDLE"))
    long_ago = utcnow() - timedelta(seconds=2 * settings().INVENTORY_JOBS_LEASE_SECONDS)
    db.session.execute(update(ImportJob).where(ImportJob.id == job_id).values(updated_at=long_ago))
    db.session.commit()
    login_as("manager")
    configured = settings(app)
    app.extensions[SETTINGS_KEY] = dataclasses.replace(configured, INVENTORY_JOBS_INLINE=False)
    try:
        state = client.get(f"/imports/jobs/{job_id}/progress").get_json()
    finally:
        app.extensions[SETTINGS_KEY] = configured
    assert (state["state"], state["stalled"], state["final"]) == ("queued", True, True)
    assert "作业进程" in state["message"]


def test_a_running_job_is_stalled_when_its_lease_lapsed_a_lease_ago_except_on_sqlite(db: Any, backend: str) -> None:
    job_id = _queue(_csv("LAPSE"))
    assert jobs.claim_next(owner="gone") is not None
    job = jobs.get_job(job_id)
    assert job is not None
    lease = timedelta(seconds=settings().INVENTORY_JOBS_LEASE_SECONDS)

    assert not jobs.stalled(job, now=utcnow() + lease + timedelta(seconds=1))  # claimable, not yet stalled
    # SQLite cannot renew a lease while the import holds its one write lock: a lapse proves nothing.
    assert jobs.stalled(job, now=utcnow() + 2 * lease + timedelta(seconds=1)) is (backend == "mysql")


def test_retention_deletes_old_uploads_but_not_one_a_job_still_needs(db: Any) -> None:
    kept = _queue(_csv("KEPT"))
    old = jobs.store_upload(data=_csv("OLD"), filename="old.csv", user="boss")
    later = utcnow() + timedelta(hours=settings().INVENTORY_IMPORT_RETENTION_HOURS, minutes=1)

    assert jobs.delete_expired(now=later) == 1

    assert jobs.read_upload(old) is None
    job = jobs.get_job(kept)
    assert job is not None and jobs.read_upload(job.digest) == _csv("KEPT")
    assert db.session.scalar(select(func.count()).select_from(ImportUpload)) == 1


def test_the_cleanup_command_deletes_expired_uploads(app: Flask, db: Any) -> None:
    digest = jobs.store_upload(data=_csv("GONE"), filename="gone.csv", user="boss")
    long_ago = utcnow() - timedelta(hours=settings().INVENTORY_IMPORT_RETENTION_HOURS, minutes=1)
    db.session.execute(update(ImportUpload).where(ImportUpload.digest == digest).values(created_at=long_ago))
    db.session.commit()
    db.session.remove()
    out = app.test_cli_runner().invoke(args=["jobs", "cleanup"])
    assert "deleted 1 expired upload(s)" in out.output, out.output
    assert jobs.read_upload(digest) is None


def test_the_worker_command_runs_one_job(app: Flask, db: Any) -> None:
    job_id = _queue(_csv("CLI"))
    db.session.remove()
    out = app.test_cli_runner().invoke(args=["jobs", "run", "--once"])
    assert out.exit_code == 0 and "ran 1 job" in out.output, out.output
    assert _imported("CLI") == (3, 1)
    job = jobs.get_job(job_id)
    assert job is not None and job.state == "done"
    again = app.test_cli_runner().invoke(args=["jobs", "run", "--once"])
    assert "no job to run" in again.output


@pytest.mark.slow
def test_sigterm_lets_the_worker_finish_the_job_in_hand(app: Flask, database_url: str, db: Any, tmp_path: Path) -> None:
    rows = 10_000
    job_id = _queue(_csv("TERM", rows))
    db.session.remove()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INVENTORY_", "DATABASE_", "FLASK_"))}
    env |= {"DATABASE_URL": database_url, "FLASK_APP": "wsgi", "INVENTORY_ENV": "testing"}
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path)
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "flask", "jobs", "run", "--interval", "0.2"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while _state(job_id) != "running":  # claimed: its import is under way
            assert time.monotonic() < deadline and worker.poll() is None, log.read_text()
            time.sleep(0.02)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=120) == 0, log.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert (_state(job_id), _imported("TERM")) == ("done", (rows, 1)), log.read_text()
    # The signal landed while the job ran, and the worker finished it before it stopped.
    output = log.read_text()
    assert output.index("jobs worker stopping") < output.index("import job finished") < output.index("worker stopped")


def _state(job_id: int) -> str | None:
    db.session.rollback()
    return db.session.scalar(select(ImportJob.state).where(ImportJob.id == job_id))
