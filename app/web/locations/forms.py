"""Warehouse and location forms."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField

from app.web.common import optional_text, required_text

CODE_ATTRS = {"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}


class WarehouseForm(FlaskForm):
    code = required_text(_l("Warehouse code"), 16, render_kw=CODE_ATTRS)
    name = required_text(_l("Name"), 100)


class LocationForm(FlaskForm):
    warehouse = SelectField(_l("Warehouse"), choices=[])
    code = required_text(_l("Location code (e.g. WH1-A-01-01)"), 64, render_kw=CODE_ATTRS)
    name = optional_text(_l("Name"), 100)


class EditLocationForm(FlaskForm):
    name = optional_text(_l("Name"), 100)


class LocationActiveForm(FlaskForm):
    active = HiddenField()
