"""Per-token rate limits: 429 problem documents with Retry-After, and a switch to turn them off."""

from __future__ import annotations

import pytest

from app.api import limiter
from app.config import Config


@pytest.fixture
def tight_app(make_app):
    return make_app(INVENTORY_API_READ_LIMIT="2/minute")


def _headers(factory, role="viewer"):
    return {"Authorization": f"Bearer {factory.token(factory.user(role=role), scope='read')}"}


def test_third_read_in_a_minute_is_429_with_retry_after(tight_app, factory):
    client, headers = tight_app.test_client(), _headers(factory)
    assert [client.get("/api/v1/warehouses", headers=headers).status_code for _ in range(2)] == [200, 200]
    response = client.get("/api/v1/warehouses", headers=headers)
    assert response.status_code == 429
    assert response.content_type == "application/problem+json"
    assert response.get_json()["type"].endswith("/too-many-requests")
    assert 0 < int(response.headers["Retry-After"]) <= 60


def test_limits_are_per_token(tight_app, factory):
    client, first, second = tight_app.test_client(), _headers(factory), _headers(factory)
    for _ in range(2):
        client.get("/api/v1/warehouses", headers=first)
    assert client.get("/api/v1/warehouses", headers=first).status_code == 429
    assert client.get("/api/v1/warehouses", headers=second).status_code == 200


@pytest.fixture
def relaxed_app(make_app):
    """An app built with RATELIMIT_ENABLED=False; the limiter's switch is process-wide (one app per
    process in production), so it is turned back on for the tests that follow."""
    yield make_app(INVENTORY_API_READ_LIMIT="1/minute", RATELIMIT_ENABLED=False)
    limiter.enabled = True


def test_ratelimit_enabled_false_turns_limits_off(relaxed_app, factory):
    client, headers = relaxed_app.test_client(), _headers(factory)
    assert {client.get("/api/v1/warehouses", headers=headers).status_code for _ in range(4)} == {200}


def test_rate_limit_settings_come_from_the_environment():
    config = Config.from_env(
        {
            "RATELIMIT_ENABLED": "false",
            "RATELIMIT_STORAGE_URI": "redis://redis:6379/1",
            "INVENTORY_API_WRITE_LIMIT": "100/second",
        }
    )
    assert (config.RATELIMIT_ENABLED, config.RATELIMIT_STORAGE_URI) == (False, "redis://redis:6379/1")
    assert (config.INVENTORY_API_WRITE_LIMIT, config.INVENTORY_API_READ_LIMIT) == ("100/second", "1200/minute")
    assert Config.from_env({}).RATELIMIT_ENABLED is True
    assert Config.from_env({}).RATELIMIT_STORAGE_URI == "memory://"


def test_rate_limits_are_shared_through_redis_url_unless_a_storage_uri_is_given():
    assert (
        Config.from_env({"REDIS_URL": "redis://127.0.0.1:7000/0"}).RATELIMIT_STORAGE_URI == "redis://127.0.0.1:7000/0"
    )
    explicit = {"REDIS_URL": "redis://127.0.0.1:7000/0", "RATELIMIT_STORAGE_URI": "memcached://127.0.0.1:11211"}
    assert Config.from_env(explicit).RATELIMIT_STORAGE_URI == "memcached://127.0.0.1:11211"
