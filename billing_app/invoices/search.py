"""The invoice list's text search: a substring of the printed number or of the customer's
name, case-insensitive, found through indexes rather than by scanning every invoice.

How a text is looked up (docs/web.md, "Invoice list at 100 000 invoices"):

1. the account's customers whose name contains it (the customers table is small next to
   the invoices; at most CUSTOMER_CAP + 1 ids are read);
2. the invoices whose number contains it, through a trigram index (migration 0005:
   pg_trgm GIN on PostgreSQL, the FTS5 trigram table `invoice_number_search` on SQLite;
   at most NUMBER_CAP + 1 ids are read). A trigram index needs three characters.
3. Few matches on both sides ("selective"): the page is taken from those invoices only
   (the matched customers' invoices through `ix_invoices_account_customer_created`, the
   numbered ones by id), sorted, LIMIT page + 1. Many matches, or a text shorter than
   three characters ("broad"): the list walks its sort index as without a text and
   filters, which finds a page within the first few hundred rows when matches are dense.

The FTS5 table of SQLite is an external-content index on `invoices.rowid`: a statement
that renumbers rowids (VACUUM, or Alembic's batch "move and copy" of the invoices table
in a later migration) must be followed by
`INSERT INTO invoice_number_search(invoice_number_search) VALUES ('rebuild')`, and a
migration that recreates `invoices` must recreate its triggers (see migration 0005).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import and_, bindparam, column, literal_column
from sqlalchemy import text as sql_text
from sqlalchemy.engine import Connection

from ..crud import contains_pattern

CUSTOMER_CAP = 50
NUMBER_CAP = 1000
MIN_INDEXED = 3  # a trigram index cannot narrow a shorter text

# Schema objects of migration 0005 that the models do not describe.
SEARCH_TABLE = "invoice_number_search"
TRGM_INDEX = "ix_invoices_number_trgm"


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Alembic's filter: the search index is not in the models, autogenerate must not
    propose to drop it (used by migrations/env.py and tests/test_migrations.py)."""
    if type_ == "table" and name and name.startswith(SEARCH_TABLE):
        return False
    return not (type_ == "index" and name == TRGM_INDEX)


# The FTS5 index is only used for a LIKE without ESCAPE: the trigram lookup takes the text
# with its LIKE characters turned into `_` (a superset), and the number itself is then
# compared with the exact, escaped pattern. CROSS JOIN keeps the FTS table as SQLite's
# outer loop (a plain join walked the account's invoices and probed the index per row).
_COUNT_SQLITE = sql_text(
    "SELECT count(*) FROM (SELECT 1 FROM invoice_number_search "
    "CROSS JOIN invoices ON invoices.rowid = invoice_number_search.rowid "
    "WHERE invoice_number_search.invoice_number LIKE :index_pattern "
    "AND invoices.account_id = :account_id "
    "AND invoices.invoice_number LIKE :pattern ESCAPE '\\' LIMIT :limit) AS matches"
)
_COUNT_PG = sql_text(
    "SELECT count(*) FROM (SELECT 1 FROM invoices WHERE invoice_number ILIKE :pattern "
    "ESCAPE '\\' AND account_id = :account_id LIMIT :limit) AS matches"
)
_LIKE_SPECIAL = re.compile(r"[%_\\]")


def index_pattern(text: str) -> str:
    """The superset pattern the FTS5 trigram index is asked with (LIKE without ESCAPE)."""
    return f"%{_LIKE_SPECIAL.sub('_', text)}%"


def count_number_matches(conn: Connection, account_id: uuid.UUID, text: str, limit: int) -> int:
    """How many of the account's invoices have a printed number containing `text`
    (case-insensitively), counting no further than `limit`, through the trigram index."""
    params: dict[str, Any] = {"pattern": contains_pattern(text), "limit": limit}
    if conn.dialect.name == "postgresql":
        stmt = _COUNT_PG
        params["account_id"] = account_id
    else:
        stmt = _COUNT_SQLITE
        params["account_id"] = account_id.hex  # how SQLAlchemy's Uuid stores it on SQLite
        params["index_pattern"] = index_pattern(text)
    return int(conn.execute(stmt, params).scalar_one())


def number_condition(sqlite: bool, invoices: Any) -> Any:
    """The WHERE clause of a UNION branch holding the account's invoices whose number
    contains the text, driven by the trigram index, with the bind parameters `pattern`
    (`contains_pattern`), `account_id` and, on SQLite, `index_pattern`. The ids stay in
    the database (read into Python and sent back, 200 of them cost more than the rest of
    the page)."""
    pattern = invoices.c.invoice_number.ilike(bindparam("pattern"), escape="\\")
    if not sqlite:
        # The planner picks the GIN index for a selective ILIKE by itself.
        return and_(invoices.c.account_id == bindparam("account_id"), pattern)
    in_index = literal_column("invoices.rowid").in_(
        sql_text("SELECT rowid FROM invoice_number_search WHERE invoice_number LIKE :index_pattern")
        .bindparams(bindparam("index_pattern"))
        .columns(column("rowid"))
    )
    # `+column` keeps SQLite from using an index on account_id instead of the rowids.
    scoped = literal_column("+invoices.account_id", invoices.c.account_id.type) == bindparam(
        "account_id"
    )
    return and_(in_index, scoped, pattern)
