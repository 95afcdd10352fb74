"""User and API token forms."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, PasswordField, SelectChoice, SelectField
from wtforms.validators import DataRequired, EqualTo, Length, NumberRange, Optional, Regexp

from app.models import ROLES, TOKEN_SCOPES
from app.services.users import MIN_PASSWORD_LENGTH
from app.web.common import optional_text, required_text

_TOO_SHORT = _l("At least %(n)s characters.", n=MIN_PASSWORD_LENGTH)


def _password(label: object) -> PasswordField:
    return PasswordField(
        label,
        validators=[
            DataRequired(message=_l("This field is required.")),
            Length(min=MIN_PASSWORD_LENGTH, max=256, message=_TOO_SHORT),
        ],
        render_kw={"autocomplete": "new-password"},
    )


class CreateUserForm(FlaskForm):
    username = required_text(_l("Username"), 64, render_kw={"autocomplete": "off", "autocapitalize": "none"})
    display_name = optional_text(_l("Display name"), 100)
    role = SelectField(_l("Role"), choices=[SelectChoice(r, r) for r in ROLES], default="clerk")
    password = _password(_l("Password"))

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.username.validators = [
            *self.username.validators,
            Regexp(r"^[^\s/\\]+$", message=_l("No spaces, / or \\, please: it names a page.")),
        ]


class RoleForm(FlaskForm):
    role = SelectField(_l("Role"), choices=[SelectChoice(r, r) for r in ROLES])


class ActiveForm(FlaskForm):
    active = HiddenField()


class ResetPasswordForm(FlaskForm):
    password = _password(_l("New password"))
    confirm = PasswordField(
        _l("Repeat the new password"),
        validators=[EqualTo("password", message=_l("The passwords do not match."))],
        render_kw={"autocomplete": "new-password"},
    )


class CreateTokenForm(FlaskForm):
    username = SelectField(_l("User"), choices=[])
    name = required_text(_l("What the token is for"), 100)
    scope = SelectField(_l("Scope"), choices=[SelectChoice(s, s) for s in TOKEN_SCOPES], default="read")
    expires_days = IntegerField(
        _l("Expires after (days, blank for never)"),
        validators=[Optional(), NumberRange(min=1, max=3650, message=_l("Between 1 and 3650 days."))],
    )


class RevokeTokenForm(FlaskForm):
    pass


class TokenNameForm(FlaskForm):
    name = required_text(_l("What the token is for"), 100)
