"""Sign-in and sign-out pages, with the failed-attempt throttle and sign-in logging."""

from __future__ import annotations

import ipaddress
import logging
import math
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import format_time
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from app.auth import sign_in_id
from app.auth.forms import SignInForm
from app.config import DEV_SECRET_KEY, settings
from app.models.types import utcnow
from app.services import signins, users
from app.web.i18n import LOCALES

bp = Blueprint("auth", __name__)
log = logging.getLogger("app.auth")


@bp.before_app_request
def refuse_the_development_key_off_loopback() -> Any:
    """Without SECRET_KEY (INVENTORY_ENV unset) cookies are signed with a key published in this
    repository, so anyone could forge a session. That is fine on 127.0.0.1 (`make run`); a client
    from anywhere else means the app is reachable beyond this machine, and gets nothing."""
    if settings().SECRET_KEY != DEV_SECRET_KEY or current_app.testing:
        return None
    address = request.remote_addr or ""
    try:
        if ipaddress.ip_address(address).is_loopback:
            return None
    except ValueError:
        pass
    log.error("refused: development secret key off loopback", extra={"client": address[:64], "event": "dev_key"})
    return Response(
        "This server signs cookies with the public development key. Set SECRET_KEY (and INVENTORY_ENV=production)"
        " or serve on 127.0.0.1 only.\n",
        status=503,
        mimetype="text/plain",
    )


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
    """The client's address: the TCP peer, or what the configured trusted proxies forwarded
    (ProxyFix in create_app, INVENTORY_TRUSTED_PROXY_HOPS)."""
    return (request.remote_addr or "unknown")[:64]


def _refuse(form: SignInForm, throttle: signins.Throttle, client: str) -> Any:
    log.warning("sign-in throttled", extra={"client": client, "event": "sign_in_throttled", "reason": throttle.reason})
    if throttle.reason == "account":
        seconds = max(1, math.ceil((throttle.until - utcnow()).total_seconds()))
        form.form_errors.append(_("Too many failed sign-ins for this user. Try again in %(n)s s.", n=seconds))
    else:
        form.form_errors.append(
            _("Too many failed sign-ins. Try again after %(time)s.", time=format_time(throttle.until, "HH:mm"))
        )
    return render_template("auth/login.html", form=form), 429


def _start_session(user: Any, remember: bool) -> None:
    """A fresh session for the user: nothing from before sign-in (the CSRF secret included) is
    carried over, except the language the sign-in page was shown in."""
    locale = session.get("locale")
    session.clear()
    if locale:
        session["locale"] = locale
    login_user(user, remember=remember)
    # Flask-Login stored user.get_id(); the sign-in's time joins it, and the remember-me cookie,
    # written from the session after this request, carries the same value.
    session["_user_id"] = sign_in_id(user)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    form = SignInForm(next=request.args.get("next", ""))
    if not form.validate_on_submit():
        return render_template("auth/login.html", form=form), 422 if form.is_submitted() else 200
    username, client = form.username.data.strip(), _client()
    throttle = signins.throttle(username=username, client=client)
    if throttle is not None:
        return _refuse(form, throttle, client)
    user = signins.find_user(username)
    # authenticate() runs even for no user: a dummy hash check keeps the timing the same.
    if not users.authenticate(user, form.password.data) or user is None:
        failures = signins.record_failure(username=username, client=client)
        # The name typed is logged only when it is a real user's: people type passwords there.
        known = {"username": user.username} if user is not None else {}
        log.warning(
            "sign-in failed", extra={**known, "client": client, "event": "sign_in_failed", "failures": failures}
        )
        form.form_errors.append(_("Wrong username or password."))
        return render_template("auth/login.html", form=form), 401
    signins.record_success(user_id=user.id, username=username, client=client)
    _start_session(user, form.remember.data)
    log.info("sign-in succeeded", extra={"username": user.username, "client": client, "event": "sign_in"})
    return redirect(safe_next(form.next.data), 303)


@bp.post("/logout")
def logout() -> Any:
    """Signs the user out on every device: the credential version the cookies carry changes."""
    if current_user.is_authenticated:
        log.info("signed out", extra={"username": current_user.username, "event": "sign_out"})
        users.sign_out_everywhere(user_id=current_user.id)
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
