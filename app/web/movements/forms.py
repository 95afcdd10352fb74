"""Stock forms. Each carries an idempotency key (KeyedForm) and turns into service arguments."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, Form, FormField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms import FieldList as _FieldList
from wtforms.validators import DataRequired, Length, ValidationError

from app.models import MOVEMENT_KINDS
from app.services import catalog, codes, errors
from app.services.quantities import parse_quantity
from app.web.common import (
    KeyedForm,
    QuantityField,
    domain_message,
    optional_text,
    plain_quantity,
    quantity_field,
    required_text,
)

SKU_ATTRS = {"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}
LOCATION_ATTRS = {"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"}


def _upper_code(value: Any) -> Any:
    """Location codes are stored upper-case (app.services.locations): a clerk typing
    wh1-a-01-01 means WH1-A-01-01."""
    return value.strip().upper() if isinstance(value, str) else value


def location_field(label: Any) -> StringField:
    return StringField(
        label,
        validators=[DataRequired(message=_l("This field is required.")), Length(max=64)],
        filters=[_upper_code],
        render_kw=LOCATION_ATTRS,
    )


class _StockForm(KeyedForm):
    sku = required_text(_l("SKU"), 64, render_kw=SKU_ATTRS)
    reference = optional_text(_l("Reference (order or document number)"), 100)
    note = optional_text(_l("Note"), 500)

    def validate(self, extra_validators: Any = None) -> bool:
        """A supplier's GS1 label scanned into the SKU box names its item by GTIN, and fills an
        empty quantity box with the label's count (AI 30/37)."""
        problem = self._read_label()
        valid: bool = super().validate(extra_validators)
        if problem is not None:
            self.sku.errors = [*self.sku.errors, problem]
        return valid and problem is None

    def _read_label(self) -> str | None:
        try:
            label = codes.resolve_item_label(self.sku.data or "")
        except errors.DomainError as error:
            return domain_message(error)
        if label is None:
            return None
        self.sku.data = label.code
        gs1 = label.gs1
        if gs1 is not None:
            # The label's count (AI 30/37) fills an empty box; its lot (10) and expiry (17), or
            # its serial (21), too for an item tracked that way (untracked items' labels often
            # carry a lot, which is then left out, as before lots were tracked).
            self._fill("quantity", None if gs1.quantity is None else plain_quantity(gs1.quantity))
            tracking = catalog.item_tracking(label.code) if gs1.lot or gs1.serial else None
            if tracking == "lot":
                self._fill("lot", gs1.lot)
                self._fill("expiry", gs1.expiry.isoformat() if gs1.expiry else None)
            if tracking == "serial":
                self._fill("serials", gs1.serial)
        return None

    def _fill(self, name: str, value: str | None) -> None:
        box = self._fields.get(name)
        if box is not None and value is not None and not box.data:
            box.data = value
            box.raw_data = [value]

    def common(self) -> dict[str, Any]:
        """The fields every stock form sends, and the lot, expiry, serials and expired-lot
        override it has and was given (an untracked movement sends none of them)."""
        given = {name: self._fields[name].data for name in TRACKING_FIELDS if name in self._fields}
        return {
            "sku": self.sku.data,
            "reference": self.reference.data or None,
            "note": self.note.data or None,
            "idempotency_key": self.idempotency_key.data,
            **{name: value for name, value in given.items() if value},
        }


TRACKING_FIELDS = ("lot", "expiry", "serials", "allow_expired")


def lot_field() -> StringField:
    return optional_text(_l("Lot"), 64, render_kw={"autocomplete": "off", "spellcheck": "false"})


def expiry_field() -> StringField:
    return optional_text(_l("Expiry date"), 10, render_kw={"type": "date"})


def serials_field() -> TextAreaField:
    return TextAreaField(
        _l("Serial numbers (one per line)"),
        validators=[Length(max=20000)],
        render_kw={"rows": 3, "autocomplete": "off", "spellcheck": "false"},
    )


class ReceiveStockForm(_StockForm):
    location = location_field(_l("Location"))
    quantity = quantity_field(_l("Quantity"))
    lot = lot_field()
    expiry = expiry_field()
    serials = serials_field()

    def to_input(self) -> dict[str, Any]:
        return {**self.common(), "location": self.location.data, "quantity": self.quantity.data}


