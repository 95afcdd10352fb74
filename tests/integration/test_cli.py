"""The flask CLI commands, run through Click's test runner against a real database."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from app.extensions import db
from app.models import ApiToken, Item, Location, Movement, Reservation, StockLevel, User, Warehouse
from app.models.types import utcnow
from app.services.users import find_token, hash_token, verify_password


def run(app, *args, input=None):
    return app.test_cli_runner().invoke(args=list(args), input=input)


def count(app, model) -> int:
    with app.app_context():
        value = db.session.scalar(select(func.count()).select_from(model))
        db.session.remove()
        return value


def test_seed_demo_builds_a_reconciled_demo_and_is_safe_to_rerun(app):
    first = run(app, "seed-demo", "--items", "120", "--demo-users")
    assert first.exit_code == 0, first.output
    assert "120 new item(s)" in first.output
    snapshot = [count(app, m) for m in (Warehouse, Location, Item, StockLevel, Movement, User)]
    assert snapshot[0] == 2 and snapshot[2] == 120 and snapshot[5] == 4
    second = run(app, "seed-demo", "--items", "120", "--demo-users")
    assert second.exit_code == 0 and "0 new item(s)" in second.output
    assert [count(app, m) for m in (Warehouse, Location, Item, StockLevel, Movement, User)] == snapshot
    with app.app_context():
        codes = set(db.session.scalars(select(Location.code)))
        item = db.session.scalar(select(Item).where(Item.sku == "DEMO-000001"))
        db.session.remove()
    assert {"WH1-A-01-01", "WH1-C-04-04", "WH2-B-03-03"} <= codes
    assert item.barcode == "6900000000014" and item.name.startswith("六角螺母 M5 Hex nut")
    assert run(app, "check-ledger").exit_code == 0


def test_seed_demo_grows_without_touching_existing_items(app):
    assert run(app, "seed-demo", "--items", "10").exit_code == 0
    movements = count(app, Movement)
    assert run(app, "seed-demo", "--items", "20").exit_code == 0
    assert count(app, Item) == 20
    assert count(app, Movement) > movements


def test_check_ledger_reports_a_tampered_stock_level_and_exits_1(app, factory):
    item, shelf = factory.item(sku="TAMPER-1"), factory.location()
    factory.stock(item, shelf, 5)
    clean = run(app, "check-ledger")
    assert clean.exit_code == 0 and "ledger OK" in clean.output
    with app.app_context():
        db.session.execute(update(StockLevel).values(quantity=7))
        db.session.commit()
        db.session.remove()
    broken = run(app, "check-ledger")
    assert broken.exit_code == 1
    assert f"MISMATCH TAMPER-1 @ {shelf.code}: on hand 7.000, ledger 5.000" in broken.output


def test_check_ledger_reports_an_item_total_that_is_not_the_sum_of_its_levels_and_exits_1(app, factory):
    item, shelf = factory.item(sku="TAMPER-2"), factory.location()
    factory.stock(item, shelf, 5)
    with app.app_context():
        db.session.execute(update(Item).where(Item.id == item.id).values(on_hand=9))
        db.session.commit()
        db.session.remove()
    broken = run(app, "check-ledger")
    assert broken.exit_code == 1
    assert "MISMATCH TAMPER-2 total: on hand 9.000, sum of stock levels 5.000" in broken.output
    assert "@" not in broken.output  # the stock level itself reconciles with the ledger


def test_create_user_reads_the_password_from_stdin_and_hashes_it(app):
    result = run(app, "create-user", "zhang.san", "--role", "clerk", "--password-stdin", input="s3cret-pass\n")
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == "zhang.san"))
        db.session.remove()
    assert user.role == "clerk" and user.password_hash.startswith("scrypt:")
    assert "s3cret-pass" not in user.password_hash and verify_password(user, "s3cret-pass")


def test_create_user_refuses_bad_roles_short_passwords_and_duplicates(app, factory):
    factory.user(username="taken")
    assert run(app, "create-user", "x", "--role", "boss", "--password-stdin", input="long-enough\n").exit_code == 2
    short = run(app, "create-user", "x", "--role", "clerk", "--password-stdin", input="short\n")
    assert short.exit_code == 1 and "at least 8" in short.output
    dup = run(app, "create-user", "taken", "--role", "clerk", "--password-stdin", input="long-enough\n")
    assert dup.exit_code == 1 and "already exists" in dup.output


def test_create_token_prints_it_once_and_stores_only_its_hash(app, factory):
    factory.user(username="erp", role="clerk")
    result = run(app, "create-token", "erp", "--scope", "write", "--expires-days", "30")
    assert result.exit_code == 0, result.output
    token_text = result.stdout.strip().splitlines()[0]
    assert token_text.startswith("inv_") and len(token_text) > 40
    with app.app_context():
        stored = db.session.scalar(select(ApiToken))
        found = find_token(token_text)
        db.session.remove()
    assert stored.token_hash == hash_token(token_text) and token_text not in stored.token_hash
    assert stored.scopes == "read write" and stored.expires_at is not None
    assert found is not None and found.id == stored.id


def test_create_token_for_an_unknown_user_fails_cleanly(app):
    result = run(app, "create-token", "ghost", "--scope", "read")
    assert result.exit_code == 1 and "no user 'ghost'" in result.output


def test_check_ledger_reports_a_reserved_amount_no_reservation_explains(app, factory):
    from app.services import reservations

    item, shelf = factory.item(sku="TAMPER-R"), factory.location()
    factory.stock(item, shelf, 5)
    with app.app_context():
        reservations.reserve(reference="SO-T", lines=[{"sku": "TAMPER-R", "quantity": 2}], user="erp")
        db.session.remove()
    assert run(app, "check-ledger").exit_code == 0
    with app.app_context():
        db.session.execute(update(StockLevel).values(reserved=3))
        db.session.commit()
        db.session.remove()
    broken = run(app, "check-ledger")
    assert broken.exit_code == 1
    assert f"MISMATCH TAMPER-R @ {shelf.code}: reserved 3.000, open reservation lines hold 2.000" in broken.output
    assert "reserved amount(s) do not match their reservations" in broken.output


def test_reservations_expire_command_releases_stale_reservations(app, make_app, factory):
    from app.services import reservations

    item, shelf = factory.item(sku="STALE-R"), factory.location()
    factory.stock(item, shelf, 5)
    with app.app_context():
        reservations.reserve(reference="SO-S", lines=[{"sku": "STALE-R", "quantity": 2}], user="erp")
        db.session.remove()
    assert "0 reservation(s) expired" in run(app, "reservations", "expire").output
    eager = make_app(INVENTORY_RESERVATION_MAX_AGE_DAYS=0)
    assert "0 reservation(s) expired" in run(eager, "reservations", "expire").output
    with app.app_context():
        db.session.execute(update(Reservation).values(expires_at=utcnow() - timedelta(minutes=1)))
        db.session.commit()
        db.session.remove()
    assert "1 reservation(s) expired" in run(app, "reservations", "expire").output
    with app.app_context():
        assert db.session.scalar(select(StockLevel.reserved)) == 0
        db.session.remove()
