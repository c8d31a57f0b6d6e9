"""Dialect B resources (Reepay paths and shapes): customers, payment methods, plans,
add-ons, subscriptions, additional costs, credits, discounts, coupons, usage.

Routes are thin: parse (the endpoint decorator), call one service, serialise here. Lists
page by `size` and `next_page_token` (`api.paging`). Every create answers 200 with the
resource, as Reepay does.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from flask import g

from ...catalog import service as catalog
from ...catalog.models import AddOn, Charge, Coupon, Discount, Metric, Plan
from ...customers import service as customers
from ...customers.models import Customer
from ...errors import InvalidInput
from ...payments import service as payments
from ...payments.gateway import CardDetails
from ...payments.models import PaymentMethod
from ...subscriptions import service as subs
from ...subscriptions.dates import parse_local
from ...subscriptions.models import AdditionalCost, Credit, Subscription, SubscriptionDiscount
from ...subscriptions.models import UsageEvent as UsageEventRow
from ..http import JsonNumber, iso
from ..paging import Page, PageQuery, page_body
from . import schemas as s
from .blueprint import bp, endpoint

AUTH = {401: "Not authenticated (6)"}
INVALID = "Invalid request (1)"


def _account_id() -> uuid.UUID:
    return g.account.id


def _number(value: Decimal | None) -> JsonNumber | None:
    return None if value is None else JsonNumber(value)


def _date(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


# ---------------------------------------------------------------- serialisers


def customer_json(c: Customer) -> dict[str, Any]:
    return {
        "handle": c.external_id,
        "id": str(c.id),
        "email": c.email,
        "first_name": c.first_name,
        "last_name": c.last_name,
        "company": c.company,
        "name": c.name,
        "address": c.address_line1,
        "address2": c.address_line2,
        "city": c.city,
        "postal_code": c.zip_code,
        "country": c.country,
        "vat": c.tax_id,
        "phone": c.phone,
        "locale": c.document_locale,
        "currency": c.currency,
        "created": iso(c.created_at),
    }


def customers_json(rows: Sequence[Customer]) -> list[dict[str, Any]]:
    return [customer_json(c) for c in rows]


def payment_methods_json(rows: Sequence[PaymentMethod]) -> list[dict[str, Any]]:
    handles = catalog.values_by_id(Customer, (m.customer_id for m in rows), "external_id")
    return [
        {
            "id": m.handle,
            "state": m.state,
            "customer": handles.get(m.customer_id),
            "payment_type": "card",
            "card_type": m.card_type,
            "masked_card": m.masked_card,
            "exp_date": m.exp_date,
            "created": iso(m.created_at),
        }
        for m in rows
    ]


def plan_json(p: Plan) -> dict[str, Any]:
    return {
        "handle": p.handle,
        "name": p.name,
        "description": p.description,
        "amount": p.amount,
        "vat": _number(p.vat),
        "currency": p.currency,
        "amount_incl_vat": p.amount_incl_vat,
        "quantity": p.quantity,
        "schedule_type": p.schedule_type,
        "interval_length": p.interval_length,
        "state": p.state,
        "created": iso(p.created_at),
    }


def plans_json(rows: Sequence[Plan]) -> list[dict[str, Any]]:
    return [plan_json(p) for p in rows]


def add_on_json(a: AddOn) -> dict[str, Any]:
    return {
        "handle": a.handle,
        "name": a.name,
        "description": a.description,
        "amount": a.amount,
        "vat": _number(a.vat),
        "amount_incl_vat": a.amount_incl_vat,
        "type": a.type,
        "all_plans": a.all_plans,
        "eligible_plans": list(a.eligible_plans or []),
        "state": a.state,
        "created": iso(a.created_at),
    }


def add_ons_json(rows: Sequence[AddOn]) -> list[dict[str, Any]]:
    return [add_on_json(a) for a in rows]


def subscriptions_json(rows: Sequence[Subscription]) -> list[dict[str, Any]]:
    refs = subs.subscription_refs(rows)
    timezone = g.account.timezone
    out = []
    for sub in rows:
        plan = refs.plans[sub.plan_id]
        method = refs.payment_methods.get(sub.payment_method_id) if sub.payment_method_id else None
        out.append(
            {
                "handle": sub.handle,
                "customer": refs.customers[sub.customer_id],
                "plan": plan.handle,
                "state": sub.state,
                "is_cancelled": sub.is_cancelled,
                "renewing": not sub.is_cancelled and sub.state != "expired",
                "amount": sub.amount,
                "quantity": sub.quantity,
                "amount_incl_vat": plan.amount_incl_vat,
                "currency": plan.currency,
                "timezone": timezone,
                "created": iso(sub.created_at),
                "activated": iso(sub.created_at),
                "start_date": iso(sub.start_date),
                "current_period_start": iso(sub.current_period_start),
                "current_period_end": iso(sub.current_period_end),
                "next_period_start": iso(sub.current_period_end),
                "cancelled_date": iso(sub.cancelled_date),
                "expired_date": iso(sub.expired_date),
                "on_hold_date": iso(sub.on_hold_date),
                "on_hold_reason": sub.on_hold_reason,
                "reactivated": iso(sub.reactivated_date),
                "payment_method": method,
                "payment_method_added": method is not None,
                "active_payment_methods": [method] if method else [],
                "subscription_add_ons": refs.add_ons.get(sub.id, []),
                "subscription_discounts": refs.discounts.get(sub.id, []),
                "cost_center": sub.cost_center,
                "purchase_order_number": sub.purchase_order_number,
            }
        )
    return out


def subscription_discounts_json(rows: Sequence[SubscriptionDiscount]) -> list[dict[str, Any]]:
    discounts, coupons, handles = subs.subscription_discount_refs(rows)
    out = []
    for sd in rows:
        d = discounts[sd.discount_id]
        out.append(
            {
                "handle": sd.handle,
                "subscription": handles[sd.subscription_id],
                "discount": d.handle,
                "coupon": coupons.get(sd.coupon_id) if sd.coupon_id else None,
                "state": sd.state,
                "name": d.name,
                "description": d.description,
                "amount": d.amount,
                "percentage": _number(d.percentage),
                "apply_to": list(d.apply_to),
                "count": sd.invoice_count,
                "invoices": [uuid.UUID(i).hex for i in sd.invoice_ids or []],
                "fixed_count": d.fixed_count,
                "fixed_period": d.fixed_period,
                "fixed_period_unit": d.fixed_period_unit,
                "created": iso(sd.created_at),
            }
        )
    return out


def additional_costs_json(rows: Sequence[AdditionalCost]) -> list[dict[str, Any]]:
    handles = subs.subscription_handles([c.subscription_id for c in rows])
    return [
        {
            "handle": c.handle,
            "subscription": handles[c.subscription_id],
            "ordertext": c.ordertext,
            "amount": c.amount,
            "quantity": c.quantity,
            "vat": _number(c.vat),
            "amount_incl_vat": c.amount_incl_vat,
            "state": c.state,
            # Invoices show their id in dialect B as 32 hex characters.
            "invoice": c.invoice_id.hex if c.invoice_id else None,
            "created": iso(c.created_at),
        }
        for c in rows
    ]


def credits_json(rows: Sequence[Credit]) -> list[dict[str, Any]]:
    handles = subs.subscription_handles([c.subscription_id for c in rows])
    uses = subs.credit_uses([c.id for c in rows])
    return [
        {
            "handle": c.handle,
            "subscription": handles[c.subscription_id],
            "amount": c.amount,
            "pending_amount": c.pending_amount,
            "text": c.text,
            "state": c.state,
            "valid_from": _date(c.valid_from),
            "credit_invoices": [
                {"invoice": u.invoice_id.hex, "amount": u.amount, "created": iso(u.created_at)}
                for u in uses.get(c.id, [])
            ],
            "created": iso(c.created_at),
        }
        for c in rows
    ]


def discount_json(d: Discount) -> dict[str, Any]:
    return {
        "handle": d.handle,
        "name": d.name,
        "description": d.description,
        "amount": d.amount,
        "percentage": _number(d.percentage),
        "apply_to": list(d.apply_to),
        "fixed_count": d.fixed_count,
        "fixed_period": d.fixed_period,
        "fixed_period_unit": d.fixed_period_unit,
        "state": d.state,
        "created": iso(d.created_at),
    }


def discounts_json(rows: Sequence[Discount]) -> list[dict[str, Any]]:
    return [discount_json(d) for d in rows]


def coupons_json(rows: Sequence[Coupon]) -> list[dict[str, Any]]:
    handles = catalog.values_by_id(Discount, (c.discount_id for c in rows))
    return [
        {
            "handle": c.handle,
            "code": c.code,
            "name": c.name,
            "discount": handles[c.discount_id],
            "state": c.state,
            "redemptions": c.redemptions,
            "max_redemptions": c.max_redemptions,
            "created": iso(c.created_at),
        }
        for c in rows
    ]


def metrics_json(rows: Sequence[Metric]) -> list[dict[str, Any]]:
    return [
        {"code": m.code, "name": m.name, "aggregation": m.aggregation, "created": iso(m.created_at)}
        for m in rows
    ]


def charges_json(rows: Sequence[Charge]) -> list[dict[str, Any]]:
    plans = catalog.values_by_id(Plan, (c.plan_id for c in rows))
    metrics = catalog.values_by_id(Metric, (c.metric_id for c in rows), "code")
    return [
        {
            "id": str(c.id),
            "plan": plans.get(c.plan_id) if c.plan_id else None,
            "metric": metrics.get(c.metric_id) if c.metric_id else None,
            "name": c.name,
            "unit_amount": JsonNumber(c.unit_amount),
            "tiers": (
                [
                    {"up_to": t["up_to"], "unit_amount": JsonNumber(Decimal(t["unit_amount"]))}
                    for t in c.tiers
                ]
                if c.tiers
                else None
            ),
            "vat": _number(c.vat),
            "amount_incl_vat": c.amount_incl_vat,
            "created": iso(c.created_at),
        }
        for c in rows
    ]


def usage_json(rows: Sequence[UsageEventRow]) -> list[dict[str, Any]]:
    handles, codes = subs.usage_refs(rows)
    return [
        {
            "id": e.id.hex,
            "transaction_id": e.transaction_id,
            "subscription": handles[e.subscription_id],
            "metric": codes[e.metric_id],
            "value": JsonNumber(e.value),
            "timestamp": iso(e.timestamp),
            "properties": e.properties,
            "invoice": e.invoice_id.hex if e.invoice_id else None,
            "created": iso(e.created_at),
        }
        for e in rows
    ]


# ---------------------------------------------------------------- customers

CUSTOMER_404 = {404: "Customer not found (9)"}


def _customer_name(body: s.CreateCustomer, handle: str) -> str:
    """Reepay customers have no single name; ours is the company, else first and last
    name, else the handle."""
    if body.company and body.company.strip():
        return body.company.strip()[:255]
    person = " ".join(p.strip() for p in (body.first_name, body.last_name) if p and p.strip())
    return person[:255] or handle


@endpoint(
    bp,
    "/customer",
    "POST",
    summary="Create customer",
    body=s.CreateCustomer,
    response=s.CustomerB,
    tags=("Customers (B)",),
    errors={**AUTH, 400: f"{INVALID}, duplicate handle (11)"},
)
def create_customer(body: s.CreateCustomer) -> dict[str, Any]:
    """Create a customer; its handle is the dialect A `external_id` of the same customer."""
    handle = body.handle
    if handle is None:
        if not body.generate_handle:
            raise InvalidInput(("handle",), "handle is required (or generate_handle: true)")
        handle = f"cust-{secrets.token_hex(6)}"
    data: dict[str, Any] = {
        "external_id": handle,
        "name": _customer_name(body, handle),
        "email": body.email,
        "first_name": body.first_name,
        "last_name": body.last_name,
        "company": body.company,
        "address_line1": body.address,
        "address_line2": body.address2,
        "city": body.city,
        "zip_code": body.postal_code,
        "country": body.country,
        "tax_id": body.vat,
        "phone": body.phone,
        "currency": body.currency or g.account.default_currency,
    }
    if body.locale:
        data["document_locale"] = body.locale
    return customer_json(customers.create_customer(_account_id(), data))


@endpoint(
    bp,
    "/customer",
    "GET",
    summary="List customers",
    query=PageQuery,
    response=Page[s.CustomerB],
    tags=("Customers (B)",),
    errors={**AUTH, 400: INVALID},
)
def list_customers(query: PageQuery) -> dict[str, Any]:
    """Customers, newest first."""
    rows, token = subs.list_customers(_account_id(), query.size, query.next_page_token)
    return page_body(query.size, rows, token, customers_json)


@endpoint(
    bp,
    "/customer/<handle>",
    "GET",
    summary="Get customer",
    response=s.CustomerB,
    tags=("Customers (B)",),
    errors={**AUTH, **CUSTOMER_404},
)
def get_customer(handle: str) -> dict[str, Any]:
    """One customer by handle."""
    return customer_json(customers.get_customer_by_handle(_account_id(), handle))


@endpoint(
    bp,
    "/customer/<handle>/payment_method",
    "POST",
    summary="Add a card (test gateway)",
    body=s.CreateCard,
    response=s.PaymentMethodB,
    tags=("Customers (B)",),
    errors={**AUTH, **CUSTOMER_404, 400: f"{INVALID}: the card field at fault is named"},
)
def add_payment_method(handle: str, body: s.CreateCard) -> dict[str, Any]:
    """Register a card with the test gateway; only its brand, masked number and expiry
    are kept."""
    customer = customers.get_customer_by_handle(_account_id(), handle)
    card = CardDetails(body.card_number, body.exp_month, body.exp_year, body.cvv)
    method = payments.add_payment_method(_account_id(), customer.id, card)
    return payment_methods_json([method])[0]


@endpoint(
    bp,
    "/customer/<handle>/payment_method",
    "GET",
    summary="List a customer's payment methods",
    query=PageQuery,
    response=Page[s.PaymentMethodB],
    tags=("Customers (B)",),
    errors={**AUTH, **CUSTOMER_404},
)
def list_payment_methods(handle: str, query: PageQuery) -> dict[str, Any]:
    """The customer's payment methods, newest first."""
    rows, token = subs.list_payment_methods(
        _account_id(), handle, query.size, query.next_page_token
    )
    return page_body(query.size, rows, token, payment_methods_json)


