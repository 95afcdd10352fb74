"""`flask backup create|list|verify|restore|prune` and `flask export-all DIR`: the data-safety
commands. Each parses its arguments, calls app/services/backup.py or export_all.py, and prints."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext

from app.config import settings
from app.services import backup as backups
from app.services import export_all
from app.services.errors import DomainError

backup = AppGroup("backup", help="Hot backups, verified restores and point-in-time recovery.")


def _target(option: str | None) -> str:
    return option or settings().INVENTORY_BACKUP_TARGET


def _s3() -> str:
    return settings().INVENTORY_BACKUP_S3_ENDPOINT_URL


def _fail(error: DomainError) -> None:
    raise click.ClickException(error.message)


@backup.command("create")
@click.option(
    "--to", "target", metavar="DIR|URL", help="A directory or s3://bucket/prefix (default: the configured target)."
)
def create_command(target: str | None) -> None:
    """Take a consistent backup while the app keeps writing; print where it went (last line)."""
    try:
        made = backups.create_backup(
            target=_target(target), app_version=settings().INVENTORY_VERSION, s3_endpoint_url=_s3()
        )
    except DomainError as error:
        _fail(error)
    m = made.manifest
    binlog = f"{m['binlog']['file']}:{m['binlog']['position']}" if m["binlog"] else "none (binary logging off)"
    click.echo(
        f"backup {made.name}: {m['row_counts'].get('movements', 0)} movements (last id {m['last_movement_id']}), "
        f"{m['payload']['bytes']} bytes compressed, {m['duration_seconds']} s, binlog {binlog}",
        err=True,
    )
    click.echo(made.url)


@backup.command("list")
@click.option("--target", metavar="DIR|URL", help="Where to look (default: the configured target).")
@click.option("--json", "as_json", is_flag=True, help="The manifests as JSON lines.")
def list_command(target: str | None, as_json: bool) -> None:
    """Every complete backup, newest first."""
    try:
        found = backups.list_backups(target=_target(target), s3_endpoint_url=_s3())
    except DomainError as error:
        _fail(error)
    for b in found:
        m = b.manifest
        if as_json:
            click.echo(json.dumps(m, ensure_ascii=False))
            continue
        click.echo(
            f"{b.name}  {m['created_at']}  {m['backend']}  schema {m['schema_revision']}  "
            f"{m['row_counts'].get('movements', 0)} movements  {m['payload']['bytes']} bytes  {b.url}"
        )


@backup.command("verify")
@click.argument("backup_name", metavar="BACKUP")
@click.option("--target", metavar="DIR|URL", help="Where a bare BACKUP name is looked up.")
def verify_command(backup_name: str, target: str | None) -> None:
    """Restore BACKUP into a scratch database, check it against its manifest, the migrations and the
    ledger, and drop the copy. Exit 0 only if every check holds."""
    result = backups.verify_backup(backup=backup_name, target=_target(target), s3_endpoint_url=_s3())
    for check in result.checks:
        click.echo(f"{'ok  ' if check.ok else 'FAIL'} {check.what}: {check.detail}")
    if not result.ok:
        click.echo(f"backup {result.name} FAILED verification", err=True)
        sys.exit(1)
    click.echo(f"backup {result.name} verified")


@backup.command("restore")
@click.argument("backup_name", metavar="BACKUP")
@click.option("--yes", is_flag=True, help="Confirm: every row of the configured database is replaced.")
@click.option("--until", metavar='"YYYY-MM-DD HH:MM:SS"', help="Replay the binary log up to this moment (UTC).")
@click.option("--over-newer-schema", is_flag=True, help="Restore even though the database's schema is newer.")
@click.option("--target", metavar="DIR|URL", help="Where a bare BACKUP name is looked up.")
def restore_command(
    backup_name: str, yes: bool, until: str | None, over_newer_schema: bool, target: str | None
) -> None:
    """Replace the configured database with BACKUP (and, with --until, recover to that moment)."""
    try:
        manifest = backups.restore_backup(
            backup=backup_name,
            target=_target(target),
            confirmed=yes,
            until=backups.parse_until(until) if until else None,
            over_newer_schema=over_newer_schema,
            s3_endpoint_url=_s3(),
        )
    except DomainError as error:
        _fail(error)
    click.echo(f"restored {manifest['name']} (taken {manifest['created_at']}, schema {manifest['schema_revision']})")
    if until:
        click.echo(f"replayed the binary log up to {until} UTC")
    click.echo("next: `flask db upgrade` if this release is newer, then `flask check-ledger`")


@backup.command("prune")
@click.option("--keep-daily", type=click.IntRange(min=1), default=7, show_default=True)
@click.option("--keep-weekly", type=click.IntRange(min=0), default=4, show_default=True)
@click.option("--target", metavar="DIR|URL", help="Where to prune (default: the configured target).")
def prune_command(keep_daily: int, keep_weekly: int, target: str | None) -> None:
    """Keep the newest backup of each of the last N days and of each of the last M weeks."""
    try:
        deleted = backups.prune_backups(
            target=_target(target), keep_daily=keep_daily, keep_weekly=keep_weekly, s3_endpoint_url=_s3()
        )
    except DomainError as error:
        _fail(error)
    for name in deleted:
        click.echo(f"deleted {name}")
    click.echo(f"{len(deleted)} backup(s) deleted")


@click.command("export-all")
@with_appcontext
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def export_all_command(directory: Path) -> None:
    """Items, categories, locations, stock levels and the whole ledger as CSV files with a manifest,
    streamed (the ledger never sits in memory)."""
    try:
        manifest = export_all.export_to_directory(directory)
    except DomainError as error:
        _fail(error)
    for name, rows in manifest["files"].items():
        click.echo(f"{name}: {rows} rows")
    click.echo(str(directory))


def register_backup_cli(app: Flask) -> None:
    app.cli.add_command(backup)
    app.cli.add_command(export_all_command)
