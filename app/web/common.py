"""What every page area shares: domain errors as form messages in the user's language, the
idempotency key each stock form carries, quantity fields, CSV downloads and query parsing."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import Response, render_template, request, stream_with_context
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import Field, HiddenField, StringField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from app.services import counts, errors, exports
from app.services.gs1 import GS1Data
from app.services.quantities import parse_quantity
from app.web.i18n import local_day_bounds


def domain_message(error: errors.DomainError) -> str:
    """A domain error told in the user's language, with its facts: a declared error's own template
    as the catalogue translates it (quantities as pages show them)."""
    x = error.extras
    if isinstance(error, errors.Declared):
        facts = {name: _plain(v) if isinstance(v, Decimal) else v for name, v in error.facts().items()}
        return _(error.template).format(**facts)
    if isinstance(error, errors.InvalidGS1Code):
        return _gs1_problem(x)
    if isinstance(error, errors.Conflict) and "held_skus" in x:
        # A count of items, not a sum of quantities: pieces and metres do not add up.
        return ngettext(
            "Location %(code)s still holds %(num)s item: move or count it out first.",
            "Location %(code)s still holds %(num)s items: move or count them out first.",
            int(x["held_skus"]),
            code=x.get("location"),
        )
    if isinstance(error, errors.Conflict) and "field" in x:
        return _("This value is already in use.")
    if isinstance(error, errors.InvalidInput):
        return _("Invalid value (%(detail)s).", detail=error.message)
    return _("The request could not be carried out (%(detail)s).", detail=error.message)


def _gs1_problem(x: dict[str, Any]) -> str:
    # The group separator a scanner sends between fields is invisible: shown as its symbol, ␝.
    code = str(x.get("scanned", "")).replace("\x1d", "\u241d")
    if x.get("reason") == "check_digit":
        return _(
            "%(code)s is a GS1 code whose GTIN has a wrong check digit: scan it again or check the label.", code=code
        )
    if x.get("reason") == "date":
        return _("%(code)s is a GS1 code with a date that does not exist (AI %(ai)s).", code=code, ai=x.get("ai"))
    if x.get("reason") == "no_gtin":
        return _("%(code)s is a GS1 code without a GTIN (AI 01 or 02), so it names no item.", code=code)
    return _("%(code)s is not a valid GS1 code (%(detail)s).", code=code, detail=x.get("detail"))


def gs1_fields(data: GS1Data | None) -> dict[str, str | None]:
    """What a scanned GS1 label said, as JSON answers carry it (for the lots and serials to come)."""
    return {
        "gtin": data.gtin if data else None,
        "lot": data.lot if data else None,
        "expiry": data.expiry.isoformat() if data and data.expiry else None,
        "serial": data.serial if data else None,
        "label_quantity": str(data.quantity) if data and data.quantity is not None else None,
    }


def _plain(value: Any) -> str:
    from app.web.i18n import format_quantity

    return format_quantity(Decimal(value)) if value is not None else ""


def attach_error(form: FlaskForm, error: errors.DomainError) -> None:
    """Put the error on the field it is about (by name, or by the value it names), else on the form."""
    error = counts.blinded(error, current_user.role)
    message = domain_message(error)
    field_name = error.extras.get("field")
    named = error.extras.get("location") or error.extras.get("sku")
    target: Field | None = None
    if isinstance(error, errors.Shortage):
        target = form._fields.get("quantity")
    elif field_name and field_name in form._fields:
        target = form._fields[field_name]
    elif named is not None:
        target = next((f for f in form if f.type == "StringField" and f.data == named), None)
    if target is not None:
        target.errors = [*target.errors, message]
    form.form_errors.append(message)


def whole_number(text: str | None, *, maximum: int) -> int | None:
    """`text` as a whole number from 0 to `maximum`, or None. ASCII digits only: str.isdigit()
    also says yes to "²" and "١٢", which int() then refuses."""
    text = (text or "").strip()
    if not text or len(text) > len(str(maximum)) or not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if number <= maximum else None


def new_key() -> str:
    return uuid.uuid4().hex


class KeyedForm(FlaskForm):
    """A form whose every rendering carries a fresh idempotency key: submitting the same rendering
    twice (double click, back and resubmit) replays the first result instead of writing again."""

    idempotency_key = HiddenField(default=new_key, validators=[DataRequired(), Length(max=64)])


class QuantityField(StringField):
    """A decimal typed as text: the form shows what was typed, the code gets an exact Decimal."""

    def _value(self) -> str:
        if self.raw_data:
            return str(self.raw_data[0])
        return "" if self.data is None else plain_quantity(self.data)


def plain_quantity(value: Any) -> str:
    """A quantity as a person types it, as read-only pages show it but without digit grouping:
    44, not 44.000 (what the database hands back)."""
    if not isinstance(value, Decimal):
        return str(value)
    text = format(value.normalize(), "f")
    return "0" if text == "-0" else text


def quantity_field(label: Any, *, allow_zero: bool = False, **kwargs: Any) -> StringField:
    message = (
        _l("Enter a number of zero or more, with at most 3 decimal places.")
        if allow_zero
        else _l("Enter a number greater than zero, with at most 3 decimal places.")
    )

    def check(_form: FlaskForm, field: Field) -> None:
        try:
            field.data = parse_quantity(field.data, allow_zero=allow_zero)
        except errors.InvalidQuantity:
            raise ValidationError(message) from None

    return QuantityField(
        label,
        validators=[DataRequired(message=_l("This field is required.")), check],
        render_kw={"inputmode": "decimal", "autocomplete": "off"},
        **kwargs,
    )


def optional_text(label: Any, limit: int, **kwargs: Any) -> StringField:
    return StringField(label, validators=[Optional(), Length(max=limit)], filters=[_strip], **kwargs)


def required_text(label: Any, limit: int, **kwargs: Any) -> StringField:
    return StringField(
        label,
        validators=[DataRequired(message=_l("This field is required.")), Length(max=limit)],
        filters=[_strip],
        **kwargs,
    )


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def arg_date(name: str) -> date | None:
    raw = request.args.get(name, "").strip()
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def day_range(since: date | None, until: date | None) -> tuple[datetime | None, datetime | None]:
    """Aware bounds for an inclusive range of calendar days in the user's time zone."""
    start = local_day_bounds(since) if since else None
    end = local_day_bounds(until + timedelta(days=1)) if until else None
    return start, end


