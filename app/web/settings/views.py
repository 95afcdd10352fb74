"""The settings page and the one-click language switch in the header."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import SelectChoice, SelectField, StringField
from wtforms.validators import ValidationError

from app.auth.roles import role_required
from app.auth.views import safe_next
from app.services import admin
from app.services.admin import valid_timezone
from app.web.i18n import LOCALES
from app.web.settings import bp

LANGUAGE_NAMES = {"zh_CN": "简体中文", "en": "English"}


class SettingsForm(FlaskForm):
    locale = SelectField(_l("Language"), choices=[SelectChoice(code, LANGUAGE_NAMES[code]) for code in LOCALES])
    timezone = StringField(_l("Time zone"), render_kw={"list": "timezones", "autocomplete": "off"})

    def validate_timezone(self, field: StringField) -> None:
        if not valid_timezone((field.data or "").strip()):
            raise ValidationError(_l("Not a known time zone, e.g. Asia/Shanghai."))


@bp.route("", methods=["GET", "POST"])
@role_required("viewer")
def index() -> Any:
    form = SettingsForm(obj=current_user)
    if form.validate_on_submit():
        admin.set_preferences(
            username=current_user.username, locale=form.locale.data, timezone=form.timezone.data.strip()
        )
        with force_locale(form.locale.data):
            flash(_("Settings saved."), "success")
        return redirect(url_for(".index"), 303)
    return render_template("settings/index.html", form=form), 422 if form.is_submitted() else 200


@bp.post("/language")
@role_required("viewer")
def language() -> Any:
    chosen = request.form.get("locale", "")
    if chosen in LOCALES:
        admin.set_preferences(username=current_user.username, locale=chosen)
    return redirect(safe_next(request.form.get("next")), 303)
