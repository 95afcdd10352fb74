"""Bearer tokens: who may call what, and that nothing else (a browser session) gets in."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, select, update

from app.api import auth
from app.extensions import db
from app.models import ApiToken, Movement
from app.models.types import utcnow
from app.services import admin, users


def _issue(client, stocked, headers):
    body = {"sku": stocked.item.sku, "location": stocked.location.code, "quantity": "1"}
    return client.post("/api/v1/stock/issue", json=body, headers=headers)


def _movement_count(app) -> int:
    with app.app_context():
        return len(db.session.scalars(select(Movement.id)).all())


def test_missing_token_is_401_with_bearer_challenge(client):
    response = client.get("/api/v1/items")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.content_type == "application/problem+json"
    problem = response.get_json()
    assert problem["type"].endswith("/unauthorized")
    assert problem["status"] == 401
    assert problem["title"] and problem["detail"]


@pytest.mark.parametrize("header", ["Bearer inv_not-a-real-token", "Bearer not-ours", "Basic dXNlcjpwYXNz", "Bearer"])
def test_unknown_or_malformed_credentials_are_401(client, header):
    response = client.get("/api/v1/items", headers={"Authorization": header})
    assert response.status_code == 401
    assert "Bearer" in response.headers["WWW-Authenticate"]


def test_revoked_token_is_401(app, client, factory):
    user = factory.user(role="viewer")
    with app.app_context():
        token, text = users.create_token(username=user.username, scope="read")
        users.revoke_token(token_id=token.id)
    response = client.get("/api/v1/items", headers={"Authorization": f"Bearer {text}"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_expired_token_is_401(app, client, factory):
    user = factory.user(role="viewer")
    with app.app_context():
        _, text = users.create_token(username=user.username, scope="read", expires_in=timedelta(seconds=-1))
    assert client.get("/api/v1/items", headers={"Authorization": f"Bearer {text}"}).status_code == 401


def test_read_token_cannot_move_stock(app, client, bearer, stocked):
    response = _issue(client, stocked, bearer("clerk", scope="read"))
    assert response.status_code == 403
    assert response.get_json()["type"].endswith("/forbidden")
    assert "write" in response.get_json()["detail"]
    assert _movement_count(app) == 1  # only the opening receipt


def test_viewer_can_read_but_not_issue(app, client, bearer, stocked):
    headers = bearer("viewer")
    assert client.get(f"/api/v1/items/{stocked.item.sku}", headers=headers).status_code == 200
    response = _issue(client, stocked, headers)
    assert response.status_code == 403
    assert "clerk" in response.get_json()["detail"]
    assert _movement_count(app) == 1


def test_clerk_cannot_adjust_but_manager_can(client, bearer, stocked):
    body = {"sku": stocked.item.sku, "location": stocked.location.code, "counted": "4"}
    assert client.post("/api/v1/stock/adjust", json=body, headers=bearer("clerk")).status_code == 403
    response = client.post("/api/v1/stock/adjust", json=body, headers=bearer("manager"))
    assert response.status_code == 201
    assert response.get_json()["balance"] == "4"


def test_clerk_cannot_create_items(client, bearer):
    response = client.post("/api/v1/items", json={"sku": "NEW-1", "name": "新物料"}, headers=bearer("clerk"))
    assert response.status_code == 403


def test_browser_session_does_not_authenticate_the_api(app, client, login_as, stocked):
    login_as("admin")
    response = _issue(client, stocked, {})
    assert response.status_code == 401
    assert _movement_count(app) == 1


def test_the_api_neither_reads_nor_writes_the_session_cookie(client, login_as, bearer, stocked):
    login_as("admin")
    response = _issue(client, stocked, bearer("clerk"))
    assert response.status_code == 201
    assert "Set-Cookie" not in response.headers
    # The signed-in page session is untouched by the API call.
    page = client.get("/items")
    assert page.status_code == 200 and stocked.item.sku in page.get_data(as_text=True)


def test_api_posts_need_no_csrf_token(make_app, factory, stocked):
    strict = make_app(WTF_CSRF_ENABLED=True)
    headers = {"Authorization": f"Bearer {factory.token(factory.user(role='clerk'))}"}
    response = _issue(strict.test_client(), stocked, headers)
    assert response.status_code == 201


def test_use_records_last_used_at(app, client, factory):
    user = factory.user(role="viewer")
    with app.app_context():
        token, text = users.create_token(username=user.username, scope="read")
    assert client.get("/api/v1/warehouses", headers={"Authorization": f"Bearer {text}"}).status_code == 200
    with app.app_context():
        assert db.session.get(ApiToken, token.id).last_used_at is not None


# ---------------------------------------------------------------- the token cache


def _token_queries(app, call) -> int:
    """How many statements `call()` sent that read the api_tokens table."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return sum(1 for s in seen if "FROM api_tokens" in s)


