"""What the browser pages read about invoices, with Core statements built once into plain
rows: the list (filters, keyset paging, index-driven text search) and the invoice page
(invoice, customer, billing entity, lines, history).

Reads only; every write goes through `invoices.service`. The list's types, sort keys and
cursors are the service's (`InvoiceSearch`, `BROWSE_SORTS`, its cursor encoding), so a page
link made by either stays valid.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from types import SimpleNamespace
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import (
    and_,
    bindparam,
    func,
    literal,
    literal_column,
    or_,
    select,
    true,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.engine import Connection

from ..accounts.scope import PageScope, PendingSessionUser, settle_with, with_session_user
from ..audit.models import AuditRecord
from ..customers.models import Customer
from ..db import on_driver_cursor, precompiled
from ..entities.models import BillingEntity
from ..errors import InvalidInput, NotFound
from ..querying import contains_pattern
from ..reads import read_connection
from ..taxes.models import TaxRate
from ..taxes.service import TaxTable
from . import calc
from . import search as text_search
from .models import Invoice, InvoiceLine
from .records import LineRecord
from .service import (
    BROWSE_SORTS,
    MAX_PAGE_SIZE,
    InvoiceSearch,
    LineDraft,
    Parties,
    _decode_cursor,
    _encode_cursor,
    build_lines,
    line_inputs,
)

_I = Invoice.__table__
_C = Customer.__table__

# The list's columns: the invoice's, its customer's name and locale (no lines, no ORM).
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


def _connection() -> Connection:
    """The request's read connection (`billing_app.reads`)."""
    return read_connection()


# ---------------------------------------------------------------- statements built once
#
# Building a Core statement, finding it in SQLAlchemy's compiled cache and turning its
# rows into typed values cost the list several times what SQLite takes to answer it
# (~1 ms against ~0.15 ms for 50 rows). The list's statements are built once per shape
# (which filters, which sort, how many customers a text matched ...), compiled once per
# dialect, and run on the driver's cursor (`_fetch_all`: still one statement on the
# request's connection, seen by the statement counters), the parameters converted here
# the way the column types store them (`_sqlite_uuid`, `_sqlite_datetime`) and the rows
# left as the driver returns them until a page reads a value (`ListRow`).

_PREPARED: dict[tuple[Any, ...], tuple[str, tuple[str, ...] | None, dict[str, Any]]] = {}
_MAX_PREPARED = 2000


def _run(
    conn: Connection,
    shape: tuple[Any, ...],
    build: Any,
    params: dict[str, Any],
    *,
    custom_plan: bool = False,
) -> list[Any]:
    """The rows of the statement `build()` makes for `shape` (compiled once per
    dialect) with `params`, values as the database stores them (`_db_params`).

    `custom_plan`: on PostgreSQL, planned for its values on every execution. psycopg
    prepares a statement run five times, and after five more PostgreSQL may switch it to a
    generic plan made without the values; for the text search's statement that plan took
    80 ms where the planned one takes 4 (a millisecond of planning is the better deal)."""
    key = (conn.dialect.name, *shape)
    prepared = _PREPARED.get(key)
    if prepared is None:
        compiled = build().compile(dialect=conn.dialect)
        names = tuple(compiled.positiontup or ()) if compiled.positional else None
        # Binds this module does not name (the OFFSET 0 SQLite puts after a LIMIT).
        fixed = {k: v for k, v in compiled.construct_params(params).items() if k not in params}
        if len(_PREPARED) >= _MAX_PREPARED:
            _PREPARED.clear()
        prepared = _PREPARED[key] = (compiled.string, names, fixed)
    sql, names, fixed = prepared
    if fixed:
        params = {**params, **fixed}
    args: Any = tuple(params[name] for name in names) if names is not None else params
    if custom_plan and conn.dialect.name == "postgresql":
        driver = conn.connection.dbapi_connection
        threshold = driver.prepare_threshold  # type: ignore[union-attr]
        driver.prepare_threshold = None  # type: ignore[union-attr]
        try:
            return _fetch_all(conn, sql, args)
        finally:
            driver.prepare_threshold = threshold  # type: ignore[union-attr]
    return _fetch_all(conn, sql, args)


