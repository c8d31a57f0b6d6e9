"""billing_app: an open-source billing and invoicing server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask, Response, redirect, render_template, request, url_for

from .config import load_config
from .extensions import csrf, login_manager, migrate
from .extensions import db as orm  # `db` would be shadowed by the submodule billing_app.db

PACKAGE_DIR = Path(__file__).resolve().parent


def _resource_dir(name: str) -> Path:
    """Top-level folder in a checkout; inside the package in a built wheel."""
    inside = PACKAGE_DIR / name
    return inside if inside.is_dir() else PACKAGE_DIR.parent / name


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(
        __name__,
        template_folder=str(_resource_dir("templates")),
        static_folder=str(_resource_dir("static")),
        instance_relative_config=True,
    )
    app.config.update(load_config(app.instance_path, config))
    app.json.sort_keys = False  # type: ignore[attr-defined]

    orm.init_app(app)
    migrate.init_app(app, orm, directory=str(_resource_dir("migrations")))
    csrf.init_app(app)
    login_manager.init_app(app)
    from . import models  # noqa: F401  (every table registered for Alembic)

    with app.app_context():
        engine = orm.engine
        if engine.dialect.name == "sqlite":
            from .db import install_sqlite_tuning

            install_sqlite_tuning(engine, app.config["SQLITE_BUSY_TIMEOUT_MS"])

    from .api import dialect_a, dialect_b
    from .api.openapi import bp as openapi_bp

    app.register_blueprint(dialect_a.bp, url_prefix="/v1")
    app.register_blueprint(dialect_b.bp, url_prefix="/v1")
    app.register_blueprint(openapi_bp)
    from .documents.routes import bp as documents_bp  # the print page and its PDF

    app.register_blueprint(documents_bp, url_prefix="/invoices")

    from .cli import billing_cli

    app.cli.add_command(billing_cli)
    _register_error_pages(app)

    from .web import exempt_json_api_from_csrf, init_web

    init_web(app)

    @app.get("/")
    def index() -> Any:
        """The start page is the invoice list (which asks for a sign-in first)."""
        return redirect(url_for("invoices.list_invoices"))

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    exempt_json_api_from_csrf(app)  # last: after every /v1 blueprint is registered
    return app


def _register_error_pages(app: Flask) -> None:
    """JSON for /v1 (dialect A's `detail`, until a route answers in its own dialect),
    HTML pages for people."""
    from werkzeug.exceptions import HTTPException

    from .api.http import json_response

    def wants_json() -> bool:
        return request.path.startswith("/v1/") or request.path == "/v1"

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        if wants_json():
            return json_response({"detail": exc.description or exc.name}, exc.code or 500)
        return render_template("error.html", error=exc), exc.code or 500

    @app.errorhandler(Exception)
    def _server_error(exc: Exception) -> Any:
        orm.session.rollback()
        app.logger.exception("Unhandled error")
        if wants_json():
            return json_response({"detail": "Internal server error"}, 500)
        return Response(render_template("error.html", error=None), status=500)
