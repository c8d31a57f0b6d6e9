"""Read models for the subscription pages: one subscription with everything its page
shows, and the names a list of subscriptions refers to, each in a fixed number of queries
(no N+1). Reads only; every lookup is scoped to the account (NotFound otherwise)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from ..catalog.models import AddOn, Coupon, Discount, Plan
from ..customers.models import Customer
from ..extensions import db
from ..payments.models import PaymentMethod
from ..querying import get_scoped
from .models import Subscription, SubscriptionAddOn, SubscriptionDiscount


@dataclass(frozen=True)
class AttachedAddOn:
    link: SubscriptionAddOn
    add_on: AddOn


@dataclass(frozen=True)
class AttachedDiscount:
    link: SubscriptionDiscount
    discount: Discount
    coupon_code: str | None


@dataclass(frozen=True)
class SubscriptionOverview:
    subscription: Subscription
    customer: Customer
    plan: Plan
    payment_method: PaymentMethod | None
    add_ons: list[AttachedAddOn]
    discounts: list[AttachedDiscount]


def subscription_overview(account_id: uuid.UUID, handle: str) -> SubscriptionOverview:
    """The subscription `handle` of this account with its customer, plan, payment method,
    add-ons and attached discounts."""
    sub = get_scoped(Subscription, account_id, "Subscription", handle=handle)
    customer = db.session.get(Customer, sub.customer_id)
    plan = db.session.get(Plan, sub.plan_id)
    assert customer is not None and plan is not None
    method = db.session.get(PaymentMethod, sub.payment_method_id) if sub.payment_method_id else None
    add_ons = [
        AttachedAddOn(link, add_on)
        for link, add_on in db.session.execute(
            select(SubscriptionAddOn, AddOn)
            .join(AddOn, AddOn.id == SubscriptionAddOn.add_on_id)
            .where(SubscriptionAddOn.subscription_id == sub.id)
            .order_by(SubscriptionAddOn.created_at, SubscriptionAddOn.id)
        ).all()
    ]
    discounts = [
        AttachedDiscount(link, discount, code)
        for link, discount, code in db.session.execute(
            select(SubscriptionDiscount, Discount, Coupon.code)
            .join(Discount, Discount.id == SubscriptionDiscount.discount_id)
            .outerjoin(Coupon, Coupon.id == SubscriptionDiscount.coupon_id)
            .where(SubscriptionDiscount.subscription_id == sub.id)
            .order_by(SubscriptionDiscount.created_at, SubscriptionDiscount.id)
        ).all()
    ]
    return SubscriptionOverview(sub, customer, plan, method, add_ons, discounts)


def subscription_by_id(account_id: uuid.UUID, subscription_id: uuid.UUID) -> Subscription:
    """For links from an invoice, which knows its subscription by id."""
    return get_scoped(Subscription, account_id, "Subscription", id=subscription_id)


@dataclass(frozen=True)
class ListRefs:
    customers: dict[uuid.UUID, Customer]
    plans: dict[uuid.UUID, Plan]


def list_refs(subs: Sequence[Subscription]) -> ListRefs:
    """The customers and plans a page of subscriptions shows, two queries in all."""
    customer_ids = {s.customer_id for s in subs}
    plan_ids = {s.plan_id for s in subs}
    customers = (
        {c.id: c for c in db.session.scalars(select(Customer).where(Customer.id.in_(customer_ids)))}
        if customer_ids
        else {}
    )
    plans = (
        {p.id: p for p in db.session.scalars(select(Plan).where(Plan.id.in_(plan_ids)))}
        if plan_ids
        else {}
    )
    return ListRefs(customers, plans)
