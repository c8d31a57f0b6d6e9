"""The invoice list's text search: a substring of the printed number or of the customer's
name, case-insensitive, found through indexes rather than by scanning every invoice.

How a text is looked up (docs/web.md, "Invoice list at 100 000 invoices"):

1. the account's customers whose name contains it (at most CUSTOMER_CAP + 1 of them;
   through a trigram index: pg_trgm GIN on PostgreSQL, migration 0006; the FTS5 trigram
   table `customer_name_search` kept by triggers on SQLite, migration 0007; a text
   shorter than three characters reads the account's customers by scan);
2. the invoices whose number contains it, through a trigram index (migration 0005:
   pg_trgm GIN on PostgreSQL, the FTS5 trigram table `invoice_number_search` on SQLite;
   at most NUMBER_CAP + 1 of them). A trigram index needs three characters.
3. Few matches on both sides ("selective"): the page is taken from those invoices only
   (the matched customers' invoices through `ix_invoices_account_customer_created`, the
   numbered ones as the trigram lookup read them, less the matched customers' own),
   sorted, LIMIT page + 1, and only those rows joined to their customers. Both sides,
   their counts and the page are one statement (`invoices.queries`), each side a
   materialized CTE. Many matches, or a text shorter than three characters ("broad"):
   the list walks its sort index as without a text and filters, which finds a page
   within the first few hundred rows when matches are dense (a second statement when the
   first found too many).

On PostgreSQL the two trigram indexes keep no pending list (migration 0008,
`fastupdate = off`): a GIN index's pending list is read whole by every search until
VACUUM empties it.

The FTS5 tables of SQLite are external-content indexes on `invoices.rowid` and
`customers.rowid`: a statement that renumbers rowids (VACUUM, or Alembic's batch "move
and copy" of either table in a later migration) must be followed by
`INSERT INTO invoice_number_search(invoice_number_search) VALUES ('rebuild')` (and
`INSERT INTO customer_name_search(customer_name_search) VALUES ('rebuild')`), and a
migration that recreates `invoices` or `customers` must recreate its triggers (see
migrations 0005 and 0007).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Uuid, bindparam, column, literal_column
from sqlalchemy import text as sql_text

CUSTOMER_CAP = 50
NUMBER_CAP = 1000
MIN_INDEXED = 3  # a trigram index cannot narrow a shorter text

# Schema objects of migrations 0005, 0006 and 0007 that the models do not describe.
SEARCH_TABLE = "invoice_number_search"
CUSTOMER_SEARCH_TABLE = "customer_name_search"
TRGM_INDEX = "ix_invoices_number_trgm"
# The texts' `:account_id`, bound as the UUID it is (as the list's own conditions bind it;
# SQLite stores UUIDs as 32 hex digits).
_ACCOUNT = bindparam("account_id", type_=Uuid())
CUSTOMER_TRGM_INDEX = "ix_customers_name_trgm"


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Alembic's filter: the search indexes are not in the models, autogenerate must not
    propose to drop them (used by migrations/env.py and tests/unit/test_migrations.py)."""
    if type_ == "table" and name and name.startswith((SEARCH_TABLE, CUSTOMER_SEARCH_TABLE)):
        return False
    return not (type_ == "index" and name in (TRGM_INDEX, CUSTOMER_TRGM_INDEX))


def index_phrase(text: str) -> str:
    """The FTS5 query for the trigram index: the text as one phrase, which the trigram
    tokenizer matches as a substring, case-insensitively (a superset of the exact LIKE the
    numbers are then compared with: that one folds ASCII letters only). A MATCH reads the
    index's lists once; a LIKE on the FTS5 table took twice as long for the same rows."""
    return '"' + text.replace('"', '""') + '"'


def sqlite_customers_cte() -> Any:
    """SQLite: the account's customers whose name contains the text (bind parameters
    `index_phrase`, `pattern`, `account_id`, `customer_limit`), at most `customer_limit`
    of them, as a materialized CTE of their ids named `matched`. The trigram table
    narrows to a superset (`index_phrase`), and the condition the list used before,
    `lower(name) LIKE lower(pattern)` as SQLAlchemy's `ilike` writes it on SQLite, gives
    exactly its rows. CROSS JOIN keeps the FTS table as the outer loop, as in
    `sqlite_numbers_cte`."""
    stmt = (
        sql_text(
            "SELECT customers.id AS id FROM customer_name_search "
            "CROSS JOIN customers ON customers.rowid = customer_name_search.rowid "
            "WHERE customer_name_search MATCH :index_phrase "
            "AND customers.account_id = :account_id "
            "AND lower(customers.name) LIKE lower(:pattern) ESCAPE '\\' LIMIT :customer_limit"
        )
        .bindparams(_ACCOUNT)
        .columns(column("id"))
    )
    return stmt.cte("matched").prefix_with("MATERIALIZED")


def sqlite_numbers_cte() -> Any:
    """SQLite: the account's invoices whose printed number contains the text (bind
    parameters `index_phrase`, `pattern`, `account_id`, `number_limit`), at most
    `number_limit` of them, found through the FTS5 trigram table, as a materialized CTE of
    their rowids named `numbers` (column `rid`; `join_numbers` joins them to invoices).
    The rowids stay in the database: read into Python and sent back, 200 of them cost
    more than the rest of the page."""
    # CROSS JOIN keeps the FTS table as SQLite's outer loop (a plain join walked the
    # account's invoices and probed the index per row).
    stmt = (
        sql_text(
            "SELECT invoices.rowid AS rid FROM invoice_number_search "
            "CROSS JOIN invoices ON invoices.rowid = invoice_number_search.rowid "
            "WHERE invoice_number_search MATCH :index_phrase "
            "AND invoices.account_id = :account_id "
            "AND invoices.invoice_number LIKE :pattern ESCAPE '\\' LIMIT :number_limit"
        )
        .bindparams(_ACCOUNT)
        .columns(column("rid"))
    )
    return stmt.cte("numbers").prefix_with("MATERIALIZED")


def join_numbers(numbers: Any, invoices: Any) -> Any:
    """SQLite: `sqlite_numbers_cte` joined to the invoices it names, the CTE first."""
    return numbers.join(invoices, literal_column("invoices.rowid") == numbers.c.rid)


def numbers_cte(columns: Sequence[Any]) -> Any:
    """PostgreSQL: the account's invoices whose printed number contains the text (bind
    parameters `pattern`, `account_id`, `number_limit`), at most `number_limit` of them,
    found through the trigram index (the planner picks it for a selective ILIKE by
    itself), as a materialized CTE named `numbers` of their `columns` (columns of
    `invoices`, named as there). The rows are carried whole: the index lookup reads each
    row anyway, and taking them again by id afterwards cost four buffer reads a row."""
    # The names are the model's column keys, never input: S608 is not an injection.
    names = ", ".join(f"invoices.{c.key}" for c in columns)
    stmt = (
        sql_text(
            f"SELECT {names} FROM invoices "  # noqa: S608
            "WHERE invoices.invoice_number ILIKE :pattern ESCAPE '\\' "
            "AND invoices.account_id = :account_id LIMIT :number_limit"
        )
        .bindparams(_ACCOUNT)
        .columns(*[column(c.key, c.type) for c in columns])
    )
    return stmt.cte("numbers").prefix_with("MATERIALIZED")