def _fetch_all(conn: Connection, sql: str, args: Any) -> list[Any]:
    """The rows of `sql`, as the driver returns them, from a cursor of the connection's
    driver connection: what `exec_driver_sql(...).fetchall()` gives, without SQLAlchemy's
    execution context and result object (`database.on_driver_cursor`: the cursor events
    still fire, driver errors are still SQLAlchemy's). On SQLite inside the read
    transaction, begun here if need be."""
    if not conn.in_transaction():
        conn.begin()
    return on_driver_cursor(conn, sql, args, False, lambda cursor: list(cursor.fetchall()))


def _sqlite_uuid(value: uuid.UUID) -> str:
    return value.hex  # SQLAlchemy's Uuid on SQLite: 32 hex digits


def _sqlite_datetime(value: datetime) -> str:
    """What UTCDateTime stores on SQLite (UTC, SQLAlchemy's DATETIME text with
    microseconds), so that text comparisons in keyset conditions order as times do."""
    utc = value.astimezone(UTC)
    return f"{utc:%Y-%m-%d %H:%M:%S}.{utc.microsecond:06d}"


def _db_params(sqlite: bool, values: dict[str, Any]) -> dict[str, Any]:
    if not sqlite:
        return values
    out = {}
    for name, value in values.items():
        if isinstance(value, uuid.UUID):
            value = _sqlite_uuid(value)
        elif isinstance(value, datetime):
            value = _sqlite_datetime(value)
        out[name] = value
    return out


def _sqlite_datetime_value(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).replace(tzinfo=UTC)


def _pg_datetime_value(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _dashed(hex32: str) -> str:
    return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:]}"


class ListRow:
    """One row of the list (the fields of `InvoiceListRow`) as the driver returned it:
    ids and times are made into UUIDs and aware UTC datetimes when read, and the row
    writer takes the ids' text (`id_text`, `customer_id_text`) without making either."""

    __slots__ = (
        "_created_at",
        "_customer_id",
        "_due_at",
        "_id",
        "_issued_at",
        "_sqlite",
        "currency",
        "customer_locale",
        "customer_name",
        "invoice_number",
        "state",
        "total_minor",
    )

    def __init__(self, raw: Sequence[Any], sqlite: bool) -> None:
        (
            self._id,
            self.invoice_number,
            self.state,
            self.currency,
            self.total_minor,
            self._created_at,
            self._issued_at,
            self._due_at,
            self._customer_id,
            self.customer_name,
            self.customer_locale,
        ) = raw[:11]
        self._sqlite = sqlite

    def _uuid(self, value: Any) -> uuid.UUID:
        return uuid.UUID(hex=value) if self._sqlite else value

    def _time(self, value: Any) -> datetime | None:
        return _sqlite_datetime_value(value) if self._sqlite else _pg_datetime_value(value)

    @property
    def id(self) -> uuid.UUID:
        return self._uuid(self._id)

    @property
    def customer_id(self) -> uuid.UUID:
        return self._uuid(self._customer_id)

    @property
    def id_hex(self) -> str:
        return self._id if self._sqlite else self._id.hex

    @property
    def id_text(self) -> str:
        return _dashed(self._id) if self._sqlite else str(self._id)

    @property
    def customer_id_text(self) -> str:
        return _dashed(self._customer_id) if self._sqlite else str(self._customer_id)

    @property
    def created_at(self) -> datetime:
        value = self._time(self._created_at)
        assert value is not None
        return value

    @property
    def issued_at(self) -> datetime | None:
        return self._time(self._issued_at)

    @property
    def due_at(self) -> datetime | None:
        return self._time(self._due_at)

    def created_day(self, zone: ZoneInfo) -> str:
        """`created_at`'s calendar day in `zone`, `YYYY-MM-DD`."""
        return self._day(self._created_at, zone)

    def due_day(self, zone: ZoneInfo) -> str:
        """`due_at`'s calendar day in `zone`, `YYYY-MM-DD`; "" when there is none."""
        return self._day(self._due_at, zone)

    def _day(self, value: Any, zone: ZoneInfo) -> str:
        # What `created_at.astimezone(zone).date()` gives, without the aware UTC datetime
        # in between: SQLite's text is UTC, which `zone.fromutc` takes as it is (half the
        # cost; every row of a list shows two days).
        if value is None:
            return ""
        if self._sqlite:
            utc = datetime.fromisoformat(value).replace(tzinfo=zone)
            return zone.fromutc(utc).date().isoformat()
        return value.astimezone(zone).date().isoformat()


