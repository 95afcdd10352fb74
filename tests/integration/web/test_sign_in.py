"""Sign-in and sign-out: cookies, the failed-attempt throttle, logs, CSRF and redirects."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask

from app.models import SignInFailure
from app.models.types import utcnow
from tests.factories import DEFAULT_PASSWORD
from tests.integration.web.conftest import text_of


def _sign_in(client: Any, username: str, password: str = DEFAULT_PASSWORD, **extra: Any) -> Any:
    return client.post("/login", data={"username": username, "password": password, **extra})


def test_sign_in_with_remember_me_sets_safe_cookies_and_stamps_the_user(app: Flask, client: Any, factory: Any) -> None:
    factory.user(role="clerk", username="li")
    response = _sign_in(client, "li", remember="y")
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    cookies = response.headers.getlist("Set-Cookie")
    remember = next(c for c in cookies if c.startswith("remember_token="))
    session = next(c for c in cookies if c.startswith("session="))
    for cookie in (remember, session):
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/").status_code == 200
    from app.services.admin import get_user

    with app.app_context():
        assert get_user("li").last_login_at is not None


def test_secure_cookie_flag_follows_the_config(make_app: Any, factory: Any) -> None:
    factory.user(role="clerk", username="zhao")
    secure = make_app(SESSION_COOKIE_SECURE=True, REMEMBER_COOKIE_SECURE=True).test_client()
    cookies = _sign_in(secure, "zhao", remember="y").headers.getlist("Set-Cookie")
    assert cookies and all("Secure" in c for c in cookies)


def test_wrong_password_is_refused_and_logged(client: Any, factory: Any, caplog: pytest.LogCaptureFixture) -> None:
    factory.user(role="clerk", username="zhang")
    with caplog.at_level(logging.INFO, logger="app.auth"):
        response = _sign_in(client, "zhang", "wrong-password")
        ok = _sign_in(client, "zhang")
    assert response.status_code == 401
    assert "用户名或密码错误" in text_of(response)
    assert ok.status_code == 303
    events = [(r.getMessage(), getattr(r, "username", None)) for r in caplog.records if r.name == "app.auth"]
    assert events == [("sign-in failed", "zhang"), ("sign-in succeeded", "zhang")]


def test_five_failures_lock_the_username_and_address_pair(app: Flask, client: Any, factory: Any) -> None:
    factory.user(role="clerk", username="chen")
    factory.user(role="clerk", username="zhou")
    for _ in range(5):
        assert _sign_in(client, "chen", "guess").status_code == 401
    locked = _sign_in(client, "chen")  # even the right password
    assert locked.status_code == 429
    assert "登录失败次数过多，请在" in text_of(locked)
    assert _sign_in(client, "zhou").status_code == 303  # another username from this address still works
    other_address = app.test_client()
    other_address.environ_base["REMOTE_ADDR"] = "10.0.0.9"
    assert _sign_in(other_address, "chen").status_code == 303


def test_the_lock_lifts_after_fifteen_minutes(app: Flask, client: Any, factory: Any) -> None:
    factory.user(role="clerk", username="wu")
    for _ in range(5):
        _sign_in(client, "wu", "guess")
    assert _sign_in(client, "wu").status_code == 429
    from app.extensions import db

    with app.app_context():
        db.session.query(SignInFailure).update({"created_at": utcnow() - timedelta(minutes=16)})
        db.session.commit()
    assert _sign_in(client, "wu").status_code == 303


def test_failures_for_unknown_usernames_count_towards_the_address_limit(client: Any, factory: Any) -> None:
    factory.user(role="clerk", username="sun")
    for n in range(20):
        _sign_in(client, f"nobody{n}", "guess")
    assert _sign_in(client, "sun").status_code == 429


def test_inactive_users_cannot_sign_in(app: Flask, client: Any, factory: Any) -> None:
    factory.user(role="clerk", username="ma")
    from app.services import admin

    with app.app_context():
        admin.set_active(username="ma", active=False)
    assert _sign_in(client, "ma").status_code == 401


def test_sign_in_never_redirects_to_another_site(client: Any, factory: Any) -> None:
    factory.user(role="clerk", username="he")
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        response = _sign_in(client, "he", next=target)
        assert response.headers["Location"] == "/", target
        client.post("/logout")


def test_sign_out_ends_the_session(client: Any, login_as: Any) -> None:
    login_as("viewer")
    assert client.get("/").status_code == 200
    response = client.post("/logout", follow_redirects=True)
    assert "您已退出登录" in text_of(response)
    assert client.get("/").status_code == 302


def test_forms_without_a_csrf_token_are_rejected(make_app: Any, factory: Any, stocked: Any) -> None:
    factory.user(role="clerk", username="guo")
    protected = make_app(WTF_CSRF_ENABLED=True).test_client()
    assert protected.post("/login", data={"username": "guo", "password": DEFAULT_PASSWORD}).status_code == 400
    page = protected.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    signed_in = protected.post("/login", data={"username": "guo", "password": DEFAULT_PASSWORD, "csrf_token": token})
    assert signed_in.status_code == 303
    form = {"sku": "SKU-SCREW", "location": "WH1-A-01-01", "quantity": "1", "idempotency_key": "z" * 32}
    refused = protected.post("/movements/receive", data=form)
    assert refused.status_code == 400
    assert "表单已过期" in text_of(refused)
    assert "10 pcs" in text_of(protected.get("/items"))


def test_the_sign_in_page_switches_language_before_sign_in(client: Any) -> None:
    assert "登录" in text_of(client.get("/login"))
    client.post("/login/language", data={"locale": "en"})
    page = client.get("/login")
    assert '<html lang="en">' in page.get_data(as_text=True)
    assert "Sign in" in text_of(page) and "登录" not in text_of(page)
