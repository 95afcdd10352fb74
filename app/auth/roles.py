"""Roles, checked on the server for every page and every write: viewer < clerk < manager < admin."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import abort
from flask_babel import gettext as _
from flask_login import current_user

from app.extensions import login_manager

F = TypeVar("F", bound=Callable[..., Any])


def role_required(role: str) -> Callable[[F], F]:
    """Sign-in required (anonymous visitors go to the sign-in page and come back), then at least
    `role`, else 403."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not current_user.has_role(role):
                from app.web.i18n import role_label

                abort(
                    403,
                    description=_(
                        "This page or action needs the %(needed)s role or above; yours is %(yours)s. "
                        "An administrator can change it.",
                        needed=role_label(role),
                        yours=role_label(current_user.role),
                    ),
                )
            return view(*args, **kwargs)

        wrapper.required_role = role  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator


def can(role: str) -> bool:
    """For templates: hide what the signed-in user's role cannot do."""
    return bool(current_user.is_authenticated and current_user.has_role(role))