@dataclass(frozen=True)
class ListPage:
    """A page of the list: `InvoiceListPage` with `ListRow`s."""

    rows: list[ListRow]
    # Cursors for the neighbouring pages in the requested order; None at either end.
    next_cursor: str | None
    prev_cursor: str | None


def search_invoices(account_id: PageScope, search: InvoiceSearch) -> ListPage:
    """One page of the account's invoices with their customer's name and locale, filtered
    and sorted, paged by keyset (a cursor holds the sort value and id of the row it
    continues from), so the 2 000th page costs what the first does. Text matches a
    substring of the printed number or of the customer name, case-insensitively, through
    indexes (see `invoices.search`): at most three statements whatever the page size.
    The rows are `ListRow`s (the attributes of `InvoiceListRow`).
    Raises InvalidInput for an unknown sort or a cursor that is not ours."""
    if search.sort not in BROWSE_SORTS:
        raise InvalidInput(("sort",), f"Cannot sort by {search.sort!r}")
    limit = max(1, min(search.limit, MAX_PAGE_SIZE))
    column = _SORT_COLUMNS[search.sort]
    backwards = search.before is not None
    cursor = search.before if backwards else search.after
    # The direction the index is walked: reversed when fetching the page before a cursor.
    descending = search.descending != backwards
    # A browser session's user still to be read (`accounts.scope`): on PostgreSQL the
    # plain list's statement reads it; anything else reads it first.
    pending = account_id if isinstance(account_id, PendingSessionUser) else None
    params: dict[str, Any] = {
        "account_id": None if pending is not None else account_id,
        "page_limit": limit + 1,
    }
    # What decides the statement's text; the values go in `params`.
    shape: list[Any] = ["list", search.sort, descending, limit + 1]
    if search.states:
        for n, state in enumerate(search.states):
            params[f"state_{n}"] = state
        shape.append(("states", len(search.states)))
    if search.customer_id is not None:
        params["customer_id"] = search.customer_id
        shape.append("customer")
    if search.created_from is not None:
        params["created_from"] = search.created_from
        shape.append("from")
    if search.created_before is not None:
        params["created_before"] = search.created_before
        shape.append("before")
    if cursor:
        params["cursor_value"], params["cursor_id"] = _decoded_cursor(search.sort, cursor)
        shape.append("cursor")
    conn = _connection()
    sqlite = conn.dialect.name == "sqlite"
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

    def run(mode: str | None) -> Any:
        nonlocal pending

        def build() -> Any:
            return _list_statement(
                search, column, descending, bool(cursor), mode, sqlite, limit + 1
            )

        if pending is not None:
            scope, pending = pending, None
            if mode is None and not sqlite:
                rows = _run(
                    conn,
                    (*shape, mode, "session user"),
                    lambda: with_session_user(build()),
                    _db_params(sqlite, params | {"su_user": scope.user_id}),
                )
                params["account_id"] = settle_with(scope, rows)
                return rows  # each row's last column (the user) is not read by ListRow
            params["account_id"] = settle_with(scope, [])
        return _run(
            conn,
            (*shape, mode),
            build,
            _db_params(sqlite, params),
            custom_plan=mode == "selective",
        )

    result = run(mode)
    if mode == "selective":
        # The first two columns count the matching customers and numbers (each up to its
        # cap + 1): within both caps the rows are the page, else the list walks its index.
        customers, numbers = result[0][0], result[0][1]
        if customers <= text_search.CUSTOMER_CAP and numbers <= text_search.NUMBER_CAP:
            result = [r[2:] for r in result if r[2] is not None]
        else:
            result = run("broad")
    rows = [ListRow(r, sqlite) for r in result[:limit]]
    more = len(result) > limit
    if backwards:
        rows.reverse()
        has_prev, has_next = more, True
    else:
        has_prev, has_next = bool(cursor), more
    return ListPage(
        rows=rows,
        next_cursor=_cursor(search.sort, rows[-1]) if rows and has_next else None,
        prev_cursor=_cursor(search.sort, rows[0]) if rows and has_prev else None,
    )


