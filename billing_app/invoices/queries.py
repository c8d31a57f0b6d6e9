"""What the browser pages read about invoices: the list (filters, sorts, keyset paging,
the index-driven text search) and the invoice page (invoice, customer, billing entity,
lines, history). Reads only; every write goes through `invoices.service`.

The list pages by keyset: a cursor holds the sort value and id of the row it continues
from, so the 2 000th page costs what the first does. `encode_cursor` / `decode_cursor`
are the list's one cursor implementation.
"""

from __future__ import annotations

import binascii
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, literal_column, or_, select, true, tuple_, union_all
from sqlalchemy.orm import selectinload

from ..audit.models import AuditRecord
from ..customers.models import Customer
from ..entities.models import BillingEntity
from ..errors import InvalidInput, NotFound
from ..extensions import db
from ..querying import contains_pattern, cursor_text, cursor_values
from . import search as text_search
from .models import Invoice

_I = Invoice.__table__
_C = Customer.__table__

# Sort keys of the browser list, each backed by an index that starts with account_id and
# ends with id, so that every page (the first or the 2 000th) is one index range scan.
BROWSE_SORTS: dict[str, Any] = {
    "created": Invoice.created_at,
    "number": Invoice.invoice_number,
    "total": Invoice.total_minor,
}
MAX_PAGE_SIZE = 200

# The list's columns: the invoice's, its customer's name and locale (no lines).
_COLUMNS = (
    _I.c.id,
    _I.c.invoice_number,
    _I.c.state,
    _I.c.currency,
    _I.c.total_minor,
    _I.c.created_at,
    _I.c.issued_at,
    _I.c.due_at,
    _I.c.customer_id,
    _C.c.name,
    _C.c.document_locale,
)
_SORT_COLUMNS = {key: _I.c[col.key] for key, col in BROWSE_SORTS.items()}
_MATCHING_CUSTOMERS = select(_C.c.id)


@dataclass(frozen=True)
class InvoiceSearch:
    """What the invoice list asks for. Dates are UTC bounds: `created_from` inclusive,
    `created_before` exclusive. `after` / `before` are cursors from a previous page."""

    states: tuple[str, ...] = ()
    customer_id: uuid.UUID | None = None
    created_from: datetime | None = None
    created_before: datetime | None = None
    text: str = ""
    sort: str = "created"
    descending: bool = True
    after: str | None = None
    before: str | None = None
    limit: int = 50


@dataclass(frozen=True)
class InvoiceListRow:
    id: uuid.UUID
    invoice_number: str
    state: str
    currency: str
    total_minor: int
    created_at: datetime
    issued_at: datetime | None
    due_at: datetime | None
    customer_id: uuid.UUID
    customer_name: str
    customer_locale: str


@dataclass(frozen=True)
class InvoiceListPage:
    rows: list[InvoiceListRow]
    # Cursors for the neighbouring pages in the requested order; None at either end.
    next_cursor: str | None
    prev_cursor: str | None


def encode_cursor(sort: str, row: InvoiceListRow) -> str:
    """The cursor of the page that continues after (or before) `row` in this sort."""
    value: Any = getattr(row, BROWSE_SORTS[sort].key)
    if isinstance(value, datetime):
        value = value.isoformat()
    return cursor_text([sort, value, row.id.hex])


def decode_cursor(sort: str, cursor: str) -> tuple[Any, uuid.UUID]:
    """(sort value, id) of a cursor made for this sort; InvalidInput for anything else."""
    try:
        cursor_sort, value, id_hex = cursor_values(cursor)
        if cursor_sort != sort:
            raise ValueError("cursor of another sort")
        if sort == "created":
            value = datetime.fromisoformat(value)
            if value.tzinfo is None:
                raise ValueError("naive")
        elif sort == "total":
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError("not an int")
        elif not isinstance(value, str):
            raise ValueError("not a str")
        return value, uuid.UUID(id_hex)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(("cursor",), "This page link is no longer valid") from None