@endpoint(
    bp,
    "/payment_method/<method_id>",
    "GET",
    summary="Get payment method",
    response=s.PaymentMethodB,
    tags=("Customers (B)",),
    errors={**AUTH, 404: "Payment method not found (40)"},
)
def get_payment_method(method_id: str) -> dict[str, Any]:
    """One payment method by its id (`ca_…`)."""
    return payment_methods_json([payments.get_payment_method(_account_id(), method_id)])[0]


# ---------------------------------------------------------------- plans and add-ons

PLAN_404 = {404: "Plan not found (10)"}


@endpoint(
    bp,
    "/plan",
    "POST",
    summary="Create plan",
    body=s.CreatePlan,
    response=s.PlanB,
    tags=("Plans (B)",),
    errors={**AUTH, 400: f"{INVALID}, duplicate handle (11)"},
)
def create_plan(body: s.CreatePlan) -> dict[str, Any]:
    """Create a plan (amount per period in minor units; `vat` a fraction)."""
    return plan_json(catalog.create_plan(_account_id(), body.model_dump()))


@endpoint(
    bp,
    "/plan",
    "GET",
    summary="List plans",
    query=PageQuery,
    response=Page[s.PlanB],
    tags=("Plans (B)",),
    errors={**AUTH, 400: INVALID},
)
def list_plans(query: PageQuery) -> dict[str, Any]:
    """Plans, newest first."""
    rows, token = catalog.list_plans(_account_id(), query.size, query.next_page_token)
    return page_body(query.size, rows, token, plans_json)


