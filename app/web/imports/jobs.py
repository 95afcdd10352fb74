"""Background commits for large files: a thread per job, with its progress in a small JSON file
next to the upload, so that any worker process can answer the page's progress requests."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from flask import Flask, current_app

from app.extensions import db
from app.services import imports
from app.services.errors import DomainError


def folder() -> Path:
    path = Path(current_app.instance_path) / "imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def upload_path(digest: str, filename: str) -> Path:
    return folder() / f"{digest}{Path(filename).suffix.lower()}"


def progress_of(digest: str) -> dict[str, Any] | None:
    path = folder() / f"{digest}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _write(path: Path, **state: Any) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state, default=str))
    temporary.replace(path)


def start(digest: str, filename: str, user: str, total: int) -> None:
    """Commit the saved upload in a thread; progress goes to <digest>.json."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    data = upload_path(digest, filename).read_bytes()
    status = folder() / f"{digest}.json"
    _write(status, state="checking", done=0, total=total)

    def run() -> None:
        with app.app_context():
            try:
                result = imports.commit_import(
                    data=data,
                    filename=filename,
                    user=user,
                    progress=lambda phase, done, rows: _write(status, state=phase, done=done, total=rows),
                )
                _write(status, state="done", done=total, total=total, result=result.__dict__)
            except DomainError as error:
                _write(status, state="failed", done=0, total=total, error=error.code)
            except Exception as error:  # the page must learn that the job died, whatever killed it
                app.logger.exception("import job failed")
                _write(status, state="failed", done=0, total=total, error=type(error).__name__)
            finally:
                db.session.remove()

    threading.Thread(target=run, name=f"import-{digest[:8]}", daemon=True).start()
