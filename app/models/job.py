"""Uploaded import files and the jobs that commit them: in the database, so that every web
instance and every job worker reads the same ones (no pod's disk is shared, nor writable)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models.types import UtcDateTime, utcnow

JOB_STATES = ("queued", "running", "done", "failed")
# MariaDB refuses a statement larger than max_allowed_packet (16 MiB by default) and an upload may
# be 20 MiB, so a file is stored as numbered chunks of at most this many bytes.
CHUNK_BYTES = 1024 * 1024
Blob = LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")


class ImportUpload(Model):
    """A previewed file, by its SHA-256; deleted after the retention period."""

    __tablename__ = "import_uploads"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    filename: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column()
    uploaded_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)


class ImportUploadChunk(Model):
    __tablename__ = "import_upload_chunks"

    digest: Mapped[str] = mapped_column(
        String(64), ForeignKey("import_uploads.digest", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(Blob)


class ImportJob(Model):
    """The commit of one upload, run by whichever worker holds its lease.

    A worker that dies leaves its lease to expire; the next claim runs the job again (the commit is
    one transaction keyed by the file's digest, so a re-run is safe) until `attempts` reaches the
    limit, and then the job fails with error "worker_died"."""

    __tablename__ = "import_jobs"
    __table_args__ = (Index("ix_import_jobs_state_lease", "state", "lease_expires_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    username: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="queued")
    # "checking" (rows_done of rows_total read) or "writing" (the one transaction is under way).
    phase: Mapped[str | None] = mapped_column(String(16))
    rows_done: Mapped[int] = mapped_column(default=0)
    rows_total: Mapped[int] = mapped_column(default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(120))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(String(200))
    # The ImportResult as JSON once done.
    result: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
