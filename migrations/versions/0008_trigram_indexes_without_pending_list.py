"""trigram indexes without a pending list (PostgreSQL): the GIN indexes of the invoice
list's text search (0005's on invoice numbers, 0006's on customer names) take new entries
into their trees at once instead of collecting them in a pending list, which every
search reads in full until VACUUM (or an insert that finds it over 4 MB) empties it

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 11:10:00.000000

A GIN index's pending list ("fastupdate", on by default) is not ordered: every search
reads all of it, whatever the text. On the 100 000 invoices of `bench/pages.py` (loaded
after 0005 made the index, analyzed but not vacuumed) it held 202 pages and 7 239 entries
for the numbers and every one of the 2 000 customers' names, and the text search's
statement took twice as long: the number lookup read 211 index pages instead of 9, and
for the names the planner chose a scan of the customers over an index whose pending list
it had to read whole. With autovacuum the list is emptied now and then and grows again
in between, so the search's cost depended on when VACUUM last ran. Without it an insert
updates the index itself: inserting an invoice row one by one took the same time with
and without, within the noise (0.55-0.75 ms either way, 3 000 rows each); the list is
emptied here once. PostgreSQL only: SQLite's FTS5 tables have no such list.
"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


INDEXES = ("ix_invoices_number_trgm", "ix_customers_name_trgm")


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        for name in INDEXES:
            op.execute(f"ALTER INDEX {name} SET (fastupdate = off)")
            # What is already in the list moves into the tree (as VACUUM would).
            op.execute(f"SELECT gin_clean_pending_list('{name}'::regclass)")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for name in INDEXES:
            op.execute(f"ALTER INDEX {name} RESET (fastupdate)")
