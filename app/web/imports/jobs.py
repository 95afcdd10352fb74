"""Background commits for large files: a thread per job, with its progress in a small JSON file
next to the upload, so that any worker process can answer the page's progress requests.

A job dies with its process (a worker recycled or killed, a deploy). Its commit is one
transaction, so the database rolls it back and nothing is half imported; what must not happen is a
progress page that polls forever. So a running job stamps the file with its process and a heartbeat,
and a reader that finds the process gone, or the heartbeat stale, reports the job as failed."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from flask import Flask, current_app

from app.extensions import db
from app.services import imports
from app.services.errors import DomainError

# A running job rewrites its file at least this often; a file older than STALE_SECONDS belongs to
# a job whose process stopped (a worker on another pod, or one whose pid was reused).
HEARTBEAT_SECONDS = 5.0
STALE_SECONDS = 60.0
RUNNING = ("checking", "writing")


def folder() -> Path:
    path = Path(current_app.instance_path) / "imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def upload_path(digest: str, filename: str) -> Path:
    return folder() / f"{digest}{Path(filename).suffix.lower()}"


def progress_of(digest: str) -> dict[str, Any] | None:
    """The job's state; a running job whose process is gone reads as failed (`worker_died`)."""
    path = folder() / f"{digest}.json"
    if not path.exists():
        return None
    state: dict[str, Any] = json.loads(path.read_text())
    if state.get("state") in RUNNING and _abandoned(state):
        state.update(state="failed", done=0, error="worker_died")
    return state


def _abandoned(state: dict[str, Any]) -> bool:
    if time.time() - float(state.get("heartbeat", 0)) > STALE_SECONDS:
        return True
    return state.get("host") == socket.gethostname() and not _alive(int(state.get("pid", 0)))


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


class _Status:
    """The job's state file. The commit's progress callback and the heartbeat thread both write it,
    always the whole current state, under one lock, so neither overwrites the other's news."""

    def __init__(self, path: Path, **state: Any) -> None:
        self.path = path
        self.state: dict[str, Any] = {"pid": os.getpid(), "host": socket.gethostname(), **state}
        self.lock = threading.Lock()
        self.write()

    def write(self, **changes: Any) -> None:
        with self.lock:
            self.state.update(changes, heartbeat=time.time())
            temporary = self.path.with_suffix(f".{threading.get_ident()}.tmp")
            temporary.write_text(json.dumps(self.state, default=str))
            temporary.replace(self.path)


def start(digest: str, filename: str, user: str, total: int) -> None:
    """Commit the saved upload in a thread; progress goes to <digest>.json."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    data = upload_path(digest, filename).read_bytes()
    status = _Status(folder() / f"{digest}.json", state="checking", done=0, total=total)
    finished = threading.Event()

    def heartbeat() -> None:
        while not finished.wait(HEARTBEAT_SECONDS):
            status.write()

    def run() -> None:
        with app.app_context():
            try:
                result = imports.commit_import(
                    data=data,
                    filename=filename,
                    user=user,
                    progress=lambda phase, done, rows: status.write(state=phase, done=done, total=rows),
                )
                status.write(state="done", done=total, total=total, result=result.__dict__)
            except DomainError as error:
                status.write(state="failed", done=0, total=total, error=error.code)
            except Exception as error:  # the page must learn that the job died, whatever killed it
                app.logger.exception("import job failed")
                status.write(state="failed", done=0, total=total, error=type(error).__name__)
            finally:
                finished.set()
                db.session.remove()

    threading.Thread(target=heartbeat, name=f"import-{digest[:8]}-heartbeat", daemon=True).start()
    threading.Thread(target=run, name=f"import-{digest[:8]}", daemon=True).start()