@endpoint(
    bp,
    "/plan/<handle>",
    "GET",
    summary="Get plan",
    response=s.PlanB,
    tags=("Plans (B)",),
    errors={**AUTH, **PLAN_404},
)
def get_plan(handle: str) -> dict[str, Any]:
    """One plan by handle."""
    return plan_json(catalog.get_plan(_account_id(), handle))


@endpoint(
    bp,
    "/plan/<handle>/charge",
    "POST",
    summary="Price a metric on a plan",
    body=s.CreateCharge,
    response=s.ChargeB,
    tags=("Usage (B)",),
    errors={**AUTH, 404: "Plan (10) or metric (8) not found", 400: INVALID},
)
def create_charge(handle: str, body: s.CreateCharge) -> dict[str, Any]:
    """A per-unit price (minor units, up to 6 decimals; optionally graduated tiers) of a
    metric on this plan. Its `id` is what dialect A lines give as `charge_id`."""
    data = body.model_dump(exclude={"tiers"})
    if body.tiers:
        data["tiers"] = [t.model_dump() for t in body.tiers]
    return charges_json([catalog.create_charge(_account_id(), handle, data)])[0]


@endpoint(
    bp,
    "/plan/<handle>/charge",
    "GET",
    summary="List a plan's charges",
    query=PageQuery,
    response=Page[s.ChargeB],
    tags=("Usage (B)",),
    errors={**AUTH, **PLAN_404},
)
def list_charges(handle: str, query: PageQuery) -> dict[str, Any]:
    """The plan's charges, newest first."""
    rows, token = catalog.list_charges(_account_id(), handle, query.size, query.next_page_token)
    return page_body(query.size, rows, token, charges_json)


