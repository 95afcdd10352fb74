"""Running import jobs: claim one, keep its lease alive while the import runs, record how it ended.

The job worker (`flask jobs run`, app/jobs_cli.py) loops over `work_once`. On the embedded default
(INVENTORY_JOBS_INLINE, on when the database is SQLite) the web process runs the same code in a
thread of its own (`start_inline`), started when a job is queued and again by the progress page
whenever its job is claimable (its process was recycled or stopped), so `make run` needs nothing
else started.

SQLite has one writer at a time and the import holds that lock from its first read to its COMMIT,
so there neither the lease nor the progress can be written while it runs: the worker records them
in this process instead (`local_progress`), which is the process serving the page on the embedded
default. On MariaDB both go to the database, where every instance reads them.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, current_app
from sqlalchemy.exc import SQLAlchemyError

from app.config import settings
from app.extensions import db
from app.services import jobs
from app.services.errors import DomainError

log = logging.getLogger(__name__)

_inline_lock = threading.Lock()
_inline: threading.Thread | None = None
# job id -> (phase, rows done, rows) of the jobs this process is running.
_running: dict[int, tuple[str, int, int]] = {}


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def work_once(owner: str) -> bool:
    """Claim one job and run it to its end; False when there was none to claim. Needs an app context."""
    claim = jobs.claim_next(owner=owner)
    if claim is None:
        return False
    run_claimed(claim)
    return True


def run_claimed(claim: jobs.Claim) -> str:
    """Run a claimed job; its outcome: done, failed, released (the database failed under it, so it
    is queued again) or lost (another worker took it over, nothing written)."""
    started = time.perf_counter()
    log.info("import job started", extra={"job_id": claim.job_id, "attempt": claim.attempt, "owner": claim.owner})
    data = jobs.read_upload(claim.digest)
    error: str | None
    if data is None:
        jobs.fail_claimed(claim, error=jobs.UPLOAD_MISSING)
        outcome, error = "failed", jobs.UPLOAD_MISSING
    else:
        outcome, error = _commit(claim, data)
    log.info(
        "import job finished",
        extra={
            "job_id": claim.job_id,
            "attempt": claim.attempt,
            "outcome": outcome,
            "error": error,
            "duration_ms": round((time.perf_counter() - started) * 1000),
        },
    )
    return outcome


def _commit(claim: jobs.Claim, data: bytes) -> tuple[str, str | None]:
    shared = db.engine.dialect.name != "sqlite"
    _running[claim.job_id] = ("checking", 0, 0)

    def progress(phase: str, done: int, total: int) -> None:
        _running[claim.job_id] = (phase, done, total)
        if shared:
            jobs.renew_lease(claim, phase=phase, done=done, total=total)

    try:
        with _heartbeat(claim, enabled=shared):
            jobs.commit_claimed(claim, data, progress)
    except DomainError as exc:
        jobs.fail_claimed(claim, error=exc.code)
        return "failed", exc.code
    except jobs.LeaseLost:
        return "lost", None
    except SQLAlchemyError as exc:
        log.exception("import job interrupted by the database", extra={"job_id": claim.job_id})
        db.session.rollback()
        jobs.release(claim)
        return "released", type(exc).__name__
    except Exception as exc:  # a bug would fail again on every run: fail it once, clearly
        log.exception("import job crashed", extra={"job_id": claim.job_id})
        jobs.fail_claimed(claim, error=type(exc).__name__)
        return "failed", type(exc).__name__
    finally:
        _running.pop(claim.job_id, None)
    return "done", None


@contextmanager
def _heartbeat(claim: jobs.Claim, *, enabled: bool) -> Iterator[None]:
    """Renew the lease every quarter lease while the body runs, from a thread of its own."""
    if not enabled:
        yield
        return
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    finished = threading.Event()
    every = settings().INVENTORY_JOBS_LEASE_SECONDS / 4

    def beat() -> None:
        with app.app_context():
            while not finished.wait(every):
                try:
                    if not jobs.renew_lease(claim):
                        return
                except SQLAlchemyError:
                    log.warning("import job lease not renewed", extra={"job_id": claim.job_id}, exc_info=True)

    thread = threading.Thread(target=beat, name=f"import-job-{claim.job_id}-lease", daemon=True)
    thread.start()
    try:
        yield
    finally:
        finished.set()
        thread.join()


def local_progress(job_id: int) -> tuple[str, int, int] | None:
    """(phase, rows done, rows) of a job this process is running, or None."""
    return _running.get(job_id)


def cleanup() -> int:
    """Delete expired uploads (and old finished jobs); how many uploads went."""
    deleted = jobs.delete_expired()
    if deleted:
        log.info("expired import uploads deleted", extra={"uploads": deleted})
    return deleted


# ---------------------------------------------------------------- the embedded default


def start_inline(app: Flask) -> None:
    """Run claimable jobs in a thread of this process until none is left (at most one such thread)."""
    global _inline
    with _inline_lock:
        if _inline is not None and _inline.is_alive():
            return
        _inline = threading.Thread(target=_drain, args=(app,), name="import-jobs-inline", daemon=True)
        _inline.start()


def _drain(app: Flask) -> None:
    with app.app_context():
        try:
            while work_once(f"{worker_name()}:inline"):
                pass
            cleanup()
        except SQLAlchemyError:
            log.exception("inline import jobs failed")
        finally:
            db.session.remove()


def wait_inline(timeout: float) -> bool:
    """Wait for this process's inline job thread to end; whether it has."""
    thread = _inline
    if thread is not None:
        thread.join(timeout)
    return thread is None or not thread.is_alive()
