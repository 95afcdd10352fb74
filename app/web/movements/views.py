"""Ledger pages and stock forms. Forms call app.services.stock with the form's idempotency key;
a domain error (e.g. insufficient stock) is shown on the form in the user's language."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from markupsafe import Markup
from wtforms import SelectChoice

from app.auth.roles import role_required
from app.models import MOVEMENT_KINDS, Movement
from app.models.user import role_covers
from app.services import catalog, counts, stock
from app.services.errors import DomainError, InvalidInput
from app.web.common import arg_date, attach_error, day_range, domain_message, export_response
from app.web.i18n import format_quantity, format_when, kind_label, reason_label
from app.web.movements import bp
from app.web.movements.forms import (
    AdjustStockForm,
    IssueStockForm,
    LedgerFilterForm,
    PickListForm,
    ReceiveStockForm,
    ReverseMovementForm,
    TransferStockForm,
)

FILTERS = ("sku", "location", "kind", "user", "reference", "since", "until")


def _recorded(movements: list[Movement]) -> Markup:
    links = Markup(", ").join(
        Markup('<a href="{}">#{}</a>').format(url_for("movements.show", movement_id=m.id), m.id) for m in movements
    )
    return Markup("{} {}").format(_("Recorded movement"), links)


def _told(movement: Movement) -> Markup:
    """What one posting did, in the words of the floor: "Received 12 pcs 六角螺母 M5 → WH1-A-01-02,
    now 337", with a link to the ledger line (where a manager can reverse it)."""
    row, _reversal = catalog.get_movement(movement.id)
    # A counter moving stock at a place being counted is not told the balance it left.
    row = next(catalog.hide_balances([row], counts.hidden_places(current_user.role, skus=[row.sku])))
    quantity = f"{format_quantity(row.quantity)} {row.unit}"
    texts = {
        "receive": lambda: _(
            "Received %(quantity)s %(name)s → %(to)s, now %(balance)s.",
            quantity=quantity,
            name=row.item_name,
            to=row.to_location,
            balance=format_quantity(row.to_balance),
        ),
        "issue": lambda: _(
            "Issued %(quantity)s %(name)s from %(source)s, %(balance)s left.",
            quantity=quantity,
            name=row.item_name,
            source=row.from_location,
            balance=format_quantity(row.from_balance),
        ),
        "transfer": lambda: _(
            "Moved %(quantity)s %(name)s %(source)s → %(to)s.",
            quantity=quantity,
            name=row.item_name,
            source=row.from_location,
            to=row.to_location,
        ),
    }
    if row.kind == "receive" and row.to_balance is None:
        texts["receive"] = lambda: _(
            "Received %(quantity)s %(name)s → %(to)s.", quantity=quantity, name=row.item_name, to=row.to_location
        )
    if row.kind == "issue" and row.from_balance is None:
        texts["issue"] = lambda: _(
            "Issued %(quantity)s %(name)s from %(source)s.",
            quantity=quantity,
            name=row.item_name,
            source=row.from_location,
        )
    if row.kind not in texts:
        return _recorded([movement])
    link = Markup('<a href="{}">#{}</a>').format(url_for("movements.show", movement_id=row.id), row.id)
    return Markup("{} {}").format(texts[row.kind](), link)


def _prefill() -> dict[str, str]:
    keys = ("sku", "location", "from_location", "reference")
    return {k: v for k in keys if (v := request.args.get(k, "").strip()[:100])}


def _run(form: Any, template: str, action: Callable[..., Any], **context: Any) -> Any:
    """Validate, call the stock service once, then redirect to a fresh form (new key) or re-render."""
    if form.validate_on_submit():
        form.sku.data = catalog.canonical_sku(form.sku.data)
        try:
            overriding = form._fields.get("allow_expired") is not None and form.allow_expired.data
            if overriding and not role_covers(current_user.role, "manager"):
                raise InvalidInput("allow_expired", "only a manager may issue an expired lot")
            result = action(**form.to_input(), user=current_user.username)
        except DomainError as error:
            attach_error(form, error)
            return _render(form, template, **context), error.status
        lines = stock.lines_of(result)
        flash(_told(result) if len(lines) == 1 else _recorded(lines), "success")
        # A fresh form (a new idempotency key) for the same item, place and delivery note: clerks
        # often repeat, and a five-line delivery should not need its PO number typed five times.
        keys = ("sku", "location", "from_location", "reference")
        again = {k: f.data for k in keys if (f := form._fields.get(k)) and f.data}
        return redirect(url_for(request.endpoint or "movements.index", **again), 303)
    return _render(form, template, **context), 422 if form.is_submitted() else 200


