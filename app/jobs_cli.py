"""`flask jobs run|cleanup`: the import job worker and the deletion of expired uploads."""

from __future__ import annotations

import time

import click
from flask import Flask
from flask.cli import AppGroup

from app import jobs as runner
from app.observability.logging import log_to_stdout
from app.worker import run_rounds

jobs = AppGroup("jobs", help="Run background import jobs and delete expired uploads.")
CLEANUP_EVERY_SECONDS = 600.0


@jobs.command("cleanup")
def cleanup_command() -> None:
    """Delete uploads past INVENTORY_IMPORT_RETENTION_HOURS (and finished jobs as old) once."""
    click.echo(f"deleted {runner.cleanup()} expired upload(s)")


@jobs.command("run")
@click.option(
    "--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True, help="Seconds between idle polls."
)
@click.option("--once", is_flag=True, help="Claim and run at most one job, then exit (for tests and cron).")
def run_command(interval: float, once: bool) -> None:
    """The long-running worker: claim a queued (or abandoned) job, run it, repeat.

    SIGTERM or SIGINT stop it after the job in hand: that job is one transaction, so finishing it
    beats rolling it back (the Deployment's grace period covers the largest import). Killed
    harder, its lease lapses and another worker runs the job again."""
    owner = runner.worker_name()
    if once:
        log_to_stdout()
        click.echo("ran 1 job" if runner.work_once(owner) else "no job to run")
        return
    next_cleanup = time.monotonic()

    def one_round() -> bool:
        nonlocal next_cleanup
        if time.monotonic() >= next_cleanup:
            runner.cleanup()
            next_cleanup = time.monotonic() + CLEANUP_EVERY_SECONDS
        return runner.work_once(owner)

    run_rounds("jobs", one_round, interval=interval, owner=owner)


def register_jobs_cli(app: Flask) -> None:
    app.cli.add_command(jobs)