# The cursors `_cursor` writes for the time and total sorts, as the JSON text inside them.
_WRITTEN_CURSOR = {
    "created": re.compile(rb'\["created","([0-9T:.+-]{19,40})","([0-9a-f]{32})"\]'),
    "total": re.compile(rb'\["total",(-?(?:0|[1-9][0-9]{0,17})),"([0-9a-f]{32})"\]'),
}
_URLSAFE = str.maketrans("-_", "+/")


def _decoded_cursor(sort: str, cursor: str) -> tuple[Any, uuid.UUID]:
    """`service._decode_cursor`: the same values, for the cursors `_cursor` writes for
    the time and total sorts read without base64's and json's Python layers (a page
    down the list paid for both); anything else goes through the service's own, which
    also answers every malformed one."""
    written = _WRITTEN_CURSOR.get(sort)
    if written is not None and cursor.isascii():
        try:
            raw = binascii.a2b_base64(cursor.translate(_URLSAFE) + "=" * (-len(cursor) % 4))
        except binascii.Error:
            raw = b""
        found = written.fullmatch(raw)
        if found is not None:
            text, id_hex = found.group(1).decode(), found.group(2).decode()
            if sort == "total":
                return int(text), uuid.UUID(hex=id_hex)
            try:
                value = datetime.fromisoformat(text)
            except ValueError:
                value = None
            if value is not None and value.tzinfo is not None:
                return value, uuid.UUID(hex=id_hex)
    return _decode_cursor(sort, cursor)


def _cursor(sort: str, row: ListRow) -> str:
    """`service._encode_cursor` for a `ListRow`, the same text: for the time and total
    sorts written out here (a time's isoformat, an int and 32 hex digits need no JSON
    escaping; json.dumps and the row's UUID cost a list page more than its query), for
    the number sort (any text) through the service's own."""
    if sort == "created":
        raw = f'["created","{row.created_at.isoformat()}","{row.id_hex}"]'
    elif sort == "total":
        raw = f'["total",{int(row.total_minor)},"{row.id_hex}"]'
    else:
        encode: Any = _encode_cursor  # reads the attributes ListRow shares with InvoiceListRow
        return encode(sort, row)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


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

_E = BillingEntity.__table__
_L = InvoiceLine.__table__
_A = AuditRecord.__table__


# What the page shows of the invoice, its customer and billing entity
# (web/invoices/detail_html.py, service.tax_breakdown), as attributes named like the models'.
# Only these: a row of every column of the three tables cost more to describe and convert
# (on PostgreSQL, psycopg builds a description of each column per statement) than the
# rest of the read.
_PAGE_INVOICE = (
    "id",
    "invoice_number",
    "number",
    "state",
    "invoice_type",
    "currency",
    "customer_id",
    "billing_entity_id",
    "subscription_id",
    "created_at",
    "issued_at",
    "due_at",
    "paid_at",
    "voided_at",
    "subtotal_minor",
    "discount_minor",
    "credit_minor",
    "net_minor",
    "vat_minor",
    "progressive_credit_minor",
    "gross_minor",
    "prepaid_credit_minor",
    "total_minor",
)
_ADDRESS = ("address_line1", "address_line2", "zip_code", "city", "country", "tax_id")
_PAGE_CUSTOMER = ("id", "name", "company", "email", "document_locale", *_ADDRESS)
_PAGE_ENTITY = ("id", "name", "legal_name", *_ADDRESS)
_PARTS = (
    ("invoice", _I, _PAGE_INVOICE),
    ("customer", _C, _PAGE_CUSTOMER),
    ("entity", _E, _PAGE_ENTITY),
)


