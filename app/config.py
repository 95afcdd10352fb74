"""Typed configuration, built explicitly from the environment (never read at import time)."""

from __future__ import annotations

import os
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, current_app

DEV_SECRET_KEY = "dev-insecure-secret-key"  # noqa: S105 - only ever used outside production
INSTANCE_DIR = Path(__file__).resolve().parent.parent / "instance"
DEFAULT_DATABASE_URL = f"sqlite:///{INSTANCE_DIR / 'inventory.db'}"
SETTINGS_KEY = "inventory_settings"


class ConfigError(ValueError):
    """The environment describes a configuration the app refuses to run with."""


def otel_traces_exported(env: Mapping[str, str]) -> bool:
    """Whether the standard OTEL_* variables ask for exported traces: an OTLP endpoint is set and
    neither OTEL_SDK_DISABLED nor OTEL_TRACES_EXPORTER=none turns them off."""
    if parse_bool(env.get("OTEL_SDK_DISABLED")) or env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return any(
        env.get(name, "").strip() for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


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


def parse_count(env: Mapping[str, str], name: str, default: int) -> int:
    """A non-negative whole number (ASCII digits only), or ConfigError naming the variable."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise ConfigError(f"{name} must be a whole number of 0 or more, not {raw!r}")
    return int(raw)


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
    # "Remember me" lasts this long, in the browser and on the server (a sign-in older than this is
    # refused even if its cookie is replayed); env INVENTORY_REMEMBER_DAYS.
    REMEMBER_COOKIE_DURATION: timedelta = timedelta(days=14)
    # Reverse proxies in front of the app whose X-Forwarded-For/-Proto are trusted (the ingress: 1).
    # 0 trusts none: the client is the TCP peer. More than there really are lets clients spoof
    # their address past the sign-in throttle and the rate limits.
    INVENTORY_TRUSTED_PROXY_HOPS: int = 0
    # The largest request body read, counted while it streams in (so a chunked upload without
    # Content-Length is cut off too): a 20 MB import plus its multipart form. The ingress allows
    # the same (ops/k8s/base/ingress.yaml, Helm ingress.maxBodySize).
    MAX_CONTENT_LENGTH: int = 20 * 1024 * 1024 + 64 * 1024
    # How often a transaction is re-run after a deadlock, lock-wait timeout or "database is locked".
    INVENTORY_TX_RETRIES: int = 5
    # A reservation made without an expiry time expires (releasing its stock) after this many
    # days, at the daily check; 0: never (issue 18).
    INVENTORY_RESERVATION_MAX_AGE_DAYS: int = 30
    # Pick lists walk a warehouse by zone, then aisle, then level (read from location codes such
    # as WH1-A-01-02); a warehouse walked another way is listed here: "WH2=aisle,zone,level;WH3=…".
    INVENTORY_PICK_WALK: str = ""
    # Concurrent plain stock-outs of one stock level are applied together by whichever request
    # holds its lock, one COMMIT for them all (app/services/combining.py, issue 19). MariaDB/MySQL
    # only: SQLite has one writer anyway, and its stock-outs always take the plain path. Off by
    # default: with the shipped 4 sync workers at most 4 stock-outs wait on a row, batches stay at
    # 1-2, and the extra statements (9 instead of 4) halved hot-SKU throughput on 2 cores.
    INVENTORY_COMBINE_STOCK_OUTS: bool = False
    INVENTORY_BASE_URL: str = "http://127.0.0.1:5000"
    # Set from the release tag at image build time; shown in the footer, /readyz and a metric.
    INVENTORY_VERSION: str = "dev"
    # API rate limits per token (Flask-Limiter syntax); storage is in-process unless RATELIMIT_STORAGE_URI
    # or REDIS_URL names a Redis.
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
    # Imports with more rows than this are written by a background job with a progress page; the
    # rest within the request.
    INVENTORY_IMPORT_BACKGROUND_ROWS: int = 5000
    # Uploaded files (kept in the database for preview and commit) are deleted this many hours
    # after upload, by the job worker and `flask jobs cleanup`.
    INVENTORY_IMPORT_RETENTION_HOURS: int = 72
    # Background imports run in the web process itself (a thread claiming jobs like a worker), so
    # the embedded SQLite default needs nothing else started. Off: `flask jobs run` runs them
    # (the default on MariaDB; the cluster and Kubernetes run that worker).
    INVENTORY_JOBS_INLINE: bool = True
    # A job's lease: its worker renews it every quarter of this; when it lapses, the worker is
    # taken for dead and the job is run again, at most INVENTORY_JOBS_MAX_ATTEMPTS times in all.
    INVENTORY_JOBS_LEASE_SECONDS: int = 60
    INVENTORY_JOBS_MAX_ATTEMPTS: int = 3
    # Spans exported over OTLP (app/observability/tracing.py); set from the standard OTEL_*
    # variables, never from one of ours. Off: log lines still carry trace and span ids.
    TRACING_ENABLED: bool = False
    # Where `flask backup create` writes and `list/verify/restore/prune` look: a directory, or
    # s3://bucket/prefix on S3-compatible storage (credentials from the usual AWS_* variables).
    INVENTORY_BACKUP_TARGET: str = str(INSTANCE_DIR / "backups")
    # Endpoint of S3-compatible storage that is not AWS (MinIO, Ceph, OSS …); empty: AWS itself.
    INVENTORY_BACKUP_S3_ENDPOINT_URL: str = ""

    # What a wedge scanner set up that way types for FNC1 between a GS1 label's fields, instead of
    # the ASCII group separator it sends otherwise (which is always understood). Empty: none.
    # Never a character GS1 data may hold (letters, digits, !"%&'()*+,-./:;<=>?_), e.g. "~" or "|".
    INVENTORY_GS1_SEPARATOR: str = ""
    # ZPL labels (Zebra-compatible printers, 203 dpi: 8 dots a millimetre): the size in dots and the
    # TrueType font downloaded to the printer that prints names (Chinese too), see ops/README.md.
    INVENTORY_ZPL_FONT: str = "E:NOTOSANSSC.TTF"
    INVENTORY_ZPL_LABEL_WIDTH: int = 480
    INVENTORY_ZPL_LABEL_HEIGHT: int = 320

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
        database_url = normalise_database_url(env.get("DATABASE_URL") or DEFAULT_DATABASE_URL)
        secure_cookies = parse_bool(env.get("INVENTORY_SECURE_COOKIES"), default=inventory_env == "production")
        return cls(
            SECRET_KEY=secret or DEV_SECRET_KEY,
            INVENTORY_ENV=inventory_env,
            SQLALCHEMY_DATABASE_URI=database_url,
            SESSION_COOKIE_SECURE=secure_cookies,
            REMEMBER_COOKIE_SECURE=secure_cookies,
            REMEMBER_COOKIE_DURATION=timedelta(days=_remember_days(env)),
            INVENTORY_TRUSTED_PROXY_HOPS=parse_count(env, "INVENTORY_TRUSTED_PROXY_HOPS", 0),
            INVENTORY_TX_RETRIES=int(env.get("INVENTORY_TX_RETRIES", "5")),
            INVENTORY_RESERVATION_MAX_AGE_DAYS=parse_count(env, "INVENTORY_RESERVATION_MAX_AGE_DAYS", 30),
            INVENTORY_PICK_WALK=_pick_walk(env),
            INVENTORY_COMBINE_STOCK_OUTS=parse_bool(env.get("INVENTORY_COMBINE_STOCK_OUTS"), default=False),
            INVENTORY_BASE_URL=env.get("INVENTORY_BASE_URL", "http://127.0.0.1:5000").rstrip("/"),
            INVENTORY_VERSION=env.get("INVENTORY_VERSION", "dev"),
            RATELIMIT_ENABLED=parse_bool(env.get("RATELIMIT_ENABLED"), default=True),
            # Shared limits across workers and pods need a shared store; the cluster's Redis is it.
            RATELIMIT_STORAGE_URI=(
                env.get("RATELIMIT_STORAGE_URI", "").strip() or env.get("REDIS_URL", "").strip() or "memory://"
            ),
            INVENTORY_API_READ_LIMIT=env.get("INVENTORY_API_READ_LIMIT", "").strip() or "1200/minute",
            INVENTORY_API_WRITE_LIMIT=env.get("INVENTORY_API_WRITE_LIMIT", "").strip() or "6000/minute",
            INVENTORY_API_TOKEN_CACHE_SECONDS=float(env.get("INVENTORY_API_TOKEN_CACHE_SECONDS", "").strip() or "5"),
            INVENTORY_METRICS_TOKEN=read_secret(env, "INVENTORY_METRICS_TOKEN"),
            INVENTORY_WECOM_WEBHOOK_URL=read_secret(env, "INVENTORY_WECOM_WEBHOOK_URL"),
            INVENTORY_LOG_LEVEL=env.get("INVENTORY_LOG_LEVEL", "INFO").strip().upper() or "INFO",
            INVENTORY_IMPORT_BACKGROUND_ROWS=int(env.get("INVENTORY_IMPORT_BACKGROUND_ROWS", "").strip() or "5000"),
            INVENTORY_IMPORT_RETENTION_HOURS=parse_count(env, "INVENTORY_IMPORT_RETENTION_HOURS", 72),
            INVENTORY_JOBS_INLINE=parse_bool(
                env.get("INVENTORY_JOBS_INLINE"), default=database_url.startswith("sqlite")
            ),
            INVENTORY_JOBS_LEASE_SECONDS=_lease_seconds(env),
            INVENTORY_JOBS_MAX_ATTEMPTS=max(1, parse_count(env, "INVENTORY_JOBS_MAX_ATTEMPTS", 3)),
            TRACING_ENABLED=otel_traces_exported(env),
            INVENTORY_BACKUP_TARGET=env.get("INVENTORY_BACKUP_TARGET", "").strip() or str(INSTANCE_DIR / "backups"),
            INVENTORY_BACKUP_S3_ENDPOINT_URL=env.get("INVENTORY_BACKUP_S3_ENDPOINT_URL", "").strip(),
            INVENTORY_GS1_SEPARATOR=_gs1_separator(env),
            INVENTORY_ZPL_FONT=_zpl_font(env.get("INVENTORY_ZPL_FONT", "").strip() or cls.INVENTORY_ZPL_FONT),
            INVENTORY_ZPL_LABEL_WIDTH=_dots(env, "INVENTORY_ZPL_LABEL_WIDTH", cls.INVENTORY_ZPL_LABEL_WIDTH),
            INVENTORY_ZPL_LABEL_HEIGHT=_dots(env, "INVENTORY_ZPL_LABEL_HEIGHT", cls.INVENTORY_ZPL_LABEL_HEIGHT),
        )


def _remember_days(env: Mapping[str, str]) -> int:
    days = parse_count(env, "INVENTORY_REMEMBER_DAYS", 14)
    if not 1 <= days <= 365:
        raise ConfigError(f"INVENTORY_REMEMBER_DAYS must be between 1 and 365, not {days}")
    return days


def _lease_seconds(env: Mapping[str, str]) -> int:
    seconds = parse_count(env, "INVENTORY_JOBS_LEASE_SECONDS", 60)
    if seconds < 4:
        raise ConfigError(f"INVENTORY_JOBS_LEASE_SECONDS must be at least 4, not {seconds}")
    return seconds


_WALK = re.compile(r"\s*[A-Za-z0-9_-]{1,16}\s*=\s*(zone|aisle|level)(\s*,\s*(zone|aisle|level)){0,2}\s*")


def _pick_walk(env: Mapping[str, str]) -> str:
    value = env.get("INVENTORY_PICK_WALK", "").strip()
    for entry in filter(None, (e.strip() for e in value.split(";"))):
        parts = [p.strip() for p in entry.partition("=")[2].split(",")]
        if not _WALK.fullmatch(entry) or len(set(parts)) != len(parts):
            raise ConfigError(f"INVENTORY_PICK_WALK entries read WH2=aisle,zone,level, not {entry!r}")
    return value


# GS1's character set 82: what the data of a GS1 element string may hold.
GS1_DATA_CHARACTERS = frozenset(string.ascii_letters + string.digits + "!\"%&'()*+,-./:;<=>?_")


def _gs1_separator(env: Mapping[str, str]) -> str:
    value = env.get("INVENTORY_GS1_SEPARATOR", "").strip()
    if GS1_DATA_CHARACTERS.intersection(value):
        raise ConfigError(f"INVENTORY_GS1_SEPARATOR must not hold a character GS1 data may hold, not {value!r}")
    return value


def _zpl_font(path: str) -> str:
    # Written into ^A@ as a command parameter, where ^, ~ or a comma would break the label.
    if not re.fullmatch(r"[A-Z]:[A-Za-z0-9_.-]{1,64}", path):
        raise ConfigError(f"INVENTORY_ZPL_FONT must be a printer file path such as E:NOTOSANSSC.TTF, not {path!r}")
    return path


def _dots(env: Mapping[str, str], name: str, default: int) -> int:
    dots = parse_count(env, name, default)
    if not 80 <= dots <= 3000:
        raise ConfigError(f"{name} must be between 80 and 3000 dots, not {dots}")
    return dots


def settings(app: Flask | None = None) -> Config:
    """The typed settings `app` (default: the current app) was created with: the one way code reads
    configuration, so each setting and its default are written once, in Config."""
    config: Config = (app or current_app).extensions[SETTINGS_KEY]
    return config
