"""`flask --app wsgi ...` commands. Each one parses its arguments and calls services."""

from __future__ import annotations

import sys
from datetime import timedelta

import click
from flask import Flask
from flask.cli import with_appcontext
from sqlalchemy import select

from app import demo
from app.config import settings
from app.extensions import db
from app.models import ROLES, TOKEN_SCOPES, Location, Warehouse
from app.services import admin, items, locations, stock, users
from app.services.errors import DomainError
from app.services.ledger import audit_ledger

BATCH = 2000
DEMO_USERS = (
    ("admin", "admin", "管理员 Admin"),
    ("manager", "manager", "主管 Manager"),
    ("clerk", "clerk", "库管员 Clerk"),
    ("viewer", "viewer", "访客 Viewer"),
)


def _fail(error: DomainError) -> None:
    raise click.ClickException(error.message)


@click.command("create-user")
@with_appcontext
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--display-name", default="")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create_user_command(username: str, role: str, display_name: str, password_stdin: bool) -> None:
    """Create a user; the password comes from a prompt or --password-stdin."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        users.create_user(username=username, password=password, role=role, display_name=display_name)
    except DomainError as error:
        _fail(error)
    click.echo(f"created user {username} ({role})")


@click.command("create-token")
@with_appcontext
@click.argument("username")
@click.option("--scope", type=click.Choice(TOKEN_SCOPES), required=True)
@click.option("--name", default="", help="What the token is for.")
@click.option("--expires-days", type=click.IntRange(min=1), default=None)
def create_token_command(username: str, scope: str, name: str, expires_days: int | None) -> None:
    """Create an API token and print it once (only its hash is stored)."""
    try:
        token, text = users.create_token(
            username=username,
            scope=scope,
            name=name,
            expires_in=timedelta(days=expires_days) if expires_days else None,
        )
    except DomainError as error:
        _fail(error)
    click.echo(text)
    click.echo(f"token {token.prefix}… for {username}, scopes: {token.scopes}; it will not be shown again", err=True)


@click.command("deactivate-user")
@with_appcontext
@click.argument("username")
def deactivate_user_command(username: str) -> None:
    """Deactivate a user: sign-in, sessions and API tokens stop working. Takes any stored name,
    including one no page can open (made before "/" was refused in usernames)."""
    try:
        admin.set_active(username=username, active=False)
    except DomainError as error:
        _fail(error)
    click.echo(f"deactivated user {username}")


@click.command("check-ledger")
@with_appcontext
def check_ledger_command() -> None:
    """Recompute every stock level from the ledger and every item's on-hand total from its stock
    levels, from one consistent snapshot that blocks no writer; exit 1 when any does not match."""
    mismatches, totals, reserved = audit_ledger()
    for m in mismatches:
        click.echo(
            f"MISMATCH {m.sku} @ {m.location}{f' lot {m.lot}' if m.lot else ''}: on hand {m.on_hand}, "
            f"ledger {m.from_ledger}, last recorded balance {m.last_balance}"
        )
    for t in totals:
        click.echo(f"MISMATCH {t.sku} total: on hand {t.on_hand}, sum of stock levels {t.from_levels}")
    for r in reserved:
        where = f" @ {r.location}{f' lot {r.lot}' if r.lot else ''}" if r.location else " total"
        held = "open reservation lines hold" if r.location else "sum of stock levels"
        click.echo(f"MISMATCH {r.sku}{where}: reserved {r.reserved}, {held} {r.expected}, on hand {r.quantity}")
    if mismatches:
        click.echo(f"{len(mismatches)} stock level(s) do not reconcile with the ledger", err=True)
    if totals:
        click.echo(f"{len(totals)} item total(s) do not equal the sum of their stock levels", err=True)
    if reserved:
        click.echo(f"{len(reserved)} reserved amount(s) do not match their reservations", err=True)
    if mismatches or totals or reserved:
        sys.exit(1)
    click.echo("ledger OK: every stock level reconciles, every item total, and every reserved amount")


def _seed_places() -> None:
    existing = set(db.session.scalars(select(Warehouse.code)))
    for code, name in demo.WAREHOUSES:
        if code not in existing:
            locations.create_warehouse(code=code, name=name)
    known = set(db.session.scalars(select(Location.code)))
    for code, _ in demo.WAREHOUSES:
        for location in demo.location_codes(code):
            if location not in known:
                locations.create_location(warehouse=code, code=location)


def _seed_users(password: str) -> None:
    for username, role, display in DEMO_USERS:
        try:
            users.create_user(username=username, password=password, role=role, display_name=display)
        except DomainError:
            continue  # already there: seeding twice is safe


@click.command("seed-demo")
@with_appcontext
@click.option("--items", "count", type=click.IntRange(min=0), default=1000, show_default=True)
@click.option("--demo-users", is_flag=True, help="Also create admin, manager, clerk and viewer users.")
@click.option("--password", default="demo-pass-123", show_default=True, help="Password of the demo users.")
def seed_demo_command(count: int, demo_users: bool, password: str) -> None:
    """Demo warehouses WH1/WH2, locations WH1-A-01-01 …, items DEMO-000001 … with opening stock,
    all written through the services (so the ledger reconciles). Running it twice is safe."""
    if demo_users and settings().is_production:
        raise click.ClickException("refusing to create demo users in production")
    _seed_places()
    if demo_users:
        _seed_users(password)
    created_total = 0
    with click.progressbar(length=count, label="items", file=sys.stderr) as bar:
        for start in range(1, count + 1, BATCH):
            numbers = range(start, min(start + BATCH, count + 1))
            created = set(items.create_items(list(demo.demo_items(numbers))))
            lines = [
                stock.PickLine(demo.demo_sku(n), location, quantity)
                for n in numbers
                if demo.demo_sku(n) in created
                for location, quantity in demo.opening_stock(n)
            ]
            if lines:
                stock.receive_lines(lines=lines, user="seed-demo", reference="OPENING", note="demo opening stock")
            created_total += len(created)
            bar.update(len(numbers))
    click.echo(f"demo data ready: {created_total} new item(s), {count} demo item(s) in all")


def register_cli(app: Flask) -> None:
    commands = (create_user_command, create_token_command, deactivate_user_command, check_ledger_command)
    for command in (*commands, seed_demo_command):
        app.cli.add_command(command)
