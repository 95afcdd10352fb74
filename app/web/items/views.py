"""Item pages. Reads go through app.services.catalog; writes through app.services.items."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import get_timezone
from flask_babel import gettext as _
from flask_login import current_user

from app.auth.roles import role_required
from app.errors import problem
from app.services import catalog, codes, counts, dashboard, items, traceability
from app.services.errors import DomainError, EditedMeanwhile, InvalidInput, UnknownItem, UnknownSerial
from app.services.gs1 import GROUP_SEPARATOR
from app.web.charts import step_line
from app.web.common import attach_error, confirm_page, domain_message, gs1_fields, whole_number
from app.web.i18n import format_quantity
from app.web.items import bp
from app.web.items.forms import ArchiveItemForm, CategoryForm, EditItemForm, ItemForm

LIST_ARGS = ("q", "category", "warehouse", "low", "archived", "sort", "dir")


def _list_filters() -> dict[str, Any]:
    args = request.args
    archived = {"1": True, "all": None}.get(args.get("archived", ""), False)
    category = args.get("category", "")
    sort = args.get("sort", "sku")
    return {
        "q": args.get("q", "").strip() or None,
        "category_id": whole_number(category, maximum=2**31 - 1),
        "warehouse": args.get("warehouse") or None,
        "low_stock": args.get("low") == "1",
        "archived": archived,
        "sort": sort if sort in catalog.ITEM_SORTS else "sku",
        "descending": args.get("dir") == "desc",
    }


@bp.get("")
@role_required("viewer")
def index() -> Any:
    filters = _list_filters()
    try:
        page = catalog.list_items(**filters, after=request.args.get("after") or None)
    except InvalidInput:
        abort(400)
    args: dict[str, Any] = {k: v for k in LIST_ARGS if (v := request.args.get(k, "").strip())}
    blind = counts.hidden_places(current_user.role, skus=[row.sku for row in page.rows])
    # Keyset pages know no offset: the next-page link carries where it starts, for "51–100 / 3,000".
    start = (whole_number(request.args.get("start"), maximum=2**31) or 1) if request.args.get("after") else 1
    counted = {k: v for k, v in filters.items() if k not in ("sort", "descending")}
    next_start = start + len(page.rows)
    cap: int | None = None  # set when the total is a capped count
    if not page.next_cursor:
        total: int | None = next_start - 1  # the last page: the count is known without a query
    elif counted.get("q") or counted.get("warehouse"):
        # A search or a warehouse is not narrowed by an index: counting would read every match
        # (39 ms for a 100-match search of 100,000 items, 675 ms for a warehouse), beyond the
        # page's 40 ms budget. The list says "1–50, more follow" instead.
        total = None
    else:
        total, cap = catalog.count_items(**counted), catalog.COUNT_CAP
    return render_template(
        "items/index.html",
        page=page,
        total=total,
        count_cap=cap,
        start=start,
        hidden_skus={sku for sku, _code in blind},
        places=catalog.held_places([row.id for row in page.rows]),
        args=args,
        filters=filters,
        categories=items.list_categories(),
        warehouses=catalog.list_warehouses(),
        next_url=url_for(".index", **args, after=page.next_cursor, start=next_start) if page.next_cursor else None,
        first_url=url_for(".index", **args) if request.args.get("after") else None,
    )


def _local(points: list[Any]) -> list[Any]:
    zone = ZoneInfo(str(get_timezone()))
    return [(when.astimezone(zone), value) for when, value in points]


LOOKUP_MAX_CHARS = 100


@bp.app_template_global()
def item_lookup_messages() -> dict[str, str]:
    """What the item picker says, for templates/_macros/item_lookup.html ({n} and {location} are
    filled in by the script)."""
    return {
        "label": _("Matching items"),
        "none": _("No item matches; check the SKU, name or barcode."),
        "count": _("Matching items: {n}. Arrow keys to move, Enter to choose."),
        "nowhere": _("Not in stock anywhere."),
        "hidden": _("(being counted)"),
        "suggested": _("Location {location} suggested."),
        "lot": _("Lot {lot}"),
        "expiry": _("Expires {expiry}"),
        "serial": _("Serial {serial}"),
    }


@bp.get("/lookup")
@role_required("viewer")
def lookup() -> Any:
    """The stock forms' item picker (static/js/combobox.js): up to ten items matching `q`, each
    with its unit and stock per location, fullest first (the place to suggest); for a scanned GS1
    label, the item its GTIN names and what the label says (lot, expiry, serial, count)."""
    q = request.args.get("q", "").strip()
    # The group separator is the one control character allowed: a GS1 label's field separator.
    if len(q) > LOOKUP_MAX_CHARS or any(ord(c) < 32 and c != GROUP_SEPARATOR for c in q):
        message = _("Type at most %(n)s characters, without control characters.", n=LOOKUP_MAX_CHARS)
        return problem(400, _("Invalid search"), message, "invalid_input")
    try:
        label = codes.resolve_item_label(q)
    except DomainError as error:
        return problem(error.status, _("Unknown or invalid label"), domain_message(error), error.code)
    found = catalog.lookup_items(q) if label is None else catalog.lookup_items("", sku=label.code)
    # A counter sees no quantity of a place being counted (the count stays blind); such an item's
    # places are listed by code so their order does not tell either.
    blind = counts.blind_places(skus=[i.sku for i in found]) if counts.counts_blind(current_user.role) else set()
    results = []
    for item in found:
        hidden = {code for sku, code in blind if sku == item.sku}
        places = sorted(item.stock, key=lambda s: s.location) if hidden else item.stock
        stock = [
            {
                "location": s.location,
                "warehouse": s.warehouse,
                "quantity": None if s.location in hidden else format_quantity(s.quantity),
            }
            for s in places
        ]
        results.append({"sku": item.sku, "name": item.name, "unit": item.unit, "barcode": item.barcode, "stock": stock})
    # A scanned GS1 label also tells its lot, expiry, serial and count (for the form to fill in).
    response: Response = jsonify({"items": results, **({"label": gs1_fields(label.gs1)} if label else {})})
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<sku>")
@role_required("viewer")
def show(sku: str) -> Any:
    item = _item_or_404(sku)
    try:
        ledger = catalog.list_movements(sku=sku, after=request.args.get("after") or None)
    except InvalidInput:
        abort(400)
    # A counter sees no quantity of a place being counted: not the level, nor the history and
    # ledger it could be worked out from.
    hidden = {code for _, code in counts.hidden_places(current_user.role, skus=[item.sku])}
    history = [] if hidden else _local(dashboard.item_balance_history(item_id=item.id))
    span = history[-1][0] - history[0][0] if len(history) > 1 else timedelta(0)
    chart = step_line(
        history,
        _("On hand over time"),
        "%H:%M" if span < timedelta(days=2) else "%m-%d",
        reorder_point=item.reorder_point,
        unit=item.unit,
        chart_id="item-chart",
    )
    return render_template(
        "items/show.html",
        item=item,
        # A lot-tracked item has a level per lot at a place: the place's total here, per lot below.
        stock=traceability.per_location(catalog.list_stock(sku=sku)),
        hidden_locations=hidden,
        ledger=ledger,
        chart=chart,
        archive_form=ArchiveItemForm(),
        next_url=url_for(".show", sku=sku, after=ledger.next_cursor, _anchor="ledger") if ledger.next_cursor else None,
        **_tracked_stock(item),
    )


def _tracked_stock(item: Any) -> dict[str, Any]:
    """A lot-tracked item's stock per lot; a serial-tracked item's serials in stock (paged by
    `serials_after`). Nothing for an untracked item: its page stays as it was."""
    if item.tracking == "lot":
        return {"lots": traceability.item_lot_stock(item.id)}
    if item.tracking != "serial":
        return {}
    after = request.args.get("serials_after") or None
    try:
        serials = traceability.item_serials(item.id, after=after)
    except InvalidInput:
        abort(400)
    cursor = serials.next_cursor
    return {
        "serial_places": traceability.item_serial_places(item.id),
        "serials": serials,
        "serials_next_url": url_for(".show", sku=item.sku, serials_after=cursor, _anchor="serials") if cursor else None,
    }


@bp.get("/<sku>/serials/<code:serial>")
@role_required("viewer")
def serial(sku: str, serial: str) -> Any:
    """One serial: where it is now (or that it was issued) and every movement that moved it."""
    try:
        found = traceability.get_serial(sku, serial)
    except (UnknownItem, UnknownSerial):
        abort(404, description=_("No serial %(serial)s of item %(sku)s.", serial=serial, sku=sku))
    hidden = {code for _sku, code in counts.hidden_places(current_user.role, skus=[sku])}
    movements = traceability.serial_movements(found.id)
    if hidden:
        movements = list(catalog.hide_balances(movements, {(sku, code) for code in hidden}))
    # Where a serial is, at a place being counted, is that place's quantity one unit at a time.
    return render_template("items/serial.html", serial=found, movements=movements, hidden_here=found.location in hidden)


@bp.route("/new", methods=["GET", "POST"])
@role_required("manager")
def new() -> Any:
    form = ItemForm(categories=items.list_categories())
    if form.validate_on_submit():
        try:
            item = items.create_item(sku=form.sku.data, **form.to_input())
        except DomainError as error:
            attach_error(form, error)
            return _form_page(form, None), error.status
        flash(_("Item %(sku)s created.", sku=item.sku), "success")
        return redirect(url_for(".show", sku=item.sku), 303)
    return _form_page(form, None), 422 if form.is_submitted() else 200


@bp.route("/<sku>/edit", methods=["GET", "POST"])
@role_required("manager")
def edit(sku: str) -> Any:
    item = _item_or_404(sku)
    form = EditItemForm(item, categories=items.list_categories())
    if form.validate_on_submit():
        # Only what this page's user changed is written, checked against what the page showed.
        original = form.original_values()
        submitted = form.to_input()
        changed = submitted if original is None else items.changed_fields(sku, submitted, original)
        if not changed:
            flash(_("Nothing to save: %(sku)s is as it was.", sku=sku), "info")
            return redirect(url_for(".show", sku=sku), 303)
        expected = None if original is None else {name: original[name] for name in changed}
        try:
            items.update_item(sku=sku, expected=expected, **changed)
        except EditedMeanwhile as error:
            return _edited_meanwhile(form, sku, changed, error)
        except DomainError as error:
            attach_error(form, error)
            return _form_page(form, item), error.status
        flash(_("Item %(sku)s saved.", sku=sku), "success")
        return redirect(url_for(".show", sku=sku), 303)
    return _form_page(form, item), 422 if form.is_submitted() else 200


def _edited_meanwhile(form: EditItemForm, sku: str, changed: dict[str, Any], error: EditedMeanwhile) -> Any:
    """The page again, as the item is now but for this user's changes; each of those that someone
    else changed too says what it holds now. Saved again, the user's values win."""
    item = _item_or_404(sku)
    now = items.edited_values(item)
    form.rebase(item, kept=changed)
    for name in error.names:
        shown = format_quantity(now[name]) if isinstance(now[name], Decimal) else now[name]
        field = form._fields[name]
        field.errors = [
            *field.errors,
            _("Changed meanwhile to: %(value)s", value="—" if shown in (None, "") else shown),
        ]
    form.form_errors.append(
        _(
            "Someone else changed this item while you were editing it. It is shown as it is now, "
            "with your changes: check them and save again."
        )
    )
    return _form_page(form, item), 409


