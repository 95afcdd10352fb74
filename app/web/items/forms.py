"""Item and category forms."""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, IntegerField, SelectChoice, SelectField, TextAreaField
from wtforms.validators import Length, NumberRange, Optional, Regexp

from app.models import Category, Item
from app.services import items
from app.web.common import optional_text, quantity_field, required_text

#: The category choice that names a new category in the field beside it. Choices are category
#: ids, so no category name can collide with it.
NEW_CATEGORY = "new"


def _unix_newlines(value: Any) -> Any:
    """Browsers send a textarea's line breaks as CRLF: stored text keeps LF, so saving a page
    unchanged changes nothing."""
    return value.replace("\r\n", "\n") if isinstance(value, str) else value


class ItemForm(FlaskForm):
    sku = required_text(_l("SKU"), 64, render_kw={"autocomplete": "off", "spellcheck": "false"})
    name = required_text(_l("Name"), 200)
    barcode = optional_text(_l("Barcode"), 64, render_kw={"autocomplete": "off", "inputmode": "numeric"})
    unit = required_text(_l("Unit"), 16, default="pcs")
    category = SelectField(_l("Category"), choices=[], default="")
    new_category = optional_text(_l("New category name"), 100)
    reorder_point = quantity_field(_l("Reorder point"), allow_zero=True, default="0")
    reorder_quantity = quantity_field(_l("Reorder quantity"), allow_zero=True, default="0")
    description = TextAreaField(_l("Description"), validators=[Length(max=5000)], filters=[_unix_newlines])
    tracking = SelectField(
        _l("Tracking"),
        choices=[
            SelectChoice("none", _l("Not tracked")),
            SelectChoice("lot", _l("By lot (with expiry dates)")),
            SelectChoice("serial", _l("By serial number")),
        ],
        default="none",
    )
    requires_expiry = BooleanField(_l("Every lot needs an expiry date"))
    expiry_warning_days = IntegerField(
        _l("Warn days before expiry"), validators=[Optional(), NumberRange(min=0, max=3650)]
    )

    def __init__(self, *args: Any, categories: Iterable[Category] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sku.validators = [
            *self.sku.validators,
            Regexp(r"^[^\s/\\]+$", message=_l("No spaces, / or \\, please: it names a page.")),
        ]
        self._category_names = {str(c.id): c.name for c in categories}
        self.category.choices = [
            SelectChoice("", _l("No category")),
            *(SelectChoice(key, name) for key, name in self._category_names.items()),
            SelectChoice(NEW_CATEGORY, _l("New category…")),
        ]

    def validate(self, extra_validators: Any = None) -> bool:
        # Not a validate_new_category method: the field's Optional() would stop it on the very
        # case it is for, an empty name.
        valid = super().validate(extra_validators)
        if self.category.data == NEW_CATEGORY and not self.new_category.data:
            self.new_category.errors = [*self.new_category.errors, _l("Name the new category.")]
            return False
        return valid

    def to_input(self) -> dict[str, Any]:
        category = self.new_category.data if self.category.data == NEW_CATEGORY else None
        return {
            "name": self.name.data,
            "barcode": self.barcode.data or None,
            "unit": self.unit.data,
            "category": category or self._category_names.get(self.category.data or ""),
            "reorder_point": self.reorder_point.data,
            "reorder_quantity": self.reorder_quantity.data,
            "description": self.description.data or "",
            "tracking": self.tracking.data or "none",
            "requires_expiry": bool(self.requires_expiry.data),
            "expiry_warning_days": self.expiry_warning_days.data,
        }


_QUANTITIES = ("reorder_point", "reorder_quantity")


class EditItemForm(ItemForm):
    """The SKU names the item and never changes. Filled from the item's own values, field by
    field: a form built from the object would show the category's repr and save it back.

    `original` carries the values the page was drawn with, so that a save writes only the fields
    its user changed, and is refused on a field someone else changed meanwhile: two people
    editing one item no longer undo each other's changes with the stale values of a page."""

    original = HiddenField()

    def __init__(self, item: Item, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{**self._values(item), **kwargs})
        self.sku.render_kw = {"readonly": True}
        self.sku.data = item.sku
        if not self.original.raw_data:  # drawn now (or posted without it: the item as it is)
            self._draw_original(item)

    @staticmethod
    def _values(item: Item) -> dict[str, Any]:
        return {
            "sku": item.sku,
            "name": item.name,
            "barcode": item.barcode or "",
            "unit": item.unit,
            "category": str(item.category_id or ""),
            "reorder_point": item.reorder_point,
            "reorder_quantity": item.reorder_quantity,
            "description": item.description,
            "tracking": item.tracking,
            "requires_expiry": item.requires_expiry,
            "expiry_warning_days": item.expiry_warning_days,
        }

    def original_values(self) -> dict[str, Any] | None:
        """The values the page was drawn with, or None when `original` is not readable."""
        try:
            found = json.loads(self.original.data or "")
            return {name: Decimal(found[name]) if name in _QUANTITIES else found[name] for name in items.ITEM_FIELDS}
        except (ValueError, TypeError, KeyError, InvalidOperation):
            return None

    def rebase(self, item: Item, kept: Iterable[str]) -> None:
        """Draw the item as it is now, but for the fields in `kept` (the user's changes)."""
        now = self._values(item)
        for name in items.ITEM_FIELDS:
            if name not in kept:
                self._fields[name].data = now[name]
        self._draw_original(item)

    def _draw_original(self, item: Item) -> None:
        """`original` as JSON of the item's values, quantities as the page shows them (44, not 44.000)."""
        values = items.edited_values(item)
        plain = {k: format(v.normalize(), "f") if isinstance(v, Decimal) else v for k, v in values.items()}
        self.original.data = json.dumps(plain, ensure_ascii=False)


class ArchiveItemForm(FlaskForm):
    pass


class CategoryForm(FlaskForm):
    name = required_text(_l("Name"), 100)
    description = optional_text(_l("Description"), 500)
