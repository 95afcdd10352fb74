"""Picking on the scan page. Scanning a pick list's code (PICK:12.15) opens it here; each scan of
a location and then an item confirms a row, a row found short is recorded with its reason, and
finishing issues everything confirmed against the reservations in one transaction.

Until then nothing is written: what was confirmed travels in the page as a signed hidden field
(no server-side session, so two handhelds picking two lists never mix, and a wrong scan, a wrong
item or a scan for another order changes nothing). Plain forms posted by Enter: a keyboard-wedge
scanner, a phone's keyboard and no JavaScript at all work the same (and the CSP has nothing to
allow)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from decimal import Decimal
from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from app.auth.roles import role_required
from app.services import codes, picking
from app.services.errors import DomainError, InvalidInput, InvalidQuantity, UnknownReservation
from app.services.picking import Done, PickList, PickState
from app.web.common import domain_message, new_key
from app.web.i18n import format_quantity
from app.web.scan import bp

_SALT = b"pick-state"


def _mac(body: str) -> str:
    key = hashlib.sha256(_SALT + str(current_app.secret_key or "").encode()).digest()
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def _dump(code: str, key: str, state: PickState) -> str:
    done = {k: [str(d.quantity), d.reason, list(d.serials)] for k, d in state.done.items()}
    data = {"code": code, "key": key, "at": state.at, "done": done}
    body = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode()
    return f"{body}.{_mac(body)}"


def _verified(token: str) -> Any:
    """The state a page posted back, if this server signed it; else None (forged, cut, absent)."""
    body, _dot, mac = token.partition(".")
    if not hmac.compare_digest(mac.encode(), _mac(body).encode()):
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(body.encode()))
    except (binascii.Error, ValueError):
        return None


def _load(pick: PickList) -> tuple[str, PickState, bool]:
    """The idempotency key and state the page posted back, if it is this list's (else fresh), and
    whether the list changed under it: a row confirmed on the page that is gone or holds less now
    (an order cancelled, expired or picked elsewhere meanwhile) is dropped from the state."""
    data = _verified(request.form.get("state", ""))
    if not isinstance(data, dict) or data.get("code") != pick.code:
        return new_key(), PickState(), False
    rows = {row.key: row for row in pick.rows}
    done = {k: Done(Decimal(q), reason, tuple(serials)) for k, (q, reason, serials) in data["done"].items()}
    kept = {k: d for k, d in done.items() if k in rows and (d.reason is not None or d.quantity <= rows[k].quantity)}
    return str(data["key"]), PickState(data["at"], kept), kept != done


def _pick_or_404(code: str) -> PickList:
    try:
        return picking.pick_list(picking.parse_pick_code(code))
    except (InvalidInput, UnknownReservation):
        abort(404)


@bp.get("/pick/<code>")
@role_required("clerk")
def pick(code: str) -> Any:
    found = _pick_or_404(code)
    if found.code != code:
        return redirect(url_for(".pick", code=found.code), 301)
    return _page(found, new_key(), PickState(), None)


@bp.post("/pick/<code>")
@role_required("clerk")
def pick_step(code: str) -> Any:
    found = _pick_or_404(code)
    key, state, changed = _load(found)
    if changed:
        told = _(
            "The pick list changed meanwhile (an order was cancelled or picked elsewhere): "
            "scan the rows marked to pick again."
        )
        return _page(found, key, state, (False, told)), 409
    action = request.form.get("action", "scan")
    if action == "finish":
        return _finish(found, key, state)
    if action == "short":
        return _short(found, key, state)
    scanned = request.form.get("code", "").strip()
    if picking.is_pick_code(scanned):
        return redirect(url_for(".pick", code=scanned.upper()), 303)
    try:
        resolved = codes.resolve_code(scanned)
    except DomainError as error:
        return _page(found, key, state, (False, domain_message(error))), 422
    state, outcome = picking.scan(found, state, resolved)
    return _page(found, key, state, (outcome.ok, _told(outcome.kind, outcome.facts))), 200 if outcome.ok else 422


def _short(found: PickList, key: str, state: PickState) -> Any:
    try:
        state = picking.short(
            found,
            state,
            key=request.form.get("row", ""),
            quantity=request.form.get("quantity", ""),
            reason=request.form.get("reason", ""),
        )
    except InvalidQuantity:
        return _page(found, key, state, (False, _("A short pick is less than the row's quantity: 0 or more."))), 422
    except InvalidInput as error:
        message = {
            "reason": _("Say why the row is short."),
            "quantity": _("Scan the serial label of each unit taken first."),
        }.get(error.field or "", _("That row is not on this pick list."))
        return _page(found, key, state, (False, message)), 422
    return _page(found, key, state, (True, _("Short pick recorded; finish to issue it."))), 200


def _finish(found: PickList, key: str, state: PickState) -> Any:
    picks = picking.picked_lines(found, state)
    if not picks:
        return _page(found, key, state, (False, _("Nothing is picked yet: scan a location, then its items."))), 422
    try:
        done = picking.finish_pick(
            picks=picks,
            release_rest=request.form.get("rest") == "release",
            user=current_user.username,
            idempotency_key=key,
        )
    except DomainError as error:
        return _page(found, key, state, (False, domain_message(error))), error.status
    lines = sum(len(p) for p in picks.values())
    flash(
        ngettext(
            "Picked %(num)s line: issued against %(refs)s.",
            "Picked %(num)s lines: issued against %(refs)s.",
            lines,
            refs=", ".join(f"#{r.id} {r.reference}" for r in done),
        ),
        "success",
    )
    return redirect(url_for(".pick", code=found.code), 303)


def _page(found: PickList, key: str, state: PickState, told: tuple[bool, str] | None) -> str:
    return render_template(
        "scan/pick.html",
        pick=found,
        state=state,
        state_token=_dump(found.code, key, state),
        told=told,
        confirmed=sum(1 for row in found.rows if state.confirmed(row)),
    )


def _told(kind: str, x: Any) -> str:
    qty = format_quantity(x["quantity"]) if "quantity" in x else ""
    messages = {
        "location": lambda: _("At %(code)s: scan the items to take here.", code=x["code"]),
        "not_here": lambda: _("Nothing on this pick list is at %(code)s. Nothing was picked.", code=x["code"]),
        "scan_location": lambda: _("Scan the location first, then %(sku)s.", sku=x["sku"]),
        "confirmed": lambda: _(
            "Picked %(quantity)s %(unit)s × %(name)s (%(sku)s) at %(location)s.",
            quantity=qty,
            unit=x["unit"],
            name=x["name"],
            sku=x["sku"],
            location=x["location"],
        ),
        "serial": lambda: _(
            "Serial %(serial)s: %(count)s of %(of)s × %(sku)s.",
            serial=x["serial"],
            count=x["count"],
            of=format_quantity(x["of"]),
            sku=x["sku"],
        ),
        "already": lambda: _("%(sku)s at %(location)s is picked already.", sku=x["sku"], location=x["location"]),
        "elsewhere": lambda: _(
            "%(sku)s is not taken here: go to %(locations)s. Nothing was picked.",
            sku=x["sku"],
            locations=", ".join(x["locations"]),
        ),
        "not_on_list": lambda: _(
            "%(sku)s is not on this pick list (another order's item?). Nothing was picked.", sku=x["sku"]
        ),
        "wrong_lot": lambda: _(
            "Lot %(lot)s of %(sku)s is not the one reserved here: take lot %(wanted)s.",
            lot=x["lot"],
            sku=x["sku"],
            wanted=x["wanted"],
        ),
        "serial_needed": lambda: _("%(sku)s is tracked by serial: scan each unit's serial label.", sku=x["sku"]),
        "serial_twice": lambda: _("Serial %(serial)s was scanned already.", serial=x["serial"]),
    }
    return messages[kind]()