@contextmanager
def _custom_plan() -> Iterator[None]:
    """On PostgreSQL, the statements inside are planned for their values on every
    execution. psycopg prepares a statement run five times, and after five more
    PostgreSQL may switch it to a generic plan made without the values; for the text
    search's statement that plan took 80 ms where the planned one takes 4 (a millisecond
    of planning is the better deal). psycopg's `prepare_threshold` is its public switch."""
    conn = db.session.connection()
    if conn.dialect.name != "postgresql":
        yield
        return
    driver: Any = conn.connection.dbapi_connection
    threshold = driver.prepare_threshold
    driver.prepare_threshold = None
    try:
        yield
    finally:
        driver.prepare_threshold = threshold


def search_invoices(account_id: uuid.UUID, search: InvoiceSearch) -> InvoiceListPage:
    """One page of the account's invoices with their customer's name and locale, filtered
    and sorted, paged by keyset. Text matches a substring of the printed number or of the
    customer name, case-insensitively, through indexes (see `invoices.search`): at most
    two statements whatever the page size.
    Raises InvalidInput for an unknown sort or a cursor that is not ours."""
    if search.sort not in BROWSE_SORTS:
        raise InvalidInput(("sort",), f"Cannot sort by {search.sort!r}")
    limit = max(1, min(search.limit, MAX_PAGE_SIZE))
    column = _SORT_COLUMNS[search.sort]
    backwards = search.before is not None
    cursor = search.before if backwards else search.after
    # The direction the index is walked: reversed when fetching the page before a cursor.
    descending = search.descending != backwards
    params: dict[str, Any] = {"account_id": account_id, "page_limit": limit + 1}
    for n, state in enumerate(search.states):
        params[f"state_{n}"] = state
    if search.customer_id is not None:
        params["customer_id"] = search.customer_id
    if search.created_from is not None:
        params["created_from"] = search.created_from
    if search.created_before is not None:
        params["created_before"] = search.created_before
    if cursor:
        params["cursor_value"], params["cursor_id"] = decode_cursor(search.sort, cursor)
    sqlite = db.session.connection().dialect.name == "sqlite"
    text = search.text.strip()[:100]
    mode = None
    if text:
        params["pattern"] = contains_pattern(text)
        mode = "broad"
        if len(text) >= text_search.MIN_INDEXED:
            mode = "selective"
            params["customer_limit"] = text_search.CUSTOMER_CAP + 1
            params["number_limit"] = text_search.NUMBER_CAP + 1
            params["customer_cap"] = text_search.CUSTOMER_CAP
            params["number_cap"] = text_search.NUMBER_CAP
            if sqlite:
                params["index_phrase"] = text_search.index_phrase(text)

    def run(mode: str | None) -> list[Any]:
        stmt = _list_statement(search, column, descending, bool(cursor), mode, sqlite, limit + 1)
        return list(db.session.execute(stmt, params))

    if mode == "selective":
        with _custom_plan():
            result = run(mode)
        # The first two columns count the matching customers and numbers (each up to its
        # cap + 1): within both caps the rows are the page, else the list walks its index.
        customers, numbers = result[0][0], result[0][1]
        if customers <= text_search.CUSTOMER_CAP and numbers <= text_search.NUMBER_CAP:
            result = [r[2:] for r in result if r[2] is not None]
        else:
            result = run("broad")
    else:
        result = run(mode)
    rows = [InvoiceListRow(*r) for r in result[:limit]]
    more = len(result) > limit
    if backwards:
        rows.reverse()
        has_prev, has_next = more, True
    else:
        has_prev, has_next = bool(cursor), more
    return InvoiceListPage(
        rows=rows,
        next_cursor=encode_cursor(search.sort, rows[-1]) if rows and has_next else None,
        prev_cursor=encode_cursor(search.sort, rows[0]) if rows and has_prev else None,
    )


