"""Label pages: choose items (by SKU) or a location, then a print page sized for A4 sheets
(3 x 8 labels of 70 x 37 mm) or for a label printer (one 60 x 40 mm label per page)."""

from __future__ import annotations

import re
from typing import Any

from flask import render_template, request

from app.auth.roles import role_required
from app.services import catalog, labels
from app.services.errors import DomainError
from app.web.common import domain_message, whole_number
from app.web.labels import bp

SIZES = ("sheet", "single")
MAX_COPIES = 100


def _choice() -> dict[str, Any]:
    copies = whole_number(request.args.get("copies"), maximum=MAX_COPIES) or 1
    return {
        "skus": request.args.get("skus", ""),
        "location": request.args.get("location", "").strip(),
        "size": request.args.get("size") if request.args.get("size") in SIZES else "sheet",
        "copies": copies,
    }


@bp.get("")
@role_required("viewer")
def index() -> Any:
    return render_template("labels/index.html", choice=_choice(), location_codes=catalog.location_codes(), error=None)


@bp.get("/print")
@role_required("viewer")
def print_labels() -> Any:
    choice = _choice()
    try:
        if choice["location"]:
            found = labels.location_labels(choice["location"])
        else:
            found = labels.item_labels(re.split(r"[\s,;]+", choice["skus"]), copies=choice["copies"])
    except DomainError as error:
        context = dict(choice=choice, location_codes=catalog.location_codes(), error=domain_message(error))
        return render_template("labels/index.html", **context), error.status
    return render_template("labels/print.html", labels=found, size=choice["size"])
