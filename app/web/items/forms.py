"""Item and category forms."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import Length, Regexp

from app.web.common import optional_text, quantity_field, required_text


class ItemForm(FlaskForm):
    sku = required_text(_l("SKU"), 64, render_kw={"autocomplete": "off", "spellcheck": "false"})
    name = required_text(_l("Name"), 200)
    barcode = optional_text(_l("Barcode"), 64, render_kw={"autocomplete": "off", "inputmode": "numeric"})
    unit = required_text(_l("Unit"), 16, default="pcs")
    category = optional_text(_l("Category"), 100)
    reorder_point = quantity_field(_l("Reorder point"), allow_zero=True, default="0")
    reorder_quantity = quantity_field(_l("Reorder quantity"), allow_zero=True, default="0")
    description = TextAreaField(_l("Description"), validators=[Length(max=5000)])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sku.validators = [
            *self.sku.validators,
            Regexp(r"^[^\s/\\]+$", message=_l("No spaces, / or \\, please: it names a page.")),
        ]

    def to_input(self) -> dict[str, Any]:
        return {
            "name": self.name.data,
            "barcode": self.barcode.data or None,
            "unit": self.unit.data,
            "category": self.category.data or None,
            "reorder_point": self.reorder_point.data,
            "reorder_quantity": self.reorder_quantity.data,
            "description": self.description.data or "",
        }


class EditItemForm(ItemForm):
    """The SKU names the item and never changes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sku.render_kw = {"readonly": True}


class ArchiveItemForm(FlaskForm):
    pass


class CategoryForm(FlaskForm):
    name = required_text(_l("Name"), 100)
    description = optional_text(_l("Description"), 500)
