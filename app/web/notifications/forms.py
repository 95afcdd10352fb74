"""Forms of the notification admin pages."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectChoice, SelectField, SelectMultipleField
from wtforms.widgets import CheckboxInput, ListWidget

from app.web.common import optional_text, required_text


class WarehouseChoices(SelectMultipleField):
    """One checkbox per active warehouse."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class CreateTargetForm(FlaskForm):
    name = required_text(_l("Name"), 100)
    kind = SelectField(
        _l("Kind"),
        choices=[
            SelectChoice("wecom", _l("WeCom group robot")),
            SelectChoice("webhook", _l("Webhook (JSON, HMAC-SHA256)")),
        ],
    )
    url = optional_text(_l("URL"), 500, render_kw={"autocomplete": "off", "inputmode": "url"})
    secret = optional_text(_l("Signing secret"), 200, render_kw={"autocomplete": "off"})
    warehouses = WarehouseChoices(_l("Warehouses"), choices=[])


def warehouse_choices(codes: list[str]) -> list[SelectChoice]:
    return [SelectChoice(code, code) for code in codes]


class SubscriptionsForm(FlaskForm):
    warehouses = WarehouseChoices(_l("Warehouses"), choices=[])


class ConfirmForm(FlaskForm):
    """A button that changes something: only the CSRF token travels."""