def csv_response(filename: str, header: list[str], rows: Iterable[list[Any]]) -> Response:
    """A streamed CSV download (BOM for Excel, formula cells neutralised: app.services.exports)."""
    response = Response(stream_with_context(exports.csv_chunks(header, rows)), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def export_response(name: str, header: list[str], rows: Iterable[list[Any]]) -> Response:
    """CSV, or XLSX when the query asks for ?format=xlsx; both streamed."""
    if request.args.get("format") != "xlsx":
        return csv_response(f"{name}.csv", header, rows)
    response = Response(stream_with_context(exports.xlsx_chunks(header, rows, title=name)), mimetype=XLSX_TYPE)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.xlsx"'
    return response


class ConfirmForm(FlaskForm):
    """The second step of an action that cannot be undone: only the CSRF token travels."""


def confirm_page(
    *, heading: str, message: str, action: str, button: str, cancel_url: str, hidden: dict[str, str] | None = None
) -> str:
    """A page that asks before an irreversible or disruptive action. A plain GET page with a POST
    form, so the question is asked with and without JavaScript, and under a strict CSP."""
    return render_template(
        "confirm.html",
        heading=heading,
        message=message,
        action=action,
        button=button,
        cancel_url=cancel_url,
        hidden=hidden or {},
        form=ConfirmForm(),
    )
