"""The migrations are the only way the schema is made, and they make exactly the models."""

from __future__ import annotations

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
