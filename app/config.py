"""Typed configuration, built explicitly from the environment (never read at import time)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEV_SECRET_KEY = "dev-insecure-secret-key"  # noqa: S105 - only ever used outside production
INSTANCE_DIR = Path(__file__).resolve().parent.parent / "instance"
DEFAULT_DATABASE_URL = f"sqlite:///{INSTANCE_DIR / 'inventory.db'}"


class ConfigError(ValueError):
    """The environment describes a configuration the app refuses to run with."""


def parse_bool(value: str | None, *, default: bool = False) -> bool:
    if value is None or value.strip() == "":
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"not a boolean: {value!r}")


def normalise_database_url(url: str) -> str:
    """MySQL URLs always talk utf8mb4: Chinese names and emoji must round-trip."""
    if url.startswith("mysql") and "charset=" not in url:
        return url + ("&" if "?" in url else "?") + "charset=utf8mb4"
    return url


def read_secret(env: Mapping[str, str], name: str) -> str:
    """`NAME` from the environment, or the content of the file named by `NAME_FILE` (a mounted secret)."""
    path = env.get(f"{name}_FILE", "").strip()
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE: cannot read {path!r} ({exc.strerror})") from exc
    return env.get(name, "").strip()


@dataclass(frozen=True)
class Config:
    SECRET_KEY: str = DEV_SECRET_KEY
    INVENTORY_ENV: str = "development"
    SQLALCHEMY_DATABASE_URI: str = DEFAULT_DATABASE_URL
    SQLALCHEMY_ENGINE_OPTIONS: dict[str, Any] = field(default_factory=dict)
    SQLALCHEMY_RECORD_QUERIES: bool = False
    TESTING: bool = False
    WTF_CSRF_ENABLED: bool = True
    SESSION_COOKIE_SECURE: bool = False
    SESSION_COOKIE_HTTPONLY: bool = True
    SESSION_COOKIE_SAMESITE: str = "Lax"
    REMEMBER_COOKIE_SECURE: bool = False
    REMEMBER_COOKIE_HTTPONLY: bool = True
    REMEMBER_COOKIE_SAMESITE: str = "Lax"
    # The largest request body read, counted while it streams in (so a chunked upload without
    # Content-Length is cut off too): a 20 MB import plus its multipart form. The ingress allows
    # the same (ops/k8s/base/ingress.yaml, Helm ingress.maxBodySize).
    MAX_CONTENT_LENGTH: int = 20 * 1024 * 1024 + 64 * 1024
    # How often a transaction is re-run after a deadlock, lock-wait timeout or "database is locked".
    INVENTORY_TX_RETRIES: int = 5
    INVENTORY_BASE_URL: str = "http://127.0.0.1:5000"
    # Set from the release tag at image build time; shown in the footer, /readyz and a metric.
    INVENTORY_VERSION: str = "dev"
    # API rate limits per token (Flask-Limiter syntax); storage is in-process unless a Redis URI is given.
    RATELIMIT_ENABLED: bool = True
    RATELIMIT_STORAGE_URI: str = "memory://"
    RATELIMIT_HEADERS_ENABLED: bool = True
    INVENTORY_API_READ_LIMIT: str = "1200/minute"
    INVENTORY_API_WRITE_LIMIT: str = "6000/minute"
    # How long a worker trusts a bearer token it has checked before asking the database again. A
    # revocation, deactivation or role change made in the same process applies at once; one made
    # elsewhere (another worker or pod, the CLI) within this many seconds. 0 checks every request.
    INVENTORY_API_TOKEN_CACHE_SECONDS: float = 5.0
    # Bearer token Prometheus sends to /metrics; empty disables the endpoint (404).
    INVENTORY_METRICS_TOKEN: str = ""
    # WeCom group robot URL (its key is a secret): low-stock messages and the alert relay post here.
    INVENTORY_WECOM_WEBHOOK_URL: str = ""
    INVENTORY_LOG_LEVEL: str = "INFO"

    @property
    def is_production(self) -> bool:
        return self.INVENTORY_ENV == "production"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        env = os.environ if environ is None else environ
        inventory_env = env.get("INVENTORY_ENV", "development").strip() or "development"
        if inventory_env not in {"development", "production", "testing"}:
            raise ConfigError(f"INVENTORY_ENV must be development, production or testing, not {inventory_env!r}")
        secret = env.get("SECRET_KEY", "")
        if inventory_env == "production" and (not secret or secret == DEV_SECRET_KEY or len(secret) < 32):
            raise ConfigError("SECRET_KEY must be set to a random value of at least 32 characters in production")
        secure_cookies = parse_bool(env.get("INVENTORY_SECURE_COOKIES"), default=inventory_env == "production")
        return cls(
            SECRET_KEY=secret or DEV_SECRET_KEY,
            INVENTORY_ENV=inventory_env,
            SQLALCHEMY_DATABASE_URI=normalise_database_url(env.get("DATABASE_URL") or DEFAULT_DATABASE_URL),
            SESSION_COOKIE_SECURE=secure_cookies,
            REMEMBER_COOKIE_SECURE=secure_cookies,
            INVENTORY_TX_RETRIES=int(env.get("INVENTORY_TX_RETRIES", "5")),
            INVENTORY_BASE_URL=env.get("INVENTORY_BASE_URL", "http://127.0.0.1:5000").rstrip("/"),
            INVENTORY_VERSION=env.get("INVENTORY_VERSION", "dev"),
            RATELIMIT_ENABLED=parse_bool(env.get("RATELIMIT_ENABLED"), default=True),
            RATELIMIT_STORAGE_URI=env.get("RATELIMIT_STORAGE_URI", "").strip() or "memory://",
            INVENTORY_API_READ_LIMIT=env.get("INVENTORY_API_READ_LIMIT", "").strip() or "1200/minute",
            INVENTORY_API_WRITE_LIMIT=env.get("INVENTORY_API_WRITE_LIMIT", "").strip() or "6000/minute",
            INVENTORY_API_TOKEN_CACHE_SECONDS=float(env.get("INVENTORY_API_TOKEN_CACHE_SECONDS", "").strip() or "5"),
            INVENTORY_METRICS_TOKEN=read_secret(env, "INVENTORY_METRICS_TOKEN"),
            INVENTORY_WECOM_WEBHOOK_URL=read_secret(env, "INVENTORY_WECOM_WEBHOOK_URL"),
            INVENTORY_LOG_LEVEL=env.get("INVENTORY_LOG_LEVEL", "INFO").strip().upper() or "INFO",
        )
