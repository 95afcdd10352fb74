"""Reservation pages. Reading needs the viewer role; reserving and picking a clerk; cancelling,
which gives an order's stock back to everyone, a manager."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user

from app.auth.roles import role_required
from app.models.reservation import RESERVATION_STATUSES
from app.models.types import MAX_ROW_ID
from app.services import catalog, labels, picking, reservations
from app.services.errors import DomainError, InvalidInput, ReservationShort, UnknownReservation
from app.web.common import attach_error, confirm_page, domain_message, whole_number
from app.web.i18n import format_quantity, local_day_bounds
from app.web.reservations import bp
from app.web.reservations.forms import ReserveForm

PAGE = 50
STATUS_LABELS = {
    "open": _l("To pick"),
    "partly_picked": _l("Partly picked"),
    "picked": _l("Picked"),
    "cancelled": _l("Cancelled"),
    "expired": _l("Expired"),
}


def status_label(status: str) -> str:
    return str(STATUS_LABELS.get(status, status))


@bp.app_template_filter("reservation_status")
def _status_filter(status: str) -> str:
    return status_label(status)


@bp.get("")
@role_required("viewer")
def index() -> Any:
    reference = request.args.get("reference", "").strip()[: reservations.MAX_REFERENCE] or None
    status = request.args.get("status", "")
    before = whole_number(request.args.get("before"), maximum=MAX_ROW_ID)
    rows, next_before = reservations.list_reservations(
        reference=reference, status=status if status in RESERVATION_STATUSES else None, before=before, limit=PAGE
    )
    args: dict[str, Any] = {k: v for k, v in (("reference", reference), ("status", status)) if v}
    return render_template(
        "reservations/index.html",
        rows=rows,
        reference=reference or "",
        status=status,
        statuses=STATUS_LABELS,
        next_url=url_for(".index", before=next_before, **args) if next_before else None,
        first_url=url_for(".index", **args) if before else None,
    )


@bp.route("/new", methods=["GET", "POST"])
@role_required("clerk")
def new() -> Any:
    form = ReserveForm()
    if not form.validate_on_submit():
        return _form_page(form), 422 if form.is_submitted() else 200
    for _n, line in form.filled_lines():
        line.sku.data = catalog.canonical_sku(line.sku.data)
    try:
        made = reservations.reserve(
            reference=form.reference.data,
            lines=form.to_lines(),
            expires_at=local_day_bounds(form.expires_at.data + timedelta(days=1)) if form.expires_at.data else None,
            user=current_user.username,
            idempotency_key=form.idempotency_key.data,
        )
    except InvalidInput as error:
        if error.field != "expires_at":
            attach_error(form, error)
        else:
            form.expires_at.errors = [*form.expires_at.errors, _("Choose today or a later day.")]
        return _form_page(form), error.status
    except DomainError as error:
        if not _mark_short_lines(form, error):
            attach_error(form, error)
        return _form_page(form), error.status
    flash(_("Reserved for %(reference)s: reservation #%(id)s.", reference=made.reference, id=made.id), "success")
    return redirect(url_for(".show", reservation_id=made.id), 303)


def _form_page(form: ReserveForm) -> str:
    return render_template("reservations/new.html", form=form, location_codes=catalog.location_codes())


def _mark_short_lines(form: ReserveForm, error: DomainError) -> bool:
    """Tell each short line, at its quantity, how much is available for it; False when the error
    is not about short lines."""
    if not isinstance(error, ReservationShort):
        return False
    filled = form.filled_lines()
    for short in error.extras.get("lines") or []:
        number = int(short.get("line") or 0)
        if not 1 <= number <= len(filled):
            continue
        n, line = filled[number - 1]
        message = _(
            "Line %(n)s: only %(available)s available (%(requested)s asked for).",
            n=n,
            available=format_quantity(_number(short.get("available"))),
            requested=format_quantity(_number(short.get("requested"))),
        )
        line.quantity.errors = [*line.quantity.errors, message]
        form.bad_lines.append((n, line.quantity.id))
    return bool(form.bad_lines)


def _number(text: Any) -> Any:
    from decimal import Decimal, InvalidOperation

    try:
        return Decimal(str(text))
    except InvalidOperation:
        return Decimal(0)


def _reservation(reservation_id: int) -> reservations.ReservationView:
    try:
        return reservations.get_reservation(reservation_id)
    except UnknownReservation:
        abort(404)


@bp.get("/<int:reservation_id>")
@role_required("viewer")
def show(reservation_id: int) -> Any:
    found = _reservation(reservation_id)
    return render_template(
        "reservations/show.html",
        reservation=found,
        open=found.status in ("open", "partly_picked"),
        code=picking.pick_code([found.id]),
    )


@bp.get("/<int:reservation_id>/cancel")
@role_required("manager")
def confirm_cancel(reservation_id: int) -> Any:
    found = _reservation(reservation_id)
    return confirm_page(
        heading=_("Cancel reservation #%(id)s?", id=found.id),
        message=_(
            "What reservation #%(id)s (%(reference)s) still holds goes back to stock anyone may take. "
            "This cannot be undone.",
            id=found.id,
            reference=found.reference,
        ),
        action=url_for(".cancel", reservation_id=found.id),
        button=_("Cancel the reservation"),
        cancel_url=url_for(".show", reservation_id=found.id),
    )


@bp.post("/<int:reservation_id>/cancel")
@role_required("manager")
def cancel(reservation_id: int) -> Any:
    try:
        reservations.cancel_reservation(reservation_id=reservation_id, user=current_user.username)
    except UnknownReservation:
        abort(404)
    except DomainError as error:
        flash(domain_message(error), "error")
        return redirect(url_for(".show", reservation_id=reservation_id), 303)
    flash(_("Reservation #%(id)s cancelled: its stock is available again.", id=reservation_id), "success")
    return redirect(url_for(".show", reservation_id=reservation_id), 303)


@bp.get("/<int:reservation_id>/pick-list")
@role_required("clerk")
def pick_list(reservation_id: int) -> Any:
    return _pick_list_page([reservation_id])


@bp.get("/pick-list")
@role_required("clerk")
def merged_pick_list() -> Any:
    """Several reservations' pick list in one walk (?ids=12&ids=15, or ids=12,15); without ids, a
    form to name them."""
    asked = ",".join(request.args.getlist("ids")).strip()
    if not asked:
        return render_template("reservations/choose.html", ids="", error=None)
    try:
        ids = picking.parse_ids(asked)
    except InvalidInput:
        error = ngettext(
            "Enter reservation numbers: at most %(num)s.",
            "Enter reservation numbers: at most %(num)s.",
            picking.MAX_PICK_RESERVATIONS,
        )
        return render_template("reservations/choose.html", ids=asked[:200], error=error), 422
    return _pick_list_page(ids)


def _pick_list_page(ids: list[int]) -> Any:
    try:
        found = picking.pick_list(ids)
    except UnknownReservation as error:
        abort(404, description=domain_message(error))
    return render_template(
        "reservations/pick_list.html",
        pick=found,
        qr=labels.qr_svg(found.code),
        code128=labels.code128_svg(found.code),
    )
