"""The migrations are the only way the schema is made, and they make exactly the models."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from billing_app.extensions import db
from billing_app.invoices.search import include_name


def test_upgraded_schema_matches_the_models(app):
    with app.app_context():
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_name": include_name}
            )
            diff = compare_metadata(ctx, db.metadata)
        db.session.remove()
    assert diff == []


def test_flask_db_check_finds_nothing(runner):
    result = runner.invoke(args=["db", "check"])
    assert result.exit_code == 0, result.output


def test_text_search_indexes_exist_on_postgresql(app):
    """The trigram indexes the invoice list's text search relies on (0005 and 0006): the
    models do not describe them, so the comparison above cannot notice one missing."""
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("pg_trgm indexes are PostgreSQL's (SQLite: FTS5, tested elsewhere)")
        with db.engine.connect() as conn:
            names = set(
                conn.exec_driver_sql(
                    "SELECT indexname FROM pg_indexes WHERE strpos(indexdef, 'gin_trgm_ops') > 0"
                ).scalars()
            )
        db.session.remove()
    assert names == {"ix_invoices_number_trgm", "ix_customers_name_trgm"}


def test_text_search_indexes_keep_no_pending_list_on_postgresql(app):
    """Migration 0008: the trigram indexes take new entries into their trees at once (a
    GIN pending list is read whole by every search until VACUUM empties it)."""
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("pg_trgm indexes are PostgreSQL's")
        with db.engine.connect() as conn:
            options = dict(
                conn.exec_driver_sql(
                    "SELECT relname, reloptions FROM pg_class WHERE relname IN "
                    "('ix_invoices_number_trgm', 'ix_customers_name_trgm')"
                ).all()
            )
        db.session.remove()
    assert options == {
        "ix_invoices_number_trgm": ["fastupdate=off"],
        "ix_customers_name_trgm": ["fastupdate=off"],
    }