ADD_ON_404 = {404: "Add-on not found (113)"}


@endpoint(
    bp,
    "/add_on",
    "POST",
    summary="Create add-on",
    body=s.CreateAddOn,
    response=s.AddOnB,
    tags=("Plans (B)",),
    errors={**AUTH, 400: f"{INVALID}, duplicate handle (11)", **PLAN_404},
)
def create_add_on(body: s.CreateAddOn) -> dict[str, Any]:
    """Create an add-on (`on_off` or `quantity`), for all plans or the `eligible_plans`."""
    return add_on_json(catalog.create_add_on(_account_id(), body.model_dump()))


@endpoint(
    bp,
    "/add_on",
    "GET",
    summary="List add-ons",
    query=PageQuery,
    response=Page[s.AddOnB],
    tags=("Plans (B)",),
    errors={**AUTH, 400: INVALID},
)
def list_add_ons(query: PageQuery) -> dict[str, Any]:
    """Add-ons, newest first."""
    rows, token = catalog.list_add_ons(_account_id(), query.size, query.next_page_token)
    return page_body(query.size, rows, token, add_ons_json)


@endpoint(
    bp,
    "/add_on/<handle>",
    "GET",
    summary="Get add-on",
    response=s.AddOnB,
    tags=("Plans (B)",),
    errors={**AUTH, **ADD_ON_404},
)
def get_add_on(handle: str) -> dict[str, Any]:
    """One add-on by handle."""
    return add_on_json(catalog.get_add_on(_account_id(), handle))


