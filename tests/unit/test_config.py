"""Config.from_env parses every value explicitly and refuses unsafe production settings."""

from __future__ import annotations

import pytest

from app.config import DEFAULT_DATABASE_URL, Config, ConfigError, parse_bool


def test_defaults_are_development_on_sqlite():
    config = Config.from_env({})
    assert config.INVENTORY_ENV == "development" and config.SQLALCHEMY_DATABASE_URI == DEFAULT_DATABASE_URL
    assert config.SQLALCHEMY_DATABASE_URI.endswith("instance/inventory.db")
    assert config.SESSION_COOKIE_SECURE is False and config.INVENTORY_TX_RETRIES == 5


def test_production_refuses_to_start_without_a_real_secret_key():
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        Config.from_env({"INVENTORY_ENV": "production"})
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        Config.from_env({"INVENTORY_ENV": "production", "SECRET_KEY": "short"})


def test_production_with_a_secret_key_gets_secure_cookies():
    config = Config.from_env({"INVENTORY_ENV": "production", "SECRET_KEY": "k" * 40})
    assert config.SESSION_COOKIE_SECURE and config.REMEMBER_COOKIE_SECURE and config.is_production
    assert config.SESSION_COOKIE_HTTPONLY and config.SESSION_COOKIE_SAMESITE == "Lax"


def test_mysql_urls_always_talk_utf8mb4():
    assert Config.from_env({"DATABASE_URL": "mysql+pymysql://u@db/inv"}).SQLALCHEMY_DATABASE_URI == (
        "mysql+pymysql://u@db/inv?charset=utf8mb4"
    )
    assert Config.from_env({"DATABASE_URL": "mysql+pymysql://u@db/inv?ssl=1"}).SQLALCHEMY_DATABASE_URI.endswith(
        "?ssl=1&charset=utf8mb4"
    )


def test_unknown_environment_and_bad_numbers_are_refused():
    with pytest.raises(ConfigError):
        Config.from_env({"INVENTORY_ENV": "prod"})
    with pytest.raises(ValueError):
        Config.from_env({"INVENTORY_TX_RETRIES": "many"})


@pytest.mark.parametrize(("text", "value"), [("1", True), ("yes", True), ("OFF", False), ("false", False), ("", None)])
def test_parse_bool(text, value):
    assert parse_bool(text, default=None) is value  # type: ignore[arg-type]


def test_parse_bool_refuses_nonsense():
    with pytest.raises(ConfigError):
        parse_bool("maybe")


def test_trusted_proxy_hops_default_to_none_and_come_from_the_environment():
    assert Config.from_env({}).INVENTORY_TRUSTED_PROXY_HOPS == 0
    assert Config.from_env({"INVENTORY_TRUSTED_PROXY_HOPS": "1"}).INVENTORY_TRUSTED_PROXY_HOPS == 1
