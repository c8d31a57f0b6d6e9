"""Invoices: create, finalize (numbering), pay, void, delete, read.

Invariants this module keeps, whatever door the call comes through:
- totals are only ever stored from `calc.compute_totals`, never taken from a client;
- a number is taken only when an invoice leaves `draft`, in the same transaction, from the
  billing entity's locked counter; a rollback gives it back, so the series has no gaps;
- from `open` on, lines, amounts, currency, customer and number never change;
- every state change writes an audit record.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from types import SimpleNamespace
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import (
    JSON,
    LABEL_STYLE_NONE,
    Select,
    Text,
    bindparam,
    case,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy import cast as sa_cast
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from ..accounts.models import Account
from ..accounts.scope import AccountScope, scoped_rows
from ..audit import service as audit
from ..catalog.models import Charge, Metric
from ..customers.models import Customer, Wallet
from ..db import (
    Precompiled,
    core_connection,
    core_write,
    decimal_text,
    decimal_to_str,
    new_uuid,
    precompiled,
    utcnow,
    write_transaction,
)
from ..documents.snapshot import due_write, take_snapshot
from ..entities.models import BillingEntity
from ..entities.service import HANDLE_UNSAFE, format_number, number_template
from ..errors import InvalidInput, InvalidState, NotFound
from ..extensions import db
from ..money import line_amount, percent_to_fraction
from ..querying import order_clause, page
from ..taxes.models import TaxRate
from ..taxes.service import TaxTable, load_tax_table, tax_table
from . import calc, finalize_pg
from .models import (
    DRAFT,
    FAILED,
    ONE_OFF,
    OPEN,
    PAID,
    VOID,
    Invoice,
    InvoiceLine,
)
from .records import INVOICE_COLUMNS, TOTALS_COLUMNS, LineRecord, invoice_record, invoice_row

MAX_LINES = 500
LINE_KINDS = {"discount": calc.DISCOUNT, "credit": calc.CREDIT}


@dataclass(frozen=True)
class LineDraft:
    description: str
    quantity: Decimal
    unit_amount: Decimal
    # What the client says the amount is; checked, never trusted. None: computed.
    amount_minor: int | None = None
    tax_percent: Decimal | None = None
    amount_incl_vat: bool = False
    charge_id: uuid.UUID | None = None
    metric_code: str | None = None
    origin: str = "one_off"
    origin_handle: str | None = None
    period_from: datetime | None = None
    period_to: datetime | None = None


@dataclass(frozen=True)
class OneOffInvoiceRequest:
    customer_id: uuid.UUID
    currency: str
    lines: Sequence[LineDraft]
    due_at: datetime | None = None
    billing_entity_id: uuid.UUID | None = None
    metadata: dict[str, Any] | None = field(default=None)


# ---------------------------------------------------------------- reads


def _scoped(account_id: uuid.UUID) -> Select[Any]:
    return select(Invoice).where(Invoice.account_id == account_id)


def get_invoice(account_id: uuid.UUID, invoice_id: uuid.UUID, *, lock: bool = False) -> Invoice:
    """The invoice with its lines, or NotFound (another account's invoice included)."""
    stmt = _scoped(account_id).where(Invoice.id == invoice_id).options(selectinload(Invoice.lines))
    if lock:
        stmt = stmt.with_for_update()
    invoice = db.session.scalars(stmt).one_or_none()
    if invoice is None:
        raise NotFound("Invoice")
    return invoice


@dataclass(frozen=True)
class InvoiceFilter:
    customer_id: uuid.UUID | None = None
    subscription_id: uuid.UUID | None = None
    states: tuple[str, ...] | None = None


ORDER_FIELDS = {
    "created_at": Invoice.created_at,
    "issued_at": Invoice.issued_at,
    "due_date": Invoice.due_at,
    "invoice_number": Invoice.invoice_number,
    "number": Invoice.number,
    "total_cents": Invoice.total_minor,
    "status": Invoice.state,
}


def list_invoices(
    account_id: uuid.UUID, flt: InvoiceFilter, skip: int, limit: int, order_by: str | None
) -> list[Invoice]:
    stmt = _scoped(account_id)
    if flt.customer_id is not None:
        stmt = stmt.where(Invoice.customer_id == flt.customer_id)
    if flt.subscription_id is not None:
        stmt = stmt.where(Invoice.subscription_id == flt.subscription_id)
    if flt.states:
        stmt = stmt.where(Invoice.state.in_(flt.states))
    stmt = stmt.order_by(*order_clause(Invoice, order_by, ORDER_FIELDS, "-created_at"))
    stmt = stmt.options(selectinload(Invoice.lines))
    return page(stmt, skip, limit)


def tax_breakdown(invoice: Invoice) -> calc.Totals:
    """The per-rate figures of a stored invoice, from the same totals function."""
    return calc.compute_totals(
        line_inputs(invoice.lines),
        prepaid_available_minor=invoice.prepaid_credit_minor,
        progressive_credit_minor=invoice.progressive_credit_minor,
    )


# ---------------------------------------------------------------- create


def line_inputs(lines: Sequence[InvoiceLine | LineRecord]) -> list[calc.LineInput]:
    return [
        calc.LineInput(
            amount_minor=line.amount_minor,
            rate=percent_to_fraction(line.tax_rate),
            amount_incl_vat=line.amount_incl_vat,
            kind=LINE_KINDS.get(line.origin, calc.CHARGE),
        )
        for line in lines
    ]


def _store_totals(invoice: Invoice, totals: calc.Totals) -> None:
    invoice.subtotal_minor = totals.subtotal_minor
    invoice.discount_minor = totals.discount_minor
    invoice.credit_minor = totals.credit_minor
    invoice.net_minor = totals.net_minor
    invoice.vat_minor = totals.vat_minor
    invoice.gross_minor = totals.gross_minor
    invoice.prepaid_credit_minor = totals.prepaid_credit_minor
    invoice.total_minor = totals.total_minor


def checked_amount(index: int, draft: LineDraft) -> int:
    """The line's amount; a claimed amount must equal quantity x unit price, half-up."""
    expected = line_amount(draft.quantity, draft.unit_amount)
    if draft.amount_minor is not None and draft.amount_minor != expected:
        raise InvalidInput(
            ("line_items", index, "amount"),
            f"amount must equal quantity x unit_price rounded half-up to a whole minor unit: "
            f"expected {expected}, got {draft.amount_minor}",
        )
    return expected


@dataclass(frozen=True, slots=True)
class Parties:
    """Who a document is between, as far as pricing needs: the tax precedence levels."""

    account_id: uuid.UUID
    account_default_vat_percent: Decimal | None
    customer_tax_id: uuid.UUID | None
    entity_tax_id: uuid.UUID | None

    @classmethod
    def of(cls, account: Account, customer: Customer, entity: BillingEntity) -> Parties:
        return cls(
            account.id,
            account.default_vat_percent,
            customer.tax_rate_id,
            entity.default_tax_rate_id,
        )


def build_lines(
    parties: Parties,
    drafts: Sequence[LineDraft],
    *,
    max_lines: int | None = MAX_LINES,
    conn: Any = None,
    taxes: TaxTable | None = None,
) -> list[LineRecord]:
    """Validated lines with amounts, tax rates and line VAT; nothing is written.

    Reads: the charges and metrics the lines name (only when they name some), and the
    tax rates they can use (one query), unless the caller passes `taxes` (the table of the
    parties' rates) and no line names a charge.
    """
    if not drafts:
        raise InvalidInput(("line_items",), "At least one line is required")
    if max_lines is not None and len(drafts) > max_lines:
        raise InvalidInput(("line_items",), f"At most {max_lines} lines are allowed")
    conn = conn or db.session.connection()
    account_id = parties.account_id
    charge_ids = {d.charge_id for d in drafts if d.charge_id is not None}
    charge_taxes: dict[uuid.UUID, uuid.UUID | None] = {}
    if charge_ids:
        charge_taxes = dict(
            conn.execute(
                select(Charge.id, Charge.tax_rate_id).where(
                    Charge.account_id == account_id, Charge.id.in_(charge_ids)
                )
            ).all()
        )
    codes = {d.metric_code for d in drafts if d.metric_code is not None}
    known_codes: set[str] = set()
    if codes:
        known_codes = set(
            conn.execute(
                select(Metric.code).where(Metric.account_id == account_id, Metric.code.in_(codes))
            ).scalars()
        )
    if taxes is None or charge_taxes:
        taxes = load_tax_table(
            account_id,
            [parties.customer_tax_id, parties.entity_tax_id, *charge_taxes.values()],
            parties.account_default_vat_percent,
            conn=conn,
        )
    lines: list[LineRecord] = []
    for index, draft in enumerate(drafts):
        amount = checked_amount(index, draft)
        if draft.charge_id is not None and draft.charge_id not in charge_taxes:
            raise InvalidInput(("line_items", index, "charge_id"), "Unknown charge_id")
        if draft.metric_code is not None and draft.metric_code not in known_codes:
            raise InvalidInput(
                ("line_items", index, "metric_code"), f"Unknown metric_code {draft.metric_code!r}"
            )
        percent, tax_code = taxes.rate_for(
            line_percent=draft.tax_percent,
            item_tax_id=charge_taxes.get(draft.charge_id) if draft.charge_id else None,
            customer_tax_id=parties.customer_tax_id,
            entity_tax_id=parties.entity_tax_id,
        )
        lines.append(
            LineRecord(
                id=new_uuid(),
                position=index,
                description=draft.description,
                quantity=draft.quantity,
                unit_amount=draft.unit_amount,
                amount_minor=amount,
                tax_rate=percent,
                tax_code=tax_code,
                amount_incl_vat=draft.amount_incl_vat,
                vat_minor=calc.line_vat_minor(
                    amount, percent_to_fraction(percent), draft.amount_incl_vat
                ),
                origin=draft.origin,
                origin_handle=draft.origin_handle,
                charge_id=draft.charge_id,
                metric_code=draft.metric_code,
                period_from=draft.period_from,
                period_to=draft.period_to,
            )
        )
    return lines


def draft_number() -> str:
    return f"DRAFT-{secrets.token_hex(4).upper()}"


def _snapshot(invoice: Invoice) -> dict[str, Any]:
    return {
        "state": invoice.state,
        "number": invoice.number,
        "invoice_number": invoice.invoice_number,
        "total_minor": invoice.total_minor,
        "vat_minor": invoice.vat_minor,
        "currency": invoice.currency,
    }


_CUSTOMERS = Customer.__table__
_ENTITIES = BillingEntity.__table__
_ACCOUNTS = Account.__table__
_DEFAULT_ENTITY_ROW = _ENTITIES.alias("default_entity")
_TAX_RATES = TaxRate.__table__
# The customer, the billing entity the invoice will have (the request's, else the
# customer's, else the account's default), the account's default VAT, and the tax rates
# pricing can use (the customer's, the entity's, the organisation-wide ones: one row per
# rate, the parties repeated), in one query. No row: no such customer in the account;
# entity columns NULL: no such entity in it.
_PRICING_PARTIES = (
    select(
        _CUSTOMERS.c.id.label("customer_id"),
        _CUSTOMERS.c.tax_rate_id,
        _TAX_RATES.c.id,
        _TAX_RATES.c.rate,
        _TAX_RATES.c.code,
        _TAX_RATES.c.applied_to_organization,
        _ENTITIES.c.id.label("entity_id"),
        _ENTITIES.c.default_tax_rate_id.label("entity_tax_rate_id"),
        select(_ACCOUNTS.c.default_vat_percent)
        .where(_ACCOUNTS.c.id == bindparam("account"))
        .scalar_subquery()
        .label("default_vat_percent"),
    )
    .select_from(_CUSTOMERS)
    .outerjoin(
        _ENTITIES,
        (_ENTITIES.c.account_id == bindparam("account"))
        & (
            _ENTITIES.c.id
            == func.coalesce(
                bindparam("entity", type_=_ENTITIES.c.id.type),
                _CUSTOMERS.c.billing_entity_id,
                select(_DEFAULT_ENTITY_ROW.c.id)
                .where(_DEFAULT_ENTITY_ROW.c.account_id == bindparam("account"))
                .order_by(_DEFAULT_ENTITY_ROW.c.is_default.desc(), _DEFAULT_ENTITY_ROW.c.created_at)
                .limit(1)
                .scalar_subquery(),
            )
        ),
    )
    .outerjoin(
        _TAX_RATES,
        (_TAX_RATES.c.account_id == bindparam("account"))
        & or_(
            _TAX_RATES.c.applied_to_organization,
            _TAX_RATES.c.id == _CUSTOMERS.c.tax_rate_id,
            _TAX_RATES.c.id == _ENTITIES.c.default_tax_rate_id,
        ),
    )
    .where(_CUSTOMERS.c.account_id == bindparam("account"), _CUSTOMERS.c.id == bindparam("id"))
    .order_by(_TAX_RATES.c.created_at)
)


def _customer_and_entity(
    conn: Any, account: AccountScope, customer_id: uuid.UUID, entity_id: uuid.UUID | None
) -> tuple[uuid.UUID, Any, TaxTable]:
    """(the account id, the pricing parties' row, their tax table): customer (customer_id,
    tax_rate_id), entity (entity_id, entity_tax_rate_id), the account's default VAT. The
    entity is the request's, else the customer's, else the account's default. NotFound for
    either (another account's included)."""
    params = {"id": customer_id, "entity": entity_id}
    account_id, rows = scoped_rows(conn, _PRICING_PARTIES, account, params)
    if not rows:
        raise NotFound("Customer")
    row = rows[0]
    if row.entity_id is None:
        raise NotFound("Billing entity")
    return account_id, row, tax_table(rows, row.default_vat_percent)


_NEW_INVOICE_DEFAULTS: dict[str, Any] = {attr: None for _, attr in INVOICE_COLUMNS} | {
    "progressive_credit_minor": 0,
    "instant": False,
    "dunning": False,
    "collect_attempts": 0,
}
_INSERT_INVOICE = insert(Invoice.__table__)
_INSERT_LINES = insert(InvoiceLine.__table__)
# SQLite: the same inserts without SQLAlchemy's per-execution work (database.Precompiled).
_INSERT_INVOICE_FAST = Precompiled(_INSERT_INVOICE, column_keys=[c for c, _ in INVOICE_COLUMNS])
_INSERT_LINES_FAST = Precompiled(_INSERT_LINES, column_keys=LineRecord.FIELDS)


# PostgreSQL: the invoice and its lines are inserted by the audit record's statement
# (`audit.record(with_writes=...)`), from statements built once per line count with
# named parameters, so SQLAlchemy and psycopg reuse their compiled and prepared forms.
_INVOICE_TABLE = Invoice.__table__
_LINE_COLUMNS = [InvoiceLine.__table__.c[name] for name in LineRecord.FIELDS]
# The invoice as one JSON parameter too (json_populate_record), but for its JSON columns,
# bound as themselves so they are stored exactly as every other path stores them: with
# one parameter per column the statement had 56 parameters, past what psycopg caches the
# parsed form of (50), so it parsed the whole text again on every request.
_INVOICE_JSON_COLUMNS = tuple(c.name for c in _INVOICE_TABLE.c if isinstance(c.type, JSON))
_INVOICE_PLAIN_COLUMNS = tuple(
    c.name for c in _INVOICE_TABLE.c if c.name not in _INVOICE_JSON_COLUMNS
)
_NEW_INVOICE = func.json_populate_record(
    literal_column("NULL::invoices"), sa_cast(bindparam("wi_json", type_=Text), JSON)
).table_valued(*_INVOICE_PLAIN_COLUMNS, name="n")
_INSERT_INVOICE_PARAMS = _INSERT_INVOICE.from_select(
    [*_INVOICE_PLAIN_COLUMNS, *_INVOICE_JSON_COLUMNS],
    select(
        *[_NEW_INVOICE.c[name] for name in _INVOICE_PLAIN_COLUMNS],
        *[
            bindparam(f"wi_{name}", type_=_INVOICE_TABLE.c[name].type)
            for name in _INVOICE_JSON_COLUMNS
        ],
    ).set_label_style(LABEL_STYLE_NONE),  # no "AS <name>" after each column: a shorter text
)


# The lines as one JSON parameter expanded by json_populate_recordset: one statement text
# whatever the number of lines (a multi-row VALUES is neither cached nor prepared).
_NEW_LINES = func.json_populate_recordset(
    literal_column("NULL::invoice_lines"), sa_cast(bindparam("wl_json", type_=Text), JSON)
).table_valued(*[column.name for column in _LINE_COLUMNS], name="l")
_INSERT_LINES_JSON = _INSERT_LINES.from_select(
    [column.name for column in _LINE_COLUMNS],
    select(*[_NEW_LINES.c[column.name] for column in _LINE_COLUMNS]).set_label_style(
        LABEL_STYLE_NONE
    ),
)


# DecimalText columns take the canonical text they store.
_TO_JSON: dict[type, Callable[[Any], Any]] = {
    uuid.UUID: str,
    Decimal: decimal_to_str,
    datetime: datetime.isoformat,
}


def _json_value(value: Any) -> Any:
    """A value as json_populate_record reads it into its column (one lookup by exact
    type: the invoice has ~50 values, mostly plain ones)."""
    convert = _TO_JSON.get(type(value))
    return value if convert is None else convert(value)


def _lines_json(lines: list[LineRecord]) -> str:
    """The lines as json_populate_recordset reads them into their columns: the values
    JSON cannot carry converted by field (`_LINE_UUIDS` ... below), without a type test
    per value, which cost more than the rest for a 23-line invoice."""
    rows = []
    for line in lines:
        row = line.row()
        for name in _LINE_UUIDS:
            if row[name] is not None:
                row[name] = str(row[name])
        for name in _LINE_DECIMALS:
            row[name] = decimal_text(row[name])  # DecimalText's canonical text
        for name in _LINE_TIMES:
            if row[name] is not None:
                row[name] = row[name].isoformat()
        rows.append(row)
    return json.dumps(rows, ensure_ascii=False, separators=(",", ":"))


def invoice_writes(invoice: Any, lines: list[LineRecord]) -> list[tuple[Any, dict[str, Any]]]:
    """The inserts of a new invoice and its lines as (statement, parameters) pairs with
    fixed statement texts (lines as one JSON parameter): for `audit.record(with_writes=...)`
    or `insert_invoice`, on PostgreSQL."""
    row = invoice_row(invoice)
    invoice_params = {f"wi_{name}": row.pop(name) for name in _INVOICE_JSON_COLUMNS}
    invoice_params["wi_json"] = json.dumps(
        {name: _json_value(value) for name, value in row.items()},
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return [
        (_INSERT_INVOICE_PARAMS, invoice_params),
        (_INSERT_LINES_JSON, {"wl_json": _lines_json(lines)}),
    ]


_INSERT_INVOICE_AND_LINES = _INSERT_INVOICE_PARAMS.add_cte(_INSERT_LINES_JSON.cte("new_lines"))


def insert_invoice(conn: Any, invoice: Any, lines: list[LineRecord]) -> None:
    """Insert a new invoice and its lines: one statement on PostgreSQL, two elsewhere."""
    if conn.dialect.name != "postgresql":
        _INSERT_INVOICE_FAST.execute(conn, invoice_row(invoice))
        if lines:
            _INSERT_LINES_FAST.execute(conn, [line.row() for line in lines])
        return
    (_, invoice_params), (_, lines_params) = invoice_writes(invoice, lines)
    precompiled(_INSERT_INVOICE_AND_LINES).execute(conn, invoice_params | lines_params)


def _store_new_invoice(
    conn: Any,
    account_id: uuid.UUID,
    invoice: Any,
    lines: list[LineRecord],
    *,
    after: dict[str, Any],
) -> None:
    """Insert a new invoice, its lines and its `invoice.created` audit record: on
    PostgreSQL in one statement, elsewhere in a few."""
    postgres = conn.dialect.name == "postgresql"
    if not postgres:
        insert_invoice(conn, invoice, lines)
    audit.record(
        account_id,
        "invoice.created",
        "invoice",
        invoice.id,
        after=after,
        conn=conn,
        with_writes=invoice_writes(invoice, lines) if postgres else (),
    )


def create_one_off_invoice(account: AccountScope, req: OneOffInvoiceRequest) -> Invoice:
    """A draft one-off invoice. Raises NotFound (customer, billing entity), InvalidInput.

    Everything is read and computed first; the write transaction (on SQLite the write lock)
    only inserts the invoice, its lines and the audit record, with Core statements. The
    invoice returned is a plain record with the model's attributes, not a session object.
    """
    with core_connection() as conn:
        return _create_one_off(conn, account, req)


def _create_one_off(conn: Any, account: AccountScope, req: OneOffInvoiceRequest) -> Invoice:
    account_id, found, taxes = _customer_and_entity(
        conn, account, req.customer_id, req.billing_entity_id
    )
    parties = Parties(
        account_id, found.default_vat_percent, found.tax_rate_id, found.entity_tax_rate_id
    )
    lines = build_lines(parties, req.lines, conn=conn, taxes=taxes)
    totals = calc.compute_totals(line_inputs(lines))
    if totals.total_minor < 0:
        raise InvalidInput(
            ("line_items",), "The invoice total cannot be negative; issue a credit note instead"
        )
    now = utcnow()
    invoice = SimpleNamespace(**_NEW_INVOICE_DEFAULTS)
    invoice.id = new_uuid()
    invoice.account_id = account_id
    invoice.billing_entity_id = found.entity_id
    invoice.customer_id = found.customer_id
    invoice.invoice_type = ONE_OFF
    invoice.state = DRAFT
    invoice.currency = req.currency
    invoice.invoice_number = draft_number()
    invoice.billing_period_start = invoice.billing_period_end = now
    invoice.due_at = req.due_at
    invoice.created_at = invoice.updated_at = now
    invoice.invoice_metadata = req.metadata
    _store_totals(cast(Invoice, invoice), totals)
    for line in lines:
        line.invoice_id = invoice.id
    # On PostgreSQL the invoice, its lines and the audit record are one statement.
    with core_write(conn, one_statement=conn.dialect.name == "postgresql"):
        try:
            _store_new_invoice(
                conn, account_id, invoice, lines, after=_snapshot(cast(Invoice, invoice))
            )
        except IntegrityError:
            # The customer or the entity went away since we read them.
            raise NotFound("Customer") from None
    invoice.lines = lines
    return cast(Invoice, invoice)


# ---------------------------------------------------------------- numbering


_BE = BillingEntity.__table__
_TAKE_NUMBER = (
    update(_BE)
    .where(_BE.c.id == bindparam("entity"))
    .values(next_invoice_number=_BE.c.next_invoice_number + 1)
    .returning(_BE.c.next_invoice_number - 1)
)
_TAKE_NUMBER_FAST = Precompiled(_TAKE_NUMBER)
_IT = Invoice.__table__
_HANDLE_TAKEN = select(func.count()).where(
    _IT.c.account_id == bindparam("account"), _IT.c.handle == bindparam("handle")
)


def take_number(entity_id: uuid.UUID, conn: Any = None) -> int:
    """Next number of the entity's series, from its counter row, locked until commit.

    `UPDATE ... RETURNING` takes the row lock on PostgreSQL (parallel finalizers queue);
    on SQLite the transaction already holds the write lock (BEGIN IMMEDIATE). The unique
    constraint on (billing_entity_id, number) stands behind both.
    """
    conn = conn or db.session.connection()
    params = {"entity": entity_id, "updated_at": utcnow()}
    return int(_TAKE_NUMBER_FAST.execute(conn, params).scalar_one())


def _handle_candidates(printed: str, invoice_id: uuid.UUID) -> tuple[str, str]:
    """`inv-<printed number>`, and the one to use if another issuer of the account printed
    the same number."""
    base = "inv-" + HANDLE_UNSAFE.sub("-", printed)
    return base, base + _handle_suffix(invoice_id)


def _handle_suffix(invoice_id: uuid.UUID) -> str:
    """The id's last 8 hex digits: random in a time-ordered (v7) id as in a v4 one. (Its
    first 8 are the creation time in units of 65 s, shared by the invoices made in the
    same minute.)"""
    return f"-{invoice_id.hex[-8:]}"


def _handle_for(
    account_id: uuid.UUID, printed: str, invoice_id: uuid.UUID, conn: Any = None
) -> str:
    """`inv-<printed number>`; with a suffix in the rare case another issuer of the account
    printed the same number."""
    conn = conn or db.session.connection()
    base, alternative = _handle_candidates(printed, invoice_id)
    taken = conn.execute(_HANDLE_TAKEN, {"account": account_id, "handle": base}).scalar_one()
    return alternative if taken else base


@dataclass(frozen=True, slots=True)
class Issue:
    """Everything that changes when a draft is issued, computed before any write."""

    issued_at: datetime
    due_at: datetime
    totals: calc.Totals
    state: str
    paid_at: datetime | None


def payment_term(customer_term: int | None, entity_term: int) -> int:
    """Days from issue to due: the customer's term, else the entity's."""
    return customer_term if customer_term is not None else entity_term


def issue_terms(
    invoice: Invoice,
    customer_term: int | None,
    entity_term: int,
    wallet_balance: int,
    now: datetime,
    *,
    totals: calc.Totals | None = None,
) -> Issue:
    """The issuing rules: due date from the payment term (customer's, else the entity's)
    unless the invoice has one; prepaid credit applied after VAT; nothing due -> paid.

    `totals`: the lines' totals if the caller has them; used when nothing is prepaid or
    progressively credited (else they are computed with those)."""
    if invoice.state != DRAFT:
        raise InvalidState("Only draft invoices can be finalized")
    due = invoice.due_at
    if due is None:
        due = now + timedelta(days=payment_term(customer_term, entity_term))
    if totals is None or wallet_balance or invoice.progressive_credit_minor:
        totals = calc.compute_totals(
            line_inputs(invoice.lines),
            prepaid_available_minor=wallet_balance,
            progressive_credit_minor=invoice.progressive_credit_minor,
        )
    paid = totals.total_minor == 0
    return Issue(now, due, totals, PAID if paid else OPEN, now if paid else None)


def _apply_issue(
    invoice: Invoice, issue: Issue, number: int, invoice_number: str, handle: str
) -> None:
    invoice.number = number
    invoice.invoice_number = invoice_number
    invoice.handle = handle
    invoice.issued_at = issue.issued_at
    invoice.due_at = issue.due_at
    _store_totals(invoice, issue.totals)
    invoice.state = issue.state
    invoice.paid_at = issue.paid_at
    invoice.updated_at = issue.issued_at


def issue_new(
    conn: Any,
    invoice: Any,
    entity: Any,
    customer: Any,
    *,
    wallet_may_have_credit: bool,
    now: datetime,
    totals: calc.Totals | None = None,
) -> None:
    """Inside the caller's write transaction on `conn`: make a new draft record (not stored
    yet) `open` (the subscription dialect creates invoices open): due date, prepaid credit
    from the customer's wallet, a number from the entity's series. The caller then inserts
    it, so it is written once, final.

    `wallet_may_have_credit`: whether the caller's read saw a wallet with a positive
    balance; without one the wallet is not read (or locked) at all.
    """
    balance = 0
    if wallet_may_have_credit:
        balance = (
            conn.execute(
                _WALLET_BALANCE, {"customer": invoice.customer_id, "currency": invoice.currency}
            ).scalar_one_or_none()
            or 0
        )
    issue = issue_terms(
        cast(Invoice, invoice),
        customer.net_payment_term,
        entity.net_payment_term,
        balance,
        now,
        totals=totals,
    )
    number = take_number(entity.id, conn)
    printed = format_number(entity, number, now.astimezone(ZoneInfo(entity.timezone or "UTC")))
    handle = invoice.handle or _handle_for(invoice.account_id, printed, invoice.id, conn)
    if issue.totals.prepaid_credit_minor:
        conn.execute(
            _SPEND_WALLET,
            {
                "customer": invoice.customer_id,
                "cur": invoice.currency,
                "spent": issue.totals.prepaid_credit_minor,
            },
        )
    _apply_issue(cast(Invoice, invoice), issue, number, printed, handle)


def new_invoice_record(**values: Any) -> Any:
    """A plain invoice record with every model attribute (defaults as the columns'), for
    the Core create paths; `invoice_row()` turns it into the INSERT's row."""
    record = SimpleNamespace(**_NEW_INVOICE_DEFAULTS)
    for name, value in values.items():
        if not hasattr(record, name):
            raise AttributeError(f"Invoice has no attribute {name!r}")
        setattr(record, name, value)
    return record


INSERT_INVOICE = _INSERT_INVOICE
INSERT_LINES = _INSERT_LINES


_LT = InvoiceLine.__table__
_WT = Wallet.__table__
_CT = Customer.__table__
_LINES_FOR_ISSUE = (
    select(*[_LT.c[f.name] for f in dataclass_fields(LineRecord)])
    .where(_LT.c.invoice_id == bindparam("id"))
    .order_by(_LT.c.position)
)
# The invoice, its issuer and its customer in one query: entity and customer columns are
# prefixed `e_` / `c_` so they do not collide with the invoice's. The tables are read
# under one-letter aliases: with the lines added (PostgreSQL, below) the statement stays
# well under 4 096 bytes, the longest psycopg keeps parsed between runs.
_I, _E, _C = _IT.alias("i"), _BE.alias("e"), _CT.alias("c")
_ISSUE_READ = (
    select(
        _I,
        *[column.label(f"e_{column.key}") for column in _E.c],
        *[column.label(f"c_{column.key}") for column in _C.c],
        select(func.count())
        .where(
            _WT.c.customer_id == _I.c.customer_id,
            _WT.c.currency == _I.c.currency,
            _WT.c.balance_minor > 0,
        )
        .scalar_subquery()
        .label("wallets_with_credit"),
    )
    .join(_E, _E.c.id == _I.c.billing_entity_id)
    .join(_C, _C.c.id == _I.c.customer_id)
    .where(_I.c.account_id == bindparam("account"), _I.c.id == bindparam("invoice"))
)


# PostgreSQL: the same read with the lines as one JSON array (one round trip, not two).
_LINES_ROW = (
    select(*[_LT.c[f.name] for f in dataclass_fields(LineRecord)])
    .where(_LT.c.invoice_id == bindparam("invoice"))  # the invoice _ISSUE_READ reads
    .subquery("line")
)
_LINES_JSON = (
    select(func.json_agg(aggregate_order_by(_LINES_ROW.table_valued(), _LINES_ROW.c.position)))
    .select_from(_LINES_ROW)
    .scalar_subquery()
)
_ISSUE_READ_WITH_LINES = _ISSUE_READ.add_columns(_LINES_JSON.label("lines_json"))
_LINE_UUIDS = ("id", "invoice_id", "charge_id")
_LINE_DECIMALS = ("quantity", "unit_amount", "tax_rate")
_LINE_TIMES = ("period_from", "period_to")


def _line_from_json(data: dict[str, Any]) -> LineRecord:
    """A line as PostgreSQL's json_agg wrote it: uuids and times as text, the decimal
    columns as the canonical text they are stored as."""
    for name in _LINE_UUIDS:
        if data[name] is not None:
            data[name] = uuid.UUID(data[name])
    for name in _LINE_DECIMALS:
        data[name] = Decimal(data[name])
    for name in _LINE_TIMES:
        if data[name] is not None:
            data[name] = datetime.fromisoformat(data[name])
    return LineRecord(**data)


def _prefixed(row: Any, prefix: str) -> Any:
    """The columns of one table out of a joined row, under their own names: a stand-in for
    the ORM object (same attribute names) without the cost of loading one."""
    return SimpleNamespace(**{name: row[i] for i, name in _picks(row._fields, prefix)})


@lru_cache(maxsize=32)
def _picks(fields: tuple[str, ...], prefix: str) -> tuple[tuple[int, str], ...]:
    """Where a row's `prefix`ed columns are, and their names without it."""
    return tuple((i, f[len(prefix) :]) for i, f in enumerate(fields) if f.startswith(prefix))


_LOCK_INVOICE = select(_IT.c.id).where(_IT.c.id == bindparam("id")).with_for_update()
_WALLET_BALANCE = (
    select(_WT.c.balance_minor)
    .where(_WT.c.customer_id == bindparam("customer"), _WT.c.currency == bindparam("currency"))
    .with_for_update()
)
_SPEND_WALLET = (
    update(_WT)
    .where(_WT.c.customer_id == bindparam("customer"), _WT.c.currency == bindparam("cur"))
    .values(balance_minor=_WT.c.balance_minor - bindparam("spent"))
)


def finalize_invoice(account: AccountScope, invoice_id: uuid.UUID) -> Invoice:
    """draft -> open (or paid when nothing is due). InvalidState otherwise.

    Reads and computes first; the write transaction (on SQLite the write lock) takes the
    number, updates the invoice only if it is still the draft that was read (state and
    updated_at), applies prepaid credit, notes the PDF as due and appends the audit record.
    All with Core; the invoice returned is a plain record with the model's attributes.
    """
    with core_connection() as conn:
        return _finalize(conn, account, invoice_id)


def _finalize(conn: Any, account: AccountScope, invoice_id: uuid.UUID) -> Invoice:
    postgres = conn.dialect.name == "postgresql"
    account_id, rows = scoped_rows(
        conn, _ISSUE_READ_WITH_LINES if postgres else _ISSUE_READ, account, {"invoice": invoice_id}
    )
    if not rows:
        raise NotFound("Invoice")
    row = rows[0]
    if row.state != DRAFT:
        raise InvalidState("Only draft invoices can be finalized")
    if postgres:
        lines = [_line_from_json(data) for data in row.lines_json or ()]
    else:
        read = precompiled(_LINES_FOR_ISSUE).execute(conn, {"id": invoice_id})
        lines = [LineRecord.from_row(r) for r in read]
    invoice = cast(Invoice, invoice_record(row, lines))
    entity = cast(BillingEntity, _prefixed(row, "e_"))
    customer = cast(Customer, _prefixed(row, "c_"))
    before = _snapshot(invoice)
    seen_updated_at = row.updated_at
    # Everything that needs no lock is worked out before the write: the number series
    # (and on SQLite the database) stays locked from the number to commit, and every
    # finalize of the issuer waits for that, so as little as possible happens in it.
    customer_term, entity_term = customer.net_payment_term, entity.net_payment_term
    balance, totals = 0, None
    if not row.wallets_with_credit:
        # No prepaid credit to apply: the totals need no locked read.
        early = issue_terms(invoice, customer_term, entity_term, 0, utcnow())
        totals = early.totals
        if postgres:
            done = _finalize_in_one_statement(
                conn, invoice, entity, customer, early, seen_updated_at, before
            )
            if done is not None:
                return done
    snapshot = take_snapshot(invoice, entity, customer)
    with core_write(conn):
        if postgres:
            # The invoice before the series, as the one-statement finalize locks them: two
            # finalizes of one draft taking them in opposite orders would deadlock.
            precompiled(_LOCK_INVOICE).execute(conn, {"id": invoice_id})
        if totals is None:
            # Prepaid credit may apply: its balance is read under lock.
            balance = conn.execute(
                _WALLET_BALANCE, {"customer": row.customer_id, "currency": row.currency}
            ).scalar_one()
        number = take_number(entity.id, conn)
        # The issue time is read after the number: numbers and issue times rise together.
        now = utcnow()
        issue = issue_terms(invoice, customer_term, entity_term, balance, now, totals=totals)
        invoice.issued_at = issue.issued_at
        due = due_write(invoice, entity, customer, snapshot)
        printed = format_number(entity, number, now.astimezone(ZoneInfo(entity.timezone or "UTC")))
        base, alternative = _handle_candidates(printed, invoice_id)
        _apply_issue(invoice, issue, number, printed, base)
        issued = {
            "_id": invoice_id,
            "_seen": seen_updated_at,
            "_account": account_id,
            "_alt_handle": alternative,
        } | {f"v_{name}": getattr(invoice, name) for name in _ISSUED_COLUMNS}
        if issue.totals.prepaid_credit_minor:
            conn.execute(
                _SPEND_WALLET,
                {
                    "customer": row.customer_id,
                    "cur": row.currency,
                    "spent": issue.totals.prepaid_credit_minor,
                },
            )
        # The record is appended only if the UPDATE found the draft it read.
        stored = audit.record(
            account_id,
            "invoice.finalized",
            "invoice",
            invoice_id,
            before=before,
            after=_snapshot(invoice),
            conn=conn,
            with_writes=((_ISSUE_UPDATE, issued), due),
            guard=0,
        )
        if stored is None:
            # Finalized, deleted or edited by someone else since we read it.
            raise InvalidState(_CHANGED_MEANWHILE)
        invoice.handle = stored.handle
    return invoice


_CHANGED_MEANWHILE = (
    "The invoice changed meanwhile; only draft invoices can be finalized (reload it and try again)"
)


def _finalize_in_one_statement(
    conn: Any,
    invoice: Invoice,
    entity: BillingEntity,
    customer: Customer,
    early: Issue,
    seen_updated_at: datetime,
    before: dict[str, Any],
) -> Invoice | None:
    """PostgreSQL, nothing prepaid to apply: the write as one statement (`finalize_pg`).
    None when the entity's numbers or the audit record cannot be finished by the database
    (see `number_template`, `audit.template`): the caller then writes as usual."""
    template = number_template(entity.number_pattern, entity.invoice_prefix)
    if template is None:
        return None
    invoice_id, account_id = invoice.id, invoice.account_id
    after = _snapshot(invoice) | {
        "state": early.state,
        "total_minor": early.totals.total_minor,
        "vat_minor": early.totals.vat_minor,
        "number": finalize_pg.NUMBER_MARK,
        "invoice_number": finalize_pg.PRINTED_MARK,
    }
    record = audit.template(
        account_id,
        "invoice.finalized",
        "invoice",
        invoice_id,
        before=before,
        after=after,
        marks=(finalize_pg.PRINTED_MARK, finalize_pg.NUMBER_MARK),
    )
    if record is None:
        return None
    done = finalize_pg.issue(
        conn,
        account_id=account_id,
        invoice_id=invoice_id,
        entity_id=entity.id,
        seen_updated_at=seen_updated_at,
        template=template,
        timezone=entity.timezone or "UTC",
        handle_suffix=_handle_suffix(invoice_id),
        due_at=invoice.due_at,
        term_days=payment_term(customer.net_payment_term, entity.net_payment_term),
        totals=early.totals,
        state=early.state,
        snapshot=take_snapshot(invoice, entity, customer),
        record=record,
    )
    if done is None:
        raise InvalidState(_CHANGED_MEANWHILE)
    issue = Issue(done.issued_at, done.due_at, early.totals, early.state, done.paid_at)
    _apply_issue(invoice, issue, done.number, done.invoice_number, done.handle)
    return invoice


_ISSUED_COLUMNS = (
    "number",
    "invoice_number",
    "handle",
    "issued_at",
    "due_at",
    *TOTALS_COLUMNS,
    "state",
    "paid_at",
    "updated_at",
)
_OTHER_INVOICES = _IT.alias("other_invoices")
# Only while it is still the draft that was read (not finalized, deleted or edited since).
# The handle falls back to its alternative if another invoice of the account has it.
_ISSUE_UPDATE = (
    update(_IT)
    .where(
        _IT.c.id == bindparam("_id"),
        _IT.c.state == DRAFT,
        _IT.c.updated_at == bindparam("_seen"),
    )
    .values(
        {name: bindparam(f"v_{name}") for name in _ISSUED_COLUMNS if name != "handle"}
        | {
            "handle": case(
                (
                    select(_OTHER_INVOICES.c.id)
                    .where(
                        _OTHER_INVOICES.c.account_id == bindparam("_account"),
                        _OTHER_INVOICES.c.handle == bindparam("v_handle"),
                    )
                    .exists(),
                    bindparam("_alt_handle"),
                ),
                else_=bindparam("v_handle"),
            )
        }
    )
    .returning(_IT.c.handle)
)


def mark_paid(
    account_id: uuid.UUID, invoice_id: uuid.UUID, paid_at: datetime | None = None
) -> Invoice:
    """open or failed -> paid. A paid_at in the future is refused."""
    now = utcnow()
    if paid_at is not None and paid_at > now + timedelta(minutes=5):
        raise InvalidInput(("paid_at",), "paid_at cannot be in the future")
    with write_transaction():
        invoice = get_invoice(account_id, invoice_id, lock=True)
        if invoice.state not in (OPEN, FAILED):
            raise InvalidState(
                f"Only finalized invoices can be marked paid (this one is {invoice.state})"
            )
        before = _snapshot(invoice)
        invoice.state = PAID
        invoice.paid_at = paid_at or now
        invoice.updated_at = now
        audit.record(
            account_id,
            "invoice.paid",
            "invoice",
            invoice.id,
            before=before,
            after=_snapshot(invoice),
        )
    return invoice


def void_invoice(account_id: uuid.UUID, invoice_id: uuid.UUID) -> Invoice:
    """Any state but paid (and void) -> void. A voided invoice keeps its number.
    Prepaid credit the invoice consumed goes back to the wallet."""
    with write_transaction():
        invoice = get_invoice(account_id, invoice_id, lock=True)
        if invoice.state == PAID:
            raise InvalidState("A paid invoice cannot be voided; issue a credit note instead")
        if invoice.state == VOID:
            raise InvalidState("The invoice is already voided")
        before = _snapshot(invoice)
        now = utcnow()
        if invoice.prepaid_credit_minor:
            db.session.execute(
                update(Wallet)
                .where(
                    Wallet.customer_id == invoice.customer_id, Wallet.currency == invoice.currency
                )
                .values(balance_minor=Wallet.balance_minor + invoice.prepaid_credit_minor)
            )
        invoice.state = VOID
        invoice.voided_at = now
        invoice.updated_at = now
        audit.record(
            account_id,
            "invoice.voided",
            "invoice",
            invoice.id,
            before=before,
            after=_snapshot(invoice),
        )
    return invoice


def delete_draft(account_id: uuid.UUID, invoice_id: uuid.UUID) -> None:
    """Only drafts can be deleted; a numbered invoice is kept forever."""
    with write_transaction():
        invoice = get_invoice(account_id, invoice_id, lock=True)
        if invoice.state != DRAFT or invoice.number is not None:
            raise InvalidState("Only draft invoices can be deleted")
        before = _snapshot(invoice)
        db.session.delete(invoice)
        audit.record(account_id, "invoice.deleted", "invoice", invoice_id, before=before)


def update_draft(
    account_id: uuid.UUID, invoice_id: uuid.UUID, *, due_at: datetime | None
) -> Invoice:
    """Change what a draft allows (its due date). Anything on a non-draft: InvalidState."""
    with write_transaction():
        invoice = get_invoice(account_id, invoice_id, lock=True)
        ensure_editable(invoice)
        if invoice.due_at != due_at:
            before = {"due_at": invoice.due_at}
            invoice.due_at = due_at
            invoice.updated_at = utcnow()
            audit.record(
                account_id,
                "invoice.updated",
                "invoice",
                invoice.id,
                before=before,
                after={"due_at": due_at},
            )
    return invoice


def ensure_editable(invoice: Invoice) -> None:
    if invoice.state != DRAFT:
        raise InvalidState("A finalized invoice cannot be changed; void it and issue a new one")


def replace_lines(
    account_id: uuid.UUID, invoice_id: uuid.UUID, drafts: Sequence[LineDraft]
) -> Invoice:
    """Replace a draft's lines (the browser editor). Refused once the invoice is open."""
    with write_transaction():
        invoice = get_invoice(account_id, invoice_id, lock=True)
        ensure_editable(invoice)
        account = db.session.get(Account, account_id)
        customer = db.session.get(Customer, invoice.customer_id)
        entity = db.session.get(BillingEntity, invoice.billing_entity_id)
        assert account is not None and customer is not None and entity is not None
        lines = build_lines(Parties.of(account, customer, entity), drafts)
        totals = calc.compute_totals(line_inputs(lines))
        if totals.total_minor < 0:
            raise InvalidInput(
                ("line_items",), "The invoice total cannot be negative; issue a credit note instead"
            )
        before = _snapshot(invoice)
        invoice.lines = [line.to_model() for line in lines]
        _store_totals(invoice, totals)
        invoice.updated_at = utcnow()
        db.session.flush()
        audit.record(
            account_id,
            "invoice.lines_replaced",
            "invoice",
            invoice.id,
            before=before,
            after=_snapshot(invoice),
        )
    return invoice


# ---------------------------------------------------------------- browser: list, issue, edit

# Sort keys of the browser list, each backed by an index that starts with account_id and
# ends with id, so that every page (the first or the 2 000th) is one index range scan.
BROWSE_SORTS: dict[str, Any] = {
    "created": Invoice.created_at,
    "number": Invoice.invoice_number,
    "total": Invoice.total_minor,
}
MAX_PAGE_SIZE = 200


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


def _encode_cursor(sort: str, row: InvoiceListRow) -> str:
    value: Any = getattr(row, BROWSE_SORTS[sort].key)
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps([sort, value, row.id.hex], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(sort: str, cursor: str) -> tuple[Any, uuid.UUID]:
    """(sort value, id) of a cursor made for this sort; InvalidInput for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        cursor_sort, value, id_hex = json.loads(raw)
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


# The list's columns, built once (building a statement costs about what running it does).
def issue_one_off_invoice(account_id: uuid.UUID, req: OneOffInvoiceRequest) -> Invoice:
    """Create and finalize in one transaction: the invoice exists numbered, or not at all."""
    with write_transaction():
        invoice = create_one_off_invoice(account_id, req)
        return finalize_invoice(account_id, invoice.id)


def edit_draft(
    account_id: uuid.UUID,
    invoice_id: uuid.UUID,
    *,
    due_at: datetime | None,
    drafts: Sequence[LineDraft],
    finalize: bool = False,
) -> Invoice:
    """The browser editor's save: a draft's due date and lines in one transaction, then
    (optionally) finalize it in the same one. InvalidState once the invoice is open."""
    with write_transaction():
        update_draft(account_id, invoice_id, due_at=due_at)
        invoice = replace_lines(account_id, invoice_id, drafts)
        if finalize:
            invoice = finalize_invoice(account_id, invoice_id)
    return invoice
