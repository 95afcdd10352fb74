"""Config.from_env parses every value explicitly and refuses unsafe production settings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app import create_app
from app.config import DEFAULT_DATABASE_URL, Config, ConfigError, parse_bool, settings


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


def test_import_background_threshold_is_a_typed_setting():
    assert Config().INVENTORY_IMPORT_BACKGROUND_ROWS == 5000
    assert Config.from_env({"INVENTORY_IMPORT_BACKGROUND_ROWS": "120"}).INVENTORY_IMPORT_BACKGROUND_ROWS == 120


def test_code_reads_settings_through_the_typed_accessor_only():
    """`current_app.config.get("X", default)` repeats a default that Config already declares."""
    root = Path(__file__).resolve().parents[2] / "app"
    untyped = re.compile(r"\bconfig\.get\(|\bconfig\[\"(?!SQLALCHEMY_ENGINE_OPTIONS)")
    offenders = [
        f"{path.relative_to(root.parent)}:{number}"
        for path in root.rglob("*.py")
        if path.name != "config.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if untyped.search(line)
    ]
    assert offenders == []


def test_settings_returns_the_config_the_app_was_built_with():
    config = Config(TESTING=True, SQLALCHEMY_DATABASE_URI="sqlite://", INVENTORY_IMPORT_BACKGROUND_ROWS=7)
    app = create_app(config)
    assert settings(app) is config
    with app.app_context():
        assert settings().INVENTORY_IMPORT_BACKGROUND_ROWS == 7


def test_every_documented_file_variable_is_read(tmp_path):
    root = Path(__file__).resolve().parents[2]
    documented = set()
    for doc in ("README.md", "ops/README.md", "app/relay.py"):
        documented |= set(re.findall(r"\b(INVENTORY_[A-Z_]+)_FILE\b", (root / doc).read_text(encoding="utf-8")))
    assert documented == {"INVENTORY_METRICS_TOKEN", "INVENTORY_WECOM_WEBHOOK_URL"}
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n", encoding="utf-8")
    for name in documented:
        assert getattr(Config.from_env({f"{name}_FILE": str(secret)}), name) == "from-a-file"


@pytest.mark.parametrize(
    ("environ", "traced"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "inventory"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://alloy:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://alloy:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://alloy:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://alloy:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
    ],
)
def test_tracing_is_on_only_when_the_standard_otel_variables_name_an_endpoint(environ, traced):
    assert Config.from_env(environ).TRACING_ENABLED is traced


def test_trusted_proxy_hops_default_to_none_and_come_from_the_environment():
    assert Config.from_env({}).INVENTORY_TRUSTED_PROXY_HOPS == 0
    assert Config.from_env({"INVENTORY_TRUSTED_PROXY_HOPS": "1"}).INVENTORY_TRUSTED_PROXY_HOPS == 1


def test_import_jobs_run_inline_on_sqlite_and_need_a_worker_on_mariadb():
    assert Config.from_env({}).INVENTORY_JOBS_INLINE is True
    mariadb = Config.from_env({"DATABASE_URL": "mysql+pymysql://u:p@db/inventory"})
    assert mariadb.INVENTORY_JOBS_INLINE is False
    forced = {"DATABASE_URL": "mysql+pymysql://u:p@db/inventory", "INVENTORY_JOBS_INLINE": "yes"}
    assert Config.from_env(forced).INVENTORY_JOBS_INLINE is True


def test_stock_outs_are_combined_only_when_told():
    # Off by default: measured with the shipped 4 sync workers, combining halved hot-SKU throughput.
    mariadb = {"DATABASE_URL": "mysql+pymysql://u:p@db/inventory"}
    assert Config.from_env({}).INVENTORY_COMBINE_STOCK_OUTS is False
    assert Config.from_env(mariadb).INVENTORY_COMBINE_STOCK_OUTS is False
    assert Config.from_env(mariadb | {"INVENTORY_COMBINE_STOCK_OUTS": "on"}).INVENTORY_COMBINE_STOCK_OUTS is True
    with pytest.raises(ConfigError):
        Config.from_env(mariadb | {"INVENTORY_COMBINE_STOCK_OUTS": "sometimes"})


def test_import_job_lease_attempts_and_retention_come_from_the_environment():
    config = Config.from_env(
        {
            "INVENTORY_JOBS_LEASE_SECONDS": "30",
            "INVENTORY_JOBS_MAX_ATTEMPTS": "5",
            "INVENTORY_IMPORT_RETENTION_HOURS": "24",
        }
    )
    assert (config.INVENTORY_JOBS_LEASE_SECONDS, config.INVENTORY_JOBS_MAX_ATTEMPTS) == (30, 5)
    assert config.INVENTORY_IMPORT_RETENTION_HOURS == 24
    with pytest.raises(ConfigError, match="INVENTORY_JOBS_LEASE_SECONDS"):
        Config.from_env({"INVENTORY_JOBS_LEASE_SECONDS": "1"})


def test_gs1_separator_is_read_and_must_not_be_gs1_data():
    assert Config().INVENTORY_GS1_SEPARATOR == ""
    assert Config.from_env({"INVENTORY_GS1_SEPARATOR": "~"}).INVENTORY_GS1_SEPARATOR == "~"
    for taken in ("#1", "A", "_", "%"):
        with pytest.raises(ConfigError, match="INVENTORY_GS1_SEPARATOR"):
            Config.from_env({"INVENTORY_GS1_SEPARATOR": taken})


def test_zpl_label_settings_have_defaults_and_bounds():
    config = Config.from_env({})
    assert (config.INVENTORY_ZPL_FONT, config.INVENTORY_ZPL_LABEL_WIDTH, config.INVENTORY_ZPL_LABEL_HEIGHT) == (
        "E:NOTOSANSSC.TTF",
        480,
        320,
    )
    custom = Config.from_env({"INVENTORY_ZPL_FONT": "R:SIMSUN.TTF", "INVENTORY_ZPL_LABEL_WIDTH": "800"})
    assert (custom.INVENTORY_ZPL_FONT, custom.INVENTORY_ZPL_LABEL_WIDTH) == ("R:SIMSUN.TTF", 800)
    with pytest.raises(ConfigError, match="INVENTORY_ZPL_LABEL_HEIGHT"):
        Config.from_env({"INVENTORY_ZPL_LABEL_HEIGHT": "10"})
    with pytest.raises(ConfigError, match="INVENTORY_ZPL_FONT"):
        Config.from_env({"INVENTORY_ZPL_FONT": "E:A.TTF^XZ"})


def test_reservations_expire_after_a_configurable_age():
    assert Config.from_env({}).INVENTORY_RESERVATION_MAX_AGE_DAYS == 30
    assert Config.from_env({"INVENTORY_RESERVATION_MAX_AGE_DAYS": "0"}).INVENTORY_RESERVATION_MAX_AGE_DAYS == 0
    with pytest.raises(ConfigError, match="INVENTORY_RESERVATION_MAX_AGE_DAYS"):
        Config.from_env({"INVENTORY_RESERVATION_MAX_AGE_DAYS": "-1"})


def test_pick_walk_names_zone_aisle_and_level_per_warehouse() -> None:
    assert Config().INVENTORY_PICK_WALK == ""
    walk = Config.from_env({"INVENTORY_PICK_WALK": "WH2=aisle,zone,level; WH3=level"}).INVENTORY_PICK_WALK
    assert walk == "WH2=aisle,zone,level; WH3=level"
    for wrong in ("WH2", "WH2=shelf", "WH2=aisle,aisle", "=zone"):
        with pytest.raises(ConfigError, match="INVENTORY_PICK_WALK"):
            Config.from_env({"INVENTORY_PICK_WALK": wrong})