def _revoke_behind_the_app(app, token_id: int) -> None:
    """Revoke as another process would: straight in the database, no signal to this one."""
    with app.app_context():
        db.session.execute(update(ApiToken).where(ApiToken.id == token_id).values(revoked_at=utcnow()))
        db.session.commit()


def _reader(make_app, factory, cache_seconds: float):
    """An app with that token cache, and a viewer's read token: (app, token, client, headers)."""
    app = make_app(INVENTORY_API_TOKEN_CACHE_SECONDS=cache_seconds)
    user = factory.user(role="viewer")
    with app.app_context():
        token, text = users.create_token(username=user.username, scope="read")
    return app, token, app.test_client(), {"Authorization": f"Bearer {text}"}


def test_a_checked_token_is_not_looked_up_again_within_the_cache_time(make_app, factory):
    cached, token, client, headers = _reader(make_app, factory, 60)
    assert _token_queries(cached, lambda: client.get("/api/v1/warehouses", headers=headers)) == 1
    assert _token_queries(cached, lambda: client.get("/api/v1/warehouses", headers=headers)) == 0
    # Revoked by another process: this worker trusts its check until the cache time runs out
    # (the documented trade-off) ...
    _revoke_behind_the_app(cached, token.id)
    assert client.get("/api/v1/warehouses", headers=headers).status_code == 200
    # ... while a revocation through the service in this process applies at once.
    with cached.app_context():
        users.revoke_token(token_id=token.id)
    assert client.get("/api/v1/warehouses", headers=headers).status_code == 401


def test_without_a_cache_every_request_checks_the_token(make_app, factory):
    uncached, token, client, headers = _reader(make_app, factory, 0)
    assert _token_queries(uncached, lambda: client.get("/api/v1/warehouses", headers=headers)) == 1
    assert _token_queries(uncached, lambda: client.get("/api/v1/warehouses", headers=headers)) == 1
    _revoke_behind_the_app(uncached, token.id)
    assert client.get("/api/v1/warehouses", headers=headers).status_code == 401


def test_role_change_and_deactivation_reach_a_cached_token_at_once(make_app, factory, stocked):
    cached = make_app(INVENTORY_API_TOKEN_CACHE_SECONDS=60)
    factory.user(role="admin")  # so that the manager is not the last admin standing
    manager = factory.user(role="manager")
    with cached.app_context():
        _, text = users.create_token(username=manager.username, scope="write")
    client, headers = cached.test_client(), {"Authorization": f"Bearer {text}"}
    adjust = {"sku": stocked.item.sku, "location": stocked.location.code, "counted": "9"}
    assert client.post("/api/v1/stock/adjust", json=adjust, headers=headers).status_code == 201
    with cached.app_context():
        admin.set_role(username=manager.username, role="clerk")
    response = client.post("/api/v1/stock/adjust", json=adjust, headers=headers)
    assert response.status_code == 403
    assert "manager" in response.get_json()["detail"]
    assert _issue(client, stocked, headers).status_code == 201
    with cached.app_context():
        admin.set_active(username=manager.username, active=False)
    assert _issue(client, stocked, headers).status_code == 401


def test_a_cached_token_still_expires_on_time(make_app, factory, monkeypatch):
    cached = make_app(INVENTORY_API_TOKEN_CACHE_SECONDS=3600)
    user = factory.user(role="viewer")
    with cached.app_context():
        _, text = users.create_token(username=user.username, scope="read", expires_in=timedelta(minutes=5))
    client, headers = cached.test_client(), {"Authorization": f"Bearer {text}"}
    assert client.get("/api/v1/warehouses", headers=headers).status_code == 200
    later = utcnow() + timedelta(minutes=6)
    monkeypatch.setattr(auth, "utcnow", lambda: later)
    assert client.get("/api/v1/warehouses", headers=headers).status_code == 401


def test_last_used_is_written_by_the_service_at_most_once_a_minute(app, client, factory, monkeypatch):
    user = factory.user(role="viewer")
    with app.app_context():
        _token, text = users.create_token(username=user.username, scope="read")
    writes = []
    monkeypatch.setattr(users, "_write_last_used", lambda **kw: writes.append(kw))
    for _ in range(3):
        assert client.get("/api/v1/warehouses", headers={"Authorization": f"Bearer {text}"}).status_code == 200
    assert writes == [{"token_hash": users.hash_token(text)}]


def test_the_touch_throttle_has_bounded_memory(app, factory):
    user = factory.user(role="viewer")
    with app.app_context():
        tokens = [users.create_token(username=user.username, scope="read")[1] for _ in range(3)]
        for text in tokens:
            assert users.touch_token(token_hash=users.hash_token(text)) is True
        assert users.touch_token(token_hash=users.hash_token(tokens[0])) is False
    assert users._touched.maxsize == users.TOUCH_MEMORY
    assert len(users._touched) <= users.TOUCH_MEMORY
