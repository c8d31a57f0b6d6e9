"""Fixtures: a migrated database per test (SQLite by default, PostgreSQL when
TEST_DATABASE_URL is set), the app, its client, accounts with API keys, a live server.

The schema is only ever made by the migrations, as in production: SQLite migrates one
template file per session and copies it for each test; PostgreSQL migrates once and each
test starts from truncated tables.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from werkzeug.serving import make_server

from billing_app import create_app
from billing_app.config import normalise_database_url
from billing_app.extensions import db

PG_URL = os.environ.get("TEST_DATABASE_URL")


def pytest_report_header(config: pytest.Config) -> str:
    return f"database: {'PostgreSQL ' + PG_URL if PG_URL else 'SQLite (per-test file)'}"


def _migrate(url: str, instance: Path) -> None:
    from flask_migrate import upgrade

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "test"})
    app.instance_path = str(instance)
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture(scope="session")
def database_template(tmp_path_factory: pytest.TempPathFactory) -> str:
    """SQLite: path of a migrated template file. PostgreSQL: the URL, freshly migrated."""
    if PG_URL:
        engine = create_engine(normalise_database_url(PG_URL))
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        _migrate(PG_URL, tmp_path_factory.mktemp("instance"))
        return PG_URL
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    _migrate(f"sqlite:///{path}", path.parent)
    return str(path)


def _truncate_all(url: str) -> None:
    engine = create_engine(normalise_database_url(url))
    with engine.begin() as conn:
        tables = [
            row[0]
            for row in conn.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename <> 'alembic_version'"
                )
            )
        ]
        if tables:
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def database_url(database_template: str, tmp_path: Path) -> str:
    if PG_URL:
        _truncate_all(PG_URL)
        return PG_URL
    target = tmp_path / "test.sqlite3"
    shutil.copy(database_template, target)
    return f"sqlite:///{target}"


@pytest.fixture
def is_postgres() -> bool:
    return bool(PG_URL)


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    app = create_app(
        {
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret",
            "TESTING": True,
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 30, "max_overflow": 30} if PG_URL else {},
        }
    )
    app.instance_path = str(tmp_path / "instance")
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> Any:
    return app.test_cli_runner()


@dataclass
class Tenant:
    """An account as a test sees it: ids, its API key, ready-made auth headers."""

    account_id: Any
    email: str
    password: str
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def fail_audit_record(patch: pytest.MonkeyPatch, action: str, message: str) -> None:
    """Make `audit.record` raise RuntimeError(message) for `action`: a failure late in a
    write transaction, after its other statements ran. Other actions record as usual."""
    from billing_app.audit import service as audit_service

    real = audit_service.record

    def failing(account_id: Any, recorded: str, *args: Any, **kwargs: Any) -> Any:
        if recorded == action:
            raise RuntimeError(message)
        return real(account_id, recorded, *args, **kwargs)

    patch.setattr(audit_service, "record", failing)


def make_tenant(app: Flask, name: str, email: str) -> Tenant:
    from billing_app.accounts.service import create_account

    with app.app_context():
        new = create_account(name, email, "correct horse battery")
        return Tenant(new.account.id, email, "correct horse battery", new.api_key)


@pytest.fixture
def tenant(app: Flask) -> Tenant:
    return make_tenant(app, "Tenant One GmbH", "one@example.com")


@pytest.fixture
def other_tenant(app: Flask) -> Tenant:
    return make_tenant(app, "Tenant Two Ltd", "two@example.com")


class Api:
    """A thin JSON client over the Flask test client, authenticated as one tenant."""

    def __init__(self, client: FlaskClient, tenant: Tenant):
        self.client = client
        self.tenant = tenant

    def _call(
        self,
        method: str,
        path: str,
        json: Any = None,
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> Any:
        merged = {**self.tenant.headers, **(headers or {})}
        return self.client.open(path, method=method, json=json, headers=merged, **kw)

    def get(self, path: str, **kw: Any) -> Any:
        return self._call("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self._call("POST", path, json, **kw)

    def put(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self._call("PUT", path, json, **kw)

    def patch(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self._call("PATCH", path, json, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self._call("DELETE", path, **kw)

    # Shortcuts used across tests.
    def customer(self, external_id: str = "cust-1", **extra: Any) -> dict[str, Any]:
        resp = self.post(
            "/v1/customers/",
            {"external_id": external_id, "name": "Customer " + external_id, **extra},
        )
        assert resp.status_code == 201, resp.get_json()
        return resp.get_json()  # type: ignore[no-any-return]

    def invoice(
        self, customer_id: str, lines: list[dict[str, Any]] | None = None, **extra: Any
    ) -> dict[str, Any]:
        lines = lines or [
            {"description": "Service", "quantity": 2, "unit_price": 15000, "amount": 30000}
        ]
        resp = self.post(
            "/v1/invoices/one_off",
            {"customer_id": customer_id, "currency": "EUR", "line_items": lines, **extra},
        )
        assert resp.status_code == 200, resp.get_json()
        return resp.get_json()  # type: ignore[no-any-return]


@pytest.fixture
def api(client: FlaskClient, tenant: Tenant) -> Api:
    return Api(client, tenant)


@pytest.fixture
def other_api(client: FlaskClient, other_tenant: Tenant) -> Api:
    return Api(client, other_tenant)


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """The app on a real socket (threaded), for tests that need parallel requests over
    separate connections. Yields the base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def row_counts(app: Flask) -> dict[str, int]:
    """Rows per table: tests compare before/after to prove a failed request changed nothing."""
    with app.app_context():
        counts = {}
        for table in db.metadata.sorted_tables:
            counts[table.name] = db.session.execute(
                text(f"SELECT count(*) FROM {table.name}")
            ).scalar_one()
        db.session.remove()
        return counts