# ---------------------------------------------------------------- subscriptions

SUB_404 = {404: "Subscription not found (12)"}
SUB_STATE_400 = "Subscription expired (13)"


def _sub_json(sub: Subscription) -> dict[str, Any]:
    return subscriptions_json([sub])[0]


@endpoint(
    bp,
    "/subscription",
    "POST",
    summary="Create subscription",
    body=s.CreateSubscription,
    response=s.SubscriptionB,
    tags=("Subscriptions (B)",),
    errors={
        **AUTH,
        400: f"{INVALID}, duplicate handle (11), add-on already added (114), quantity on "
        "an on/off add-on (115), add-on not eligible for the plan (116)",
        404: "Customer (9), plan (10), add-on (113) or payment method (40) not found",
    },
)
def create_subscription(body: s.CreateSubscription) -> dict[str, Any]:
    """Subscribe a customer to a plan, with add-ons and a payment method (`source`)."""
    req = subs.NewSubscription(
        handle=body.handle,
        customer=body.customer,
        plan=body.plan,
        amount=body.amount,
        quantity=body.quantity,
        start_date=parse_local(body.start_date, g.account.timezone) if body.start_date else None,
        source=body.source,
        add_ons=tuple(
            subs.AddOnChoice(add_on=a.add_on, handle=a.handle, quantity=a.quantity, amount=a.amount)
            for a in body.add_ons
        ),
        cost_center=body.cost_center,
        purchase_order_number=body.purchase_order_number,
    )
    return _sub_json(subs.create_subscription(_account_id(), req))


@endpoint(
    bp,
    "/subscription",
    "GET",
    summary="List subscriptions",
    query=s.SubscriptionListQuery,
    response=Page[s.SubscriptionB],
    tags=("Subscriptions (B)",),
    errors={**AUTH, 400: INVALID},
)
def list_subscriptions(query: s.SubscriptionListQuery) -> dict[str, Any]:
    """Subscriptions, newest first; filter by `customer` (handle) and `state`."""
    rows, token = subs.list_subscriptions(
        _account_id(),
        query.size,
        query.next_page_token,
        customer=query.customer,
        state=query.state,
    )
    return page_body(query.size, rows, token, subscriptions_json)


@endpoint(
    bp,
    "/subscription/<handle>",
    "GET",
    summary="Get subscription",
    response=s.SubscriptionB,
    tags=("Subscriptions (B)",),
    errors={**AUTH, **SUB_404},
)
def get_subscription(handle: str) -> dict[str, Any]:
    """One subscription by handle."""
    return _sub_json(subs.get_subscription(_account_id(), handle))


def _state_change(name: str, service: Any, summary: str, error400: str) -> None:
    def view(handle: str) -> dict[str, Any]:
        return _sub_json(service(_account_id(), handle))

    view.__name__ = f"subscription_{name}"
    view.__doc__ = summary
    endpoint(
        bp,
        f"/subscription/<handle>/{name}",
        "POST",
        summary=summary,
        response=s.SubscriptionB,
        tags=("Subscriptions (B)",),
        errors={**AUTH, **SUB_404, 400: error400},
    )(view)