def _list_statement(
    search: InvoiceSearch,
    column: Any,
    descending: bool,
    has_cursor: bool,
    text_mode: str | None,
    sqlite: bool,
    page_limit: int,
) -> Any:
    """The list's statement for one shape, every value a named bind parameter but the
    page's size (`page_limit`), which is written into the text: PostgreSQL plans a
    statement whose LIMIT is a parameter for 10 % of the rows, so a generic plan of it
    never looked cheaper than planning each execution, and every page paid the planning
    (as much as the statement itself); with the LIMIT known, it keeps one plan."""
    order_of = _desc if descending else _asc
    if text_mode == "selective":
        return _selective_statement(search, column, descending, has_cursor, sqlite)
    where = [
        _I.c.account_id == bindparam("account_id"),
        *_filters(_I.c, search, column, descending, has_cursor),
    ]
    if text_mode == "broad":
        # Many matches, or too short a text for a trigram index: the list's own index
        # walk, filtered (matches are dense, a page is found within a few hundred rows).
        where.append(
            or_(
                _I.c.invoice_number.ilike(bindparam("pattern"), escape="\\"),
                _I.c.customer_id.in_(_matching_customers()),
            )
        )
    return (
        select(*_COLUMNS)
        .select_from(_I.join(_C, _C.c.id == _I.c.customer_id))
        .where(*where)
        .order_by(*order_of(column, _I.c.id))
        .limit(literal_column(str(int(page_limit))))
    )


def _filters(
    columns: Any, search: InvoiceSearch, column: Any, descending: bool, has_cursor: bool
) -> list[Any]:
    """The list's conditions but the account's, on `columns` (the invoices' own, or those
    of a CTE carrying them under the same names), every value a named bind parameter:
    states, customer, creation dates, and the keyset cursor on (sort column, id)."""
    where: list[Any] = []
    if search.states:
        states: list[Any] = [bindparam(f"state_{n}") for n in range(len(search.states))]
        where.append(columns.state.in_(states))
    if search.customer_id is not None:
        where.append(columns.customer_id == bindparam("customer_id"))
    if search.created_from is not None:
        where.append(columns.created_at >= bindparam("created_from"))
    if search.created_before is not None:
        where.append(columns.created_at < bindparam("created_before"))
    if has_cursor:
        key = tuple_(columns[column.key], columns.id)
        bound = tuple_(
            bindparam("cursor_value", type_=column.type), bindparam("cursor_id", type_=_I.c.id.type)
        )
        where.append(key < bound if descending else key > bound)
    return where


def _matching_customers() -> Any:
    return _MATCHING_CUSTOMERS.where(
        _C.c.account_id == bindparam("account_id"),
        _C.c.name.ilike(bindparam("pattern"), escape="\\"),
    )


# The invoices' columns of the list (`_COLUMNS` but the customer's).
_INVOICE_COLUMNS = tuple(c for c in _COLUMNS if c.table is _I)


