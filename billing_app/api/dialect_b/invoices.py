"""Dialect B invoices: the on-demand subscription invoice, invoice reads and actions.

The same invoices are visible in dialect A (`/v1/invoices/{id}`) under dialect A's names.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask import g
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ...customers.models import Customer
from ...errors import NotFound
from ...extensions import db
from ...invoices import calc
from ...invoices import service as invoices
from ...invoices.models import DIALECT_B_STATE, OPEN, Invoice
from ...money import percent_to_fraction
from ...payments import service as payments
from ...payments.models import PaymentMethod, Transaction
from ...querying import paged
from ...subscriptions import invoicing
from ...subscriptions.dates import parse_local
from ...subscriptions.models import AdditionalCost, Subscription
from ..http import JsonNumber, iso
from ..paging import Page, page_body
from . import invoice_schemas as s
from .blueprint import bp, endpoint

B_ORIGIN = {"one_off": "ondemand", "usage": "metered_billing_product"}
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
INVOICE_ERRORS = {401: "Not authenticated (code 6)", 404: "Invoice not found (code 31)"}


def _account() -> Any:
    return g.account


def _parse(text: str | None) -> Any:
    return None if text is None else parse_local(text, _account().timezone)


def _period(p: s.ServicePeriod | None) -> invoicing.Period:
    if p is None:
        return invoicing.Period()
    return invoicing.Period(_parse(p.from_), _parse(p.to))


def _address(a: s.Address | None) -> dict[str, Any] | None:
    return None if a is None else a.model_dump(exclude_none=True)


def to_request(body: s.SubscriptionInvoiceCreate) -> invoicing.OnDemandRequest:
    mt = body.manual_transfer
    return invoicing.OnDemandRequest(
        handle=body.handle,
        due=_parse(body.due),
        metadata=body.metadata,
        instant=body.instant,
        settle_requested=body.settle is not None,
        settle_payment_method=body.settle.payment_method if body.settle else None,
        plan_manual=body.plan_manual,
        plan_period=invoicing.Period(_parse(body.plan_period_from), _parse(body.plan_period_to)),
        add_on_service_periods={
            k: _period(v) for k, v in (body.add_on_service_periods or {}).items()
        },
        collect_additional_costs=body.collect_additional_costs,
        additional_cost_service_periods={
            k: _period(v) for k, v in (body.additional_cost_service_periods or {}).items()
        },
        collect_credit=body.collect_credit,
        apply_discounts=body.apply_discounts,
        include_unbilled_usage=body.include_unbilled_usage,
        cost_center=body.cost_center,
        purchase_order_number=body.purchase_order_number,
        order_lines=tuple(
            invoicing.OrderLineInput(
                ordertext=line.ordertext,
                amount=line.amount,
                quantity=line.quantity,
                vat=line.vat,
                amount_incl_vat=line.amount_incl_vat,
                tax_policy=line.tax_policy,
            )
            for line in body.order_lines
        ),
        billing_address=_address(body.billing_address),
        shipping_address=_address(body.shipping_address),
        manual_transfer=payments.ManualTransfer(
            method=mt.method,
            payment_date=_parse(mt.payment_date),
            comment=mt.comment,
            reference=mt.reference,
        )
        if mt
        else None,
    )


# ---------------------------------------------------------------- serialisation


@dataclass
class _Context:
    """Everything the invoices of one response refer to, by invoice, customer or
    subscription id."""

    customers: dict[uuid.UUID, str | None]
    subscriptions: dict[uuid.UUID | None, str | None]
    costs: dict[uuid.UUID, list[str]]
    transactions: dict[uuid.UUID, list[dict[str, Any]]]
    credits: dict[uuid.UUID, list[Any]]

    @classmethod
    def load(cls, rows: list[Invoice]) -> _Context:
        """The context of `rows`, in a fixed number of queries whatever their number (no
        N+1)."""
        ids = [inv.id for inv in rows]
        customer_ids = {inv.customer_id for inv in rows}
        sub_ids = {inv.subscription_id for inv in rows if inv.subscription_id}
        ctx = cls({}, {}, defaultdict(list), defaultdict(list), {})
        if customer_ids:
            ctx.customers = dict(
                db.session.execute(
                    select(Customer.id, Customer.external_id).where(Customer.id.in_(customer_ids))
                ).all()
            )
        if sub_ids:
            ctx.subscriptions = dict(
                db.session.execute(
                    select(Subscription.id, Subscription.handle).where(Subscription.id.in_(sub_ids))
                ).all()
            )
        if ids:
            for invoice_id, handle in db.session.execute(
                select(AdditionalCost.invoice_id, AdditionalCost.handle)
                .where(AdditionalCost.invoice_id.in_(ids))
                .order_by(AdditionalCost.created_at)
            ):
                assert invoice_id is not None
                ctx.costs[invoice_id].append(handle)
            for tx, method_handle in db.session.execute(
                select(Transaction, PaymentMethod.handle)
                .outerjoin(PaymentMethod, PaymentMethod.id == Transaction.payment_method_id)
                .where(Transaction.invoice_id.in_(ids))
                .order_by(Transaction.created_at, Transaction.id)
            ):
                ctx.transactions[tx.invoice_id].append(_transaction_json(tx, method_handle))
        ctx.credits = invoicing.credit_breakdown(ids)
        return ctx


def _transaction_json(tx: Transaction, method_handle: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": tx.id.hex,
        "state": tx.state,
        "type": tx.type,
        "amount": tx.amount,
        "currency": tx.currency,
        "created": iso(tx.created_at),
        "settled": iso(tx.settled_at),
        "failed": iso(tx.failed_at),
        "payment_type": tx.payment_type,
        "payment_method": method_handle,
        "error": tx.error,
    }
    if tx.payment_type == "manual":
        out["manual_transaction"] = {
            "method": tx.manual_method,
            "comment": tx.manual_comment,
            "reference": tx.manual_reference,
            "payment_date": iso(tx.payment_date),
        }
    return out


def _state(inv: Invoice) -> str:
    if inv.state == OPEN and inv.dunning:
        return "dunning"
    return DIALECT_B_STATE[inv.state]


def invoice_b_json(inv: Invoice, ctx: _Context) -> dict[str, Any]:
    lines = []
    for line in inv.lines:
        rate = percent_to_fraction(line.tax_rate)
        fig = calc.line_figures(
            line.amount_minor, line.quantity, line.unit_amount, rate, line.amount_incl_vat
        )
        lines.append(
            {
                "id": line.id.hex,
                "ordertext": line.description,
                "amount": fig.amount,
                "vat": JsonNumber(rate),
                "quantity": JsonNumber(line.quantity),
                "origin": B_ORIGIN.get(line.origin, line.origin),
                "origin_handle": line.origin_handle,
                "timestamp": iso(inv.created_at),
                "amount_vat": fig.amount_vat,
                "amount_ex_vat": fig.amount_ex_vat,
                "unit_amount": fig.unit_amount,
                "unit_amount_vat": fig.unit_amount_vat,
                "unit_amount_ex_vat": fig.unit_amount_ex_vat,
                "amount_defined_incl_vat": line.amount_incl_vat,
                "discounted_amount": line.discounted_amount,
                "period_from": iso(line.period_from),
                "period_to": iso(line.period_to),
            }
        )
    transactions = ctx.transactions.get(inv.id, [])
    settled = sum(
        t["amount"] for t in transactions if t["type"] == "settle" and t["state"] == "settled"
    )
    return {
        "id": inv.id.hex,
        "handle": inv.handle or inv.id.hex,
        "customer": ctx.customers.get(inv.customer_id),
        "subscription": ctx.subscriptions.get(inv.subscription_id) if inv.subscription_id else None,
        "plan": inv.plan_handle,
        "state": _state(inv),
        "type": "soi" if inv.instant else ("so" if inv.subscription_id else "co"),
        "processing": any(t["state"] == "processing" for t in transactions),
        "amount": inv.gross_minor,
        "number": inv.number,
        "currency": inv.currency,
        "due": iso(inv.due_at),
        "created": iso(inv.created_at),
        "settled": iso(inv.paid_at),
        "failed": iso(inv.failed_at),
        "cancelled": iso(inv.voided_at),
        "discount_amount": inv.discount_minor,
        "org_amount": inv.gross_minor,
        "amount_vat": inv.vat_minor,
        "amount_ex_vat": inv.net_minor,
        "settled_amount": settled,
        "refunded_amount": 0,
        "credits": ctx.credits.get(inv.id, []),
        "additional_costs": ctx.costs.get(inv.id, []),
        "transactions": transactions,
        "order_lines": lines,
        "period_from": iso(inv.service_period_from),
        "period_to": iso(inv.service_period_to),
        "billing_address": inv.billing_address,
        "shipping_address": inv.shipping_address,
        "cost_center": inv.cost_center,
        "purchase_order_number": inv.purchase_order_number,
        "dunning_count": max(0, inv.collect_attempts - 1) if inv.dunning else 0,
        "prepaid_credit_amount": inv.prepaid_credit_minor,
    }


def one(inv: Invoice) -> dict[str, Any]:
    return invoice_b_json(inv, _Context.load([inv]))


def find_invoice(ref: str) -> Invoice:
    """By id (32 hex, as dialect B shows it, or a UUID) or by handle, in this account."""
    account_id = _account().id
    candidates = []
    if _HEX32.match(ref) or len(ref) == 36:
        with contextlib.suppress(ValueError):
            candidates.append(Invoice.id == uuid.UUID(ref))
    candidates.append(Invoice.handle == ref)
    for condition in candidates:
        found = db.session.scalars(
            select(Invoice.id).where(Invoice.account_id == account_id, condition)
        ).first()
        if found is not None:
            return invoices.get_invoice(account_id, found)
    raise NotFound("Invoice")


# ---------------------------------------------------------------- routes


@endpoint(
    bp,
    "/subscription/<handle>/invoice",
    "POST",
    summary="Create invoice ondemand for subscription",
    body=s.SubscriptionInvoiceCreate,
    response=s.InvoiceB,
    tags=("Subscription invoices",),
    errors={
        400: "Invalid request (1), duplicate handle (11), subscription expired (13), "
        "cancelled (22), on hold (95), no order lines (54), payment method not "
        "provided (76)",
        401: "Not authenticated (6)",
        404: "Subscription not found (12), payment method not found (40)",
    },
)
def create_subscription_invoice(handle: str, body: s.SubscriptionInvoiceCreate) -> dict[str, Any]:
    """Create an invoice for a subscription now: plan, costs, credits, discounts, usage,
    extra order lines; optionally collect it at once."""
    account_id = _account().id
    plan = invoicing.create_subscription_invoice(account_id, handle, to_request(body))
    if plan.transaction_id is None:
        return one(plan.invoice)  # as this request stored it: no need to read it back
    invoicing.charge_after_create(account_id, plan)
    return one(invoices.get_invoice(account_id, plan.invoice_id))


STATE_FILTERS = {
    "created": (Invoice.state == "draft",),
    "pending": (Invoice.state == OPEN, Invoice.dunning.is_(False)),
    "dunning": (Invoice.state == OPEN, Invoice.dunning.is_(True)),
    "settled": (Invoice.state == "paid",),
    "cancelled": (Invoice.state == "void",),
    "failed": (Invoice.state == "failed",),
}


@endpoint(
    bp,
    "/invoice",
    "GET",
    summary="List invoices",
    query=s.InvoiceListQuery,
    response=Page[s.InvoiceB],
    tags=("Subscription invoices",),
    errors={401: "Not authenticated (6)"},
)
def list_invoices(query: s.InvoiceListQuery) -> dict[str, Any]:
    """Invoices newest first, filtered by state, customer handle or subscription handle;
    paged with `size` and `next_page_token`."""
    account_id = _account().id
    stmt = select(Invoice).where(Invoice.account_id == account_id)
    if query.state:
        stmt = stmt.where(*STATE_FILTERS[query.state])
    if query.customer is not None:
        stmt = stmt.where(
            Invoice.customer_id.in_(
                select(Customer.id).where(
                    Customer.account_id == account_id, Customer.external_id == query.customer
                )
            )
        )
    if query.subscription is not None:
        stmt = stmt.where(
            Invoice.subscription_id.in_(
                select(Subscription.id).where(
                    Subscription.account_id == account_id,
                    Subscription.handle == query.subscription,
                )
            )
        )
    rows, token = paged(
        stmt.options(selectinload(Invoice.lines)), Invoice, query.size, query.next_page_token
    )
    return page_body(query.size, rows, token, _serialise_page)


def _serialise_page(rows: Sequence[Invoice]) -> list[dict[str, Any]]:
    ctx = _Context.load(list(rows))
    return [invoice_b_json(inv, ctx) for inv in rows]


@endpoint(
    bp,
    "/invoice/<ref>",
    "GET",
    summary="Get invoice",
    response=s.InvoiceB,
    tags=("Subscription invoices",),
    errors=INVOICE_ERRORS,
)
def get_invoice(ref: str) -> dict[str, Any]:
    """One invoice by id or handle."""
    return one(find_invoice(ref))


@endpoint(
    bp,
    "/invoice/<ref>/metadata",
    "GET",
    summary="Get invoice metadata",
    tags=("Subscription invoices",),
    errors=INVOICE_ERRORS,
)
def get_metadata(ref: str) -> dict[str, Any]:
    """The metadata given when the invoice was created."""
    return find_invoice(ref).invoice_metadata or {}


@endpoint(
    bp,
    "/invoice/<ref>/settle",
    "POST",
    summary="Settle invoice",
    body=s.InvoiceSettle,
    response=s.InvoiceB,
    tags=("Subscription invoices",),
    errors={
        **INVOICE_ERRORS,
        400: "Payment method not provided (76), transaction "
        "declined (77), already settled (79), processing transaction (80)",
    },
)
def settle(ref: str, body: s.InvoiceSettle) -> dict[str, Any]:
    """Settle now with a payment method (`"auto"`: the customer's newest active one)."""
    from ...errors import NO_PAYMENT_METHOD, InvalidState

    inv = find_invoice(ref)
    if not body.payment_method:
        raise InvalidState("Payment method not provided", reason=NO_PAYMENT_METHOD)
    payments.settle_invoice(_account().id, inv.id, body.payment_method)
    return one(invoices.get_invoice(_account().id, inv.id))


@endpoint(
    bp,
    "/invoice/<ref>/cancel",
    "POST",
    summary="Cancel invoice",
    response=s.InvoiceB,
    tags=("Subscription invoices",),
    errors={**INVOICE_ERRORS, 400: "Invoice already settled (79) or cancelled (29)"},
)
def cancel(ref: str) -> dict[str, Any]:
    """Cancel (void) an invoice that is not settled; it keeps its number."""
    inv = find_invoice(ref)
    payments.cancel_invoice(_account().id, inv.id)
    return one(invoices.get_invoice(_account().id, inv.id))
