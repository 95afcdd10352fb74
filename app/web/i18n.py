"""Language, time zone and number formatting for pages: Simplified Chinese and Asia/Shanghai
unless the signed-in user chose otherwise."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, session
from flask_babel import format_datetime, get_locale, get_timezone
from flask_babel import gettext as _
from flask_login import current_user

from app.config import settings
from app.services.admin import valid_timezone

LOCALES = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"
DEFAULT_TIMEZONE = "Asia/Shanghai"
TRANSLATIONS = Path(__file__).resolve().parent.parent.parent / "translations"


def select_locale() -> str:
    if current_user and current_user.is_authenticated and current_user.locale in LOCALES:
        return str(current_user.locale)
    chosen = session.get("locale")
    return chosen if chosen in LOCALES else DEFAULT_LOCALE


def select_timezone() -> str:
    """The user's zone; one stored before it was checked (or that a tz database update dropped)
    falls back to the default rather than failing every page."""
    if current_user and current_user.is_authenticated and valid_timezone(str(current_user.timezone or "")):
        return str(current_user.timezone)
    return DEFAULT_TIMEZONE


def babel_options(app: Flask) -> dict[str, Any]:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LOCALE)
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", DEFAULT_TIMEZONE)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    return {"locale_selector": select_locale, "timezone_selector": select_timezone}


def current_locale() -> str:
    """The user-facing code of the page's language: "zh_CN" or "en".

    Babel expands zh_CN to zh_Hans_CN, which is also the catalogue's directory name.
    """
    return "zh_CN" if get_locale().language == "zh" else "en"


def html_lang() -> str:
    return "zh-CN" if current_locale() == "zh_CN" else "en"


def local_day_bounds(day: date) -> datetime:
    """The aware instant a calendar day starts in the user's time zone."""
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(str(get_timezone())))


def today_start() -> datetime:
    zone = ZoneInfo(str(get_timezone()))
    return datetime.now(zone).replace(hour=0, minute=0, second=0, microsecond=0)


def utc_offset() -> timedelta:
    offset = datetime.now(ZoneInfo(str(get_timezone()))).utcoffset()
    return offset or timedelta(0)


def format_quantity(value: Decimal | int | None) -> str:
    """Quantities without trailing zeros: 12, 2.5, 0.125."""
    if value is None:
        return ""
    number = Decimal(value)
    text = f"{number:,.3f}".rstrip("0").rstrip(".")
    return "0" if text in {"-0", ""} else text


def format_when(value: datetime | None, style: str = "short") -> str:
    if value is None:
        return ""
    if style == "iso":
        return format_datetime(value, "yyyy-MM-dd HH:mm:ss")
    return format_datetime(value, "yyyy-MM-dd HH:mm")


def role_label(role: str) -> str:
    labels = {"viewer": _("Viewer"), "clerk": _("Clerk"), "manager": _("Manager"), "admin": _("Administrator")}
    return labels.get(role, role)


def kind_label(kind: str) -> str:
    labels = {
        "receive": _("Receive"),
        "issue": _("Issue"),
        "transfer": _("Transfer"),
        "adjust": _("Stocktake"),
        "reversal": _("Reversal"),
    }
    return labels.get(kind, kind)


def reason_label(code: str | None) -> str:
    """A ledger line's reason code (REASON_CODES) in the reader's language."""
    labels = {"scan": _("Scanned"), "scan_undo": _("Undone on the scan page")}
    return labels.get(code, code) if code else ""


def init_templates(app: Flask) -> None:
    from app.auth.roles import can

    app.jinja_env.filters["qty"] = format_quantity
    app.jinja_env.filters["when"] = format_when
    app.jinja_env.globals.update(can=can, role_label=role_label, kind_label=kind_label, reason_label=reason_label)

    @app.context_processor
    def _layout() -> dict[str, Any]:
        return {
            "html_lang": html_lang(),
            "app_version": settings().INVENTORY_VERSION,
            "current_locale": current_locale(),
        }