def _render(form: Any, template: str, **context: Any) -> str:
    return render_template(template, form=form, location_codes=catalog.location_codes(), **context)


@bp.route("/receive", methods=["GET", "POST"])
@role_required("clerk")
def receive() -> Any:
    return _run(ReceiveStockForm(**_prefill()), "movements/receive.html", stock.receive_stock)


@bp.route("/issue", methods=["GET", "POST"])
@role_required("clerk")
def issue() -> Any:
    return _run(IssueStockForm(**_prefill()), "movements/issue.html", stock.issue_stock)


@bp.route("/transfer", methods=["GET", "POST"])
@role_required("clerk")
def transfer() -> Any:
    return _run(TransferStockForm(**_prefill()), "movements/transfer.html", stock.transfer_stock)


@bp.route("/pick", methods=["GET", "POST"])
@role_required("clerk")
def pick() -> Any:
    form = PickListForm()
    if not form.validate_on_submit():
        return _render(form, "movements/pick.html"), 422 if form.is_submitted() else 200
    for _n, line in form.filled_lines():
        line.sku.data = catalog.canonical_sku(line.sku.data)
    try:
        movements = stock.issue_lines(**form.to_input(), user=current_user.username)
    except DomainError as error:
        # The service stops at the first bad line; the page reports every line at once.
        if not _mark_pick_lines(form):
            attach_error(form, error)
        return _render(form, "movements/pick.html"), error.status
    summary = ngettext("Picked %(num)s line.", "Picked %(num)s lines.", len(movements))
    flash(Markup("{} {}").format(summary, _recorded(movements)), "success")
    return redirect(url_for(".pick"), 303)


def _mark_pick_lines(form: PickListForm) -> bool:
    """Put each line's problem on the field it is about, with the quantity available shown on
    every line; False when no line has a problem one can see without the locks (a race)."""
    filled = form.filled_lines()
    checks = catalog.check_pick_lines([(f.sku.data, f.location.data, f.quantity.data) for _, f in filled])
    # A counter is never told the quantity at a place being counted (a blind count).
    counted = {
        (sku.casefold(), code.casefold())
        for sku, code in counts.hidden_places(current_user.role, skus=[f.sku.data for _, f in filled])
    }
    for (n, line), check in zip(filled, checks, strict=True):
        if ((line.sku.data or "").casefold(), (line.location.data or "").casefold()) in counted:
            check = dataclasses.replace(check, available=None)
        line.checked = check
        if check.problem:
            field = {"unknown_item": line.sku, "archived_item": line.sku, "insufficient": line.quantity}
            target = field.get(check.problem, line.location)
            target.errors = [*target.errors, _pick_problem(n, line, check)]
            form.bad_lines.append((n, target.id))
    return bool(form.bad_lines)


def _pick_problem(n: int, line: Any, check: catalog.PickLineCheck) -> str:
    sku, code = line.sku.data, line.location.data
    messages = {
        "unknown_item": lambda: _("Line %(n)s: no item with SKU %(sku)s.", n=n, sku=sku),
        "archived_item": lambda: _("Line %(n)s: item %(sku)s is archived.", n=n, sku=sku),
        "unknown_location": lambda: _("Line %(n)s: no location with code %(code)s.", n=n, code=code),
        "inactive_location": lambda: _("Line %(n)s: location %(code)s is inactive.", n=n, code=code),
        "insufficient": lambda: (
            _(
                "Line %(n)s: only %(available)s %(unit)s available at %(code)s.",
                n=n,
                available=format_quantity(check.available),
                unit=check.unit,
                code=code,
            )
            if check.available is not None
            else _("Line %(n)s: not enough at %(code)s (hidden while it is being counted).", n=n, code=code)
        ),
    }
    return str(messages[check.problem or "insufficient"]())


