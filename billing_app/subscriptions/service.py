"""Subscriptions and what waits on them: attached add-ons and discounts (coupons), state
changes, the payment method, additional costs, credits and usage events.

Every function takes the account id and plain values (handles, not ids: the handle is how
both the API and the pages name these objects), owns its write transaction and raises
domain errors: NotFound for anything unknown in this account (another account's objects
included), Duplicate for a handle already taken, InvalidState with its reason for an
action the object's state forbids, InvalidInput naming the field. Every create and
every state change writes an audit record.

State machine: `active -> on_hold -> active` (reactivate), any but `expired -> expired`;
`is_cancelled` is a flag (Reepay: a cancelled subscription runs to its period end). An
expired subscription takes nothing new.
"""

from __future__ import annotations

import calendar
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from ..accounts.models import Account
from ..audit import service as audit
from ..catalog import service as catalog
from ..catalog.models import Coupon, Discount, Metric, Plan
from ..customers.models import Customer
from ..db import new_uuid, utcnow, write_transaction
from ..errors import (
    ADD_ON_ALREADY_ADDED,
    ADD_ON_NOT_ELIGIBLE,
    ADD_ON_QUANTITY_NOT_ALLOWED,
    COST_NOT_PENDING,
    COUPON_ALREADY_USED,
    CREDIT_NOT_PENDING,
    SUBSCRIPTION_CANCELLED,
    SUBSCRIPTION_EXPIRED,
    SUBSCRIPTION_NOT_ON_HOLD,
    SUBSCRIPTION_ON_HOLD,
    InvalidInput,
    InvalidState,
    NotFound,
)
from ..extensions import db
from ..money import decimal_places
from ..payments import service as payments
from ..payments.models import PaymentMethod
from ..querying import get_scoped, paged
from .models import (
    ACTIVE,
    CANCELLED,
    EXPIRED,
    ON_HOLD,
    PENDING,
    AdditionalCost,
    Credit,
    CreditUse,
    Subscription,
    SubscriptionAddOn,
    SubscriptionDiscount,
    UsageEvent,
)

STATES = (ACTIVE, ON_HOLD, EXPIRED)


# ---------------------------------------------------------------- lookups


def get_subscription(account_id: uuid.UUID, handle: str) -> Subscription:
    return get_scoped(Subscription, account_id, "Subscription", handle=handle)


