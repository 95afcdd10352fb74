"""Label pages: choose items (by SKU) or a location, then a print page sized for A4 sheets
(3 x 8 labels of 70 x 37 mm) or for a label printer (one 60 x 40 mm label per page), or the same
labels as a ZPL file for a Zebra-compatible thermal printer."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask import Response, abort, render_template, request

from app.auth.roles import role_required
from app.config import settings
from app.services import catalog, labels, zpl
from app.services.errors import DomainError, UnknownLot, UnknownSerial
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
    return _index(_choice(), error=None)


def _contents(choice: dict[str, Any]) -> tuple[list[labels.LabelContent], int]:
    """The chosen labels and how many copies of each (a location's labels: one)."""
    if choice["location"]:
        return labels.location_contents(choice["location"]), 1
    return labels.item_contents(re.split(r"[\s,;]+", choice["skus"]), copies=choice["copies"]), choice["copies"]


def _index(choice: dict[str, Any], *, error: str | None) -> str:
    config = settings()
    return render_template(
        "labels/index.html",
        choice=choice,
        location_codes=catalog.location_codes(),
        error=error,
        zpl_size=(config.INVENTORY_ZPL_LABEL_WIDTH, config.INVENTORY_ZPL_LABEL_HEIGHT),
    )


def _refused(choice: dict[str, Any], error: DomainError) -> tuple[str, int]:
    return _index(choice, error=domain_message(error)), error.status


@bp.get("/print")
@role_required("viewer")
def print_labels() -> Any:
    choice = _choice()
    try:
        contents, copies = _contents(choice)
    except DomainError as error:
        return _refused(choice, error)
    return render_template("labels/print.html", labels=labels.sheet(contents, copies), size=choice["size"])


@bp.get("/labels.zpl")
@role_required("viewer")
def zpl_labels() -> Any:
    """The same labels as ZPL for a Zebra-compatible printer, downloaded as a file to send to it."""
    choice = _choice()
    try:
        contents, copies = _contents(choice)
    except DomainError as error:
        return _refused(choice, error)
    # A location code may hold any character; the file name keeps the plain ones.
    return _zpl_response(contents, copies, f"labels-{choice['location'] or 'items'}.zpl")


def _zpl_response(contents: list[labels.LabelContent], copies: int, name: str) -> Response:
    config = settings()
    layout = zpl.Layout(config.INVENTORY_ZPL_LABEL_WIDTH, config.INVENTORY_ZPL_LABEL_HEIGHT, config.INVENTORY_ZPL_FONT)
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    return Response(
        zpl.document(contents, copies=copies, layout=layout),
        mimetype="text/plain",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


def _traced(content: Callable[[], labels.LabelContent]) -> labels.LabelContent:
    try:
        return content()
    except (UnknownLot, UnknownSerial):
        abort(404)


@bp.get("/lots/<int:lot_id>")
@role_required("viewer")
def lot_sheet(lot_id: int) -> Any:
    """A lot's label (GS1: GTIN, expiry, lot) as a print page, `copies` times."""
    choice = _choice()
    content = _traced(lambda: labels.lot_content(lot_id))
    return render_template("labels/print.html", labels=labels.sheet([content], choice["copies"]), size=choice["size"])


@bp.get("/lots/<int:lot_id>.zpl")
@role_required("viewer")
def lot_zpl(lot_id: int) -> Any:
    content = _traced(lambda: labels.lot_content(lot_id))
    return _zpl_response([content], _choice()["copies"], f"lot-{lot_id}.zpl")


@bp.get("/serials/<sku>/<code:serial>")
@role_required("viewer")
def serial_sheet(sku: str, serial: str) -> Any:
    """A serial's label (GS1: GTIN, serial) as a print page."""
    choice = _choice()
    content = _traced(lambda: labels.serial_content(sku, serial))
    return render_template("labels/print.html", labels=labels.sheet([content], choice["copies"]), size=choice["size"])


@bp.get("/serials/<sku>/<code:serial>.zpl")
@role_required("viewer")
def serial_zpl(sku: str, serial: str) -> Any:
    content = _traced(lambda: labels.serial_content(sku, serial))
    return _zpl_response([content], _choice()["copies"], f"serial-{sku}-{serial}.zpl")