@bp.route("/adjust", methods=["GET", "POST"])
@role_required("manager")
def adjust() -> Any:
    return _run(AdjustStockForm(**_prefill()), "movements/adjust.html", stock.adjust_stock)


def _filters() -> tuple[LedgerFilterForm, dict[str, Any]]:
    form = LedgerFilterForm(request.args)
    form.kind.choices = [SelectChoice("", _("All kinds"))] + [SelectChoice(k, kind_label(k)) for k in MOVEMENT_KINDS]
    since, until = day_range(arg_date("since"), arg_date("until"))
    kind = request.args.get("kind", "")
    chosen = {k: request.args.get(k, "").strip() or None for k in ("sku", "location", "user", "reference")}
    return form, {**chosen, "kind": kind if kind in MOVEMENT_KINDS else None, "since": since, "until": until}


@bp.get("")
@role_required("viewer")
def index() -> Any:
    form, filters = _filters()
    page = catalog.list_movements(**filters, after=request.args.get("after") or None)
    args: dict[str, Any] = {k: v for k in FILTERS if (v := request.args.get(k, "").strip())}
    next_url = url_for(".index", **args, after=page.next_cursor) if page.next_cursor else None
    first_url = url_for(".index", **args) if request.args.get("after") else None
    blind = counts.hidden_places(current_user.role, skus={row.sku for row in page.rows})
    rows = list(catalog.hide_balances(page.rows, blind))
    return render_template(
        "movements/index.html", form=form, rows=rows, args=args, next_url=next_url, first_url=first_url
    )


@bp.get("/export.csv")
@role_required("viewer")
def export() -> Any:
    _form, filters = _filters()
    header = [_("ID"), _("Time"), _("Kind"), _("SKU"), _("Name"), _("From"), _("To"), _("Quantity")]
    header += [_("Balance at source"), _("Balance at destination"), _("Reference"), _("Note"), _("User"), _("Reverses")]
    rows = (
        [
            m.id,
            format_when(m.created_at, "iso"),
            kind_label(m.kind),
            m.sku,
            m.item_name,
            m.from_location or "",
            m.to_location or "",
            format_quantity(m.quantity).replace(",", ""),
            "" if m.from_balance is None else str(m.from_balance),
            "" if m.to_balance is None else str(m.to_balance),
            m.reference or "",
            m.note or reason_label(m.reason_code),
            m.username,
            m.reverses_id or "",
        ]
        for m in catalog.hide_balances(catalog.iter_movements(**filters), counts.hidden_places(current_user.role))
    )
    return export_response("movements", header, rows)


@bp.get("/<int:movement_id>")
@role_required("viewer")
def show(movement_id: int) -> Any:
    movement, reversed_by = catalog.get_movement(movement_id)
    blind = counts.hidden_places(current_user.role, skus=[movement.sku])
    movement = next(catalog.hide_balances([movement], blind))
    return render_template(
        "movements/show.html", movement=movement, reversed_by=reversed_by, form=ReverseMovementForm()
    )


@bp.post("/<int:movement_id>/reverse")
@role_required("manager")
def reverse(movement_id: int) -> Any:
    form = ReverseMovementForm()
    movement, reversed_by = catalog.get_movement(movement_id)
    if form.validate_on_submit():
        try:
            reversal = stock.reverse_movement(
                movement_id=movement_id,
                user=current_user.username,
                reason=form.reason.data,
                idempotency_key=form.idempotency_key.data,
            )
        except DomainError as error:
            form.form_errors.append(domain_message(error))
            status = error.status
        else:
            flash(_recorded([reversal]), "success")
            return redirect(url_for(".show", movement_id=reversal.id), 303)
    else:
        status = 422
    context = dict(movement=movement, reversed_by=reversed_by, form=form)
    return render_template("movements/show.html", **context), status