def _selective_statement(
    search: InvoiceSearch, column: Any, descending: bool, has_cursor: bool, sqlite: bool
) -> Any:
    """Text search in one statement: the matching customers (up to the cap + 1) and the
    invoices whose number matches (through the trigram index, up to the cap + 1), each
    counted, and the page as the first `page_limit` rows of the UNION ALL of those few
    candidates, each branch empty when its side is over the cap (the caller then walks
    the list's index instead). The branches are disjoint (the number branch leaves out
    the matched customers' invoices, which the customer branch has): no duplicates to
    remove. One row with the counts and NULLs when nothing matches."""
    order_of = _desc if descending else _asc
    if sqlite:
        matched = text_search.sqlite_customers_cte()
        numbers = text_search.sqlite_numbers_cte()
    else:
        matched = (
            _matching_customers().limit(bindparam("customer_limit")).cte("matched")
        ).prefix_with("MATERIALIZED")
        numbers = text_search.numbers_cte(_INVOICE_COLUMNS)
    customer_count = select(func.count()).select_from(matched).scalar_subquery()
    number_count = select(func.count()).select_from(numbers).scalar_subquery()
    counts = select(
        customer_count.label("customer_matches"), number_count.label("number_matches")
    ).subquery("counts")
    by_customer = (
        _I.c.account_id == bindparam("account_id"),
        *_filters(_I.c, search, column, descending, has_cursor),
        _I.c.customer_id.in_(select(matched.c.id)),
        customer_count <= bindparam("customer_cap"),
    )
    if sqlite:
        # Each branch carries the whole row with its customer's: joined back to invoices
        # outside the UNION ALL, SQLite walked the whole sort index to spare itself the
        # sort; as a sorted UNION ALL (the shape PostgreSQL takes below), its merge cost
        # 0.1-0.2 ms more than this for few or no matches.
        joined = _I.join(_C, _C.c.id == _I.c.customer_id)
        # The numbers are the account's already (sqlite_numbers_cte): without the list's
        # own account condition, which led the planner to the account's index.
        from_numbers = text_search.join_numbers(numbers, _I).join(_C, _C.c.id == _I.c.customer_id)
        page = union_all(
            select(*_COLUMNS).select_from(joined).where(*by_customer),
            select(*_COLUMNS)
            .select_from(from_numbers)
            .where(
                *_filters(_I.c, search, column, descending, has_cursor),
                _I.c.customer_id.not_in(select(matched.c.id)),
                number_count <= bindparam("number_cap"),
            ),
        ).subquery("page")
        return (
            select(
                counts.c.customer_matches,
                counts.c.number_matches,
                *[page.c[c.key] for c in _COLUMNS],
            )
            .select_from(counts.outerjoin(page, true()))
            .order_by(*order_of(page.c[column.key], page.c.id))
            .limit(bindparam("page_limit"))
        )
    # PostgreSQL: the number matches' rows come from the CTE (taken again by id they cost
    # four buffer reads each), the first `page_limit` candidates are chosen before the
    # customers' names are read, and those by a lookup per row (joined, the planner
    # hashed all the account's customers for the 50 rows).
    candidates = union_all(
        select(*_INVOICE_COLUMNS).where(*by_customer),
        select(*[numbers.c[c.key] for c in _INVOICE_COLUMNS]).where(
            *_filters(numbers.c, search, column, descending, has_cursor),
            numbers.c.customer_id.not_in(select(matched.c.id)),
            number_count <= bindparam("number_cap"),
        ),
    )
    chosen = candidates.selected_columns
    page = (
        candidates.order_by(*order_of(chosen[column.key], chosen.id))
        .limit(bindparam("page_limit"))
        .subquery("page")
    )
    customer = (
        select(_C.c.name, _C.c.document_locale)
        .where(_C.c.id == page.c.customer_id)
        .limit(1)
        .lateral("customer")
    )
    return (
        select(
            counts.c.customer_matches,
            counts.c.number_matches,
            *[page.c[c.key] for c in _INVOICE_COLUMNS],
            customer.c.name,
            customer.c.document_locale,
        )
        .select_from(counts.outerjoin(page.join(customer, true()), true()))
        .order_by(*order_of(page.c[column.key], page.c.id))
    )


def _desc(*columns: Any) -> list[Any]:
    return [c.desc() for c in columns]


def _asc(*columns: Any) -> list[Any]:
    return [c.asc() for c in columns]


# ---------------------------------------------------------------- the invoice page


@dataclass(frozen=True)
class InvoicePage:
    """An invoice as its page shows it: the invoice with its lines, its customer and
    billing entity, its history (oldest first)."""

    invoice: Invoice
    customer: Customer
    entity: BillingEntity
    history: list[AuditRecord]


def invoice_page(account_id: uuid.UUID, invoice_id: uuid.UUID) -> InvoicePage:
    """The invoice page's data in three statements whatever the number of lines: the
    invoice with its parties, its lines, its history. NotFound for another account's
    invoice (or none)."""
    row = db.session.execute(
        select(Invoice, Customer, BillingEntity)
        .join(Customer, Customer.id == Invoice.customer_id)
        .join(BillingEntity, BillingEntity.id == Invoice.billing_entity_id)
        .where(Invoice.account_id == account_id, Invoice.id == invoice_id)
        .options(selectinload(Invoice.lines))
    ).one_or_none()
    if row is None:
        raise NotFound("Invoice")
    invoice, customer, entity = row
    history = db.session.scalars(
        select(AuditRecord)
        .where(
            AuditRecord.account_id == account_id,
            AuditRecord.object_type == "invoice",
            AuditRecord.object_id == str(invoice_id),
        )
        .order_by(AuditRecord.seq)
    ).all()
    return InvoicePage(invoice, customer, entity, list(history))
