"""Where an invoice stands with its customer: what is still due, and if it is paid, how
and when. The one home of that rule, for the print page, the PDF and the invoice page.

Pure: from the invoice and its settled settle transaction (if any); no database, no Flask.

- Paid (`paid`): nothing is due. How: the settled transaction's payment type (a card
  charge, or a manual transfer by its method: bank transfer, cash, check, other); with no
  transaction, prepaid credit if that covered the whole invoice at issue, nothing due if
  there was nothing to pay, else "marked paid" (dialect A's and the browser's mark paid,
  which record no transaction). When: a manual transfer's payment date (when the customer
  paid), a card charge's settle time, else the time the invoice was marked paid.
- Void: nothing is due; it is not paid. `issued` False for a draft voided before it was
  finalized: it has no number and never was an invoice.
- Otherwise (open, failed, and drafts, whose total is provisional): the invoice's total,
  what is left after prepaid credit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from ..payments.models import Transaction
from .models import DRAFT, PAID, VOID, Invoice

# How an invoice was paid: keys of the document texts (`documents/i18n.py`, `paid_by_<key>`).
CARD, MARKED_PAID, PREPAID_CREDIT, NOTHING_DUE = (
    "card",
    "marked_paid",
    "prepaid_credit",
    "nothing_due",
)
MANUAL_METHODS = ("bank_transfer", "cash", "check", "other")


@dataclass(frozen=True, slots=True)
class Settlement:
    # What the customer still has to pay, in minor units: 0 once paid or void.
    amount_due_minor: int
    paid: bool
    # Paid: what was paid (the invoice's total after prepaid credit), when and how.
    amount_paid_minor: int = 0
    paid_at: datetime | None = None
    method: str | None = None
    void: bool = False
    # A draft, or a draft voided before it was finalized: it has no number and no document.
    issued: bool = True


def was_issued(invoice: Invoice) -> bool:
    """Whether the invoice left draft: finalizing gives it its number, for good."""
    return invoice.state != DRAFT and invoice.number is not None


def settlement_of(invoice: Invoice, transactions: Iterable[Transaction] = ()) -> Settlement:
    """The invoice's standing. `transactions`: the invoice's transactions (only its settled
    settle transaction is used; pass none for an invoice that is not paid)."""
    issued = was_issued(invoice)
    if invoice.state == VOID:
        return Settlement(amount_due_minor=0, paid=False, void=True, issued=issued)
    if invoice.state != PAID:
        return Settlement(amount_due_minor=invoice.total_minor, paid=False, issued=issued)
    settled = next((t for t in transactions if t.type == "settle" and t.state == "settled"), None)
    paid_at = invoice.paid_at
    if settled is None:
        if invoice.total_minor:
            method = MARKED_PAID
        elif invoice.prepaid_credit_minor:
            method = PREPAID_CREDIT
        else:
            method = NOTHING_DUE
    elif settled.payment_type == "manual":
        method = settled.manual_method if settled.manual_method in MANUAL_METHODS else "other"
        paid_at = settled.payment_date or settled.settled_at or paid_at
    else:
        method = CARD
        paid_at = settled.settled_at or paid_at
    return Settlement(
        amount_due_minor=0,
        paid=True,
        amount_paid_minor=invoice.total_minor,
        paid_at=paid_at,
        method=method,
        issued=issued,
    )