def _form_page(form: ItemForm, item: Any) -> str:
    return render_template("items/form.html", form=form, item=item)


def _item_or_404(sku: str) -> Any:
    try:
        return items.get_item(sku)
    except UnknownItem:
        abort(404, description=_("No item with SKU %(sku)s.", sku=sku))


@bp.get("/<sku>/archive")
@role_required("manager")
def confirm_archive(sku: str) -> Any:
    item = _item_or_404(sku)
    return confirm_page(
        heading=_("Archive %(sku)s %(name)s?", sku=item.sku, name=item.name),
        message=_("An archived item keeps its history but can no longer be received, issued or moved."),
        action=url_for(".archive", sku=sku),
        button=_("Archive"),
        cancel_url=url_for(".show", sku=sku),
    )


@bp.post("/<sku>/archive")
@role_required("manager")
def archive(sku: str) -> Any:
    return _set_archived(sku, archived=True)


@bp.post("/<sku>/restore")
@role_required("manager")
def restore(sku: str) -> Any:
    return _set_archived(sku, archived=False)


def _set_archived(sku: str, *, archived: bool) -> Any:
    """The message names the action asked for, decided before the write (an item read before it
    is refreshed by the commit and would tell the opposite)."""
    if not ArchiveItemForm().validate_on_submit():
        abort(400)
    _item_or_404(sku)
    items.archive_item(sku=sku, archived=archived)
    flash(_("Item %(sku)s archived.", sku=sku) if archived else _("Item %(sku)s restored.", sku=sku), "success")
    return redirect(url_for(".show", sku=sku), 303)


@bp.get("/categories")
@role_required("viewer")
def categories() -> Any:
    return _categories_page(CategoryForm()), 200


@bp.post("/categories")
@role_required("manager")
def create_category() -> Any:
    form = CategoryForm()
    if not form.validate_on_submit():
        return _categories_page(form), 422
    try:
        items.create_category(name=form.name.data, description=form.description.data or "")
    except DomainError as error:
        attach_error(form, error)
        return _categories_page(form), error.status
    flash(_("Category %(name)s created.", name=form.name.data), "success")
    return redirect(url_for(".categories"), 303)


def _categories_page(form: CategoryForm) -> str:
    return render_template("items/categories.html", form=form, categories=items.list_categories())