def _page_columns() -> list[Any]:
    return [
        table.c[name].label(f"{part}_{name}") for part, table, names in _PARTS for name in names
    ]


_PAGE_FROM = _I.join(_C, _C.c.id == _I.c.customer_id).join(_E, _E.c.id == _I.c.billing_entity_id)
_PAGE_WHERE = (_I.c.account_id == bindparam("account_id"), _I.c.id == bindparam("invoice_id"))
# What the page shows of a line and what its VAT breakdown is computed from
# (`service.line_inputs`): no ids, whose conversion cost as much as the rest of the row.
_LINE_COLUMNS = (
    "description",
    "quantity",
    "unit_amount",
    "amount_minor",
    "tax_rate",
    "amount_incl_vat",
    "origin",
)
_HISTORY_COLUMNS = ("created_at", "action", "before", "after", "actor_type", "actor_id")
_HISTORY_WHERE = (
    _A.c.account_id == bindparam("account_id"),
    _A.c.object_type == "invoice",
    _A.c.object_id == bindparam("object_id"),
)

# SQLite: the invoice with its parties in one row, the lines in order, the history: three
# statements whatever the number of lines (each costs little in-process).
_INVOICE_WITH_PARTIES = select(*_page_columns()).select_from(_PAGE_FROM).where(*_PAGE_WHERE)
_LINES = (
    select(*[_L.c[name] for name in _LINE_COLUMNS])
    .where(_L.c.invoice_id == bindparam("invoice_id"))
    .order_by(_L.c.position)
)
_HISTORY = (
    select(*[_A.c[name] for name in _HISTORY_COLUMNS]).where(*_HISTORY_WHERE).order_by(_A.c.seq)
)


def _json_rows(table: Any, names: Sequence[str], where: Any, order: Any) -> Any:
    """The rows of `table` as one JSON array of objects, in order ('[]' for none)."""
    return (
        select(
            func.coalesce(
                func.json_agg(
                    aggregate_order_by(
                        func.json_build_object(
                            *[part for name in names for part in (literal(name), table.c[name])]
                        ),
                        order,
                    )
                ),
                literal_column("'[]'::json"),
            )
        )
        .where(*where)
        .scalar_subquery()
    )


# PostgreSQL: the same in one statement (each statement is a round trip and, client-side,
# the larger part of the page's CPU), the lines and the history as JSON arrays.
_INVOICE_PAGE_PG = (
    select(
        *_page_columns(),
        _json_rows(_L, _LINE_COLUMNS, [_L.c.invoice_id == _I.c.id], _L.c.position).label("lines"),
        _json_rows(_A, _HISTORY_COLUMNS, _HISTORY_WHERE, _A.c.seq).label("history"),
    )
    .select_from(_PAGE_FROM)
    .where(*_PAGE_WHERE)
)


class _Line(NamedTuple):
    description: str
    quantity: Decimal
    unit_amount: Decimal
    amount_minor: int
    tax_rate: Decimal
    amount_incl_vat: bool
    origin: str


class _HistoryRecord(NamedTuple):
    created_at: datetime
    action: str
    before: Any
    after: Any
    actor_type: str
    actor_id: str | None


def _line_from_json(line: dict[str, Any]) -> _Line:
    # DecimalText columns arrive as their text, as they are stored.
    return _Line(
        line["description"],
        Decimal(line["quantity"]),
        Decimal(line["unit_amount"]),
        line["amount_minor"],
        Decimal(line["tax_rate"]),
        line["amount_incl_vat"],
        line["origin"],
    )


