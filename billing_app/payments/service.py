"""Payment methods, settlement and automatic collection with dunning.

Settling is two-phase so that no database lock is held while a gateway is called:
1. claim: in a write transaction, check the invoice can be settled and insert a
   `processing` transaction (a partial unique index allows one in flight per invoice, so
   a concurrent settle is refused: CHARGE_IN_PROGRESS);
2. charge the gateway, outside any transaction;
3. record: in a write transaction, mark the transaction settled or failed and move the
   invoice. Another partial unique index allows one settled settlement per invoice.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..accounts.models import Account
from ..audit import service as audit
from ..customers.models import Customer
from ..db import utcnow, write_transaction
from ..errors import (
    CHARGE_DECLINED,
    CHARGE_IN_PROGRESS,
    InvalidState,
    NotFound,
)
from ..extensions import db
from ..invoices import service as invoices
from ..invoices.models import FAILED, OPEN, Invoice
from ..subscriptions.models import ON_HOLD, Subscription
from .gateway import CardDetails, gateway
from .models import PaymentMethod, Transaction

# Dunning: days after each failed attempt before the next one; after the last retry the
# invoice fails and its subscription goes on hold.
DEFAULT_RETRY_DAYS = (1, 3, 7)


# ---------------------------------------------------------------- payment methods


def add_payment_method(
    account_id: uuid.UUID, customer_id: uuid.UUID, card: CardDetails, gateway_name: str = "test"
) -> PaymentMethod:
    account = db.session.get(Account, account_id)
    assert account is not None
    today = utcnow().astimezone(ZoneInfo(account.timezone)).date()
    tokenized = gateway(gateway_name).tokenize(card, today)
    with write_transaction():
        customer = db.session.scalars(
            select(Customer).where(Customer.account_id == account_id, Customer.id == customer_id)
        ).one_or_none()
        if customer is None:
            raise NotFound("Customer")
        method = PaymentMethod(
            account_id=account_id,
            handle=f"ca_{secrets.token_hex(16)}",
            customer_id=customer.id,
            gateway=gateway_name,
            gateway_token=tokenized.token,
            card_type=tokenized.card_type,
            masked_card=tokenized.masked_card,
            exp_date=tokenized.exp_date,
        )
        db.session.add(method)
        db.session.flush()
        audit.record(
            account_id,
            "payment_method.added",
            "payment_method",
            method.handle,
            after={"customer": customer.external_id, "masked_card": method.masked_card},
        )
    return method


def get_payment_method(account_id: uuid.UUID, handle: str) -> PaymentMethod:
    method = db.session.scalars(
        select(PaymentMethod).where(
            PaymentMethod.account_id == account_id, PaymentMethod.handle == handle
        )
    ).one_or_none()
    if method is None:
        raise NotFound("Payment method")
    return method


def list_payment_methods(account_id: uuid.UUID, customer_id: uuid.UUID) -> list[PaymentMethod]:
    return list(
        db.session.scalars(
            select(PaymentMethod)
            .where(PaymentMethod.account_id == account_id, PaymentMethod.customer_id == customer_id)
            .order_by(PaymentMethod.created_at.desc(), PaymentMethod.id)
        )
    )


def resolve_payment_method(
    account_id: uuid.UUID, customer_id: uuid.UUID, ref: str
) -> PaymentMethod:
    """`"auto"`: the customer's newest active method; else a handle of this customer's."""
    stmt = select(PaymentMethod).where(
        PaymentMethod.account_id == account_id,
        PaymentMethod.customer_id == customer_id,
        PaymentMethod.state == "active",
    )
    if ref == "auto":
        stmt = stmt.order_by(PaymentMethod.created_at.desc(), PaymentMethod.id.desc())
    else:
        stmt = stmt.where(PaymentMethod.handle == ref)
    method = db.session.scalars(stmt).first()
    if method is None:
        raise NotFound("Payment method")
    return method


def subscription_payment_method(sub: Subscription) -> PaymentMethod | None:
    """The card a subscription is charged with (instant invoices, automatic collection):
    its payment method if it is still active, else None."""
    if sub.payment_method_id is None:
        return None
    method = db.session.get(PaymentMethod, sub.payment_method_id)
    return method if method is not None and method.state == "active" else None


# ---------------------------------------------------------------- settlement


@dataclass(frozen=True)
class ManualTransfer:
    method: str  # cash | bank_transfer | check | other
    payment_date: datetime
    comment: str | None = None
    reference: str | None = None


def settle_manually(invoice: Invoice, transfer: ManualTransfer) -> Transaction:
    """Inside the caller's write transaction: an offline settlement; the invoice is paid
    (`invoices.service.record_paid`, which refuses an invoice that cannot be paid)."""
    now = utcnow()
    invoices.record_paid(invoice, paid_at=now, now=now)
    tx = Transaction(
        account_id=invoice.account_id,
        invoice_id=invoice.id,
        type="settle",
        state="settled",
        amount=invoice.total_minor,
        currency=invoice.currency,
        payment_type="manual",
        manual_method=transfer.method,
        manual_reference=transfer.reference,
        manual_comment=transfer.comment,
        payment_date=transfer.payment_date,
        created_at=now,
        settled_at=now,
    )
    db.session.add(tx)
    db.session.flush()
    return tx


def claim(invoice: Invoice, method: PaymentMethod) -> Transaction:
    """Phase 1, inside the caller's write transaction, the invoice locked: a `processing`
    transaction, if the invoice can be paid (`invoices.service.check_payable`: open or
    failed, no other charge in flight)."""
    invoices.check_payable(invoice)
    tx = Transaction(
        account_id=invoice.account_id,
        invoice_id=invoice.id,
        type="settle",
        state="processing",
        amount=invoice.total_minor,
        currency=invoice.currency,
        payment_type="card",
        payment_method_id=method.id,
        created_at=utcnow(),
    )
    db.session.add(tx)
    try:
        db.session.flush()
    except IntegrityError:
        # Another request claimed this invoice a moment ago (PostgreSQL).
        raise InvalidState(
            "Invoice has processing transactions", reason=CHARGE_IN_PROGRESS
        ) from None
    return tx


@dataclass(frozen=True)
class ChargeOutcome:
    approved: bool
    error: str | None


def charge_and_record(
    account_id: uuid.UUID,
    transaction_id: uuid.UUID,
    *,
    instant: bool,
    dunning: bool,
    retry_days: tuple[int, ...] = DEFAULT_RETRY_DAYS,
) -> ChargeOutcome:
    """Phases 2 and 3: call the gateway, then record the result on the transaction and
    the invoice. A decline leaves the invoice `failed` when instant, in dunning when
    `dunning` (automatic collection), else pending."""
    tx = db.session.get(Transaction, transaction_id)
    assert tx is not None and tx.state == "processing"
    method = db.session.get(PaymentMethod, tx.payment_method_id)
    assert method is not None
    token, gateway_name = method.gateway_token, method.gateway
    amount, currency = tx.amount, tx.currency
    db.session.rollback()  # no transaction stays open while the gateway works
    result = gateway(gateway_name).charge(token, amount, currency, transaction_id.hex)
    with write_transaction():
        tx = db.session.scalars(
            select(Transaction)
            .where(Transaction.id == transaction_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        invoice = db.session.scalars(
            select(Invoice)
            .where(Invoice.id == tx.invoice_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        now = utcnow()
        before = {"state": invoice.state}
        if result.approved:
            tx.state, tx.settled_at, tx.gateway_reference = "settled", now, result.reference
            db.session.flush()  # this charge is no longer in flight
            invoices.record_paid(invoice, paid_at=now, now=now)
            action = "invoice.settled"
        else:
            tx.state, tx.failed_at, tx.error = "failed", now, result.error
            action = "invoice.settle_failed"
            if instant:
                invoice.state, invoice.failed_at, invoice.dunning = FAILED, now, False
                invoice.next_collect_at = None
            elif dunning:
                _schedule_retry(invoice, now, retry_days)
            invoice.updated_at = now
        audit.record(
            account_id,
            action,
            "invoice",
            invoice.id,
            before=before,
            after={"state": invoice.state, "transaction": str(tx.id), "error": tx.error},
        )
    return ChargeOutcome(result.approved, result.error)


def _schedule_retry(invoice: Invoice, now: datetime, retry_days: tuple[int, ...]) -> None:
    invoice.collect_attempts += 1
    retries_done = invoice.collect_attempts - 1
    if retries_done < len(retry_days):
        invoice.dunning = True
        invoice.next_collect_at = now + timedelta(days=retry_days[retries_done])
        return
    invoice.state, invoice.failed_at = FAILED, now
    invoice.dunning, invoice.next_collect_at = False, None
    if invoice.subscription_id is not None:
        sub = db.session.scalars(
            select(Subscription)
            .where(Subscription.id == invoice.subscription_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        if sub.state != ON_HOLD:
            sub.state, sub.on_hold_reason, sub.on_hold_date = ON_HOLD, "dunning", now
            audit.record(
                invoice.account_id,
                "subscription.on_hold",
                "subscription",
                sub.id,
                after={"reason": "dunning", "invoice": str(invoice.id)},
            )


def settle_invoice(account_id: uuid.UUID, invoice_id: uuid.UUID, payment_method: str) -> Invoice:
    """Settle now with a method (`"auto"` = newest active). A decline is refused
    (CHARGE_DECLINED) and leaves the failed transaction on record; the invoice stays as
    it was."""
    with write_transaction():
        invoice = db.session.scalars(
            select(Invoice)
            .where(Invoice.account_id == account_id, Invoice.id == invoice_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one_or_none()
        if invoice is None:
            raise NotFound("Invoice")
        method = resolve_payment_method(account_id, invoice.customer_id, payment_method)
        tx = claim(invoice, method)
        tx_id = tx.id
    outcome = charge_and_record(account_id, tx_id, instant=False, dunning=False)
    if not outcome.approved:
        raise InvalidState(f"Transaction declined: {outcome.error}", reason=CHARGE_DECLINED)
    invoice = db.session.get(Invoice, invoice_id)
    assert invoice is not None
    return invoice


# ---------------------------------------------------------------- collection


@dataclass
class CollectReport:
    attempted: int = 0
    settled: int = 0
    declined: int = 0
    skipped_no_method: int = 0


@dataclass(frozen=True)
class _Claim:
    invoice_id: uuid.UUID
    account_id: uuid.UUID
    transaction_id: uuid.UUID | None  # None: not charged (no method, or already claimed)
    no_method: bool = False


def _claim_next(now: datetime, exclude: set[uuid.UUID]) -> _Claim | None:
    """Claim one due invoice, or None when nothing is due.

    PostgreSQL: `FOR UPDATE SKIP LOCKED`, so parallel collectors never wait for or take the
    same invoice. SQLite: the BEGIN IMMEDIATE write lock serialises claims. Either way the
    in-flight unique index makes a double claim impossible.
    """
    with write_transaction():
        stmt = (
            select(Invoice)
            .where(
                Invoice.state == OPEN,
                Invoice.subscription_id.is_not(None),
                Invoice.next_collect_at.is_not(None),
                Invoice.next_collect_at <= now,
                ~select(Transaction.id)
                .where(Transaction.invoice_id == Invoice.id, Transaction.state == "processing")
                .exists(),
            )
            .order_by(Invoice.next_collect_at, Invoice.id)
            .limit(1)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        if exclude:
            stmt = stmt.where(Invoice.id.not_in(exclude))
        invoice = db.session.scalars(stmt).first()
        if invoice is None:
            return None
        # The row is locked and fresh now; the subquery above may have used a snapshot
        # from before another collector's claim committed, so look again.
        if invoices.charge_in_flight(invoice.id):
            return _Claim(invoice.id, invoice.account_id, None)
        sub = db.session.get(Subscription, invoice.subscription_id)
        method = subscription_payment_method(sub) if sub is not None else None
        if method is None:
            # Nothing to charge with: leave it for a person (or a new method) and move on.
            invoice.next_collect_at = None
            audit.record(
                invoice.account_id,
                "invoice.collect_skipped",
                "invoice",
                invoice.id,
                after={"reason": "no active payment method"},
            )
            return _Claim(invoice.id, invoice.account_id, None, no_method=True)
        tx = claim(invoice, method)
        return _Claim(invoice.id, invoice.account_id, tx.id)


def collect_due(
    now: datetime | None = None,
    limit: int | None = None,
    retry_days: tuple[int, ...] = DEFAULT_RETRY_DAYS,
) -> CollectReport:
    """Charge every pending subscription invoice whose collection time has come, with its
    subscription's payment method. Safe to run from several processes at once."""
    report = CollectReport()
    seen: set[uuid.UUID] = set()
    while limit is None or report.attempted + report.skipped_no_method < limit:
        claimed = _claim_next(now or utcnow(), seen)
        if claimed is None:
            break
        seen.add(claimed.invoice_id)
        if claimed.transaction_id is None:
            report.skipped_no_method += claimed.no_method
            continue
        report.attempted += 1
        outcome = charge_and_record(
            claimed.account_id,
            claimed.transaction_id,
            instant=False,
            dunning=True,
            retry_days=retry_days,
        )
        if outcome.approved:
            report.settled += 1
        else:
            report.declined += 1
    return report


def cancel_invoice(account_id: uuid.UUID, invoice_id: uuid.UUID) -> Invoice:
    """Dialect B cancel: `invoices.service.void_invoice` (refused for a settled or
    cancelled invoice, or while a charge is in flight)."""
    return invoices.void_invoice(account_id, invoice_id)
