"""Inventory (库存管理): the application factory."""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from app.config import INSTANCE_DIR, Config
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
    if config.INVENTORY_TRUSTED_PROXY_HOPS:
        app.wsgi_app = ProxyFix(
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

    from app.cli import register_cli
    from app.errors import register_error_handlers
    from app.notify_cli import register_notify_cli

    register_error_handlers(app)
    register_cli(app)
    register_notify_cli(app)
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
    from app import api
    from app.observability import health
    from app.web.notifications import bp as notifications_bp

    app.register_blueprint(health.bp)
    app.register_blueprint(notifications_bp)
    api.init_app(app)
    from app.web import register_pages

    register_pages(app)
    from app.web import counts, imports, labels, scan

    for floor in (scan, counts, imports, labels):
        app.register_blueprint(floor.bp)
