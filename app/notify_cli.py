"""`flask notify run|once|audit` (the low-stock dispatcher and the ledger audit), `flask lots
check-expiry` (the daily expiry check, also run by `notify run`), `flask reservations expire`
(likewise daily) and `flask wecom-relay` (the Alertmanager -> WeCom relay)."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time

import click
from flask import Flask
from flask.cli import AppGroup

from app.config import settings
from app.observability.logging import log_to_stdout
from app.services import expiry, notifications, reservations
from app.worker import run_rounds

log = logging.getLogger(__name__)
notify = AppGroup("notify", help="Deliver low-stock notifications and audit the ledger.")
lots = AppGroup("lots", help="Lots: the daily expiry check.")
reserved = AppGroup("reservations", help="Reservations: the daily expiry of stale ones.")


@lots.command("check-expiry")
def check_expiry_command() -> None:
    """Put today's "lot expiring" and "expired with stock" events in the outbox (once per lot,
    place and day, however often it runs)."""
    result = expiry.check_expiry()
    click.echo(f"expiry check {result.day.isoformat()}: {result.expiring} expiring, {result.expired} expired")


@reserved.command("expire")
def expire_reservations_command() -> None:
    """Expire reservations past their expiry time, or older than INVENTORY_RESERVATION_MAX_AGE_DAYS
    without one, releasing their stock (also run daily by `notify run`)."""
    click.echo(f"{reservations.expire_stale()} reservation(s) expired")


def _channel() -> notifications.Channel:
    return notifications.Channel(
        robot_url=settings().INVENTORY_WECOM_WEBHOOK_URL,
        base_url=settings().INVENTORY_BASE_URL,
    )


@notify.command("once")
@click.option("--limit", type=click.IntRange(min=1), default=notifications.CLAIM_BATCH, show_default=True)
def once_command(limit: int) -> None:
    """One dispatch round (for cron and tests)."""
    report = notifications.dispatch_once(_channel(), limit=limit)
    click.echo(
        f"claimed {report.claimed}, delivered {report.delivered}, retrying {report.retrying}, "
        f"dead {report.dead}, deferred {report.deferred}, messages {report.messages}"
    )


@notify.command("audit")
def audit_command() -> None:
    """Reconcile stock levels with the ledger once and record the result (exit 1 on mismatches)."""
    audit = notifications.run_ledger_audit()
    click.echo(f"ledger audit: {audit.mismatches} mismatch(es) in {audit.duration_ms} ms")
    if audit.mismatches:
        sys.exit(1)


@notify.command("run")
@click.option(
    "--interval", type=click.FloatRange(min=0.1), default=10.0, show_default=True, help="Seconds between rounds."
)
@click.option(
    "--audit-every",
    type=click.FloatRange(min=1),
    default=300.0,
    show_default=True,
    help="Seconds between ledger audits.",
)
def run_command(interval: float, audit_every: float) -> None:
    """The long-running worker: dispatch due events every few seconds, audit the ledger every few
    minutes, run the expiry check and expire stale reservations once a day (at start, then when the
    day changes)."""
    channel = _channel()
    next_audit = time.monotonic()
    expiry_check = expiry.DailyCheck()

    def one_round() -> bool:
        nonlocal next_audit
        if time.monotonic() >= next_audit:
            notifications.run_ledger_audit()
            next_audit = time.monotonic() + audit_every
        if expiry_check.run_if_due() is not None:
            # Once a day with the lot expiry check: stale reservations give their stock back.
            reservations.expire_stale()
        report = notifications.dispatch_once(channel)
        # A full batch means more is due: go again at once instead of sleeping.
        return report.claimed >= notifications.CLAIM_BATCH and not report.deferred

    run_rounds("notify", one_round, interval=interval, audit_every_s=audit_every)


@click.command("wecom-relay")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=9095, show_default=True)
def wecom_relay_command(host: str, port: int) -> None:
    """Serve the Alertmanager -> WeCom relay (threaded; one process)."""
    log_to_stdout()
    from werkzeug.serving import make_server

    from app.relay import create_relay

    relay = create_relay(settings().INVENTORY_WECOM_WEBHOOK_URL, storage_uri=settings().RATELIMIT_STORAGE_URI)
    server = make_server(host, port, relay, threaded=True)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    log.info("wecom relay listening", extra={"host": host, "port": port})
    server.serve_forever()


def register_notify_cli(app: Flask) -> None:
    app.cli.add_command(notify)
    app.cli.add_command(lots)
    app.cli.add_command(reserved)
    app.cli.add_command(wecom_relay_command)