_state_change(
    "on_hold",
    subs.put_on_hold,
    "Put subscription on hold",
    "Subscription expired (13) or already on hold (95)",
)
_state_change(
    "reactivate",
    subs.reactivate,
    "Reactivate an on-hold subscription",
    "Subscription not on hold (97)",
)
_state_change(
    "cancel",
    subs.cancel,
    "Cancel subscription (it stays active; is_cancelled)",
    "Subscription expired (13) or already cancelled (22)",
)
_state_change("expire", subs.expire, "Expire subscription now", SUB_STATE_400)


@endpoint(
    bp,
    "/subscription/<handle>/pm",
    "POST",
    summary="Change the subscription's payment method",
    body=s.ChangePaymentMethod,
    response=s.SubscriptionB,
    tags=("Subscriptions (B)",),
    errors={**AUTH, 404: "Subscription (12) or payment method (40) not found", 400: SUB_STATE_400},
)
def change_payment_method(handle: str, body: s.ChangePaymentMethod) -> dict[str, Any]:
    """Charge the subscription with `source` (a payment method of its customer)."""
    return _sub_json(subs.change_payment_method(_account_id(), handle, body.source))


@endpoint(
    bp,
    "/subscription/<handle>/discount",
    "POST",
    summary="Add a discount or redeem a coupon",
    body=s.CreateSubscriptionDiscount,
    response=s.SubscriptionDiscountB,
    tags=("Subscriptions (B)",),
    errors={
        **AUTH,
        400: f"{INVALID}, duplicate handle (11), subscription expired (13), coupon already "
        "used by this customer (87)",
        404: "Subscription (12), discount (83) not found; coupon not found or not eligible (86)",
    },
)
def add_subscription_discount(handle: str, body: s.CreateSubscriptionDiscount) -> dict[str, Any]:
    """Attach a discount (`discount`: its handle) or redeem a coupon (`coupon`: its code)."""
    row = subs.add_discount(
        _account_id(), handle, handle=body.handle, discount=body.discount, coupon=body.coupon
    )
    return subscription_discounts_json([row])[0]


# ---------------------------------------------------------------- additional costs

COST_404 = {404: "Additional cost not found (26)"}


@endpoint(
    bp,
    "/additional_cost",
    "POST",
    summary="Create additional cost",
    body=s.CreateAdditionalCost,
    response=s.AdditionalCostB,
    tags=("Additional costs and credits (B)",),
    errors={
        **AUTH,
        **SUB_404,
        400: f"{INVALID}, duplicate handle (11), subscription expired (13)",
    },
)
def create_additional_cost(body: s.CreateAdditionalCost) -> dict[str, Any]:
    """A one-time charge waiting on a subscription for its next invoice."""
    cost = subs.create_additional_cost(_account_id(), body.model_dump())
    return additional_costs_json([cost])[0]


@endpoint(
    bp,
    "/additional_cost",
    "GET",
    summary="List additional costs",
    query=s.ListBySubscriptionQuery,
    response=Page[s.AdditionalCostB],
    tags=("Additional costs and credits (B)",),
    errors={**AUTH, **SUB_404, 400: INVALID},
)
def list_additional_costs(query: s.ListBySubscriptionQuery) -> dict[str, Any]:
    """Additional costs, newest first (optionally of one `subscription`)."""
    rows, token = subs.list_additional_costs(
        _account_id(), query.size, query.next_page_token, subscription=query.subscription
    )
    return page_body(query.size, rows, token, additional_costs_json)


@endpoint(
    bp,
    "/additional_cost/subscription/<handle>",
    "GET",
    summary="List a subscription's additional costs",
    query=PageQuery,
    response=Page[s.AdditionalCostB],
    tags=("Additional costs and credits (B)",),
    errors={**AUTH, **SUB_404},
)
def list_subscription_additional_costs(handle: str, query: PageQuery) -> dict[str, Any]:
    """The subscription's additional costs, newest first."""
    rows, token = subs.list_additional_costs(
        _account_id(), query.size, query.next_page_token, subscription=handle
    )
    return page_body(query.size, rows, token, additional_costs_json)