def _history_from_json(rec: dict[str, Any]) -> _HistoryRecord:
    return _HistoryRecord(
        datetime.fromisoformat(rec["created_at"]).astimezone(UTC),
        rec["action"],
        rec["before"],
        rec["after"],
        rec["actor_type"],
        rec["actor_id"],
    )


@dataclass(frozen=True)
class InvoicePage:
    """An invoice as its page shows it, as plain records with the models' attribute
    names (only those the page reads): the invoice (with `.lines`: the line attributes
    the page and its VAT breakdown read), its customer and billing entity, its history."""

    invoice: Any
    customer: Any
    entity: Any
    history: list[Any]


def invoice_page(account_id: PageScope, invoice_id: uuid.UUID) -> InvoicePage:
    """The invoice page's data. NotFound for another account's invoice (or none). A
    session user still to be read is read with it (PostgreSQL; `accounts.scope`)."""
    conn = _connection()
    pending = isinstance(account_id, PendingSessionUser)
    params = {
        "account_id": None if pending else account_id,
        "invoice_id": invoice_id,
        "object_id": str(invoice_id),
    }
    postgresql = conn.dialect.name == "postgresql"
    if isinstance(account_id, PendingSessionUser):
        rows = []
        if postgresql:
            read = precompiled(_invoice_page_with_session_user())
            rows = read.execute(conn, params | {"su_user": account_id.user_id}).all()
        params["account_id"] = settle_with(account_id, rows)
        if postgresql:
            row = rows[0] if rows else None
        else:
            row = precompiled(_INVOICE_WITH_PARTIES).execute(conn, params).first()
    else:
        page = precompiled(_INVOICE_PAGE_PG if postgresql else _INVOICE_WITH_PARTIES)
        row = page.execute(conn, params).first()
    if row is None:
        raise NotFound("Invoice")
    values = iter(row)
    invoice, customer, entity = (
        SimpleNamespace(**dict(zip(names, values, strict=False))) for _, _, names in _PARTS
    )
    if postgresql:
        lines: list[Any] = [_line_from_json(line) for line in next(values)]
        history: list[Any] = [_history_from_json(rec) for rec in next(values)]
    else:
        lines = list(precompiled(_LINES).execute(conn, params).all())
        history = list(precompiled(_HISTORY).execute(conn, params))
    invoice.lines = lines
    return InvoicePage(invoice, customer, entity, history)


@lru_cache(maxsize=8)
def _with_session_user(statement: Any) -> Any:
    """`with_session_user` of one of this module's statements, made once."""
    return with_session_user(statement)


def _invoice_page_with_session_user() -> Any:
    return _with_session_user(_INVOICE_PAGE_PG)


# ---------------------------------------------------------------- the entry form's totals

_DEFAULT_ENTITY_ID = (
    select(_E.c.id)
    .where(_E.c.account_id == bindparam("account_id"))
    .order_by(_E.c.is_default.desc(), _E.c.created_at)
    .limit(1)
    .scalar_subquery()
)


def _pricing(entity: Any) -> Any:
    """The tax precedence levels of a customer and a billing entity, in one row; no row
    for another account's customer, a NULL entity id for another account's entity."""
    return (
        select(_C.c.tax_rate_id, _E.c.id, _E.c.default_tax_rate_id)
        .select_from(_C.outerjoin(_E, and_(_E.c.account_id == _C.c.account_id, entity)))
        .where(_C.c.account_id == bindparam("account_id"), _C.c.id == bindparam("customer_id"))
    )


_PRICING_WITH_ENTITY = _pricing(_E.c.id == bindparam("entity_id"))
_PRICING_DEFAULT_ENTITY = _pricing(_E.c.id == _DEFAULT_ENTITY_ID)


