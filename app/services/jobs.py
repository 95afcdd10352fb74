"""Import jobs and their uploads: keep a previewed file in the database, queue its commit, and the
claim / lease / progress protocol every job worker follows (`flask jobs run`, or the web process
itself on the embedded default, see app/jobs.py).

A claim is one short transaction: `SELECT … FOR UPDATE SKIP LOCKED` on MariaDB, so two workers
never wait for, nor both take, the same job; on SQLite the unit of work's BEGIN IMMEDIATE makes the
select-then-update atomic (one writer at a time). The claim writes a lease that the worker renews
while it runs, with its progress, each on a short transaction of its own. The job ends "done" in the
same transaction as the import itself, and only while its worker still holds the lease: a worker
taken for dead whose import commits late writes nothing, and a job never reads "running" once its
rows are in. A job whose lease lapsed is claimed again, up to INVENTORY_JOBS_MAX_ATTEMPTS runs in
all; re-running is safe because the import is one transaction keyed by the file's digest.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from app.config import settings
from app.extensions import db
from app.models import ImportJob, ImportUpload, ImportUploadChunk
from app.models.job import CHUNK_BYTES, JOB_STATES
from app.models.types import utcnow
from app.services import imports
from app.services.transaction import run_in_transaction, unit_of_work

log = logging.getLogger(__name__)

#: Error codes of failed jobs besides the import's own (import_invalid, import_rejected).
WORKER_DIED = "worker_died"
UPLOAD_MISSING = "upload_missing"
ACTIVE_STATES = ("queued", "running")


class LeaseLost(Exception):
    """Another worker took the job over (this one was taken for dead): its work must not commit."""


@dataclass(frozen=True)
class Claim:
    """A job as claimed by `owner`: what it needs to run, and what proves it still holds the lease."""

    job_id: int
    owner: str
    digest: str
    filename: str
    username: str
    attempt: int


# ---------------------------------------------------------------- uploads


def store_upload(*, data: bytes, filename: str, user: str) -> str:
    """Keep a checked file until its commit, by its SHA-256 (returned). Storing the same file again
    only restarts its retention period."""
    try:
        return _store_upload(data, filename, user)
    except IntegrityError:
        # Another instance stored the same bytes a moment earlier: they are here now.
        return imports.digest_of(data)


@unit_of_work
def _store_upload(data: bytes, filename: str, user: str) -> str:
    digest = imports.digest_of(data)
    upload = db.session.get(ImportUpload, digest, with_for_update=True)
    if upload is not None:
        upload.created_at = utcnow()
        return digest
    db.session.add(ImportUpload(digest=digest, filename=filename[:200], size=len(data), uploaded_by=user))
    db.session.flush()
    db.session.add_all(
        ImportUploadChunk(digest=digest, seq=n, data=data[start : start + CHUNK_BYTES])
        for n, start in enumerate(range(0, len(data), CHUNK_BYTES))
    )
    return digest


def read_upload(digest: str) -> bytes | None:
    """The stored file, or None when it was never uploaded or its retention is over."""
    chunks = db.session.scalars(
        select(ImportUploadChunk.data).where(ImportUploadChunk.digest == digest).order_by(ImportUploadChunk.seq)
    ).all()
    return b"".join(chunks) if chunks else None


@unit_of_work
def delete_expired(*, now: datetime | None = None) -> int:
    """Delete uploads older than the retention period (but never one a queued or running job still
    needs) and the finished jobs as old; returns how many uploads went."""
    cutoff = (now or utcnow()) - timedelta(hours=settings().INVENTORY_IMPORT_RETENTION_HOURS)
    needed = select(ImportJob.digest).where(ImportJob.state.in_(ACTIVE_STATES))
    digests = list(
        db.session.scalars(
            select(ImportUpload.digest).where(ImportUpload.created_at < cutoff, ImportUpload.digest.not_in(needed))
        )
    )
    if digests:
        db.session.execute(delete(ImportUploadChunk).where(ImportUploadChunk.digest.in_(digests)))
        db.session.execute(delete(ImportUpload).where(ImportUpload.digest.in_(digests)))
    db.session.execute(delete(ImportJob).where(ImportJob.state.not_in(ACTIVE_STATES), ImportJob.updated_at < cutoff))
    return len(digests)


# ---------------------------------------------------------------- jobs


@unit_of_work
def enqueue_import(*, digest: str, filename: str, user: str, rows: int) -> int:
    """Queue the commit of a stored upload; the id of its job (an unfinished job of the same file
    is reused, so a double submit runs it once)."""
    active = db.session.scalar(
        select(ImportJob.id).where(ImportJob.digest == digest, ImportJob.state.in_(ACTIVE_STATES)).limit(1)
    )
    if active is not None:
        return active
    job = ImportJob(digest=digest, filename=filename[:200], username=user, state="queued", rows_total=rows)
    db.session.add(job)
    db.session.flush()
    return job.id


def get_job(job_id: int) -> ImportJob | None:
    return db.session.get(ImportJob, job_id, populate_existing=True)


def _claimable(now: datetime) -> ColumnElement[bool]:
    return or_(ImportJob.state == "queued", and_(ImportJob.state == "running", ImportJob.lease_expires_at < now))


def claimable(job: ImportJob, *, now: datetime | None = None) -> bool:
    """Whether a worker would take this job now (queued, or running on a lapsed lease)."""
    now = now or utcnow()
    return job.state == "queued" or (
        job.state == "running" and job.lease_expires_at is not None and job.lease_expires_at < now
    )


def stalled(job: ImportJob, *, now: datetime | None = None) -> bool:
    """Whether no worker has taken up a claimable job for a whole lease period: none is running.

    On SQLite a running job's lease cannot be renewed (the import holds the one write lock until
    its COMMIT), so a lapsed lease there proves nothing and only a queued job can be stalled."""
    if job.state == "running" and db.engine.dialect.name == "sqlite":
        return False
    now = now or utcnow()
    patience = timedelta(seconds=settings().INVENTORY_JOBS_LEASE_SECONDS)
    since = job.updated_at if job.state == "queued" else job.lease_expires_at
    return claimable(job, now=now) and since is not None and since < now - patience


def claim_next(*, owner: str, now: datetime | None = None) -> Claim | None:
    """Take the oldest claimable job for `owner` with a fresh lease, or None. A lapsed job that has
    had all its attempts fails instead (error "worker_died")."""
    return run_in_transaction(lambda: _claim(owner, now or utcnow()), name="import_job_claim")


def _claim(owner: str, now: datetime) -> Claim | None:
    config = settings()
    while True:
        job = db.session.scalars(
            select(ImportJob)
            .where(_claimable(now))
            .order_by(ImportJob.id)
            .limit(1)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        ).first()
        if job is None:
            return None
        if job.attempts >= config.INVENTORY_JOBS_MAX_ATTEMPTS:
            job.state, job.error, job.finished_at, job.updated_at = "failed", WORKER_DIED, now, now
            job.lease_expires_at = None
            log.error("import job failed", extra=_facts(job, error=WORKER_DIED))
            continue
        job.state, job.lease_owner, job.error, job.updated_at = "running", owner, None, now
        job.lease_expires_at = now + timedelta(seconds=config.INVENTORY_JOBS_LEASE_SECONDS)
        job.attempts += 1
        return Claim(job.id, owner, job.digest, job.filename, job.username, job.attempts)


def _facts(job: ImportJob, **more: Any) -> dict[str, Any]:
    return {"job_id": job.id, "attempt": job.attempts, **more}


def renew_lease(claim: Claim, *, phase: str | None = None, done: int = 0, total: int = 0) -> bool:
    """Extend the lease, and record the progress when given, on a connection of its own: it is
    called from the heartbeat thread and from inside the import's transaction, whose writes no one
    sees before its end. False when the job is no longer this worker's."""
    now = utcnow()
    values: dict[str, Any] = {
        "lease_expires_at": now + timedelta(seconds=settings().INVENTORY_JOBS_LEASE_SECONDS),
        "updated_at": now,
    }
    if phase is not None:
        values.update(phase=phase, rows_done=done, rows_total=total)
    with db.engine.begin() as connection:
        renewed = connection.execute(_owned(claim).values(**values))
    return renewed.rowcount == 1


