"""Sign-in and sign-out pages, with the failed-attempt throttle and sign-in logging."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import format_time
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from app.auth.forms import SignInForm
from app.services import signins, users
from app.web.i18n import LOCALES

bp = Blueprint("auth", __name__)
log = logging.getLogger("app.auth")


def safe_next(target: str | None) -> str:
    """Only a path on this site: never another host (an open redirect)."""
    if not target or not target.isprintable():
        # A line break would split the Location header (Werkzeug refuses it with a 500).
        return url_for("dashboard.index")
    parts = urlsplit(target)
    if parts.netloc and parts.netloc == request.host and parts.scheme in {"http", "https"}:
        # Flask-Login passes the full URL of the page the visitor asked for.
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return url_for("dashboard.index")
    return target


def _client() -> str:
    return (request.remote_addr or "unknown")[:64]


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    form = SignInForm(next=request.args.get("next", ""))
    if not form.validate_on_submit():
        return render_template("auth/login.html", form=form), 422 if form.is_submitted() else 200
    username, client = form.username.data.strip(), _client()
    locked = signins.locked_until(username=username, client=client)
    if locked is not None:
        log.warning("sign-in throttled", extra={"username": username, "client": client, "event": "sign_in_throttled"})
        form.form_errors.append(
            _("Too many failed sign-ins. Try again after %(time)s.", time=format_time(locked, "HH:mm"))
        )
        return render_template("auth/login.html", form=form), 429
    user = signins.find_user(username)
    if user is None or not user.active or not users.verify_password(user, form.password.data):
        failures = signins.record_failure(username=username, client=client)
        log.warning(
            "sign-in failed",
            extra={"username": username, "client": client, "event": "sign_in_failed", "failures": failures},
        )
        form.form_errors.append(_("Wrong username or password."))
        return render_template("auth/login.html", form=form), 401
    signins.record_success(user_id=user.id, username=username, client=client)
    login_user(user, remember=form.remember.data)
    log.info("sign-in succeeded", extra={"username": user.username, "client": client, "event": "sign_in"})
    return redirect(safe_next(form.next.data), 303)


@bp.post("/logout")
def logout() -> Any:
    if current_user.is_authenticated:
        log.info("signed out", extra={"username": current_user.username, "event": "sign_out"})
    logout_user()
    flash(_("You have signed out."), "info")
    return redirect(url_for("auth.login"), 303)


@bp.post("/login/language")
def language() -> Any:
    """The language of the sign-in page, before anyone is signed in."""
    chosen = request.form.get("locale", "")
    if chosen in LOCALES:
        session["locale"] = chosen
    return redirect(url_for("auth.login", next=request.form.get("next") or None), 303)
