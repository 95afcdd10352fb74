"""Cycle count forms. Counted quantities arrive as one field per line (qty:<line id>) plus a
scanned code, its quantity and (for item counts) where it was found, parsed by the count service."""

from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import Length, Optional

from app.web.common import optional_text, quantity_field

CODE_ATTRS = {"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}


class OpenCountForm(FlaskForm):
    location = optional_text(_l("Location"), 64, render_kw={**CODE_ATTRS, "list": "location-codes"})
    skus = TextAreaField(
        _l("Only these SKUs (one per line; without a location, wherever they are held)"),
        validators=[Optional(), Length(max=20000)],
        render_kw={"rows": 3},
    )
    threshold = quantity_field(_l("Second count when the variance exceeds"), allow_zero=True, default="0")
    note = optional_text(_l("Note"), 500)

    def to_input(self) -> dict[str, object]:
        skus = [s for s in re.split(r"[\s,;]+", self.skus.data or "") if s]
        return dict(location=self.location.data or None, skus=skus, threshold=self.threshold.data, note=self.note.data)


class CountActionForm(FlaskForm):
    """Entering counts, a second count, approval, cancellation: the CSRF token is the form."""