@endpoint(
    bp,
    "/additional_cost/<handle>",
    "GET",
    summary="Get additional cost",
    response=s.AdditionalCostB,
    tags=("Additional costs and credits (B)",),
    errors={**AUTH, **COST_404},
)
def get_additional_cost(handle: str) -> dict[str, Any]:
    """One additional cost by handle."""
    return additional_costs_json([subs.get_additional_cost(_account_id(), handle)])[0]


@endpoint(
    bp,
    "/additional_cost/<handle>/cancel",
    "POST",
    summary="Cancel additional cost",
    response=s.AdditionalCostB,
    tags=("Additional costs and credits (B)",),
    errors={**AUTH, **COST_404, 400: "Additional cost not pending (25)"},
)
def cancel_additional_cost(handle: str) -> dict[str, Any]:
    """Cancel a pending additional cost (one on an invoice already cannot be)."""
    return additional_costs_json([subs.cancel_additional_cost(_account_id(), handle)])[0]


# ---------------------------------------------------------------- credits

CREDIT_404 = {404: "Credit not found (27)"}


@endpoint(
    bp,
    "/credit",
    "POST",
    summary="Create credit",
    body=s.CreateCredit,
    response=s.CreditB,
    tags=("Additional costs and credits (B)",),
    errors={**AUTH, **SUB_404, 400: f"{INVALID}, duplicate handle (11), subscription expired (13)"},
)
def create_credit(body: s.CreateCredit) -> dict[str, Any]:
    """Money owed back to the subscriber; invoices consume it from `valid_from` on."""
    return credits_json([subs.create_credit(_account_id(), body.model_dump())])[0]


@endpoint(
    bp,
    "/credit",
    "GET",
    summary="List credits",
    query=s.ListBySubscriptionQuery,
    response=Page[s.CreditB],
    tags=("Additional costs and credits (B)",),
    errors={**AUTH, **SUB_404, 400: INVALID},
)
def list_credits(query: s.ListBySubscriptionQuery) -> dict[str, Any]:
    """Credits, newest first (optionally of one `subscription`)."""
    rows, token = subs.list_credits(
        _account_id(), query.size, query.next_page_token, subscription=query.subscription
    )
    return page_body(query.size, rows, token, credits_json)


@endpoint(
    bp,
    "/credit/<handle>",
    "GET",
    summary="Get credit",
    response=s.CreditB,
    tags=("Additional costs and credits (B)",),
    errors={**AUTH, **CREDIT_404},
)
def get_credit(handle: str) -> dict[str, Any]:
    """One credit by handle."""
    return credits_json([subs.get_credit(_account_id(), handle)])[0]


@endpoint(
    bp,
    "/credit/<handle>/cancel",
    "POST",
    summary="Cancel credit",
    response=s.CreditB,
    tags=("Additional costs and credits (B)",),
    errors={**AUTH, **CREDIT_404, 400: "Credit not pending (28)"},
)
def cancel_credit(handle: str) -> dict[str, Any]:
    """Cancel a pending credit nothing has consumed yet."""
    return credits_json([subs.cancel_credit(_account_id(), handle)])[0]


# ---------------------------------------------------------------- discounts and coupons

DISCOUNT_404 = {404: "Discount not found (83)"}


@endpoint(
    bp,
    "/discount",
    "POST",
    summary="Create discount",
    body=s.CreateDiscount,
    response=s.DiscountB,
    tags=("Discounts (B)",),
    errors={**AUTH, 400: f"{INVALID}, duplicate handle (11)"},
)
def create_discount(body: s.CreateDiscount) -> dict[str, Any]:
    """A fixed `amount` or a `percentage` off the lines named in `apply_to`."""
    return discount_json(catalog.create_discount(_account_id(), body.model_dump()))


@endpoint(
    bp,
    "/discount",
    "GET",
    summary="List discounts",
    query=PageQuery,
    response=Page[s.DiscountB],
    tags=("Discounts (B)",),
    errors={**AUTH, 400: INVALID},
)
def list_discounts(query: PageQuery) -> dict[str, Any]:
    """Discounts, newest first."""
    rows, token = catalog.list_discounts(_account_id(), query.size, query.next_page_token)
    return page_body(query.size, rows, token, discounts_json)


@endpoint(
    bp,
    "/discount/<handle>",
    "GET",
    summary="Get discount",
    response=s.DiscountB,
    tags=("Discounts (B)",),
    errors={**AUTH, **DISCOUNT_404},
)
def get_discount(handle: str) -> dict[str, Any]:
    """One discount by handle."""
    return discount_json(catalog.get_discount(_account_id(), handle))


