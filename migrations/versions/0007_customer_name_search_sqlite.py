"""customer name search on SQLite: an FTS5 trigram table on customers.name kept by
triggers, so the invoice list's text search finds the customers whose name contains the
text through an index instead of reading every customer of the account (as 0005 does for
invoice numbers; PostgreSQL has had its pg_trgm index since 0006)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 09:10:00.000000

SQLite only: PostgreSQL's index is 0006's. Like 0005's table it is not in the models
(SQLAlchemy cannot describe an FTS5 table): `billing_app.invoices.search.include_name`
keeps autogenerate from seeing it, here and in tests/unit/test_migrations.py.
"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


SQLITE_UPGRADE = [
    # External content: the index only; the names are read from customers by rowid.
    "CREATE VIRTUAL TABLE customer_name_search USING fts5("
    "name, content='customers', content_rowid='rowid', tokenize='trigram')",
    "CREATE TRIGGER customer_name_search_insert AFTER INSERT ON customers BEGIN "
    "INSERT INTO customer_name_search(rowid, name) VALUES (new.rowid, new.name); END",
    "CREATE TRIGGER customer_name_search_delete AFTER DELETE ON customers BEGIN "
    "INSERT INTO customer_name_search(customer_name_search, rowid, name) "
    "VALUES ('delete', old.rowid, old.name); END",
    "CREATE TRIGGER customer_name_search_update AFTER UPDATE OF name ON customers "
    "WHEN old.name IS NOT new.name BEGIN "
    "INSERT INTO customer_name_search(customer_name_search, rowid, name) "
    "VALUES ('delete', old.rowid, old.name); "
    "INSERT INTO customer_name_search(rowid, name) VALUES (new.rowid, new.name); END",
    "INSERT INTO customer_name_search(customer_name_search) VALUES ('rebuild')",
]

SQLITE_DOWNGRADE = [
    "DROP TRIGGER IF EXISTS customer_name_search_update",
    "DROP TRIGGER IF EXISTS customer_name_search_delete",
    "DROP TRIGGER IF EXISTS customer_name_search_insert",
    "DROP TABLE IF EXISTS customer_name_search",
]


def upgrade():
    if op.get_bind().dialect.name == "sqlite":
        for statement in SQLITE_UPGRADE:
            op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        for statement in SQLITE_DOWNGRADE:
            op.execute(statement)