def _customer_with_pricing(entity: Any) -> Any:
    """A customer's columns and, in the same row, what `_pricing` reads of the billing
    entity (NULL for another account's entity)."""
    return (
        select(
            *_C.c,
            _E.c.id.label("pricing_entity_id"),
            _E.c.default_tax_rate_id.label("pricing_entity_tax_rate_id"),
        )
        .select_from(_C.outerjoin(_E, and_(_E.c.account_id == _C.c.account_id, entity)))
        .where(_C.c.account_id == bindparam("account_id"), _C.c.id == bindparam("customer_id"))
    )


_CUSTOMER_WITH_ENTITY = _customer_with_pricing(_E.c.id == bindparam("entity_id"))
_CUSTOMER_WITH_DEFAULT_ENTITY = _customer_with_pricing(_E.c.id == _DEFAULT_ENTITY_ID)


@dataclass(frozen=True)
class EntryPricing:
    """The tax precedence levels `preview_totals` reads, read with the customer (for the
    billing entity asked for: None is the account's default entity)."""

    customer_id: uuid.UUID
    billing_entity_id: uuid.UUID | None
    customer_tax_rate_id: Any
    entity_id: uuid.UUID | None  # None: another account's entity
    entity_tax_rate_id: Any


def _for_entity(
    with_entity: Any,
    default_entity: Any,
    account_id: uuid.UUID,
    customer_id: uuid.UUID,
    billing_entity_id: uuid.UUID | None,
) -> tuple[Any, dict[str, Any]]:
    """The statement and parameters for the chosen billing entity, or the default one."""
    params: dict[str, Any] = {"account_id": account_id, "customer_id": customer_id}
    if billing_entity_id is None:
        return default_entity, params
    return with_entity, params | {"entity_id": billing_entity_id}


def customer_record(
    account_id: uuid.UUID, customer_id: uuid.UUID, billing_entity_id: uuid.UUID | None = None
) -> tuple[SimpleNamespace, EntryPricing] | None:
    """The account's customer as a plain record with the model's column attributes, and
    its pricing for `billing_entity_id` (one Core query: the entry form reads both on
    every htmx change), or None, also for another account's customer."""
    stmt, params = _for_entity(
        _CUSTOMER_WITH_ENTITY,
        _CUSTOMER_WITH_DEFAULT_ENTITY,
        account_id,
        customer_id,
        billing_entity_id,
    )
    row = precompiled(stmt).execute(_connection(), params).one_or_none()
    if row is None:
        return None
    data = dict(row._mapping)
    entity_id = data.pop("pricing_entity_id")
    entity_tax_rate_id = data.pop("pricing_entity_tax_rate_id")
    record = SimpleNamespace(**data)
    pricing = EntryPricing(
        customer_id, billing_entity_id, record.tax_rate_id, entity_id, entity_tax_rate_id
    )
    return record, pricing


# The entry form's reads of one htmx change with a customer chosen, in one statement:
# every tax rate of the account (oldest first, as `taxes.account_tax_rates` reads them),
# each row carrying the customer (`_customer_with_pricing`, its columns as `c_<name>`,
# NULL for an unknown or another account's customer). At least one row: an account
# without rates gives one whose rate columns are NULL.
_ENTRY_TAXES = TaxRate.__table__


def _entry_reads(entity: Any) -> Any:
    chosen = _customer_with_pricing(entity).subquery("chosen")
    one = select(literal(1).label("one")).subquery("one")
    customer_columns = [chosen.c[c.key].label(f"c_{c.key}") for c in _C.c]
    return (
        select(
            _ENTRY_TAXES.c.id,
            _ENTRY_TAXES.c.rate,
            _ENTRY_TAXES.c.code,
            _ENTRY_TAXES.c.applied_to_organization,
            _ENTRY_TAXES.c.name,
            *customer_columns,
            chosen.c.pricing_entity_id,
            chosen.c.pricing_entity_tax_rate_id,
        )
        .select_from(
            one.outerjoin(chosen, true()).outerjoin(
                _ENTRY_TAXES, _ENTRY_TAXES.c.account_id == bindparam("account_id")
            )
        )
        .order_by(_ENTRY_TAXES.c.created_at)
    )


