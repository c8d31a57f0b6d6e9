"""`invoices.settlement.settlement_of`, the one rule of where an invoice stands: what is
due, and if paid, how and when. Pure: plain (unsaved) model objects in, no database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from billing_app.invoices.models import DRAFT, FAILED, OPEN, PAID, VOID, Invoice
from billing_app.invoices.settlement import Settlement, settlement_of, was_issued
from billing_app.payments.models import Transaction

ISSUED = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
PAID_AT = datetime(2026, 11, 5, 14, 30, tzinfo=UTC)
TRANSFER_DAY = datetime(2026, 11, 4, 0, 0, tzinfo=UTC)


def invoice(state: str, total: int = 12500, *, number: int | None = 7, prepaid: int = 0):
    return Invoice(
        state=state,
        total_minor=total,
        prepaid_credit_minor=prepaid,
        number=None if state == DRAFT else number,
        issued_at=None if number is None or state == DRAFT else ISSUED,
        paid_at=PAID_AT if state == PAID else None,
    )


def tx(payment_type: str = "card", state: str = "settled", type_: str = "settle", **kw):
    return Transaction(
        type=type_,
        state=state,
        amount=12500,
        currency="EUR",
        payment_type=payment_type,
        settled_at=PAID_AT if state == "settled" else None,
        **kw,
    )


@pytest.mark.parametrize("state", [OPEN, FAILED])
def test_payable_invoices_owe_their_total(state):
    s = settlement_of(invoice(state))
    assert s == Settlement(amount_due_minor=12500, paid=False)


def test_an_open_invoice_with_nothing_left_requests_nothing():
    s = settlement_of(invoice(OPEN, total=0, prepaid=12500))
    assert s.amount_due_minor == 0 and not s.paid


def test_paid_by_card_when_the_charge_settled():
    s = settlement_of(invoice(PAID), [tx("card", state="failed"), tx("card")])
    assert s == Settlement(
        amount_due_minor=0, paid=True, amount_paid_minor=12500, paid_at=PAID_AT, method="card"
    )


@pytest.mark.parametrize("method", ["bank_transfer", "cash", "check", "other"])
def test_manual_transfer_by_its_method_on_its_payment_date(method):
    paid = tx("manual", manual_method=method, payment_date=TRANSFER_DAY)
    s = settlement_of(invoice(PAID), [paid])
    assert (s.method, s.paid_at, s.amount_due_minor) == (method, TRANSFER_DAY, 0)


def test_manual_transfer_of_an_unknown_method_is_other_and_without_date_when_recorded():
    s = settlement_of(invoice(PAID), [tx("manual", manual_method="barter")])
    assert (s.method, s.paid_at) == ("other", PAID_AT)


def test_refunds_and_failed_attempts_are_not_the_settlement():
    s = settlement_of(invoice(PAID), [tx("card", type_="refund"), tx("card", state="failed")])
    assert (s.method, s.paid_at) == ("marked_paid", PAID_AT)


def test_paid_without_a_transaction():
    assert settlement_of(invoice(PAID)).method == "marked_paid"
    covered = settlement_of(invoice(PAID, total=0, prepaid=12500))
    assert (covered.method, covered.amount_paid_minor) == ("prepaid_credit", 0)
    assert settlement_of(invoice(PAID, total=0)).method == "nothing_due"


def test_void_owes_nothing_and_is_not_paid():
    s = settlement_of(invoice(VOID))
    assert s == Settlement(amount_due_minor=0, paid=False, void=True, issued=True)


def test_a_draft_voided_before_issue_was_never_issued():
    s = settlement_of(invoice(VOID, number=None))
    assert s == Settlement(amount_due_minor=0, paid=False, void=True, issued=False)
    assert not was_issued(invoice(VOID, number=None)) and was_issued(invoice(VOID))


def test_a_draft_is_not_issued_and_its_total_is_provisional():
    s = settlement_of(invoice(DRAFT))
    assert (s.issued, s.amount_due_minor, s.paid) == (False, 12500, False)
    assert not was_issued(invoice(DRAFT))
