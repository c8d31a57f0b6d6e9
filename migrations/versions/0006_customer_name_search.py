"""customer name search: a trigram index on customers.name (PostgreSQL), so the invoice
list's text search finds the customers whose name contains the text through the index
instead of reading every customer of every account

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 05:20:00.000000

PostgreSQL only (pg_trgm GIN, the extension migration 0005 created). SQLite reads the
customers by scan as before: a LIKE '%text%' uses no SQLite index, and FTS5 for names
would need triggers for a table that is small next to the invoices. Like 0005's index it
is not in the models (an operator class is not portable):
`billing_app.invoices.search.include_name` keeps autogenerate from seeing it.
"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute("CREATE INDEX ix_customers_name_trgm ON customers USING gin (name gin_trgm_ops)")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_customers_name_trgm")
