"""Sign-in hardening (issue 14: findings 1, 2, 9, 21 and the logging of typed usernames): the real
client behind trusted proxies, a throttle that cannot lock others out, cookies that die with
sign-out and credential changes, a fresh session at sign-in, and even timing for unknown users."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import update

from app import auth
from app.config import Config, ConfigError
from app.extensions import db
from app.models import SignInFailure
from app.models.types import utcnow
from app.services import admin, signins, users
from tests.factories import DEFAULT_PASSWORD
from tests.integration.web.conftest import text_of

INGRESS = "10.1.2.3"


def _sign_in(client: Any, username: str, password: str = DEFAULT_PASSWORD, **extra: Any) -> Any:
    return client.post("/login", data={"username": username, "password": password, **extra})


def _behind_ingress(app: Flask, client_address: str) -> Any:
    """A test client whose every request comes through the ingress on behalf of `client_address`."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = INGRESS
    client.environ_base["HTTP_X_FORWARDED_FOR"] = client_address
    return client


def _from(app: Flask, address: str) -> Any:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


# ---------------------------------------------------------------- the real client address


def test_trusted_proxy_hops_come_from_the_environment() -> None:
    assert Config.from_env({}).INVENTORY_TRUSTED_PROXY_HOPS == 0
    assert Config.from_env({"INVENTORY_TRUSTED_PROXY_HOPS": "1"}).INVENTORY_TRUSTED_PROXY_HOPS == 1
    for bad in ("-1", "one", "1.5", "²"):
        with pytest.raises(ConfigError, match="INVENTORY_TRUSTED_PROXY_HOPS"):
            Config.from_env({"INVENTORY_TRUSTED_PROXY_HOPS": bad})


def test_an_attacker_behind_the_ingress_locks_out_only_themselves(make_app: Any, factory: Any) -> None:
    factory.user(role="clerk", username="lin")
    app = make_app(INVENTORY_TRUSTED_PROXY_HOPS=1)
    attacker = _behind_ingress(app, "203.0.113.7")
    for n in range(20):
        assert _sign_in(attacker, f"made-up-{n}", "guess").status_code == 401
    assert _sign_in(attacker, "lin").status_code == 429
    with app.app_context():
        assert {row.client for row in db.session.query(SignInFailure)} == {"203.0.113.7"}
    assert _sign_in(_behind_ingress(app, "198.51.100.2"), "lin").status_code == 303


def test_the_last_trusted_hop_decides_and_spoofed_hops_before_it_do_not(make_app: Any, factory: Any) -> None:
    factory.user(role="clerk", username="yang")
    app = make_app(INVENTORY_TRUSTED_PROXY_HOPS=1)
    for n in range(20):
        # The client prepends made-up addresses; the ingress appends the one it saw.
        _sign_in(_behind_ingress(app, f"192.0.2.{n}, 203.0.113.9"), f"nobody-{n}", "guess")
    assert _sign_in(_behind_ingress(app, "192.0.2.99, 203.0.113.9"), "yang").status_code == 429


def test_without_trusted_hops_a_forwarded_header_is_ignored(app: Flask, factory: Any) -> None:
    factory.user(role="clerk", username="xu")
    for n in range(20):
        _sign_in(_behind_ingress(app, f"198.51.100.{n}"), f"nobody-{n}", "guess")
    assert _sign_in(_behind_ingress(app, "198.51.100.200"), "xu").status_code == 429
    assert _sign_in(_from(app, "10.9.9.9"), "xu").status_code == 303


def test_anonymous_api_rate_limits_key_on_the_real_client(make_app: Any) -> None:
    app = make_app(INVENTORY_TRUSTED_PROXY_HOPS=1, INVENTORY_API_READ_LIMIT="2/minute")
    noisy, quiet = _behind_ingress(app, "203.0.113.50"), _behind_ingress(app, "203.0.113.51")
    assert [noisy.get("/api/v1/warehouses").status_code for _ in range(3)] == [401, 401, 429]
    assert quiet.get("/api/v1/warehouses").status_code == 401


# ---------------------------------------------------------------- the per-account delay


def test_the_account_delay_grows_and_is_capped() -> None:
    delays = [signins.account_delay(n).total_seconds() for n in (0, 9, 10, 11, 12, 15, 40)]
    assert delays == [0, 0, 2, 4, 8, 60, 60]


def _failures_from_many_clients(app: Flask, username: str, clients: int) -> None:
    with app.app_context():
        for n in range(clients):
            signins.record_failure(username=username, client=f"198.18.0.{n}")


def test_many_clients_failing_for_one_account_delay_them_but_never_its_real_user(app: Flask, factory: Any) -> None:
    factory.user(role="clerk", username="gao")
    _failures_from_many_clients(app, "gao", 9)
    assert _sign_in(_from(app, "198.18.0.0"), "gao", "guess").status_code == 401  # below the free failures
    _failures_from_many_clients(app, "gao", 3)  # 13 now: a 16 s wait
    delayed = _sign_in(_from(app, "198.18.0.0"), "gao", "guess")
    assert delayed.status_code == 429
    assert "该用户登录失败次数过多" in text_of(delayed)
    with app.app_context():
        assert db.session.query(SignInFailure).count() == 13  # a refused attempt is not evaluated
    assert _sign_in(_from(app, "172.20.0.5"), "gao").status_code == 303


