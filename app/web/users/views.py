"""Admin pages for users and API tokens. A new token is shown once and never again."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from wtforms import SelectChoice

from app.auth.roles import role_required
from app.models import ROLES
from app.services import admin, users
from app.services.errors import DomainError
from app.web.common import attach_error, confirm_page, domain_message
from app.web.i18n import role_label
from app.web.users import bp
from app.web.users.forms import (
    ActiveForm,
    CreateTokenForm,
    CreateUserForm,
    ResetPasswordForm,
    RevokeTokenForm,
    RoleForm,
    TokenNameForm,
)

log = logging.getLogger("app.audit")


def _roles(form: Any) -> None:
    form.role.choices = [SelectChoice(r, role_label(r)) for r in ROLES]


def _last_admin_message(error: DomainError) -> str:
    if error.extras.get("last_admin"):
        return _("The last active administrator must stay an active administrator.")
    return domain_message(error)


@bp.get("")
@role_required("admin")
def index() -> Any:
    form = CreateUserForm()
    _roles(form)
    return render_template("users/index.html", users=admin.list_users(), form=form)


@bp.post("")
@role_required("admin")
def create() -> Any:
    form = CreateUserForm()
    _roles(form)
    if form.validate_on_submit():
        try:
            user = users.create_user(
                username=form.username.data,
                password=form.password.data,
                role=form.role.data,
                display_name=form.display_name.data or "",
            )
        except DomainError as error:
            attach_error(form, error)
            return render_template("users/index.html", users=admin.list_users(), form=form), error.status
        log.info("user created", extra={"username": current_user.username, "target": user.username, "role": user.role})
        flash(_("User %(name)s created.", name=user.username), "success")
        return redirect(url_for(".index"), 303)
    return render_template("users/index.html", users=admin.list_users(), form=form), 422


def _edit_page(username: str, status: int = 200, **forms: Any) -> Any:
    user = admin.get_user(username)
    role_form = forms.get("role_form") or RoleForm(role=user.role)
    _roles(role_form)
    return render_template(
        "users/edit.html",
        user=user,
        role_form=role_form,
        active_form=ActiveForm(),
        password_form=forms.get("password_form") or ResetPasswordForm(),
    ), status


@bp.get("/<username>")
@role_required("admin")
def edit(username: str) -> Any:
    return _edit_page(username)


@bp.post("/<username>/role")
@role_required("admin")
def set_role(username: str) -> Any:
    form = RoleForm()
    _roles(form)
    if not form.validate_on_submit():
        return _edit_page(username, 422, role_form=form)
    try:
        admin.set_role(username=username, role=form.role.data)
    except DomainError as error:
        form.form_errors.append(_last_admin_message(error))
        return _edit_page(username, error.status, role_form=form)
    log.info("role changed", extra={"username": current_user.username, "target": username, "role": form.role.data})
    flash(_("Role of %(name)s changed.", name=username), "success")
    return redirect(url_for(".edit", username=username), 303)


@bp.get("/<username>/deactivate")
@role_required("admin")
def confirm_deactivate(username: str) -> Any:
    user = admin.get_user(username)
    return confirm_page(
        heading=_("Deactivate %(name)s?", name=user.username),
        message=_("%(name)s is signed out at once and their API tokens stop working.", name=user.username),
        action=url_for(".set_active", username=user.username),
        button=_("Deactivate"),
        cancel_url=url_for(".edit", username=user.username),
        hidden={"active": "0"},
    )


@bp.post("/<username>/active")
@role_required("admin")
def set_active(username: str) -> Any:
    form = ActiveForm()
    if form.validate_on_submit():
        active = form.active.data == "1"
        try:
            admin.set_active(username=username, active=active)
        except DomainError as error:
            flash(_last_admin_message(error), "error")
            return _edit_page(username, error.status)
        log.info("user activation", extra={"username": current_user.username, "target": username, "active": active})
        flash(
            _("%(name)s can sign in again.", name=username) if active else _("%(name)s is deactivated.", name=username),
            "success",
        )
    return redirect(url_for(".edit", username=username), 303)


@bp.post("/<username>/password")
@role_required("admin")
def reset_password(username: str) -> Any:
    form = ResetPasswordForm()
    if not form.validate_on_submit():
        return _edit_page(username, 422, password_form=form)
    users.set_password(username=username, password=form.password.data)
    log.info("password reset", extra={"username": current_user.username, "target": username})
    flash(_("Password of %(name)s reset.", name=username), "success")
    return redirect(url_for(".edit", username=username), 303)


def _token_form() -> CreateTokenForm:
    form = CreateTokenForm()
    form.username.choices = [SelectChoice(u.username, u.username) for u in admin.list_users() if u.active]
    form.scope.choices = [SelectChoice("read", _("Read")), SelectChoice("write", _("Read and write"))]
    return form


def _tokens_page(form: CreateTokenForm, new_token: str | None = None) -> str:
    return render_template("users/tokens.html", tokens=admin.list_tokens(), form=form, new_token=new_token)


@bp.get("/tokens")
@role_required("admin")
def tokens() -> Any:
    return _tokens_page(_token_form())


@bp.post("/tokens")
@role_required("admin")
def create_token() -> Any:
    form = _token_form()
    if not form.validate_on_submit():
        return _tokens_page(form), 422
    try:
        token, text = users.create_token(
            username=form.username.data,
            scope=form.scope.data,
            name=form.name.data,
            expires_in=timedelta(days=form.expires_days.data) if form.expires_days.data else None,
        )
    except DomainError as error:
        attach_error(form, error)
        return _tokens_page(form), error.status
    log.info(
        "token created", extra={"username": current_user.username, "target": form.username.data, "prefix": token.prefix}
    )
    # Shown in this response only; the page is not cached and the token is never stored in clear.
    response = _tokens_page(_token_form(), new_token=text)
    return response, 201, {"Cache-Control": "no-store"}


def _token_or_404(token_id: int) -> Any:
    token = admin.get_token(token_id)
    if token is None:
        abort(404, description=_("No token #%(id)s.", id=token_id))
    return token


@bp.route("/tokens/<int:token_id>/edit", methods=["GET", "POST"])
@role_required("admin")
def edit_token(token_id: int) -> Any:
    token = _token_or_404(token_id)
    form = TokenNameForm(name=token.name)
    if form.validate_on_submit():
        try:
            admin.rename_token(token_id=token_id, name=form.name.data)
        except DomainError as error:
            attach_error(form, error)
            return render_template("users/token_edit.html", form=form, token=token), error.status
        flash(_("Token %(prefix)s… saved.", prefix=token.prefix), "success")
        return redirect(url_for(".tokens"), 303)
    return render_template("users/token_edit.html", form=form, token=token), 422 if form.is_submitted() else 200


@bp.get("/tokens/<int:token_id>/revoke")
@role_required("admin")
def confirm_revoke(token_id: int) -> Any:
    token = _token_or_404(token_id)
    return confirm_page(
        heading=_("Revoke token %(prefix)s…?", prefix=token.prefix),
        message=_(
            "Programs using it (%(name)s) are refused from now on. A revoked token cannot be restored.", name=token.name
        ),
        action=url_for(".revoke_token", token_id=token_id),
        button=_("Revoke"),
        cancel_url=url_for(".tokens"),
    )


@bp.post("/tokens/<int:token_id>/revoke")
@role_required("admin")
def revoke_token(token_id: int) -> Any:
    if RevokeTokenForm().validate_on_submit():
        try:
            token = users.revoke_token(token_id=token_id)
        except DomainError as error:
            flash(domain_message(error), "error")
        else:
            log.info("token revoked", extra={"username": current_user.username, "prefix": token.prefix})
            flash(_("Token %(prefix)s… revoked.", prefix=token.prefix), "success")
    return redirect(url_for(".tokens"), 303)
