"""invoice number search: a trigram index on the printed invoice number, so the invoice
list's text search finds numbers by substring without scanning every invoice (pg_trgm GIN
on PostgreSQL, an FTS5 trigram table kept by triggers on SQLite)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 09:10:00.000000

Neither object is in the models (SQLAlchemy cannot describe an FTS5 table or an operator
class portably): `billing_app.invoices.search.include_name` keeps autogenerate from
seeing them, here and in tests/unit/test_migrations.py.
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


SQLITE_UPGRADE = [
    # External content: the index only; the numbers are read from invoices by rowid.
    "CREATE VIRTUAL TABLE invoice_number_search USING fts5("
    "invoice_number, content='invoices', content_rowid='rowid', tokenize='trigram')",
    "CREATE TRIGGER invoice_number_search_insert AFTER INSERT ON invoices BEGIN "
    "INSERT INTO invoice_number_search(rowid, invoice_number) "
    "VALUES (new.rowid, new.invoice_number); END",
    "CREATE TRIGGER invoice_number_search_delete AFTER DELETE ON invoices BEGIN "
    "INSERT INTO invoice_number_search(invoice_number_search, rowid, invoice_number) "
    "VALUES ('delete', old.rowid, old.invoice_number); END",
    "CREATE TRIGGER invoice_number_search_update AFTER UPDATE OF invoice_number ON invoices "
    "WHEN old.invoice_number IS NOT new.invoice_number BEGIN "
    "INSERT INTO invoice_number_search(invoice_number_search, rowid, invoice_number) "
    "VALUES ('delete', old.rowid, old.invoice_number); "
    "INSERT INTO invoice_number_search(rowid, invoice_number) "
    "VALUES (new.rowid, new.invoice_number); END",
    "INSERT INTO invoice_number_search(invoice_number_search) VALUES ('rebuild')",
]

SQLITE_DOWNGRADE = [
    "DROP TRIGGER IF EXISTS invoice_number_search_update",
    "DROP TRIGGER IF EXISTS invoice_number_search_delete",
    "DROP TRIGGER IF EXISTS invoice_number_search_insert",
    "DROP TABLE IF EXISTS invoice_number_search",
]


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        # pg_trgm ships with PostgreSQL (contrib) and is a trusted extension since 13:
        # the database owner may create it.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(
            "CREATE INDEX ix_invoices_number_trgm ON invoices "
            "USING gin (invoice_number gin_trgm_ops)"
        )
    else:
        for statement in SQLITE_UPGRADE:
            op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_invoices_number_trgm")
    else:
        for statement in SQLITE_DOWNGRADE:
            op.execute(statement)
