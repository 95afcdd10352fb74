"""Location pages. Reads through app.services.catalog; writes through app.services.locations."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from wtforms import SelectChoice

from app.auth.roles import role_required
from app.services import admin, catalog, counts, locations
from app.services.errors import DomainError, UnknownLocation
from app.web.common import attach_error, confirm_page, domain_message
from app.web.locations import bp
from app.web.locations.forms import EditLocationForm, LocationActiveForm, LocationForm, WarehouseForm


def _page(warehouse_form: WarehouseForm | None = None, location_form: LocationForm | None = None) -> str:
    warehouses = catalog.list_warehouses()
    location_form = location_form or LocationForm()
    location_form.warehouse.choices = [SelectChoice(w.code, f"{w.code} {w.name}") for w in warehouses if w.active]
    return render_template(
        "locations/index.html",
        warehouses=warehouses,
        locations=catalog.list_locations(warehouse=request.args.get("warehouse") or None),
        warehouse_form=warehouse_form or WarehouseForm(),
        location_form=location_form,
        active_form=LocationActiveForm(),
        selected=request.args.get("warehouse", ""),
    )


@bp.get("")
@role_required("viewer")
def index() -> Any:
    return _page()


@bp.get("/<code>")
@role_required("viewer")
def show(code: str) -> Any:
    """What is in this location, with the ways to count it, move stock out, label it and read its
    history."""
    try:
        location = catalog.get_location(code)
    except UnknownLocation:
        abort(404, description=_("No location with code %(code)s.", code=code))
    stock = catalog.list_location_stock(code=code)
    blind = counts.hidden_places(current_user.role, skus=[row.sku for row in stock])
    hidden_skus = {sku for sku, place in blind if place == location.code}
    return render_template("locations/show.html", location=location, stock=stock, hidden_skus=hidden_skus)


@bp.post("/warehouses")
@role_required("manager")
def create_warehouse() -> Any:
    form = WarehouseForm()
    if not form.validate_on_submit():
        return _page(warehouse_form=form), 422
    try:
        warehouse = locations.create_warehouse(code=form.code.data, name=form.name.data)
    except DomainError as error:
        attach_error(form, error)
        return _page(warehouse_form=form), error.status
    flash(_("Warehouse %(code)s created.", code=warehouse.code), "success")
    return redirect(url_for(".index"), 303)


@bp.post("")
@role_required("manager")
def create() -> Any:
    form = LocationForm()
    form.warehouse.choices = [SelectChoice(w.code, w.code) for w in catalog.list_warehouses() if w.active]
    if not form.validate_on_submit():
        return _page(location_form=form), 422
    try:
        location = locations.create_location(warehouse=form.warehouse.data, code=form.code.data, name=form.name.data)
    except DomainError as error:
        attach_error(form, error)
        return _page(location_form=form), error.status
    flash(_("Location %(code)s created.", code=location.code), "success")
    return redirect(url_for(".index"), 303)


@bp.route("/<code>/edit", methods=["GET", "POST"])
@role_required("manager")
def edit(code: str) -> Any:
    found = [row for row in catalog.list_locations() if row.code == code]
    if not found:
        abort(404, description=_("No location with code %(code)s.", code=code))
    form = EditLocationForm(name=found[0].name)
    if form.validate_on_submit():
        admin.rename_location(code=code, name=form.name.data or "")
        flash(_("Location %(code)s saved.", code=code), "success")
        return redirect(url_for(".index"), 303)
    return render_template("locations/edit.html", form=form, location=found[0]), 422 if form.is_submitted() else 200


@bp.get("/<code>/deactivate")
@role_required("manager")
def confirm_deactivate(code: str) -> Any:
    if not any(row.code == code for row in catalog.list_locations()):
        abort(404, description=_("No location with code %(code)s.", code=code))
    return confirm_page(
        heading=_("Deactivate location %(code)s?", code=code),
        message=_("Nothing can be received into or moved to an inactive location. It can be reactivated later."),
        action=url_for(".set_active", code=code),
        button=_("Deactivate"),
        cancel_url=url_for(".index"),
        hidden={"active": "0"},
    )


@bp.post("/<code>/active")
@role_required("manager")
def set_active(code: str) -> Any:
    form = LocationActiveForm()
    active = form.active.data == "1"
    if form.validate_on_submit():
        try:
            locations.set_location_active(code=code, active=active)
        except DomainError as error:
            flash(domain_message(error), "error")
            return _page(), error.status
        flash(
            _("Location %(code)s reactivated.", code=code)
            if active
            else _("Location %(code)s deactivated.", code=code),
            "success",
        )
    return redirect(url_for(".index"), 303)
