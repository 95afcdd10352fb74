"""Backups page (admin) and the streamed full export."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import Response, render_template, stream_with_context
from flask_login import current_user

from app.auth.roles import role_required
from app.config import settings
from app.services import backup, export_all
from app.web.backups import bp

log = logging.getLogger("app.audit")


@bp.get("")
@role_required("admin")
def index() -> str:
    view = backup.overview(
        target=settings().INVENTORY_BACKUP_TARGET,
        s3_endpoint_url=settings().INVENTORY_BACKUP_S3_ENDPOINT_URL,
    )
    return render_template("backups/index.html", view=view)


@bp.get("/export.zip")
@role_required("admin")
def export() -> Response:
    log.info("full export downloaded", extra={"user": current_user.username})
    name = f"inventory-export-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.zip"
    return Response(
        stream_with_context(export_all.zip_chunks()),
        mimetype="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )
