"""Invoices: create, issue (numbering), pay, void, delete, read.

Invariants this module keeps, whatever door the call comes through:
- totals are only ever stored from `calc.compute_totals`, never taken from a client;
- who issues an invoice and which rates price it come from `parties` alone, for a preview
  as for the saved invoice (a preview is the same build with nothing stored);
- a number is taken only when an invoice leaves `draft`, in the same transaction, from the
  billing entity's locked counter (`numbering`); a rollback gives it back, so the series
  has no gaps;
- from `open` on, lines, amounts, currency, customer and number never change (`guards`);
- every state change writes an audit record.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import Select, select, update
from sqlalchemy.orm import selectinload

from ..audit import service as audit
from ..catalog.models import Charge, Metric
from ..customers.models import Customer, Wallet
from ..db import new_uuid, utcnow, write_transaction
from ..documents.snapshot import record_due
from ..entities.models import BillingEntity
from ..errors import (
    ALREADY_CANCELLED,
    ALREADY_SETTLED,
    CHARGE_IN_PROGRESS,
    INVOICE_WRONG_STATE,
    InvalidInput,
    InvalidState,
    NotFound,
)
from ..extensions import db
from ..money import line_amount, percent_to_fraction
from ..payments.models import Transaction
from ..querying import order_clause, page
from . import calc, numbering
from .models import DRAFT, FAILED, ONE_OFF, OPEN, PAID, VOID, Invoice, InvoiceLine
from .parties import Parties, invoice_parties, issuer_and_customer, resolve_parties

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
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
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


# ---------------------------------------------------------------- lines and totals


class PricedLine(Protocol):
    """What the totals read of a line (an `InvoiceLine`, or a line still being built)."""

    @property
    def amount_minor(self) -> int: ...
    @property
    def tax_rate(self) -> Decimal: ...
    @property
    def amount_incl_vat(self) -> bool: ...
    @property
    def origin(self) -> str: ...


def line_inputs(lines: Iterable[PricedLine]) -> list[calc.LineInput]:
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


def _check_line_count(drafts: Sequence[LineDraft], max_lines: int | None) -> None:
    if not drafts:
        raise InvalidInput(("line_items",), "At least one line is required")
    if max_lines is not None and len(drafts) > max_lines:
        raise InvalidInput(("line_items",), f"At most {max_lines} lines are allowed")


def _named_items(
    account_id: uuid.UUID, drafts: Sequence[LineDraft]
) -> tuple[dict[uuid.UUID, uuid.UUID | None], set[str]]:
    """The charges the lines name (id -> its tax rate id) and the metric codes they name
    that exist, both of the account: a query each, only when some line names one."""
    charge_ids = {d.charge_id for d in drafts if d.charge_id is not None}
    charge_taxes: dict[uuid.UUID, uuid.UUID | None] = {}
    if charge_ids:
        rows = db.session.execute(
            select(Charge.id, Charge.tax_rate_id).where(
                Charge.account_id == account_id, Charge.id.in_(charge_ids)
            )
        )
        charge_taxes = {charge_id: tax_id for charge_id, tax_id in rows}
    codes = {d.metric_code for d in drafts if d.metric_code is not None}
    known_codes: set[str] = set()
    if codes:
        known_codes = set(
            db.session.scalars(
                select(Metric.code).where(Metric.account_id == account_id, Metric.code.in_(codes))
            )
        )
    return charge_taxes, known_codes


def _check_named_items(
    index: int,
    draft: LineDraft,
    charge_taxes: dict[uuid.UUID, uuid.UUID | None],
    known_codes: set[str],
) -> None:
    if draft.charge_id is not None and draft.charge_id not in charge_taxes:
        raise InvalidInput(("line_items", index, "charge_id"), "Unknown charge_id")
    if draft.metric_code is not None and draft.metric_code not in known_codes:
        raise InvalidInput(
            ("line_items", index, "metric_code"), f"Unknown metric_code {draft.metric_code!r}"
        )


def build_lines(
    parties: Parties,
    drafts: Sequence[LineDraft],
    *,
    max_lines: int | None = MAX_LINES,
) -> list[InvoiceLine]:
    """The invoice lines of `drafts`, priced for `parties` (`invoices.parties`): validated,
    with positions, amounts, tax rates (by `TaxTable.rate_for`'s precedence) and line VAT.
    Transient ORM objects: nothing is added to the session or written.

    Reads the charges and metrics the lines name (only when they name some) and the tax
    rates of those charges the parties' table lacks. InvalidInput for no lines, too many,
    a claimed amount that is not quantity x unit price, an unknown charge or metric.
    """
    _check_line_count(drafts, max_lines)
    charge_taxes, known_codes = _named_items(parties.account_id, drafts)
    parties = parties.with_item_rates(charge_taxes.values())
    lines: list[InvoiceLine] = []
    for index, draft in enumerate(drafts):
        amount = checked_amount(index, draft)
        _check_named_items(index, draft, charge_taxes, known_codes)
        percent, tax_code = parties.taxes.rate_for(
            line_percent=draft.tax_percent,
            item_tax_id=charge_taxes.get(draft.charge_id) if draft.charge_id else None,
            customer_tax_id=parties.customer.tax_rate_id,
            entity_tax_id=parties.entity.default_tax_rate_id,
        )
        lines.append(
            InvoiceLine(
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
                discounted_amount=None,
            )
        )
    return lines


def _priced_totals(lines: Sequence[PricedLine]) -> calc.Totals:
    """The totals of new lines; a negative total is refused (that is a credit note)."""
    totals = calc.compute_totals(line_inputs(lines))
    if totals.total_minor < 0:
        raise InvalidInput(
            ("line_items",), "The invoice total cannot be negative; issue a credit note instead"
        )
    return totals


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


# ---------------------------------------------------------------- create


def _new_draft(parties: Parties, req: OneOffInvoiceRequest) -> Invoice:
    """The one-off draft of `req` for `parties`, with its lines and totals; not stored."""
    lines = build_lines(parties, req.lines)
    totals = _priced_totals(lines)
    now = utcnow()
    invoice = Invoice(
        id=new_uuid(),
        account_id=parties.account_id,
        billing_entity_id=parties.entity.id,
        customer_id=parties.customer.id,
        subscription_id=None,
        handle=None,
        invoice_type=ONE_OFF,
        state=DRAFT,
        currency=req.currency,
        number=None,
        invoice_number=draft_number(),
        progressive_credit_minor=0,
        billing_period_start=now,
        billing_period_end=now,
        due_at=req.due_at,
        issued_at=None,
        paid_at=None,
        voided_at=None,
        failed_at=None,
        created_at=now,
        updated_at=now,
        invoice_metadata=req.metadata,
        instant=False,
        dunning=False,
        collect_attempts=0,
        next_collect_at=None,
    )
    _store_totals(invoice, totals)
    for line in lines:
        line.invoice_id = invoice.id
    invoice.lines = lines
    return invoice


def build_one_off_invoice(account_id: uuid.UUID, req: OneOffInvoiceRequest) -> Invoice:
    """The draft `create_one_off_invoice` would store, with its lines and totals, as a
    transient `Invoice`: nothing is added to the session. Its billing entity and tax rates
    come from `parties.resolve_parties` (the request's entity, else the customer's, else the
    account's default). NotFound (customer, billing entity), InvalidInput."""
    parties = resolve_parties(account_id, req.customer_id, req.billing_entity_id)
    return _new_draft(parties, req)


def preview_one_off_invoice(account_id: uuid.UUID, req: OneOffInvoiceRequest) -> Invoice:
    """What saving `req` would store (the entry form's live totals): `build_one_off_invoice`,
    the very computation the save runs, with nothing stored."""
    return build_one_off_invoice(account_id, req)


def _store_new_draft(account_id: uuid.UUID, invoice: Invoice) -> None:
    """Inside a write transaction: add a draft built by `_new_draft`, record
    `invoice.created`."""
    db.session.add(invoice)
    audit.record(account_id, "invoice.created", "invoice", invoice.id, after=_snapshot(invoice))


def create_one_off_invoice(account_id: uuid.UUID, req: OneOffInvoiceRequest) -> Invoice:
    """A draft one-off invoice, stored with its lines and its audit record in one write
    transaction. Raises NotFound (customer, billing entity), InvalidInput.

    The draft is built (`build_one_off_invoice`: its reads and its computation) before
    the write transaction starts, so SQLite's write lock is held only for the writes."""
    invoice = build_one_off_invoice(account_id, req)
    with write_transaction():
        _store_new_draft(account_id, invoice)
    return invoice


# ---------------------------------------------------------------- issue (numbering)


def payment_term(customer_term: int | None, entity_term: int) -> int:
    """Days from issue to due: the customer's term, else the entity's."""
    return customer_term if customer_term is not None else entity_term


def _locked_wallet(customer_id: uuid.UUID, currency: str) -> Wallet | None:
    return db.session.scalars(
        select(Wallet)
        .where(Wallet.customer_id == customer_id, Wallet.currency == currency)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()


def issue(
    invoice: Invoice,
    *,
    entity: BillingEntity,
    customer: Customer,
    now: datetime | None = None,
) -> None:
    """Inside the caller's write transaction: issue `invoice` (a draft, or a new invoice
    not stored yet that the subscription dialect creates already issued) from `entity`.

    - due date: the invoice's own, else the issue time plus the payment term (the
      customer's, else the entity's);
    - prepaid credit: the customer's wallet in the invoice's currency (locked) pays what
      it can, after VAT; nothing left to pay makes the invoice `paid`, else `open`;
    - the next number of the entity's series (`numbering.take_number`, the counter row
      locked until commit), the printed number and the handle (`inv-<printed>`, unless
      the invoice has a handle already);
    - the PDF is noted as due, with the snapshot of issuer and customer it will print.

    The invoice is added to the session (a no-op for a stored one). `now`: the issue
    time (default: read after the number is taken, so numbers and issue times rise
    together). InvalidState if the invoice is not a draft.
    """
    if invoice.state != DRAFT:
        raise InvalidState("Only draft invoices can be finalized")
    # The reads first, without flushing the caller's pending changes (a new invoice is
    # then inserted once, already issued), and before anything below changes.
    with db.session.no_autoflush:
        wallet = _locked_wallet(invoice.customer_id, invoice.currency)
        number = numbering.take_number(entity.id)
        now = now or utcnow()
        printed = numbering.printed_number(entity, number, now)
        handle = invoice.handle or numbering.invoice_handle(invoice.account_id, printed, invoice.id)
    totals = calc.compute_totals(
        line_inputs(invoice.lines),
        prepaid_available_minor=wallet.balance_minor if wallet is not None else 0,
        progressive_credit_minor=invoice.progressive_credit_minor or 0,
    )
    if wallet is not None and totals.prepaid_credit_minor:
        wallet.balance_minor -= totals.prepaid_credit_minor
    invoice.number = number
    invoice.invoice_number = printed
    invoice.handle = handle
    invoice.issued_at = now
    if invoice.due_at is None:
        term = payment_term(customer.net_payment_term, entity.net_payment_term)
        invoice.due_at = now + timedelta(days=term)
    _store_totals(invoice, totals)
    paid = totals.total_minor == 0
    invoice.state = PAID if paid else OPEN
    invoice.paid_at = now if paid else None
    invoice.updated_at = now
    db.session.add(invoice)
    record_due(invoice, entity, customer)


def _issue_and_record(
    account_id: uuid.UUID, invoice: Invoice, entity: BillingEntity, customer: Customer
) -> None:
    before = _snapshot(invoice)
    issue(invoice, entity=entity, customer=customer)
    audit.record(
        account_id,
        "invoice.finalized",
        "invoice",
        invoice.id,
        before=before,
        after=_snapshot(invoice),
    )


def finalize_invoice(account_id: uuid.UUID, invoice_id: uuid.UUID) -> Invoice:
    """draft -> open (or paid when prepaid credit covers it): `issue` plus the audit
    record, in one write transaction. The invoice row is locked first and its state
    checked under the lock, so two finalizes of one draft number it once (the second
    gets InvalidState). NotFound for another account's invoice."""
    with write_transaction():
        invoice = get_invoice(account_id, invoice_id, lock=True)
        if invoice.state != DRAFT:
            raise InvalidState("Only draft invoices can be finalized")
        entity, customer = issuer_and_customer(invoice)
        _issue_and_record(account_id, invoice, entity, customer)
    return invoice


def issue_one_off_invoice(account_id: uuid.UUID, req: OneOffInvoiceRequest) -> Invoice:
    """Create and finalize in one transaction: the invoice exists numbered, or not at all."""
    with write_transaction():
        parties = resolve_parties(account_id, req.customer_id, req.billing_entity_id)
        invoice = _new_draft(parties, req)
        _store_new_draft(account_id, invoice)
        _issue_and_record(account_id, invoice, parties.entity, parties.customer)
    return invoice


# ---------------------------------------------------------------- pay, void, delete, edit


def charge_in_flight(invoice_id: uuid.UUID) -> bool:
    """Whether a card charge of this invoice is in flight (claimed by payments.service,
    its result not recorded yet): the invoice's state waits for that result."""
    return (
        db.session.scalar(
            select(Transaction.id)
            .where(Transaction.invoice_id == invoice_id, Transaction.state == "processing")
            .limit(1)
        )
        is not None
    )


def check_payable(invoice: Invoice) -> None:
    """An invoice can be paid (marked paid, settled by card, by a transfer) when it is open
    or failed and no card charge of it is in flight; InvalidState with the reason else."""
    if invoice.state == PAID:
        raise InvalidState("Invoice already settled", reason=ALREADY_SETTLED)
    if invoice.state == VOID:
        raise InvalidState("Invoice already cancelled", reason=ALREADY_CANCELLED)
    if invoice.state not in (OPEN, FAILED):
        raise InvalidState(
            f"Only finalized invoices can be marked paid (this one is {invoice.state})",
            reason=INVOICE_WRONG_STATE,
        )
    if charge_in_flight(invoice.id):
        raise InvalidState("Invoice has processing transactions", reason=CHARGE_IN_PROGRESS)


def record_paid(invoice: Invoice, *, paid_at: datetime, now: datetime) -> None:
    """Inside the caller's write transaction, the invoice locked: open or failed -> paid
    (`check_payable`); automatic collection and dunning stop."""
    check_payable(invoice)
    invoice.state = PAID
    invoice.paid_at = paid_at
    invoice.dunning = False
    invoice.next_collect_at = None
    invoice.updated_at = now


def mark_paid(
    account_id: uuid.UUID, invoice_id: uuid.UUID, paid_at: datetime | None = None
) -> Invoice:
    """open or failed -> paid (`record_paid`). A paid_at in the future is refused."""
    now = utcnow()
    if paid_at is not None and paid_at > now + timedelta(minutes=5):
        raise InvalidInput(("paid_at",), "paid_at cannot be in the future")
    with write_transaction():
        invoice = get_invoice(account_id, invoice_id, lock=True)
        before = _snapshot(invoice)
        record_paid(invoice, paid_at=paid_at or now, now=now)
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
    """Any state but paid (and void) -> void, unless a card charge of it is in flight. A
    voided invoice keeps its number. Prepaid credit the invoice consumed goes back to the
    wallet."""
    with write_transaction():
        invoice = get_invoice(account_id, invoice_id, lock=True)
        if invoice.state == PAID:
            raise InvalidState(
                "A paid invoice cannot be voided; issue a credit note instead",
                reason=ALREADY_SETTLED,
            )
        if invoice.state == VOID:
            raise InvalidState("The invoice is already voided", reason=ALREADY_CANCELLED)
        if charge_in_flight(invoice.id):
            raise InvalidState("Invoice has processing transactions", reason=CHARGE_IN_PROGRESS)
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
    """Replace a draft's lines (the browser editor), priced for the draft's own billing
    entity and customer (`parties`). Refused once the invoice is open."""
    with write_transaction():
        invoice = get_invoice(account_id, invoice_id, lock=True)
        ensure_editable(invoice)
        lines = build_lines(invoice_parties(invoice), drafts)
        totals = _priced_totals(lines)
        before = _snapshot(invoice)
        invoice.lines = lines
        for line in lines:
            line.invoice_id = invoice.id
        _store_totals(invoice, totals)
        invoice.updated_at = utcnow()
        audit.record(
            account_id,
            "invoice.lines_replaced",
            "invoice",
            invoice.id,
            before=before,
            after=_snapshot(invoice),
        )
    return invoice


# ---------------------------------------------------------------- browser: edit


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
