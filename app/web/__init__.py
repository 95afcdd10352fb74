"""Server-rendered pages for warehouse staff: one blueprint per area, all behind sign-in."""

from __future__ import annotations

from flask import Flask


def register_pages(app: Flask) -> None:
    from app.auth import views as auth_views
    from app.web import dashboard, i18n, items, locations, low_stock, movements, security_headers, settings, users

    app.register_blueprint(auth_views.bp)
    for area in (dashboard, items, locations, movements, low_stock, users, settings):
        app.register_blueprint(area.bp)
    i18n.init_templates(app)
    security_headers.init_app(app)
