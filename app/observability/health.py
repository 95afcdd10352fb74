"""/healthz (the process answers; no database) and /readyz (database reachable, schema at head)."""

from __future__ import annotations

from pathlib import Path

from alembic.script import ScriptDirectory
from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.config import settings
from app.extensions import db

bp = Blueprint("health", __name__)
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def migration_head() -> str | None:
    """The newest Alembic revision shipped with this code (read once per process)."""
    head = current_app.extensions.get("inventory_migration_head")
    if head is None:
        script = ScriptDirectory(str(MIGRATIONS_DIR))
        head = script.get_current_head()
        current_app.extensions["inventory_migration_head"] = head
    return head


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


def readiness() -> tuple[bool, dict[str, object]]:
    """Whether the database answers and its schema is at head, with the body /readyz returns."""
    version = settings().INVENTORY_VERSION
    try:
        current = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
        db.session.rollback()
    except SQLAlchemyError as exc:
        db.session.rollback()
        return False, dict(status="unavailable", reason="database", detail=type(exc).__name__, version=version)
    head = migration_head()
    if current != head:
        return False, dict(status="unavailable", reason="migrations", current=current, head=head, version=version)
    return True, dict(status="ok", migration=current, version=version)


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    ready, body = readiness()
    return jsonify(body), 200 if ready else 503