def _owned(claim: Claim) -> Any:
    return update(ImportJob).where(
        ImportJob.id == claim.job_id, ImportJob.lease_owner == claim.owner, ImportJob.state == "running"
    )


def commit_claimed(claim: Claim, data: bytes, progress: imports.Progress | None = None) -> imports.ImportResult:
    """Import the file and mark the job done, in one transaction. Raises the import's DomainErrors,
    and LeaseLost (nothing written) when another worker has taken the job over."""
    return run_in_transaction(lambda: _commit(claim, data, progress), name="import_job_commit")


def _commit(claim: Claim, data: bytes, progress: imports.Progress | None) -> imports.ImportResult:
    result = imports.commit_import(data=data, filename=claim.filename, user=claim.username, progress=progress)
    _end(claim, "done", result=json.dumps(asdict(result)), rows_done=ImportJob.rows_total)
    return result


def fail_claimed(claim: Claim, *, error: str) -> None:
    """The job failed for good (error: a code the progress page explains)."""
    _end_alone(claim, "failed", error=error[:200])


def release(claim: Claim) -> None:
    """Give the job back to the queue (the database failed under it): another run may succeed;
    the attempt still counts."""
    _end_alone(claim, "queued", lease_expires_at=None, finished_at=None)


def _end_alone(claim: Claim, state: str, **values: Any) -> None:
    try:
        run_in_transaction(lambda: _end(claim, state, **values), name="import_job_end")
    except LeaseLost:
        log.warning("import job taken over by another worker", extra={"job_id": claim.job_id, "owner": claim.owner})


def _end(claim: Claim, state: str, **values: Any) -> None:
    now = utcnow()
    values = {"lease_expires_at": None, "finished_at": now, **values, "state": state, "updated_at": now}
    ended = db.session.execute(_owned(claim).values(**values), execution_options={"synchronize_session": False})
    if ended.rowcount != 1:  # type: ignore[attr-defined]
        raise LeaseLost(claim.job_id)


def result_of(job: ImportJob) -> imports.ImportResult | None:
    return imports.ImportResult(**json.loads(job.result)) if job.result else None


def counts_by_state() -> dict[str, int]:
    """How many jobs are in each state (for the metrics scrape)."""
    found = dict(db.session.execute(select(ImportJob.state, func.count()).group_by(ImportJob.state)).tuples().all())
    return {state: int(found.get(state, 0)) for state in JOB_STATES}


def oldest_waiting_seconds(*, now: datetime | None = None) -> float:
    """How long the longest-waiting claimable job has waited for a worker (0 when none): a queued
    job since it was submitted, a running one whose lease lapsed since the lapse."""
    now = now or utcnow()
    since = case((ImportJob.state == "queued", ImportJob.created_at), else_=ImportJob.lease_expires_at)
    oldest = db.session.scalar(select(func.min(since)).where(_claimable(now)))
    return max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0


def last_failure() -> datetime | None:
    """When the latest failed job (of those still kept) failed."""
    return db.session.scalar(select(func.max(ImportJob.finished_at)).where(ImportJob.state == "failed"))
