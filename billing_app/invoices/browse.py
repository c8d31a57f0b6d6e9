"""What the browser pages read about invoices, with Core statements built once into plain
rows: the list (filters, keyset paging, index-driven text search) and the invoice page
(invoice, customer, billing entity, lines, history).

Reads only; every write goes through `invoices.service`. The list's types, sort keys and
cursors are the service's (`InvoiceSearch`, `InvoiceListPage`, `BROWSE_SORTS`), so a page
link made by either stays valid.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from sqlalchemy import and_, bindparam, literal, or_, select, tuple_, union
from sqlalchemy.engine import Connection

from ..audit.models import AuditRecord
from ..crud import contains_pattern
from ..customers.models import Customer
from ..entities.models import BillingEntity
from ..errors import InvalidInput, NotFound
from ..extensions import db
from . import calc
from . import search as text_search
from .models import Invoice, InvoiceLine
from .records import INVOICE_COLUMNS, LineRecord
from .service import (
    BROWSE_SORTS,
    MAX_PAGE_SIZE,
    InvoiceListPage,
    InvoiceListRow,
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
    """The request's connection (the ORM session's, so a page that also uses the session
    runs one transaction on one connection)."""
    return db.session.connection()


def search_invoices(account_id: uuid.UUID, search: InvoiceSearch) -> InvoiceListPage:
    """One page of the account's invoices with their customer's name and locale, filtered
    and sorted, paged by keyset (a cursor holds the sort value and id of the row it
    continues from), so the 2 000th page costs what the first does. Text matches a
    substring of the printed number or of the customer name, case-insensitively, through
    indexes (see `invoices.search`): at most three statements whatever the page size.
    Raises InvalidInput for an unknown sort or a cursor that is not ours."""
    if search.sort not in BROWSE_SORTS:
        raise InvalidInput(("sort",), f"Cannot sort by {search.sort!r}")
    limit = max(1, min(search.limit, MAX_PAGE_SIZE))
    column = _SORT_COLUMNS[search.sort]
    backwards = search.before is not None
    cursor = search.before if backwards else search.after
    # The direction the index is walked: reversed when fetching the page before a cursor.
    descending = search.descending != backwards
    where: list[Any] = [_I.c.account_id == account_id]
    if search.states:
        where.append(_I.c.state.in_(search.states))
    if search.customer_id is not None:
        where.append(_I.c.customer_id == search.customer_id)
    if search.created_from is not None:
        where.append(_I.c.created_at >= search.created_from)
    if search.created_before is not None:
        where.append(_I.c.created_at < search.created_before)
    if cursor:
        value, row_id = _decode_cursor(search.sort, cursor)
        key, bound = tuple_(column, _I.c.id), tuple_(_bind(value, column), _bind(row_id, _I.c.id))
        where.append(key < bound if descending else key > bound)
    conn = _connection()
    order_of = _desc if descending else _asc
    joined = _I.join(_C, _C.c.id == _I.c.customer_id)
    text = search.text.strip()[:100]
    found = _text_matches(conn, account_id, text) if text else None
    if isinstance(found, list):
        # Selective: a UNION of the few candidates, each branch through its own index,
        # then sorted. The branches carry the whole row: joined back to invoices outside
        # the UNION, SQLite walked the whole sort index to spare itself the sort.
        if not found:
            return InvoiceListPage(rows=[], next_cursor=None, prev_cursor=None)
        branches = [
            select(*_COLUMNS, column.label("sort_key"))
            .select_from(joined)
            .where(*(where if scoped else where[1:]), condition)
            for condition, scoped in found
        ]
        page = (branches[0] if len(branches) == 1 else union(*branches)).subquery("page")
        stmt = (
            select(*[page.c[c.key] for c in _COLUMNS])
            .order_by(*order_of(page.c.sort_key, page.c.id))
            .limit(limit + 1)
        )
    else:
        if found is not None:
            where.append(found)
        stmt = (
            select(*_COLUMNS)
            .select_from(joined)
            .where(*where)
            .order_by(*order_of(column, _I.c.id))
            .limit(limit + 1)
        )
    result = conn.execute(stmt).all()
    rows = [InvoiceListRow(*r) for r in result[:limit]]
    more = len(result) > limit
    if backwards:
        rows.reverse()
        has_prev, has_next = more, True
    else:
        has_prev, has_next = bool(cursor), more
    return InvoiceListPage(
        rows=rows,
        next_cursor=_encode_cursor(search.sort, rows[-1]) if rows and has_next else None,
        prev_cursor=_encode_cursor(search.sort, rows[0]) if rows and has_prev else None,
    )


def _bind(value: Any, column: Any) -> Any:
    return literal(value, column.type)


def _desc(*columns: Any) -> list[Any]:
    return [c.desc() for c in columns]


def _asc(*columns: Any) -> list[Any]:
    return [c.asc() for c in columns]


def _text_matches(conn: Connection, account_id: uuid.UUID, text: str) -> Any:
    """Either the conditions of the UNION branches that together hold every match, each
    with whether it keeps the account_id condition (a list, empty when nothing matches:
    the selective case), or a WHERE clause for the list's own index walk (the broad
    case). See `invoices.search` for the rule."""
    pattern = contains_pattern(text)
    name_matches = _C.c.name.ilike(pattern, escape="\\")
    customer_ids = list(
        conn.scalars(
            _MATCHING_CUSTOMERS.where(_C.c.account_id == account_id, name_matches).limit(
                text_search.CUSTOMER_CAP + 1
            )
        )
    )
    if len(customer_ids) <= text_search.CUSTOMER_CAP and len(text) >= text_search.MIN_INDEXED:
        numbered = text_search.count_number_matches(
            conn, account_id, text, text_search.NUMBER_CAP + 1
        )
        if numbered <= text_search.NUMBER_CAP:
            found = []
            if customer_ids:
                found.append((_I.c.customer_id.in_(customer_ids), True))
            if numbered:
                # Without the list's own account condition: on SQLite it would lead the
                # planner to the account's index instead of the trigram index's rowids.
                found.append((text_search.number_condition(conn, _I, account_id, text), False))
            return found
    number_matches = _I.c.invoice_number.ilike(pattern, escape="\\")
    if not customer_ids:
        return number_matches
    in_customers = (
        _I.c.customer_id.in_(customer_ids)
        if len(customer_ids) <= text_search.CUSTOMER_CAP
        else _I.c.customer_id.in_(
            _MATCHING_CUSTOMERS.where(_C.c.account_id == account_id, name_matches)
        )
    )
    return or_(number_matches, in_customers)


# ---------------------------------------------------------------- the invoice page

_E = BillingEntity.__table__
_L = InvoiceLine.__table__
_A = AuditRecord.__table__


def _prefixed_columns(table: Any, prefix: str) -> list[Any]:
    return [c.label(f"{prefix}{c.key}") for c in table.c]


# Invoice, customer and billing entity in one row (columns prefixed per table), the lines
# in order, the invoice's audit history: three statements whatever the number of lines.
_INVOICE_WITH_PARTIES = (
    select(
        *_prefixed_columns(_I, "i_"),
        *_prefixed_columns(_C, "c_"),
        *[c.label(f"e_{c.key}") for c in _E.c if c.key != "logo"],
    )
    .select_from(
        _I.join(_C, _C.c.id == _I.c.customer_id).join(_E, _E.c.id == _I.c.billing_entity_id)
    )
    .where(_I.c.account_id == bindparam("account_id"), _I.c.id == bindparam("invoice_id"))
)
_LINE_FIELDS = [f.name for f in dataclass_fields(LineRecord)]
_LINES = (
    select(*[_L.c[name] for name in _LINE_FIELDS])
    .where(_L.c.invoice_id == bindparam("invoice_id"))
    .order_by(_L.c.position)
)
_HISTORY = (
    select(_A.c.created_at, _A.c.action, _A.c.before, _A.c.after, _A.c.actor_type, _A.c.actor_id)
    .where(
        _A.c.account_id == bindparam("account_id"),
        _A.c.object_type == "invoice",
        _A.c.object_id == bindparam("object_id"),
    )
    .order_by(_A.c.seq)
)


@dataclass(frozen=True)
class InvoicePage:
    """An invoice as its page shows it, as plain records with the models' attribute
    names: the invoice (with `.lines`), its customer and billing entity, its history."""

    invoice: Any
    customer: Any
    entity: Any
    history: list[Any]


def invoice_page(account_id: uuid.UUID, invoice_id: uuid.UUID) -> InvoicePage:
    """The invoice page's data. NotFound for another account's invoice (or none)."""
    conn = _connection()
    row = conn.execute(
        _INVOICE_WITH_PARTIES, {"account_id": account_id, "invoice_id": invoice_id}
    ).one_or_none()
    if row is None:
        raise NotFound("Invoice")
    parts: dict[str, dict[str, Any]] = {"i": {}, "c": {}, "e": {}}
    for key, value in row._mapping.items():
        parts[key[0]][key[2:]] = value
    lines = [LineRecord(*r) for r in conn.execute(_LINES, {"invoice_id": invoice_id})]
    invoice = SimpleNamespace(
        **{attr: parts["i"][column] for column, attr in INVOICE_COLUMNS}, lines=lines
    )
    history = list(conn.execute(_HISTORY, {"account_id": account_id, "object_id": str(invoice_id)}))
    return InvoicePage(
        invoice, SimpleNamespace(**parts["c"]), SimpleNamespace(**parts["e"]), history
    )


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


def preview_totals(
    account_id: uuid.UUID,
    account_default_vat_percent: Decimal | None,
    customer_id: uuid.UUID,
    billing_entity_id: uuid.UUID | None,
    drafts: Sequence[LineDraft],
) -> tuple[list[LineRecord], calc.Totals]:
    """What `invoices.service.preview_totals` computes (the same `build_lines` and
    `compute_totals` the saved invoice's totals come from), with the customer and billing
    entity read in one Core query and the account's default VAT passed in (the page has
    read its account already). NotFound("Customer") / NotFound("Billing entity") alike."""
    conn = _connection()
    params: dict[str, Any] = {"account_id": account_id, "customer_id": customer_id}
    if billing_entity_id is not None:
        params["entity_id"] = billing_entity_id
        stmt = _PRICING_WITH_ENTITY
    else:
        stmt = _PRICING_DEFAULT_ENTITY
    row = conn.execute(stmt, params).one_or_none()
    if row is None:
        raise NotFound("Customer")
    customer_tax_id, entity_id, entity_tax_id = row
    if entity_id is None:
        raise NotFound("Billing entity")
    parties = Parties(account_id, account_default_vat_percent, customer_tax_id, entity_tax_id)
    lines = build_lines(parties, drafts, conn=conn)
    return lines, calc.compute_totals(line_inputs(lines))
