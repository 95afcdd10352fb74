"""Inventory (库存管理): the application factory."""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from app.config import INSTANCE_DIR, SETTINGS_KEY, Config
from app.extensions import babel, csrf, db, login_manager, migrate
from app.observability import init_observability
from app.services.transaction import engine_options, install_engine_hooks

MIGRATIONS_DIR = str(INSTANCE_DIR.parent / "migrations")


def create_app(config: Config | None = None) -> Flask:
    config = config or Config.from_env()
    app = Flask(
        __name__,
        instance_path=str(INSTANCE_DIR),
        template_folder="../templates",
        static_folder="../static",
    )
    app.config.from_object(config)
    app.extensions[SETTINGS_KEY] = config
    if config.INVENTORY_TRUSTED_PROXY_HOPS:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]  # Flask's documented way to wrap WSGI middleware
            app.wsgi_app, x_for=config.INVENTORY_TRUSTED_PROXY_HOPS, x_proto=config.INVENTORY_TRUSTED_PROXY_HOPS
        )
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
        **engine_options(config.SQLALCHEMY_DATABASE_URI),
        **config.SQLALCHEMY_ENGINE_OPTIONS,
    }
    INSTANCE_DIR.mkdir(exist_ok=True)

    _init_extensions(app)
    init_observability(app)
    _register_blueprints(app)

    from app.backup_cli import register_backup_cli
    from app.cli import register_cli
    from app.errors import register_error_handlers
    from app.jobs_cli import register_jobs_cli
    from app.notify_cli import register_notify_cli

    register_error_handlers(app)
    register_cli(app)
    register_notify_cli(app)
    register_jobs_cli(app)
    register_backup_cli(app)
    return app


def _init_extensions(app: Flask) -> None:
    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR, render_as_batch=True)
    login_manager.init_app(app)
    login_manager.session_protection = "strong"
    csrf.init_app(app)
    from app import auth  # noqa: F401 - registers the user loader
    from app.web import i18n

    babel.init_app(app, **i18n.babel_options(app))

    with app.app_context():
        install_engine_hooks(db.engine)


def _register_blueprints(app: Flask) -> None:
    """Every blueprint, in one list: the navigation links to each of them unconditionally."""
    from app import api
    from app.auth import views as auth
    from app.observability import health
    from app.web import (
        backups,
        counts,
        dashboard,
        i18n,
        imports,
        items,
        labels,
        locations,
        lots,
        low_stock,
        movements,
        notifications,
        reservations,
        scan,
        security_headers,
        settings,
        users,
    )
    from app.web.codes import CodeConverter, RowIdConverter

    app.url_map.converters["code"] = CodeConverter  # serials and lot codes in URLs, "/" and all
    app.url_map.converters["int"] = RowIdConverter  # before any rule is added: rules bind it then
    api.init_app(app)
    blueprints = (
        health.bp,
        auth.bp,
        api.bp,
        api.docs_bp,
        dashboard.bp,
        items.bp,
        locations.bp,
        movements.bp,
        low_stock.bp,
        lots.bp,
        reservations.bp,
        scan.bp,
        counts.bp,
        imports.bp,
        labels.bp,
        users.bp,
        notifications.bp,
        backups.bp,
        settings.bp,
    )
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    i18n.init_templates(app)
    security_headers.init_app(app)
