"""Kept for subscriptions/invoicing.py, invoices/queries.py and the web routes until they
are ported to the ORM invoice (`invoices.service.build_lines`, `issue`, `parties`); then
this module goes. Nothing new may use it.

What is here: the plain line record and invoice record of the old Core write paths, the
old pricing parties, and the Core helpers that price, number and insert such records
(the rules themselves are called from their homes: `numbering`, `calc`, `taxes`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import func, insert, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Row

from ..customers.models import Wallet
from ..db import new_uuid
from ..entities.models import BillingEntity
from ..errors import InvalidState
from ..extensions import db
from ..money import percent_to_fraction
from ..taxes.service import TaxTable, load_tax_table
from . import calc, numbering
from .models import DRAFT, OPEN, PAID, Invoice, InvoiceLine

if TYPE_CHECKING:
    from .service import LineDraft

# The invoice columns an issue writes from its totals (calc.Totals' fields of the
# same names).
TOTALS_COLUMNS = (
    "subtotal_minor",
    "discount_minor",
    "credit_minor",
    "net_minor",
    "vat_minor",
    "gross_minor",
    "prepaid_credit_minor",
    "total_minor",
)


@dataclass(slots=True)
class LineRecord:
    id: uuid.UUID
    description: str
    quantity: Decimal
    unit_amount: Decimal
    amount_minor: int
    tax_rate: Decimal
    amount_incl_vat: bool
    vat_minor: int
    origin: str
    position: int = 0
    tax_code: str | None = None
    origin_handle: str | None = None
    charge_id: uuid.UUID | None = None
    metric_code: str | None = None
    period_from: datetime | None = None
    period_to: datetime | None = None
    discounted_amount: int | None = None
    invoice_id: uuid.UUID | None = None

    FIELDS: ClassVar[tuple[str, ...]]

    def row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _LINE_FIELDS}

    def to_model(self) -> InvoiceLine:
        data = self.row()
        if data["invoice_id"] is None:
            del data["invoice_id"]
        return InvoiceLine(**data)

    @classmethod
    def from_row(cls, row: Row[Any]) -> LineRecord:
        return cls(**row._mapping)


_LINE_FIELDS = tuple(f.name for f in fields(LineRecord))
LineRecord.FIELDS = _LINE_FIELDS

# (column name, attribute name): they differ where a column name is reserved (`metadata`).
INVOICE_COLUMNS = tuple(
    (prop.columns[0].key, prop.key) for prop in sa_inspect(Invoice).column_attrs
)


def invoice_row(record: Any) -> dict[str, Any]:
    """The Core row (column name -> value) of an invoice record or model."""
    return {column: getattr(record, attr) for column, attr in INVOICE_COLUMNS}


@dataclass(frozen=True, slots=True)
class Parties:
    """The old pricing parties: the tax precedence levels of one document."""

    account_id: uuid.UUID
    account_default_vat_percent: Decimal | None
    customer_tax_id: uuid.UUID | None
    entity_tax_id: uuid.UUID | None


def build_line_records(
    parties: Parties,
    drafts: Sequence[LineDraft],
    *,
    max_lines: int | None,
    conn: Any = None,
    taxes: TaxTable | None = None,
) -> list[LineRecord]:
    """`service.build_lines` for the old parties, as line records, reading on `conn`."""
    from .service import _check_line_count, _check_named_items, checked_amount

    _check_line_count(drafts, max_lines)
    conn = conn or db.session.connection()
    from ..catalog.models import Charge, Metric

    account_id = parties.account_id
    charge_ids = {d.charge_id for d in drafts if d.charge_id is not None}
    charge_taxes: dict[uuid.UUID, uuid.UUID | None] = {}
    if charge_ids:
        rows = conn.execute(
            select(Charge.id, Charge.tax_rate_id).where(
                Charge.account_id == account_id, Charge.id.in_(charge_ids)
            )
        )
        charge_taxes = {charge_id: tax_id for charge_id, tax_id in rows}
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
        _check_named_items(index, draft, charge_taxes, known_codes)
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


_NEW_INVOICE_DEFAULTS: dict[str, Any] = {attr: None for _, attr in INVOICE_COLUMNS} | {
    "progressive_credit_minor": 0,
    "instant": False,
    "dunning": False,
    "collect_attempts": 0,
}


def new_invoice_record(**values: Any) -> Any:
    """A plain invoice record with every model attribute (defaults as the columns')."""
    record = SimpleNamespace(**_NEW_INVOICE_DEFAULTS)
    for name, value in values.items():
        if not hasattr(record, name):
            raise AttributeError(f"Invoice has no attribute {name!r}")
        setattr(record, name, value)
    return record


def insert_invoice(conn: Any, invoice: Any, lines: list[LineRecord]) -> None:
    """Insert a new invoice record and its line records on `conn`."""
    conn.execute(insert(Invoice.__table__), invoice_row(invoice))
    if lines:
        conn.execute(insert(InvoiceLine.__table__), [line.row() for line in lines])


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
    """`service.issue` for a new invoice record not stored yet, on `conn`."""
    from .service import line_inputs, payment_term

    if invoice.state != DRAFT:
        raise InvalidState("Only draft invoices can be finalized")
    wallets = Wallet.__table__
    balance = 0
    if wallet_may_have_credit:
        balance = (
            conn.execute(
                select(wallets.c.balance_minor)
                .where(
                    wallets.c.customer_id == invoice.customer_id,
                    wallets.c.currency == invoice.currency,
                )
                .with_for_update()
            ).scalar_one_or_none()
            or 0
        )
    if totals is None or balance or invoice.progressive_credit_minor:
        totals = calc.compute_totals(
            line_inputs(invoice.lines),
            prepaid_available_minor=balance,
            progressive_credit_minor=invoice.progressive_credit_minor,
        )
    entities = BillingEntity.__table__
    number = conn.execute(
        update(entities)
        .where(entities.c.id == entity.id)
        .values(next_invoice_number=entities.c.next_invoice_number + 1)
        .returning(entities.c.next_invoice_number - 1)
    ).scalar_one()
    printed = numbering.printed_number(entity, number, now)
    if invoice.handle is None:
        base, alternative = numbering.handle_candidates(printed, invoice.id)
        invoices = Invoice.__table__
        taken = conn.execute(
            select(func.count()).where(
                invoices.c.account_id == invoice.account_id, invoices.c.handle == base
            )
        ).scalar_one()
        invoice.handle = alternative if taken else base
    if totals.prepaid_credit_minor:
        conn.execute(
            update(wallets)
            .where(
                wallets.c.customer_id == invoice.customer_id,
                wallets.c.currency == invoice.currency,
            )
            .values(balance_minor=wallets.c.balance_minor - totals.prepaid_credit_minor)
        )
    invoice.number = number
    invoice.invoice_number = printed
    invoice.issued_at = now
    if invoice.due_at is None:
        invoice.due_at = now + timedelta(
            days=payment_term(customer.net_payment_term, entity.net_payment_term)
        )
    for name in TOTALS_COLUMNS:
        setattr(invoice, name, getattr(totals, name))
    paid = totals.total_minor == 0
    invoice.state = PAID if paid else OPEN
    invoice.paid_at = now if paid else None
    invoice.updated_at = now