def test_a_delayed_client_may_try_again_once_its_wait_has_passed(app: Flask, factory: Any) -> None:
    factory.user(role="clerk", username="tang")
    _failures_from_many_clients(app, "tang", 10)
    client = _from(app, "198.18.0.0")
    assert _sign_in(client, "tang").status_code == 429
    with app.app_context():
        db.session.execute(update(SignInFailure).values(created_at=utcnow() - timedelta(seconds=3)))
        db.session.commit()
    assert _sign_in(client, "tang").status_code == 303


def test_a_failed_sign_in_never_stores_the_typed_username(make_app: Any, factory: Any) -> None:
    factory.user(role="clerk", username="he")
    typed = "Hunter2-Password-Typed-In-The-Wrong-Box"
    app = make_app(SECRET_KEY="one-secret-" + "k" * 32)
    client = _from(app, "192.0.2.9")
    for _ in range(signins.PAIR_LIMIT):
        assert _sign_in(client, typed, "guess").status_code == 401
    with app.app_context():
        rows = db.session.query(SignInFailure).all()
        stored = [value for row in rows for value in (row.username_digest, row.client)]
    assert len(rows) == signins.PAIR_LIMIT and len({row.username_digest for row in rows}) == 1
    assert not any(typed.lower() in value.lower() for value in stored)
    assert not any("hunter2" in value.lower() for value in stored)
    # The same name, however it is typed, is still one throttled pair; another name is not.
    assert _sign_in(client, f"  {typed.upper()} ", "guess").status_code == 429
    assert _sign_in(client, "he").status_code == 303
    # Keyed: another SECRET_KEY gives another digest, so a digest cannot be checked against guesses.
    other = make_app(SECRET_KEY="another-secret-" + "k" * 32)
    with other.app_context():
        signins.record_failure(username=typed, client="192.0.2.10")
        digest = db.session.query(SignInFailure).filter_by(client="192.0.2.10").one().username_digest
    assert digest != rows[0].username_digest


# ---------------------------------------------------------------- cookies that can be revoked


def _signed_in_client(app: Flask, username: str, **extra: Any) -> Any:
    client = app.test_client()
    assert _sign_in(client, username, **extra).status_code == 303
    return client


def _copy_of(app: Flask, client: Any, *names: str) -> Any:
    """Another browser holding copies of `client`'s cookies (a stolen or copied cookie)."""
    thief = app.test_client()
    for name in names:
        cookie = client.get_cookie(name)
        thief.set_cookie(name, cookie.value)
    return thief


def test_a_copied_session_cookie_stops_working_at_sign_out(app: Flask, factory: Any) -> None:
    factory.user(role="clerk", username="he")
    victim = _signed_in_client(app, "he")
    thief = _copy_of(app, victim, "session")
    assert thief.get("/").status_code == 200
    victim.post("/logout")
    assert thief.get("/").status_code == 302


def test_sign_out_signs_out_every_device(app: Flask, factory: Any) -> None:
    factory.user(role="clerk", username="luo")
    phone, desk = _signed_in_client(app, "luo"), _signed_in_client(app, "luo")
    phone.post("/logout")
    assert desk.get("/").status_code == 302


def test_a_copied_remember_me_cookie_stops_working_at_sign_out(app: Flask, factory: Any) -> None:
    factory.user(role="clerk", username="zheng")
    victim = _signed_in_client(app, "zheng", remember="y")
    thief = _copy_of(app, victim, "remember_token")
    assert thief.get("/").status_code == 200
    victim.post("/logout")
    assert thief.get("/").status_code == 302


@pytest.mark.parametrize(
    "change",
    [
        lambda: users.set_password(username="feng", password="a-new-password-1"),
        lambda: admin.set_active(username="feng", active=False),
        lambda: admin.set_role(username="feng", role="viewer"),
    ],
    ids=["password-reset", "deactivation", "role-change"],
)
def test_credential_changes_end_existing_sessions(app: Flask, factory: Any, change: Any) -> None:
    factory.user(role="clerk", username="feng")
    client = _signed_in_client(app, "feng", remember="y")
    with app.app_context():
        change()
    assert client.get("/").status_code == 302


def test_saving_an_unchanged_role_keeps_sessions(app: Flask, factory: Any) -> None:
    factory.user(role="clerk", username="cao")
    client = _signed_in_client(app, "cao")
    with app.app_context():
        admin.set_role(username="cao", role="clerk")
    assert client.get("/").status_code == 200