_ENTRY_WITH_ENTITY = _entry_reads(_E.c.id == bindparam("entity_id"))
_ENTRY_WITH_DEFAULT_ENTITY = _entry_reads(_E.c.id == _DEFAULT_ENTITY_ID)
_CUSTOMER_KEYS = tuple(c.key for c in _C.c)


def entry_reads(
    account_id: PageScope, customer_id: uuid.UUID, billing_entity_id: uuid.UUID | None
) -> tuple[list[Any], tuple[SimpleNamespace, EntryPricing] | None]:
    """What the entry form reads on an htmx change with a customer chosen, in one
    statement instead of two: the account's tax rates (the rows `taxes.account_tax_rates`
    gives) and `customer_record`'s answer for the customer and billing entity. A session
    user still to be read is read with them (PostgreSQL; `accounts.scope`)."""
    pending = account_id if isinstance(account_id, PendingSessionUser) else None
    stmt, params = _for_entity(
        _ENTRY_WITH_ENTITY,
        _ENTRY_WITH_DEFAULT_ENTITY,
        account_id,  # type: ignore[arg-type]  # replaced below when pending
        customer_id,
        billing_entity_id,
    )
    conn = _connection()
    if pending is not None:
        del params["account_id"]  # the user's account, found by the read (or below)
    if pending is not None and conn.dialect.name == "postgresql":
        read = precompiled(_with_session_user(stmt))
        rows = read.execute(conn, params | {"su_user": pending.user_id}).all()
        settle_with(pending, rows)
    else:
        if pending is not None:
            params["account_id"] = settle_with(pending, [])
        rows = precompiled(stmt).execute(conn, params).all()
    first = rows[0]._mapping
    found = None
    if first["c_id"] is not None:
        record = SimpleNamespace(**{key: first[f"c_{key}"] for key in _CUSTOMER_KEYS})
        pricing = EntryPricing(
            customer_id,
            billing_entity_id,
            record.tax_rate_id,
            first["pricing_entity_id"],
            first["pricing_entity_tax_rate_id"],
        )
        found = (record, pricing)
    return [row for row in rows if row.id is not None], found


def preview_totals(
    account_id: uuid.UUID,
    account_default_vat_percent: Decimal | None,
    customer_id: uuid.UUID,
    billing_entity_id: uuid.UUID | None,
    drafts: Sequence[LineDraft],
    pricing: EntryPricing | None = None,
    tax_table: TaxTable | None = None,
) -> tuple[list[LineRecord], calc.Totals]:
    """What `invoices.service.preview_totals` computes (the same `build_lines` and
    `compute_totals` the saved invoice's totals come from), with the customer and billing
    entity read in one Core query and the account's default VAT passed in (the page has
    read its account already). NotFound("Customer") / NotFound("Billing entity") alike.
    `tax_table`: the account's rates as `taxes.tax_table` makes them from
    `taxes.account_tax_rates` (the form has read them for its VAT choices); without it
    `build_lines` reads the rates it can use."""
    conn = _connection()
    if (
        pricing is not None
        and pricing.customer_id == customer_id
        and pricing.billing_entity_id == billing_entity_id
    ):
        customer_tax_id, entity_id = pricing.customer_tax_rate_id, pricing.entity_id
        entity_tax_id = pricing.entity_tax_rate_id
    else:
        stmt, params = _for_entity(
            _PRICING_WITH_ENTITY,
            _PRICING_DEFAULT_ENTITY,
            account_id,
            customer_id,
            billing_entity_id,
        )
        row = precompiled(stmt).execute(conn, params).one_or_none()
        if row is None:
            raise NotFound("Customer")
        customer_tax_id, entity_id, entity_tax_id = row
    if entity_id is None:
        raise NotFound("Billing entity")
    parties = Parties(account_id, account_default_vat_percent, customer_tax_id, entity_tax_id)
    lines = build_lines(parties, drafts, conn=conn, taxes=tax_table)
    return lines, calc.compute_totals(line_inputs(lines))