def lock_subscription(account_id: uuid.UUID, handle: str) -> Subscription:
    """The subscription, row-locked until commit (NotFound for a foreign or unknown one)."""
    sub = db.session.scalars(
        select(Subscription)
        .where(Subscription.account_id == account_id, Subscription.handle == handle)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if sub is None:
        raise NotFound("Subscription")
    return sub


def _not_expired(sub: Subscription) -> None:
    if sub.state == EXPIRED:
        raise InvalidState("Subscription expired", reason=SUBSCRIPTION_EXPIRED)


def check_invoiceable(sub: Subscription) -> None:
    """An on-demand invoice is refused for an expired, on-hold or cancelled subscription."""
    _not_expired(sub)
    if sub.state == ON_HOLD:
        raise InvalidState("Subscription on hold", reason=SUBSCRIPTION_ON_HOLD)
    if sub.is_cancelled:
        raise InvalidState("Subscription cancelled", reason=SUBSCRIPTION_CANCELLED)


def _account(account_id: uuid.UUID) -> Account:
    account = db.session.get(Account, account_id)
    if account is None:
        raise NotFound("Account")
    return account


def _count(model: Any, **filters: Any) -> Any:
    stmt = select(func.count()).select_from(model)
    for name, value in filters.items():
        stmt = stmt.where(getattr(model, name) == value)
    return stmt


# ---------------------------------------------------------------- customers (dialect B lists)


def list_customers(
    account_id: uuid.UUID, size: int, token: str | None
) -> tuple[list[Customer], str | None]:
    return paged(select(Customer).where(Customer.account_id == account_id), Customer, size, token)


def list_payment_methods(
    account_id: uuid.UUID, customer_handle: str, size: int, token: str | None
) -> tuple[list[PaymentMethod], str | None]:
    customer = get_scoped(Customer, account_id, "Customer", external_id=customer_handle)
    stmt = select(PaymentMethod).where(
        PaymentMethod.account_id == account_id, PaymentMethod.customer_id == customer.id
    )
    return paged(stmt, PaymentMethod, size, token)


# ---------------------------------------------------------------- periods


def _add_months(local: datetime, months: int) -> datetime:
    index = local.month - 1 + months
    year, month = local.year + index // 12, index % 12 + 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    return local.replace(year=year, month=month, day=day)


def period_end(start: datetime, plan: Plan, timezone: str) -> datetime | None:
    """Where the first period that starts at `start` ends (exclusive), on the account's
    wall clock; None for `manual` plans, which are only invoiced on demand.

    `month_fixedday` runs like `month_startdate` (plans store no fixed day);
    `month_lastday` periods end with the last day of a month."""
    if plan.schedule_type == "manual":
        return None
    zone = ZoneInfo(timezone)
    local = start.astimezone(zone)
    n = plan.interval_length
    if plan.schedule_type == "daily":
        end = local + timedelta(days=n)
    elif plan.schedule_type == "weekly_fixedday":
        end = local + timedelta(weeks=n)
    elif plan.schedule_type == "month_lastday":
        first = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = _add_months(first, n)
    else:
        end = _add_months(local, n)
    # Wall-clock arithmetic: re-attach the zone so a DST change in between is honoured.
    return end.replace(tzinfo=zone).astimezone(start.tzinfo)


# ---------------------------------------------------------------- subscriptions


@dataclass(frozen=True)
class AddOnChoice:
    add_on: str  # add-on handle
    handle: str | None = None  # per subscription; default: the add-on's handle
    quantity: int | None = None  # quantity add-ons only
    amount: int | None = None  # price override per unit, minor units


@dataclass(frozen=True)
class NewSubscription:
    handle: str
    customer: str  # customer handle
    plan: str  # plan handle
    amount: int | None = None  # price override per unit, minor units
    quantity: int | None = None  # default: the plan's quantity
    start_date: datetime | None = None  # default: now
    source: str | None = None  # payment method id (ca_...) of this customer
    add_ons: tuple[AddOnChoice, ...] = ()
    cost_center: str | None = None
    purchase_order_number: str | None = None


def _subscription_add_ons(
    sub: Subscription, plan: Plan, account_id: uuid.UUID, choices: Sequence[AddOnChoice]
) -> list[SubscriptionAddOn]:
    out: list[SubscriptionAddOn] = []
    seen: set[str] = set()
    for i, choice in enumerate(choices):
        add_on = catalog.get_add_on(account_id, choice.add_on)
        if not catalog.add_on_fits_plan(add_on, plan):
            raise InvalidState(
                f"add_ons[{i}]: add-on {add_on.handle!r} is not eligible for plan {plan.handle!r}",
                reason=ADD_ON_NOT_ELIGIBLE,
            )
        if add_on.type == "on_off" and choice.quantity not in (None, 1):
            raise InvalidState(
                f"add_ons[{i}].quantity: quantity is only for quantity add-ons",
                reason=ADD_ON_QUANTITY_NOT_ALLOWED,
            )
        handle = choice.handle or add_on.handle
        if handle in seen:
            raise InvalidState(
                f"add_ons[{i}].handle: {handle!r} is already added to this subscription",
                reason=ADD_ON_ALREADY_ADDED,
            )
        seen.add(handle)
        out.append(
            SubscriptionAddOn(
                subscription_id=sub.id,
                handle=handle,
                add_on_id=add_on.id,
                quantity=choice.quantity or 1,
                amount=choice.amount,
            )
        )
    return out


def create_subscription(account_id: uuid.UUID, req: NewSubscription) -> Subscription:
    """A subscription of `customer` to `plan`, active from `start_date`.

    Errors: unknown customer / plan / add-on / payment method (NotFound; a payment method
    of another customer is unknown too), a taken handle (Duplicate), an add-on not eligible
    for the plan, a quantity on an on/off add-on, one add-on handle twice (InvalidState,
    ADD_ON_NOT_ELIGIBLE, ADD_ON_QUANTITY_NOT_ALLOWED, ADD_ON_ALREADY_ADDED).
    """
    now = utcnow()
    with write_transaction():
        account = _account(account_id)
        customer = get_scoped(Customer, account_id, "Customer", external_id=req.customer)
        plan = catalog.get_plan(account_id, req.plan)
        method = (
            payments.resolve_payment_method(account_id, customer.id, req.source)
            if req.source
            else None
        )
        start = req.start_date or now
        sub = Subscription(
            id=new_uuid(),
            account_id=account_id,
            handle=req.handle,
            customer_id=customer.id,
            plan_id=plan.id,
            state=ACTIVE,
            amount=req.amount,
            quantity=req.quantity if req.quantity is not None else plan.quantity,
            start_date=start,
            current_period_start=start,
            current_period_end=period_end(start, plan, account.timezone),
            payment_method_id=method.id if method else None,
            cost_center=req.cost_center,
            purchase_order_number=req.purchase_order_number,
            created_at=now,
        )
        add_ons = _subscription_add_ons(sub, plan, account_id, req.add_ons)
        catalog.insert_unique(
            sub, "Subscription", _count(Subscription, account_id=account_id, handle=req.handle)
        )
        db.session.add_all(add_ons)
        db.session.flush()
        audit.record(
            account_id,
            "subscription.created",
            "subscription",
            sub.id,
            after={
                "handle": sub.handle,
                "customer": customer.external_id,
                "plan": plan.handle,
                "state": sub.state,
                "amount": sub.amount,
                "quantity": sub.quantity,
                "start_date": start,
                "payment_method": method.handle if method else None,
                "add_ons": [a.handle for a in add_ons],
            },
        )
    return sub


def list_subscriptions(
    account_id: uuid.UUID,
    size: int,
    token: str | None,
    *,
    customer: str | None = None,
    state: str | None = None,
) -> tuple[list[Subscription], str | None]:
    """Newest first; `customer` (a handle) and `state` filter (an unknown customer
    simply matches nothing)."""
    stmt = select(Subscription).where(Subscription.account_id == account_id)
    if customer is not None:
        stmt = stmt.join(Customer, Customer.id == Subscription.customer_id).where(
            Customer.external_id == customer
        )
    if state is not None:
        stmt = stmt.where(Subscription.state == state)
    return paged(stmt, Subscription, size, token)


def _transition(
    account_id: uuid.UUID, sub: Subscription, action: str, changes: dict[str, Any]
) -> None:
    before = {name: getattr(sub, name) for name in changes}
    for name, value in changes.items():
        setattr(sub, name, value)
    db.session.flush()
    audit.record(
        account_id, f"subscription.{action}", "subscription", sub.id, before=before, after=changes
    )


def put_on_hold(account_id: uuid.UUID, handle: str) -> Subscription:
    """active -> on_hold; refused when expired or already on hold."""
    with write_transaction():
        sub = lock_subscription(account_id, handle)
        _not_expired(sub)
        if sub.state == ON_HOLD:
            raise InvalidState("Subscription on hold", reason=SUBSCRIPTION_ON_HOLD)
        _transition(
            account_id,
            sub,
            "on_hold",
            {"state": ON_HOLD, "on_hold_reason": "ondemand", "on_hold_date": utcnow()},
        )
    return sub


def reactivate(account_id: uuid.UUID, handle: str) -> Subscription:
    """on_hold -> active; refused from any other state."""
    with write_transaction():
        sub = lock_subscription(account_id, handle)
        if sub.state != ON_HOLD:
            raise InvalidState("Subscription not on hold", reason=SUBSCRIPTION_NOT_ON_HOLD)
        _transition(
            account_id,
            sub,
            "reactivated",
            {
                "state": ACTIVE,
                "on_hold_reason": None,
                "on_hold_date": None,
                "reactivated_date": utcnow(),
            },
        )
    return sub


def cancel(account_id: uuid.UUID, handle: str) -> Subscription:
    """Sets `is_cancelled` (the state stays); refused when expired or already cancelled."""
    with write_transaction():
        sub = lock_subscription(account_id, handle)
        _not_expired(sub)
        if sub.is_cancelled:
            raise InvalidState("Subscription cancelled", reason=SUBSCRIPTION_CANCELLED)
        _transition(
            account_id, sub, "cancelled", {"is_cancelled": True, "cancelled_date": utcnow()}
        )
    return sub


def expire(account_id: uuid.UUID, handle: str) -> Subscription:
    """Any state -> expired, for good; refused when already expired."""
    with write_transaction():
        sub = lock_subscription(account_id, handle)
        _not_expired(sub)
        _transition(account_id, sub, "expired", {"state": EXPIRED, "expired_date": utcnow()})
    return sub


def change_payment_method(account_id: uuid.UUID, handle: str, source: str) -> Subscription:
    """Charge the subscription with `source` from now on: a payment method id of the
    subscription's customer (or `auto`: the customer's newest active one)."""
    with write_transaction():
        sub = lock_subscription(account_id, handle)
        _not_expired(sub)
        method = payments.resolve_payment_method(account_id, sub.customer_id, source)
        old = (
            db.session.get(PaymentMethod, sub.payment_method_id) if sub.payment_method_id else None
        )
        sub.payment_method_id = method.id
        db.session.flush()
        audit.record(
            account_id,
            "subscription.payment_method_changed",
            "subscription",
            sub.id,
            before={"payment_method": old.handle if old else None},
            after={"payment_method": method.handle},
        )
    return sub


@dataclass(frozen=True)
class SubscriptionRefs:
    """What subscription JSON shows besides the row itself, loaded for many at once."""

    customers: dict[uuid.UUID, str]
    plans: dict[uuid.UUID, Plan]
    payment_methods: dict[uuid.UUID, str]
    add_ons: dict[uuid.UUID, list[str]]
    discounts: dict[uuid.UUID, list[str]]


def _plans(ids: set[uuid.UUID]) -> dict[uuid.UUID, Plan]:
    if not ids:
        return {}
    return {p.id: p for p in db.session.scalars(select(Plan).where(Plan.id.in_(ids)))}


def subscription_refs(subs: Sequence[Subscription]) -> SubscriptionRefs:
    ids = [s.id for s in subs]
    add_ons: dict[uuid.UUID, list[str]] = defaultdict(list)
    discounts: dict[uuid.UUID, list[str]] = defaultdict(list)
    if ids:
        for sub_id, handle in db.session.execute(
            select(SubscriptionAddOn.subscription_id, SubscriptionAddOn.handle)
            .where(SubscriptionAddOn.subscription_id.in_(ids))
            .order_by(SubscriptionAddOn.created_at, SubscriptionAddOn.id)
        ):
            add_ons[sub_id].append(handle)
        for sub_id, handle in db.session.execute(
            select(SubscriptionDiscount.subscription_id, SubscriptionDiscount.handle)
            .where(SubscriptionDiscount.subscription_id.in_(ids))
            .order_by(SubscriptionDiscount.created_at, SubscriptionDiscount.id)
        ):
            discounts[sub_id].append(handle)
    return SubscriptionRefs(
        customers=catalog.values_by_id(Customer, (s.customer_id for s in subs), "external_id"),
        plans=_plans({s.plan_id for s in subs}),
        payment_methods=catalog.values_by_id(PaymentMethod, (s.payment_method_id for s in subs)),
        add_ons=add_ons,
        discounts=discounts,
    )


# ---------------------------------------------------------------- discounts and coupons


def add_discount(
    account_id: uuid.UUID,
    subscription_handle: str,
    *,
    handle: str | None = None,
    discount: str | None = None,
    coupon: str | None = None,
) -> SubscriptionDiscount:
    """Attach a discount (by handle) or redeem a coupon (by code) on a subscription.

    A coupon must be active and below `max_redemptions`, else it is not found
    (NotFound); it is redeemed once per customer (COUPON_ALREADY_USED the second time).
    Its redemption count rises under a row lock, so parallel redemptions never exceed the
    maximum. `handle` is unique per subscription and defaults to the discount's handle.
    """
    if (discount is None) == (coupon is None):
        raise InvalidInput(("discount",), "Give either discount (a handle) or coupon (a code)")
    with write_transaction():
        sub = lock_subscription(account_id, subscription_handle)
        _not_expired(sub)
        coupon_row: Coupon | None = None
        if coupon is not None:
            coupon_row = db.session.scalars(
                select(Coupon)
                .where(Coupon.account_id == account_id, Coupon.code == coupon)
                .with_for_update()
                .execution_options(populate_existing=True)
            ).one_or_none()
            if coupon_row is None or coupon_row.state != "active":
                raise NotFound("Coupon", "Coupon not found or not eligible")
            if (
                coupon_row.max_redemptions is not None
                and coupon_row.redemptions >= coupon_row.max_redemptions
            ):
                raise NotFound("Coupon", "Coupon has reached its maximum number of redemptions")
            used = db.session.scalar(
                select(func.count())
                .select_from(SubscriptionDiscount)
                .join(Subscription, Subscription.id == SubscriptionDiscount.subscription_id)
                .where(
                    SubscriptionDiscount.coupon_id == coupon_row.id,
                    Subscription.customer_id == sub.customer_id,
                )
            )
            if used:
                raise InvalidState(
                    "Coupon already used by this customer", reason=COUPON_ALREADY_USED
                )
            found = db.session.get(Discount, coupon_row.discount_id)
            assert found is not None
            discount_row = found
        else:
            assert discount is not None
            discount_row = catalog.get_discount(account_id, discount)
        sd_handle = handle or discount_row.handle
        sub_discount = SubscriptionDiscount(
            account_id=account_id,
            subscription_id=sub.id,
            handle=sd_handle,
            discount_id=discount_row.id,
            coupon_id=coupon_row.id if coupon_row else None,
            state="active",
            invoice_count=0,
            invoice_ids=[],
        )
        catalog.insert_unique(
            sub_discount,
            "Subscription discount",
            _count(SubscriptionDiscount, subscription_id=sub.id, handle=sd_handle),
            f"Subscription discount handle {sd_handle!r} is already used on this subscription",
        )
        if coupon_row is not None:
            coupon_row.redemptions += 1
            db.session.flush()
        audit.record(
            account_id,
            "subscription.discount_added",
            "subscription",
            sub.id,
            after={
                "handle": sd_handle,
                "discount": discount_row.handle,
                "coupon": coupon_row.code if coupon_row else None,
            },
        )
    return sub_discount


def subscription_discount_refs(
    rows: Sequence[SubscriptionDiscount],
) -> tuple[dict[uuid.UUID, Discount], dict[uuid.UUID, str], dict[uuid.UUID, str]]:
    """(discounts by id, coupon codes by id, subscription handles by id) for serialising."""
    ids = {r.discount_id for r in rows}
    discounts = (
        {d.id: d for d in db.session.scalars(select(Discount).where(Discount.id.in_(ids)))}
        if ids
        else {}
    )
    coupons = catalog.values_by_id(Coupon, (r.coupon_id for r in rows), "code")
    subs = catalog.values_by_id(Subscription, (r.subscription_id for r in rows))
    return discounts, coupons, subs


# ---------------------------------------------------------------- additional costs


def create_additional_cost(account_id: uuid.UUID, data: dict[str, Any]) -> AdditionalCost:
    """A one-time charge waiting (`pending`) on a subscription until an invoice collects
    it. The handle is unique in the account; refused on an expired subscription."""
    data = dict(data)
    subscription_handle = data.pop("subscription")
    vat = data.get("vat")
    if vat is not None and not 0 <= vat <= 1:
        raise InvalidInput(("vat",), "vat is a fraction between 0 and 1 (0.25 = 25 %)")
    with write_transaction():
        sub = lock_subscription(account_id, subscription_handle)
        _not_expired(sub)
        cost = AdditionalCost(account_id=account_id, subscription_id=sub.id, state=PENDING, **data)
        catalog.insert_unique(
            cost,
            "Additional cost",
            _count(AdditionalCost, account_id=account_id, handle=cost.handle),
        )
        audit.record(
            account_id,
            "additional_cost.created",
            "additional_cost",
            cost.id,
            after={**data, "subscription": sub.handle, "state": PENDING},
        )
    return cost


def get_additional_cost(account_id: uuid.UUID, handle: str) -> AdditionalCost:
    return get_scoped(AdditionalCost, account_id, "Additional cost", handle=handle)


def list_additional_costs(
    account_id: uuid.UUID,
    size: int,
    token: str | None,
    *,
    subscription: str | None = None,
) -> tuple[list[AdditionalCost], str | None]:
    """Newest first; with `subscription` (a handle) only that subscription's, and an
    unknown subscription is NotFound."""
    stmt = select(AdditionalCost).where(AdditionalCost.account_id == account_id)
    if subscription is not None:
        sub = get_subscription(account_id, subscription)
        stmt = stmt.where(AdditionalCost.subscription_id == sub.id)
    return paged(stmt, AdditionalCost, size, token)


def cancel_additional_cost(account_id: uuid.UUID, handle: str) -> AdditionalCost:
    """pending -> cancelled; refused from any other state."""
    with write_transaction():
        cost = db.session.scalars(
            select(AdditionalCost)
            .where(AdditionalCost.account_id == account_id, AdditionalCost.handle == handle)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one_or_none()
        if cost is None:
            raise NotFound("Additional cost")
        if cost.state != PENDING:
            raise InvalidState(
                f"Additional cost is {cost.state}, not pending", reason=COST_NOT_PENDING
            )
        cost.state = CANCELLED
        db.session.flush()
        audit.record(
            account_id,
            "additional_cost.cancelled",
            "additional_cost",
            cost.id,
            before={"state": PENDING},
            after={"state": CANCELLED},
        )
    return cost


# ---------------------------------------------------------------- credits


def create_credit(account_id: uuid.UUID, data: dict[str, Any]) -> Credit:
    """Money owed back to the subscriber, `pending` with all of `amount` (> 0) left,
    consumed by invoices from `valid_from` (a date of the account) on."""
    data = dict(data)
    subscription_handle = data.pop("subscription")
    if data["amount"] <= 0:
        raise InvalidInput(("amount",), "amount must be greater than 0")
    with write_transaction():
        sub = lock_subscription(account_id, subscription_handle)
        _not_expired(sub)
        credit = Credit(
            account_id=account_id,
            subscription_id=sub.id,
            pending_amount=data["amount"],
            state=PENDING,
            **data,
        )
        catalog.insert_unique(
            credit, "Credit", _count(Credit, account_id=account_id, handle=credit.handle)
        )
        audit.record(
            account_id,
            "credit.created",
            "credit",
            credit.id,
            after={**data, "subscription": sub.handle, "state": PENDING},
        )
    return credit


def get_credit(account_id: uuid.UUID, handle: str) -> Credit:
    return get_scoped(Credit, account_id, "Credit", handle=handle)


def list_credits(
    account_id: uuid.UUID, size: int, token: str | None, *, subscription: str | None = None
) -> tuple[list[Credit], str | None]:
    stmt = select(Credit).where(Credit.account_id == account_id)
    if subscription is not None:
        sub = get_subscription(account_id, subscription)
        stmt = stmt.where(Credit.subscription_id == sub.id)
    return paged(stmt, Credit, size, token)


def cancel_credit(account_id: uuid.UUID, handle: str) -> Credit:
    """pending and untouched -> cancelled; a credit an invoice consumed (even partly) is
    not pending any more for this purpose (CREDIT_NOT_PENDING)."""
    with write_transaction():
        credit = db.session.scalars(
            select(Credit)
            .where(Credit.account_id == account_id, Credit.handle == handle)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one_or_none()
        if credit is None:
            raise NotFound("Credit")
        if credit.state != PENDING or credit.pending_amount != credit.amount:
            raise InvalidState(
                "Credit is not pending (or partly consumed)", reason=CREDIT_NOT_PENDING
            )
        credit.state = CANCELLED
        db.session.flush()
        audit.record(
            account_id,
            "credit.cancelled",
            "credit",
            credit.id,
            before={"state": PENDING},
            after={"state": CANCELLED},
        )
    return credit


def credit_uses(credit_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[CreditUse]]:
    out: dict[uuid.UUID, list[CreditUse]] = defaultdict(list)
    if credit_ids:
        for use in db.session.scalars(
            select(CreditUse)
            .where(CreditUse.credit_id.in_(credit_ids))
            .order_by(CreditUse.created_at, CreditUse.id)
        ):
            out[use.credit_id].append(use)
    return out


def subscription_handles(subscription_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    return catalog.values_by_id(Subscription, subscription_ids)


# ---------------------------------------------------------------- usage


@dataclass(frozen=True)
class NewUsage:
    transaction_id: str  # unique per account: a retry with the same id is refused
    subscription: str  # handle
    metric: str  # code
    value: Decimal
    timestamp: datetime | None = None  # default: now
    properties: dict[str, Any] | None = None


def record_usage(account_id: uuid.UUID, req: NewUsage) -> UsageEvent:
    """One usage event. A `transaction_id` already recorded in the account is a Duplicate
    and stores nothing, so a client can retry safely."""
    if req.value < 0:
        raise InvalidInput(("value",), "value must not be negative")
    if decimal_places(req.value) > 6:
        raise InvalidInput(("value",), "value has at most 6 decimals")
    with write_transaction():
        sub = get_subscription(account_id, req.subscription)
        _not_expired(sub)
        metric = catalog.get_metric(account_id, req.metric)
        event = UsageEvent(
            account_id=account_id,
            transaction_id=req.transaction_id,
            subscription_id=sub.id,
            metric_id=metric.id,
            value=req.value,
            timestamp=req.timestamp or utcnow(),
            properties=req.properties,
        )
        catalog.insert_unique(
            event,
            "Usage event",
            _count(UsageEvent, account_id=account_id, transaction_id=req.transaction_id),
            f"Usage with transaction_id {req.transaction_id!r} is already recorded",
        )
        audit.record(
            account_id,
            "usage.recorded",
            "usage_event",
            event.id,
            after={
                "transaction_id": req.transaction_id,
                "subscription": sub.handle,
                "metric": metric.code,
                "value": req.value,
                "timestamp": event.timestamp,
            },
        )
    return event


def list_usage(
    account_id: uuid.UUID,
    size: int,
    token: str | None,
    *,
    subscription: str | None = None,
    metric: str | None = None,
) -> tuple[list[UsageEvent], str | None]:
    """Newest recorded first; `subscription` (handle) and `metric` (code) must exist."""
    stmt = select(UsageEvent).where(UsageEvent.account_id == account_id)
    if subscription is not None:
        sub = get_subscription(account_id, subscription)
        stmt = stmt.where(UsageEvent.subscription_id == sub.id)
    if metric is not None:
        found = catalog.get_metric(account_id, metric)
        stmt = stmt.where(UsageEvent.metric_id == found.id)
    return paged(stmt, UsageEvent, size, token)


def usage_refs(events: Sequence[UsageEvent]) -> tuple[dict[uuid.UUID, str], dict[uuid.UUID, str]]:
    """(subscription handles, metric codes) by id."""
    return (
        catalog.values_by_id(Subscription, (e.subscription_id for e in events)),
        catalog.values_by_id(Metric, (e.metric_id for e in events), "code"),
    )