@endpoint(
    bp,
    "/coupon",
    "POST",
    summary="Create coupon",
    body=s.CreateCoupon,
    response=s.CouponB,
    tags=("Discounts (B)",),
    errors={
        **AUTH,
        **DISCOUNT_404,
        400: f"{INVALID}, duplicate handle (11), coupon code already exists (88)",
    },
)
def create_coupon(body: s.CreateCoupon) -> dict[str, Any]:
    """A code that attaches `discount` when redeemed on a subscription."""
    return coupons_json([catalog.create_coupon(_account_id(), body.model_dump())])[0]


@endpoint(
    bp,
    "/coupon",
    "GET",
    summary="List coupons",
    query=PageQuery,
    response=Page[s.CouponB],
    tags=("Discounts (B)",),
    errors={**AUTH, 400: INVALID},
)
def list_coupons(query: PageQuery) -> dict[str, Any]:
    """Coupons, newest first."""
    rows, token = catalog.list_coupons(_account_id(), query.size, query.next_page_token)
    return page_body(query.size, rows, token, coupons_json)


@endpoint(
    bp,
    "/coupon/<handle>",
    "GET",
    summary="Get coupon",
    response=s.CouponB,
    tags=("Discounts (B)",),
    errors={**AUTH, 404: "Coupon not found (86)"},
)
def get_coupon(handle: str) -> dict[str, Any]:
    """One coupon by handle."""
    return coupons_json([catalog.get_coupon(_account_id(), handle)])[0]


# ---------------------------------------------------------------- usage

METRIC_404 = {404: "Metric not found (8)"}


@endpoint(
    bp,
    "/metric",
    "POST",
    summary="Create metric",
    body=s.CreateMetric,
    response=s.MetricB,
    tags=("Usage (B)",),
    errors={**AUTH, 400: f"{INVALID}, duplicate code (11)"},
)
def create_metric(body: s.CreateMetric) -> dict[str, Any]:
    """A usage metric: `code` and how its events aggregate (count, sum, max)."""
    return metrics_json([catalog.create_metric(_account_id(), body.model_dump())])[0]


@endpoint(
    bp,
    "/metric",
    "GET",
    summary="List metrics",
    query=PageQuery,
    response=Page[s.MetricB],
    tags=("Usage (B)",),
    errors={**AUTH, 400: INVALID},
)
def list_metrics(query: PageQuery) -> dict[str, Any]:
    """Metrics, newest first."""
    rows, token = catalog.list_metrics(_account_id(), query.size, query.next_page_token)
    return page_body(query.size, rows, token, metrics_json)


@endpoint(
    bp,
    "/metric/<code>",
    "GET",
    summary="Get metric",
    response=s.MetricB,
    tags=("Usage (B)",),
    errors={**AUTH, **METRIC_404},
)
def get_metric(code: str) -> dict[str, Any]:
    """One metric by code."""
    return metrics_json([catalog.get_metric(_account_id(), code)])[0]


@endpoint(
    bp,
    "/usage",
    "POST",
    summary="Record usage",
    body=s.CreateUsage,
    response=s.UsageB,
    tags=("Usage (B)",),
    errors={
        **AUTH,
        404: "Subscription (12) or metric (8) not found",
        400: f"{INVALID}, duplicate transaction_id (11; nothing stored), subscription expired (13)",
    },
)
def record_usage(body: s.CreateUsage) -> dict[str, Any]:
    """One usage event; a `transaction_id` seen before in the account is refused."""
    req = subs.NewUsage(
        transaction_id=body.transaction_id,
        subscription=body.subscription,
        metric=body.metric,
        value=body.value,
        timestamp=body.timestamp,
        properties=body.properties,
    )
    return usage_json([subs.record_usage(_account_id(), req)])[0]


@endpoint(
    bp,
    "/usage",
    "GET",
    summary="List usage",
    query=s.UsageListQuery,
    response=Page[s.UsageB],
    tags=("Usage (B)",),
    errors={**AUTH, 404: "Subscription (12) or metric (8) not found", 400: INVALID},
)
def list_usage(query: s.UsageListQuery) -> dict[str, Any]:
    """Usage events, newest recorded first; filter by `subscription` and `metric`."""
    rows, token = subs.list_usage(
        _account_id(),
        query.size,
        query.next_page_token,
        subscription=query.subscription,
        metric=query.metric,
    )
    return page_body(query.size, rows, token, usage_json)
