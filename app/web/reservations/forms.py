"""The reservation form: an order's reference and its lines (SKU, quantity, optionally where and
which lot); blank lines are ignored."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from wtforms import DateField, Form, FormField
from wtforms import FieldList as _FieldList
from wtforms.validators import Optional, ValidationError

from app.services import errors
from app.services.quantities import parse_quantity
from app.services.reservations import ReserveLine
from app.web.common import KeyedForm, QuantityField, optional_text, required_text
from app.web.movements.forms import LOCATION_ATTRS, SKU_ATTRS, _upper_code


class ReserveLineForm(Form):
    sku = optional_text(_l("SKU"), 64, render_kw=SKU_ATTRS)
    quantity = QuantityField(_l("Quantity"), filters=[lambda v: (v or "").strip()], render_kw={"inputmode": "decimal"})
    location = optional_text(_l("Location (optional)"), 64, render_kw=LOCATION_ATTRS)
    lot = optional_text(_l("Lot (optional)"), 64, render_kw={"autocomplete": "off", "spellcheck": "false"})

    def filled(self) -> bool:
        return bool(self.sku.data or self.quantity.data or self.location.data or self.lot.data)

    def validate_quantity(self, field: QuantityField) -> None:
        if not self.filled():
            return
        if not self.sku.data:
            self.sku.errors = [*self.sku.errors, _l("This field is required.")]
        try:
            field.data = parse_quantity(field.data)
        except errors.InvalidQuantity:
            raise ValidationError(_l("Enter a number greater than zero, with at most 3 decimal places.")) from None
        if self.sku.errors:
            raise ValidationError(_l("Complete or clear this line."))


class ReserveForm(KeyedForm):
    reference = required_text(_l("Order reference"), 100, render_kw={"autocomplete": "off", "spellcheck": "false"})
    # Through the end of that day, in the user's time zone; empty: the configured maximum age.
    expires_at = DateField(
        _l("Held until (optional)"),
        validators=[Optional()],
        render_kw={"autocomplete": "off"},
    )
    lines = _FieldList(FormField(ReserveLineForm), min_entries=5, max_entries=100)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: (line number, id of the field at fault) for every line that could not be reserved.
        self.bad_lines: list[tuple[int, str]] = []

    def filled_lines(self) -> list[tuple[int, Any]]:
        """(line number as the page shows it, the line's form) for every line not left blank."""
        return [(n, e.form) for n, e in enumerate(self.lines, start=1) if e.form.filled()]

    def validate_lines(self, field: Any) -> None:
        if not self.filled_lines():
            raise ValidationError(_l("Fill in at least one line."))
        for entry in field:
            entry.form.location.data = _upper_code(entry.form.location.data) or None

    def to_lines(self) -> list[ReserveLine]:
        return [
            ReserveLine(f.sku.data, f.quantity.data, f.location.data or None, f.lot.data or None)
            for _, f in self.filled_lines()
        ]
