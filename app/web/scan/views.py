"""Scan endpoints. The page posts each scan as JSON with its own idempotency key, so a scan that
is sent twice (a retry, or an offline queue replayed) moves stock once. Location codes are in the
page, so a location scan needs no round trip and works offline."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from flask import Response, current_app, jsonify, render_template, request, send_from_directory
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import generate_csrf

from app.auth.roles import role_required
from app.models.types import MAX_ROW_ID
from app.models.user import SCAN_MODES
from app.services import admin, catalog, codes, counts, picking, stock
from app.services.errors import (
    Conflict,
    DomainError,
    InsufficientStock,
    InvalidInput,
    InvalidQuantity,
    MalformedRequest,
)
from app.services.gs1 import GS1Data
from app.services.quantities import parse_quantity
from app.web.common import domain_message, gs1_fields, whole_number
from app.web.i18n import format_quantity
from app.web.scan import bp

log = logging.getLogger("app.scan")
DISCARD_FIELDS = ("code", "mode", "location", "quantity")


class ScannedByAnotherUser(Conflict):
    code = "scanned_by_another_user"

    def __init__(self, scanned_by: str) -> None:
        super().__init__(f"this scan was made by {scanned_by!r}, not the signed-in user", scanned_by=scanned_by)


@bp.get("")
@role_required("clerk")
def index() -> Any:
    return render_template(
        "scan/index.html",
        location_codes=catalog.location_codes(),
        mode=current_user.scan_mode,
        pick_prefix=picking.PICK_PREFIX,
    )


@bp.post("/mode")
@role_required("clerk")
def remember_mode() -> Any:
    """The mode a clerk chose opens the page next time (on any device)."""
    try:
        admin.set_preferences(username=current_user.username, scan_mode=_text(_payload(), "mode"))
    except DomainError as error:
        return _error(error)
    return jsonify(status="ok")


@bp.get("/sw.js")
def service_worker() -> Response:
    """Served under /scan so that its scope covers the scan page (a worker's scope is its folder)."""
    response = send_from_directory(current_app.static_folder or "static", "js/sw.js", max_age=0)
    response.headers["Service-Worker-Allowed"] = "/scan"
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/token")
@role_required("clerk")
def token() -> Any:
    """A fresh CSRF token, for replaying scans queued on a page loaded long ago."""
    return jsonify(csrf_token=generate_csrf())


@bp.post("/moves")
@role_required("clerk")
def move() -> Any:
    try:
        return jsonify(_apply(_payload()))
    except DomainError as error:
        return _error(error)


@bp.post("/discarded")
@role_required("manager")
def discard() -> Any:
    """A manager dropped scans another user queued offline on this device: nothing moves, but
    the record of what was dropped, by whom, goes to the log."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        data = {}
    scans = data.get("scans")
    if not isinstance(scans, list) or not all(isinstance(scan, dict) for scan in scans) or len(scans) > 10_000:
        return _error(InvalidInput("scans", "a list of the discarded scans"))
    log.warning(
        "offline scans discarded",
        extra={
            "event": "scan_queue_discarded",
            "username": current_user.username,
            "owner": _text(data, "user")[:64],
            "count": len(scans),
            "scans": [{key: str(scan.get(key, ""))[:64] for key in DISCARD_FIELDS} for scan in scans[:200]],
        },
    )
    return jsonify(status="ok", discarded=len(scans))


@bp.post("/undo")
@role_required("clerk")
def undo() -> Any:
    try:
        return jsonify(_undo(_payload()))
    except DomainError as error:
        return _error(error)


def _payload() -> dict[str, Any]:
    """The JSON object the page posts; anything else (a list, a number, no JSON) is refused."""
    data = request.get_json(silent=True)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise MalformedRequest("body", "must be a JSON object")
    return data


def _text(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    return value.strip() if isinstance(value, str) else ""


def _label_tracking(sku: str, label: GS1Data | None, *, receiving: bool) -> dict[str, Any]:
    """What a supplier's GS1 label says about the unit, for an item tracked that way: its lot (AI
    10, and on a receipt its expiry, AI 17) or its serial (AI 21, one unit). Labels of untracked
    items often carry a lot too: then it is left out, as before lots were tracked."""
    if label is None or (label.lot is None and label.serial is None):
        return {}
    tracking = catalog.item_tracking(sku)
    if tracking == "lot" and label.lot:
        return {"lot": label.lot, **({"expiry": label.expiry} if receiving and label.expiry else {})}
    if tracking == "serial" and label.serial:
        return {"serials": [label.serial], "quantity": 1}
    return {}


def _apply(data: dict[str, Any]) -> dict[str, Any]:
    # The page stamps each scan with who made it; a scan queued by someone else on a shared
    # handheld must never be booked to whoever is signed in now.
    scanned_by = data.get("user")
    if scanned_by is not None and scanned_by != current_user.username:
        raise ScannedByAnotherUser(str(scanned_by)[:64])
    resolved = codes.resolve_code(_text(data, "code"))
    if resolved.kind == "location":
        return {"status": "ok", "kind": "location", "code": resolved.code, "name": resolved.name}
    mode, location, target = _text(data, "mode"), _text(data, "location"), _text(data, "to_location")
    if mode not in SCAN_MODES:
        raise InvalidInput("mode", "must be issue, receive or transfer")
    if not location:
        raise InvalidInput("location", "scan a location first")
    # A supplier's label that says how many it is on (AI 30/37) moves that many.
    label = resolved.gs1
    quantity = label.quantity if label and label.quantity is not None else parse_quantity(data.get("quantity") or "1")
    common = dict(
        sku=resolved.code,
        quantity=quantity,
        user=current_user.username,
        # An order number typed on the page files the scan under that order, as the forms' reference does.
        reference=_text(data, "reference") or stock.SCAN_REFERENCE,
        reason_code="scan",
        idempotency_key=_text(data, "idempotency_key") or None,
    )
    common |= _label_tracking(resolved.code, label, receiving=mode == "receive")
    if mode == "transfer":
        if not target:
            raise InvalidInput("to_location", "scan the destination location")
        movement = stock.transfer_stock(from_location=location, to_location=target, **common)
    else:
        action = stock.issue_stock if mode == "issue" else stock.receive_stock
        movement = action(location=location, **common)
    # The balances the movement left behind (a replayed scan shows what it did the first time);
    # not to a counter at a place being counted, whose balance is the count's answer.
    hidden = movement.counted_sides if counts.counts_blind(current_user.role) else frozenset()

    def shown(balance: Any, side: str) -> str:
        return _("Hidden while it is counted") if side in hidden else format_quantity(balance)

    result = {
        "status": "ok",
        "kind": "movement",
        "mode": mode,
        "movement_id": movement.id,
        "sku": resolved.code,
        "name": resolved.name,
        "unit": resolved.unit,
        "quantity": format_quantity(movement.quantity),
        "location": location,
        "balance": shown(movement.to_balance, "to") if mode == "receive" else shown(movement.from_balance, "from"),
        **gs1_fields(label),
    }
    if mode == "transfer":
        result.update(to_location=target, to_balance=shown(movement.to_balance, "to"))
    return result


def _undo(data: dict[str, Any]) -> dict[str, Any]:
    raw = data.get("movement_id")
    movement_id = (
        raw if isinstance(raw, int) and not isinstance(raw, bool) else whole_number(str(raw), maximum=MAX_ROW_ID)
    )
    if movement_id is None or not 0 < movement_id <= MAX_ROW_ID:
        raise InvalidInput("movement_id", "must be a number")
    # A clerk may take back their own scans (the service checks, under the row lock); anything
    # else is a manager's reversal on the ledger.
    reversal = stock.reverse_movement(
        movement_id=movement_id,
        user=current_user.username,
        reason_code="scan_undo",
        idempotency_key=_text(data, "idempotency_key") or None,
        own_scan_only=True,
    )
    return {"status": "ok", "kind": "undo", "movement_id": movement_id, "reversal_id": reversal.id}


def _error(error: DomainError) -> tuple[Response, int]:
    error = counts.blinded(error, current_user.role)
    body: dict[str, Any] = {"status": "error", "code": error.code, "message": _scan_message(error)}
    if isinstance(error, InsufficientStock):
        body["available"] = format_quantity(Decimal(error.available))
    return jsonify(body), error.status


def _scan_message(error: DomainError) -> str:
    if isinstance(error, ScannedByAnotherUser):
        return _(
            "This scan was made by %(user)s: it is sent only while %(user)s is signed in.",
            user=error.extras["scanned_by"],
        )
    if isinstance(error, InvalidQuantity):
        return _("Enter a quantity greater than zero, with at most 3 decimal places.")
    if isinstance(error, InvalidInput) and error.field == "mode":
        return _("Choose issue, receive or transfer first (Alt+1/2/3).")
    if isinstance(error, InvalidInput) and error.field == "location":
        return _("Scan a location first.")
    if isinstance(error, InvalidInput) and error.field == "to_location":
        return _("Scan the destination location (transfer mode).")
    if isinstance(error, InvalidInput) and error.field == "movement_id":
        return _("Only your own scans can be undone here.")
    return domain_message(error)