class IssueStockForm(_StockForm):
    location = location_field(_l("Location"))
    quantity = quantity_field(_l("Quantity"))
    lot = lot_field()
    serials = serials_field()
    # Shown to managers only; the view refuses it from anyone else. The reason is the note.
    allow_expired = BooleanField(_l("Issue from an expired lot (give the reason as the note)"))

    def to_input(self) -> dict[str, Any]:
        return {**self.common(), "location": self.location.data, "quantity": self.quantity.data}


class TransferStockForm(_StockForm):
    from_location = location_field(_l("From location"))
    to_location = location_field(_l("To location"))
    quantity = quantity_field(_l("Quantity"))
    lot = lot_field()
    serials = serials_field()

    def validate_to_location(self, field: StringField) -> None:
        if field.data and field.data == self.from_location.data:
            raise ValidationError(_l("The source and destination locations must differ."))

    def to_input(self) -> dict[str, Any]:
        return {
            **self.common(),
            "from_location": self.from_location.data,
            "to_location": self.to_location.data,
            "quantity": self.quantity.data,
        }


class AdjustStockForm(_StockForm):
    location = location_field(_l("Location"))
    counted = quantity_field(_l("Counted quantity"), allow_zero=True)
    lot = lot_field()
    expiry = expiry_field()

    def to_input(self) -> dict[str, Any]:
        return {**self.common(), "location": self.location.data, "counted": self.counted.data}


class PickLineForm(Form):
    """One line of a pick list; a line left blank is ignored."""

    sku = StringField(_l("SKU"), validators=[Length(max=64)], filters=[lambda v: (v or "").strip()])
    location = StringField(_l("Location"), validators=[Length(max=64)], filters=[lambda v: _upper_code(v or "")])
    # Shown back as typed ("2", not "2.000") when the list comes back with errors.
    quantity = QuantityField(_l("Quantity"), filters=[lambda v: (v or "").strip()], render_kw={"inputmode": "decimal"})

    def validate_quantity(self, field: StringField) -> None:
        if not (self.sku.data or self.location.data or field.data):
            return
        if not self.sku.data:
            self.sku.errors = [*self.sku.errors, _l("This field is required.")]
        if not self.location.data:
            self.location.errors = [*self.location.errors, _l("This field is required.")]
        try:
            field.data = parse_quantity(field.data)
        except errors.InvalidQuantity:
            raise ValidationError(_l("Enter a number greater than zero, with at most 3 decimal places.")) from None
        if self.sku.errors or self.location.errors:
            raise ValidationError(_l("Complete or clear this line."))


class PickListForm(KeyedForm):
    lines = _FieldList(FormField(PickLineForm), min_entries=5, max_entries=100)
    reference = optional_text(_l("Reference (order or document number)"), 100)
    note = optional_text(_l("Note"), 500)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: (line number, id of the field at fault) for every line the stock refused.
        self.bad_lines: list[tuple[int, str]] = []

    def filled_lines(self) -> list[tuple[int, Any]]:
        """(line number as the page shows it, the line's form) for every line not left blank."""
        return [
            (n, e.form)
            for n, e in enumerate(self.lines, start=1)
            if e.form.sku.data or e.form.location.data or e.form.quantity.data
        ]

    def filled(self) -> list[dict[str, Any]]:
        return [
            {"sku": e.form.sku.data, "location": e.form.location.data, "quantity": e.form.quantity.data}
            for e in self.lines
            if e.form.sku.data or e.form.location.data or e.form.quantity.data
        ]

    def validate(self, extra_validators: Any = None) -> bool:
        valid = super().validate(extra_validators)
        if not self.filled():
            self.form_errors.append(_l("Enter at least one line."))
            return False
        return valid

    def to_input(self) -> dict[str, Any]:
        return {
            "lines": self.filled(),
            "reference": self.reference.data or None,
            "note": self.note.data or None,
            "idempotency_key": self.idempotency_key.data,
        }


class ReverseMovementForm(KeyedForm):
    reason = TextAreaField(
        _l("Reason for the reversal"),
        validators=[DataRequired(message=_l("A reason is required.")), Length(max=500)],
        filters=[lambda v: (v or "").strip()],
    )


class LedgerFilterForm(Form):
    """The ledger's filters, read from the query string."""

    sku = StringField(_l("SKU"))
    location = StringField(_l("Location"))
    kind = SelectField(_l("Kind"), choices=[SelectChoice("", "")] + [SelectChoice(k, k) for k in MOVEMENT_KINDS])
    user = StringField(_l("User"))
    reference = StringField(_l("Reference"))
    since = StringField(_l("From date"), render_kw={"type": "date"})
    until = StringField(_l("To date"), render_kw={"type": "date"})
