"""Admins choose where low-stock messages go and put dead letters back in the queue."""

from __future__ import annotations

import logging
from typing import Any

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.auth.roles import role_required
from app.services import notifications
from app.services.errors import DomainError
from app.web.common import attach_error, confirm_page, domain_message
from app.web.notifications import bp
from app.web.notifications.forms import ConfirmForm, CreateTargetForm, SubscriptionsForm, warehouse_choices

log = logging.getLogger("app.audit")


def _page(form: CreateTargetForm | None = None, status: int = 200) -> Any:
    codes = notifications.list_warehouse_codes()
    form = form or CreateTargetForm()
    form.warehouses.choices = warehouse_choices(codes)
    targets = notifications.list_targets()
    subscriptions = {}
    for target in targets:
        sub = SubscriptionsForm(prefix=f"t{target.id}", warehouses=target.warehouses)
        sub.warehouses.choices = warehouse_choices(codes)
        subscriptions[target.id] = sub
    return render_template(
        "notifications/index.html",
        form=form,
        targets=targets,
        subscriptions=subscriptions,
        dead_letters=notifications.list_dead_letters(),
        confirm=ConfirmForm(),
    ), status


@bp.get("")
@role_required("admin")
def index() -> Any:
    return _page()


@bp.post("/targets")
@role_required("admin")
def create_target() -> Any:
    form = CreateTargetForm()
    form.warehouses.choices = warehouse_choices(notifications.list_warehouse_codes())
    if not form.validate_on_submit():
        return _page(form, 422)
    try:
        target = notifications.create_target(
            name=form.name.data,
            kind=form.kind.data,
            url=form.url.data,
            secret=form.secret.data,
            warehouses=form.warehouses.data or [],
        )
    except DomainError as error:
        attach_error(form, error)
        return _page(form, error.status)
    log.info("notification target created", extra={"username": current_user.username, "target": target.name})
    flash(_("Notification target %(name)s created.", name=target.name), "success")
    return redirect(url_for(".index"), 303)


@bp.post("/targets/<int:target_id>/subscriptions")
@role_required("admin")
def subscriptions(target_id: int) -> Any:
    form = SubscriptionsForm(prefix=f"t{target_id}")
    form.warehouses.choices = warehouse_choices(notifications.list_warehouse_codes())
    if not form.validate_on_submit():
        flash(_("Choose warehouses from the list."), "error")
        return redirect(url_for(".index"), 303)
    if _run(lambda: notifications.set_subscriptions(target_id=target_id, warehouses=form.warehouses.data or [])):
        flash(_("Warehouses of the notification target saved."), "success")
    return redirect(url_for(".index"), 303)


@bp.post("/targets/<int:target_id>/active")
@role_required("admin")
def toggle(target_id: int) -> Any:
    if ConfirmForm().validate_on_submit():
        active = next((t.active for t in notifications.list_targets() if t.id == target_id), True)
        _run(lambda: notifications.set_target_active(target_id=target_id, active=not active))
    return redirect(url_for(".index"), 303)


@bp.get("/targets/<int:target_id>/delete")
@role_required("admin")
def confirm_delete(target_id: int) -> Any:
    target = next((t for t in notifications.list_targets() if t.id == target_id), None)
    if target is None:
        abort(404)
    return confirm_page(
        heading=_("Delete notification target %(name)s?", name=target.name),
        message=_(
            "Its subscriptions and delivery records are deleted with it. "
            "To stop messages for a while, pause it instead."
        ),
        action=url_for(".delete", target_id=target_id),
        button=_("Delete"),
        cancel_url=url_for(".index"),
    )


@bp.post("/targets/<int:target_id>/delete")
@role_required("admin")
def delete(target_id: int) -> Any:
    if ConfirmForm().validate_on_submit():
        _run(lambda: notifications.delete_target(target_id=target_id))
    return redirect(url_for(".index"), 303)


@bp.post("/dead-letters/<int:event_id>/retry")
@role_required("admin")
def retry(event_id: int) -> Any:
    if ConfirmForm().validate_on_submit() and _run(lambda: notifications.retry_dead_letter(event_id=event_id)):
        flash(_("The notification is queued again."), "success")
    return redirect(url_for(".index"), 303)


def _run(change: Any) -> bool:
    try:
        change()
    except DomainError as error:
        flash(domain_message(error), "error")
        return False
    return True