def test_remember_me_lasts_fourteen_days_by_default_and_is_configurable(make_app: Any, factory: Any) -> None:
    assert timedelta(days=14) == Config.from_env({}).REMEMBER_COOKIE_DURATION
    assert timedelta(days=3) == Config.from_env({"INVENTORY_REMEMBER_DAYS": "3"}).REMEMBER_COOKIE_DURATION
    for bad in ("0", "366", "x"):
        with pytest.raises(ConfigError, match="INVENTORY_REMEMBER_DAYS"):
            Config.from_env({"INVENTORY_REMEMBER_DAYS": bad})
    factory.user(role="clerk", username="peng")
    client = make_app(REMEMBER_COOKIE_DURATION=timedelta(days=3)).test_client()
    _sign_in(client, "peng", remember="y")
    expires = client.get_cookie("remember_token").expires
    assert timedelta(days=2, hours=23) < expires - utcnow() <= timedelta(days=3)


def _clock(monkeypatch: pytest.MonkeyPatch, shift: timedelta) -> None:
    """The sign-in code's clock, moved by `shift`."""
    moved = utcnow() + shift
    monkeypatch.setattr(auth, "utcnow", lambda: moved)


def test_every_sign_in_gets_its_own_remember_me_value(
    app: Flask, factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory.user(role="clerk", username="jiang")
    phone = _signed_in_client(app, "jiang", remember="y")
    _clock(monkeypatch, timedelta(seconds=5))
    desk = _signed_in_client(app, "jiang", remember="y")
    assert phone.get_cookie("remember_token").value != desk.get_cookie("remember_token").value
    assert phone.get("/").status_code == 200 and desk.get("/").status_code == 200


def test_a_replayed_remember_me_cookie_expires_on_the_server_too(
    make_app: Any, factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory.user(role="clerk", username="lu")
    app = make_app(REMEMBER_COOKIE_DURATION=timedelta(days=3))
    victim = _signed_in_client(app, "lu", remember="y")
    thief = _copy_of(app, victim, "remember_token")
    _clock(monkeypatch, timedelta(days=2, hours=23))
    assert thief.get("/").status_code == 200
    _clock(monkeypatch, timedelta(days=3, minutes=1))
    assert _copy_of(app, victim, "remember_token").get("/").status_code == 302
    assert victim.get("/").status_code == 302  # the sign-in itself is over as well


# ---------------------------------------------------------------- a fresh session at sign-in


def test_sign_in_clears_the_session_and_rotates_the_csrf_secret(make_app: Any, factory: Any) -> None:
    factory.user(role="clerk", username="guo")
    client = make_app(WTF_CSRF_ENABLED=True).test_client()
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    with client.session_transaction() as session:
        session["planted"] = "by someone who had the cookie before"
        secret_before = session["csrf_token"]
    client.post("/login/language", data={"locale": "en", "csrf_token": token})
    assert _sign_in(client, "guo", csrf_token=token).status_code == 303
    with client.session_transaction() as session:
        assert "planted" not in session and session.get("csrf_token") != secret_before
        assert session["locale"] == "en"
    refused = client.post("/logout", data={"csrf_token": token})
    assert refused.status_code == 400
    assert client.get("/").status_code == 200


# ---------------------------------------------------------------- timing and logs


def test_unknown_and_inactive_users_cost_one_password_hash_check_like_real_ones(
    app: Flask, factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory.user(role="clerk", username="qian")
    factory.user(role="clerk", username="sleeping")
    with app.app_context():
        admin.set_active(username="sleeping", active=False)
    checks: list[str] = []
    real_check = users.check_password_hash

    def counting_check(pwhash: str, password: str) -> bool:
        checks.append(pwhash.split("$")[0])
        return real_check(pwhash, password)

    monkeypatch.setattr(users, "check_password_hash", counting_check)
    client = app.test_client()
    for name in ("qian", "no-such-user", "sleeping"):
        assert _sign_in(client, name, "wrong-password").status_code == 401
    assert checks == ["scrypt:32768:8:1"] * 3


def test_a_failed_sign_in_logs_the_username_only_when_it_names_a_user(
    app: Flask, factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    factory.user(role="clerk", username="dong")
    client = app.test_client()
    with caplog.at_level(logging.INFO, logger="app.auth"):
        _sign_in(client, "Tr0ub4dor&3-typed-in-the-wrong-box", "x")
        _sign_in(client, "dong", "wrong-password")
    failed = [r for r in caplog.records if r.getMessage() == "sign-in failed"]
    assert [getattr(r, "username", None) for r in failed] == [None, "dong"]
    assert all("Tr0ub4dor" not in str(r.__dict__) for r in caplog.records)


# ---------------------------------------------------------------- the development key


@pytest.mark.parametrize("secret", ["", "a-real-secret-" + "k" * 32], ids=["development-key", "secret-key-set"])
def test_the_development_key_is_served_to_loopback_clients_only(database_url: str, secret: str) -> None:
    from app import create_app

    env = {"DATABASE_URL": database_url, "SECRET_KEY": secret, "INVENTORY_TRUSTED_PROXY_HOPS": "1"}
    app = create_app(Config.from_env(env))
    for address in ("127.0.0.1", "::1"):
        assert _from(app, address).get("/login").status_code == 200
    for client in (_from(app, "192.168.1.20"), _behind_ingress(app, "203.0.113.4")):
        response = client.get("/login")
        if secret:
            assert response.status_code == 200
        else:
            assert response.status_code == 503
            assert "public development key" in response.get_data(as_text=True)
