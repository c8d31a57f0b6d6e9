"""On-demand invoices for subscriptions (`POST /v1/subscription/{handle}/invoice`).

The whole invoice is assembled and stored in ONE write transaction that starts by locking
the subscription row (`SELECT ... FOR UPDATE`): on any error nothing is created and no
additional cost, credit, discount count or usage event changes; parallel requests for one
subscription queue on the lock, so a reused handle is seen (Duplicate) and pending
costs/credits move only once. What the invoice consumes is read `FOR UPDATE` too, so a
cost or credit another request changes meanwhile is taken as it is after that change.
Charging a card happens after that commit (payments.service, two-phase), so a declined
instant settle is not a failed request: the invoice exists, in state `failed`.

The preview (`preview_subscription_invoice`) runs the same reads and the same assembly
without locks, and stores nothing.

Line assembly, in this order: plan and add-ons (`plan_manual`), pending additional costs,
extra order lines (`ondemand`), unbilled usage, discounts (negative lines at the rate and
price basis of the line they reduce), credits (negative gross lines per VAT rate, capped so
the invoice amount stays >= 0).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select, update
from sqlalchemy.exc import IntegrityError

from ..accounts.models import Account
from ..audit import service as audit
from ..catalog.models import AddOn, Charge, Discount, Metric, Plan
from ..customers.models import Customer
from ..db import new_uuid, utcnow, write_transaction
from ..errors import NO_PAYMENT_METHOD, NOTHING_TO_INVOICE, Duplicate, InvalidInput, InvalidState
from ..extensions import db
from ..invoices import calc
from ..invoices.models import DRAFT, PAID, SUBSCRIPTION, Invoice, InvoiceLine
from ..invoices.parties import Parties, parties_of
from ..invoices.service import LineDraft, build_lines, draft_number, issue, line_inputs
from ..money import fraction_to_percent, percent_to_fraction
from ..payments import service as payments
from ..payments.models import PaymentMethod
from ..taxes.models import TaxRate
from .models import (
    PENDING,
    TRANSFERRED,
    AdditionalCost,
    Credit,
    CreditUse,
    Subscription,
    SubscriptionAddOn,
    SubscriptionDiscount,
    UsageEvent,
)
from .service import check_invoiceable, get_subscription, lock_subscription

MAX_ORDER_LINES = 100
_Select = TypeVar("_Select", bound=Select)


@dataclass(frozen=True)
class Period:
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class OrderLineInput:
    ordertext: str
    amount: int
    quantity: int = 1
    vat: Decimal | None = None  # fraction
    amount_incl_vat: bool = True
    tax_policy: str | None = None  # a tax code of the account


@dataclass(frozen=True)
class OnDemandRequest:
    handle: str
    due: datetime | None = None
    metadata: dict[str, Any] | None = None
    instant: bool = False
    settle_requested: bool = False
    settle_payment_method: str | None = None
    plan_manual: bool = False
    plan_period: Period = field(default_factory=Period)
    add_on_service_periods: dict[str, Period] = field(default_factory=dict)
    collect_additional_costs: bool = True
    additional_cost_service_periods: dict[str, Period] = field(default_factory=dict)
    collect_credit: bool = True
    apply_discounts: bool = True
    include_unbilled_usage: bool = False
    cost_center: str | None = None
    purchase_order_number: str | None = None
    order_lines: tuple[OrderLineInput, ...] = ()
    billing_address: dict[str, Any] | None = None
    shipping_address: dict[str, Any] | None = None
    manual_transfer: payments.ManualTransfer | None = None


def _percent(vat_fraction: Decimal | None) -> Decimal | None:
    return None if vat_fraction is None else fraction_to_percent(vat_fraction)


# ---------------------------------------------------------------- assembly


@dataclass
class _Assembly:
    """An invoice's lines and totals, and what storing it consumes: the pending costs it
    transfers, the usage events it bills, the discounts it counts and the credits it takes
    (with the amount). Worked out from what was read; nothing is changed yet."""

    lines: list[InvoiceLine] = field(default_factory=list)
    totals: calc.Totals = field(default_factory=lambda: calc.compute_totals([]))
    costs: list[AdditionalCost] = field(default_factory=list)
    usage_ids: list[uuid.UUID] = field(default_factory=list)
    discounts: list[SubscriptionDiscount] = field(default_factory=list)
    credits: list[tuple[Credit, int]] = field(default_factory=list)


def _locked(stmt: _Select, lock: bool, *of: Any) -> _Select:
    """`stmt` with FOR UPDATE (of the given tables) when storing; as it is for a preview."""
    return (
        stmt.with_for_update(of=of or None).execution_options(populate_existing=True)
        if lock
        else stmt
    )


def _plan_drafts(sub: Subscription, plan: Plan, req: OnDemandRequest) -> list[LineDraft]:
    drafts = [
        LineDraft(
            description=plan.name,
            quantity=Decimal(sub.quantity),
            unit_amount=Decimal(sub.amount if sub.amount is not None else plan.amount),
            tax_percent=_percent(plan.vat),
            amount_incl_vat=plan.amount_incl_vat,
            origin="plan",
            origin_handle=plan.handle,
            period_from=req.plan_period.start,
            period_to=req.plan_period.end,
        )
    ]
    rows = db.session.execute(
        select(SubscriptionAddOn, AddOn)
        .join(AddOn, AddOn.id == SubscriptionAddOn.add_on_id)
        .where(SubscriptionAddOn.subscription_id == sub.id)
        .order_by(SubscriptionAddOn.created_at, SubscriptionAddOn.id)
    ).all()
    for sub_add_on, add_on in rows:
        period = (
            req.add_on_service_periods.get(sub_add_on.handle)
            or req.add_on_service_periods.get(add_on.handle)
            or Period()
        )
        drafts.append(
            LineDraft(
                description=add_on.name,
                quantity=Decimal(sub_add_on.quantity if add_on.type == "quantity" else 1),
                unit_amount=Decimal(
                    sub_add_on.amount if sub_add_on.amount is not None else add_on.amount
                ),
                tax_percent=_percent(add_on.vat),
                amount_incl_vat=add_on.amount_incl_vat,
                origin="add_on",
                origin_handle=sub_add_on.handle,
                period_from=period.start,
                period_to=period.end,
            )
        )
    return drafts


def _cost_drafts(
    sub: Subscription, req: OnDemandRequest, lock: bool, out: _Assembly
) -> list[LineDraft]:
    out.costs = list(
        db.session.scalars(
            _locked(
                select(AdditionalCost)
                .where(AdditionalCost.subscription_id == sub.id, AdditionalCost.state == PENDING)
                .order_by(AdditionalCost.created_at, AdditionalCost.id),
                lock,
            )
        )
    )
    drafts = []
    for cost in out.costs:
        period = req.additional_cost_service_periods.get(cost.handle) or Period()
        drafts.append(
            LineDraft(
                description=cost.ordertext,
                quantity=Decimal(cost.quantity),
                unit_amount=Decimal(cost.amount),
                tax_percent=_percent(cost.vat),
                amount_incl_vat=cost.amount_incl_vat,
                origin="additional_cost",
                origin_handle=cost.handle,
                period_from=period.start,
                period_to=period.end,
            )
        )
    return drafts


def _order_drafts(account_id: uuid.UUID, req: OnDemandRequest) -> list[LineDraft]:
    codes = {line.tax_policy for line in req.order_lines if line.tax_policy}
    rates: dict[str, Decimal] = {}
    if codes:
        rows = db.session.execute(
            select(TaxRate.code, TaxRate.rate).where(
                TaxRate.account_id == account_id, TaxRate.code.in_(codes)
            )
        )
        rates = {code: rate for code, rate in rows}
    drafts = []
    for index, line in enumerate(req.order_lines):
        percent = _percent(line.vat)
        if line.tax_policy:
            if line.tax_policy not in rates:
                raise InvalidInput(
                    ("order_lines", index, "tax_policy"), f"Unknown tax policy {line.tax_policy!r}"
                )
            percent = rates[line.tax_policy]
        drafts.append(
            LineDraft(
                description=line.ordertext,
                quantity=Decimal(line.quantity),
                unit_amount=Decimal(line.amount),
                tax_percent=percent,
                amount_incl_vat=line.amount_incl_vat,
                origin="ondemand",
            )
        )
    return drafts


def _aggregate(values: list[Decimal], aggregation: str) -> Decimal:
    if aggregation == "count":
        return Decimal(len(values))
    if aggregation == "max":
        return max(values, default=Decimal(0))
    return sum(values, Decimal(0))


def _usage_drafts(sub: Subscription, now: datetime, lock: bool, out: _Assembly) -> list[LineDraft]:
    """Usage of the current period not billed yet, priced by the plan's charge for the
    metric (graduated tiers when the charge has them). Usage of a metric the plan does not
    price stays unbilled."""
    period_end = sub.current_period_end or now
    rows = db.session.execute(
        _locked(
            select(UsageEvent.id, UsageEvent.value, Metric, Charge)
            .join(Metric, Metric.id == UsageEvent.metric_id)
            .join(Charge, (Charge.metric_id == Metric.id) & (Charge.plan_id == sub.plan_id))
            .where(
                UsageEvent.subscription_id == sub.id,
                UsageEvent.invoice_id.is_(None),
                UsageEvent.timestamp >= sub.current_period_start,
                UsageEvent.timestamp <= period_end,
            )
            .order_by(Metric.code, UsageEvent.timestamp),
            lock,
            UsageEvent,
        )
    ).all()
    grouped: dict[uuid.UUID, tuple[Metric, Charge, list[Decimal]]] = {}
    for event_id, value, metric, charge in rows:
        grouped.setdefault(metric.id, (metric, charge, []))[2].append(value)
        out.usage_ids.append(event_id)
    drafts = []
    for metric, charge, values in grouped.values():
        total = _aggregate(values, metric.aggregation)
        for quantity, unit, label in _tiers(total, charge):
            if quantity <= 0:
                continue
            drafts.append(
                LineDraft(
                    description=f"{metric.name}{label}",
                    quantity=quantity,
                    unit_amount=unit,
                    tax_percent=_percent(charge.vat),
                    amount_incl_vat=charge.amount_incl_vat,
                    charge_id=charge.id,
                    metric_code=metric.code,
                    origin="usage",
                    origin_handle=metric.code,
                    period_from=sub.current_period_start,
                    period_to=period_end,
                )
            )
    return drafts


def _tiers(total: Decimal, charge: Charge) -> list[tuple[Decimal, Decimal, str]]:
    if not charge.tiers:
        return [(total, charge.unit_amount, "")]
    out: list[tuple[Decimal, Decimal, str]] = []
    lower = Decimal(0)
    for tier in charge.tiers:
        up_to = tier.get("up_to")
        upper = Decimal(up_to) if up_to is not None else None
        in_tier = (min(total, upper) if upper is not None else total) - lower
        if in_tier > 0:
            label = f" ({lower}-{upper})" if upper is not None else f" (over {lower})"
            out.append((in_tier, Decimal(str(tier["unit_amount"])), label))
        if upper is None or total <= upper:
            break
        lower = upper
    return out


def _discount_lines(
    sub: Subscription, lines: list[InvoiceLine], now: datetime, lock: bool, out: _Assembly
) -> list[InvoiceLine]:
    """A negative line per discounted line, at its rate and price basis; the discounted
    line notes how much was taken (`discounted_amount`). A discount that made a line is
    counted (`out.discounts`)."""
    rows = db.session.execute(
        _locked(
            select(SubscriptionDiscount, Discount)
            .join(Discount, Discount.id == SubscriptionDiscount.discount_id)
            .where(
                SubscriptionDiscount.subscription_id == sub.id,
                SubscriptionDiscount.state == "active",
            )
            .order_by(SubscriptionDiscount.created_at, SubscriptionDiscount.id),
            lock,
            SubscriptionDiscount,
        )
    ).all()
    extra: list[InvoiceLine] = []
    for sub_discount, discount in rows:
        if discount.fixed_count is not None and sub_discount.invoice_count >= discount.fixed_count:
            continue
        if discount.fixed_period is not None and _period_passed(sub_discount, discount, now):
            continue
        targets = [
            line
            for line in lines
            if line.amount_minor > 0
            and (
                "all" in discount.apply_to
                or line.origin in discount.apply_to
                or (line.origin == "usage" and "plan" in discount.apply_to)
            )
        ]
        remaining_fixed = discount.amount
        made = 0
        for line in targets:
            if discount.percentage is not None:
                take = calc.percentage_of(line.amount_minor, discount.percentage)
            else:
                assert remaining_fixed is not None
                take = min(remaining_fixed, line.amount_minor)
                remaining_fixed -= take
            if take <= 0:
                continue
            line.discounted_amount = (line.discounted_amount or 0) + take
            extra.append(
                InvoiceLine(
                    id=new_uuid(),
                    description=discount.name,
                    quantity=Decimal(1),
                    unit_amount=Decimal(-take),
                    amount_minor=-take,
                    tax_rate=line.tax_rate,
                    tax_code=line.tax_code,
                    amount_incl_vat=line.amount_incl_vat,
                    vat_minor=calc.line_vat_minor(
                        -take, percent_to_fraction(line.tax_rate), line.amount_incl_vat
                    ),
                    origin="discount",
                    origin_handle=sub_discount.handle,
                )
            )
            made += 1
        if made:
            out.discounts.append(sub_discount)
    return extra


def _period_passed(sub_discount: SubscriptionDiscount, discount: Discount, now: datetime) -> bool:
    assert discount.fixed_period is not None
    if discount.fixed_period_unit == "days":
        end = sub_discount.created_at + timedelta(days=discount.fixed_period)
    else:
        start = sub_discount.created_at
        months = start.month - 1 + discount.fixed_period
        year, month = start.year + months // 12, months % 12 + 1
        day = min(start.day, 28)
        end = start.replace(year=year, month=month, day=day)
    return now >= end


def _credit_lines(
    sub: Subscription, lines: list[InvoiceLine], today_local: date, lock: bool, out: _Assembly
) -> list[InvoiceLine]:
    """Pending credits valid today, oldest first, as negative gross lines per VAT rate
    (largest room first), each capped by what is left to credit (`out.credits`)."""
    pending = db.session.scalars(
        _locked(
            select(Credit)
            .where(Credit.subscription_id == sub.id, Credit.state == PENDING)
            .order_by(Credit.created_at, Credit.id),
            lock,
        )
    )
    credits = [c for c in pending if c.valid_from is None or c.valid_from <= today_local]
    if not credits:
        return []
    totals = calc.compute_totals(line_inputs(lines))
    # What is left to credit per VAT rate, largest first (deterministic).
    room = sorted(
        ((r.gross_minor, r.rate) for r in totals.by_rate if r.gross_minor > 0),
        key=lambda item: (-item[0], item[1]),
    )
    left_by_rate = {rate: gross for gross, rate in room}
    extra: list[InvoiceLine] = []
    for credit in credits:
        available = sum(left_by_rate.values())
        take = min(credit.pending_amount, available)
        if take <= 0:
            break
        remaining = take
        for _, rate in room:
            part = min(remaining, left_by_rate[rate])
            if part <= 0:
                continue
            extra.append(
                InvoiceLine(
                    id=new_uuid(),
                    description=credit.text or "Credit",
                    quantity=Decimal(1),
                    unit_amount=Decimal(-part),
                    amount_minor=-part,
                    tax_rate=fraction_to_percent(rate),
                    amount_incl_vat=True,
                    vat_minor=calc.line_vat_minor(-part, rate, True),
                    origin="credit",
                    origin_handle=credit.handle,
                )
            )
            left_by_rate[rate] -= part
            remaining -= part
            if remaining == 0:
                break
        out.credits.append((credit, take))
    return extra


def _assemble(
    sub: Subscription,
    plan: Plan,
    parties: Parties,
    req: OnDemandRequest,
    now: datetime,
    *,
    lock: bool,
) -> _Assembly:
    """Every line and the totals of the invoice, from what is stored now; nothing is
    changed (`lock`: read what it consumes FOR UPDATE, when storing). Order: plan and
    add-ons, pending costs, order lines, usage, then discounts and credits on what those
    add up to."""
    out = _Assembly()
    drafts: list[LineDraft] = []
    if req.plan_manual:
        drafts += _plan_drafts(sub, plan, req)
    if req.collect_additional_costs:
        drafts += _cost_drafts(sub, req, lock, out)
    drafts += _order_drafts(parties.account_id, req)
    if req.include_unbilled_usage:
        drafts += _usage_drafts(sub, now, lock, out)
    lines = build_lines(parties, drafts, max_lines=None) if drafts else []
    if req.apply_discounts and lines:
        lines += _discount_lines(sub, lines, now, lock, out)
    if req.collect_credit and lines:
        today_local = now.astimezone(ZoneInfo(parties.account.timezone)).date()
        lines += _credit_lines(sub, lines, today_local, lock, out)
    if not lines:
        raise InvalidState(
            "The request results in an invoice with no order lines", reason=NOTHING_TO_INVOICE
        )
    for position, line in enumerate(lines):
        line.position = position
    out.lines = lines
    out.totals = calc.compute_totals(line_inputs(lines))
    if out.totals.total_minor < 0:
        raise InvalidInput(("order_lines",), "The invoice amount cannot be negative")
    return out


def _consume(out: _Assembly, invoice: Invoice, now: datetime) -> None:
    """What the stored invoice consumed: its costs are transferred to it, its usage billed
    on it, its discounts counted, its credits taken (with a credit use each)."""
    for cost in out.costs:
        cost.state, cost.invoice_id = TRANSFERRED, invoice.id
    if out.usage_ids:
        db.session.execute(
            update(UsageEvent).where(UsageEvent.id.in_(out.usage_ids)).values(invoice_id=invoice.id)
        )
    for sub_discount in out.discounts:
        sub_discount.invoice_count += 1
        sub_discount.invoice_ids = [*sub_discount.invoice_ids, str(invoice.id)]
    for credit, take in out.credits:
        credit.pending_amount -= take
        if credit.pending_amount == 0:
            credit.state = TRANSFERRED
        db.session.add(
            CreditUse(credit_id=credit.id, invoice_id=invoice.id, amount=take, created_at=now)
        )


# ---------------------------------------------------------------- the service


@dataclass(frozen=True)
class ChargePlan:
    """What to do after the invoice is stored: charge this method, and how. `invoice` is
    the invoice as committed (with its lines), the answer when nothing is charged."""

    invoice: Invoice
    transaction_id: uuid.UUID | None
    instant: bool

    @property
    def invoice_id(self) -> uuid.UUID:
        return self.invoice.id


@dataclass(frozen=True)
class InvoicePreview:
    """What `create_subscription_invoice` would store for a request, computed by the same
    code under the same rules (errors included), with nothing written."""

    currency: str
    lines: list[InvoiceLine]
    totals: calc.Totals


def _check_request(req: OnDemandRequest) -> None:
    if req.due is not None and req.instant:
        raise InvalidInput(("due",), "due cannot be combined with instant")
    if len(req.order_lines) > MAX_ORDER_LINES:
        raise InvalidInput(("order_lines",), f"At most {MAX_ORDER_LINES} order lines")


def _subject(account_id: uuid.UUID, sub: Subscription) -> tuple[Plan, Parties]:
    """The subscription's plan and the parties of its invoice: the account, the customer
    and the issuing entity (`invoices.parties`) with the tax rates that may price it."""
    check_invoiceable(sub)
    plan, customer, account = db.session.execute(
        select(Plan, Customer, Account)
        .join_from(Plan, Account, Account.id == Plan.account_id)
        .join(Customer, Customer.account_id == Account.id)
        .where(Account.id == account_id, Plan.id == sub.plan_id, Customer.id == sub.customer_id)
    ).one()
    return plan, parties_of(account, customer)


def preview_subscription_invoice(
    account_id: uuid.UUID, subscription_handle: str, req: OnDemandRequest
) -> InvoicePreview:
    """The lines and totals an on-demand invoice would have now: the assembly
    `create_subscription_invoice` runs, without locks, with nothing stored. The request's
    handle and payment options are not checked."""
    _check_request(req)
    sub = get_subscription(account_id, subscription_handle)
    plan, parties = _subject(account_id, sub)
    out = _assemble(sub, plan, parties, req, utcnow(), lock=False)
    return InvoicePreview(plan.currency, out.lines, out.totals)


def _payment_method(
    account_id: uuid.UUID, sub: Subscription, customer: Customer, req: OnDemandRequest
) -> PaymentMethod | None:
    """The card to charge after storing: the one `settle` names (or "auto"), for `instant`
    the subscription's; None when nothing is charged by card."""
    if req.settle_requested:
        if not req.settle_payment_method:
            raise InvalidState("Payment method not provided", reason=NO_PAYMENT_METHOD)
        return payments.resolve_payment_method(account_id, customer.id, req.settle_payment_method)
    if req.instant and req.manual_transfer is None:
        method = payments.subscription_payment_method(sub)
        if method is None:
            raise InvalidState("Payment method not provided", reason=NO_PAYMENT_METHOD)
        return method
    return None


def _new_invoice(
    sub: Subscription, plan: Plan, parties: Parties, req: OnDemandRequest, now: datetime
) -> Invoice:
    return Invoice(
        id=new_uuid(),
        account_id=parties.account_id,
        billing_entity_id=parties.entity.id,
        customer_id=parties.customer.id,
        subscription_id=sub.id,
        handle=req.handle,
        invoice_type=SUBSCRIPTION,
        state=DRAFT,
        currency=plan.currency,
        invoice_number=draft_number(),
        progressive_credit_minor=0,
        billing_period_start=req.plan_period.start or now,
        billing_period_end=req.plan_period.end or now,
        due_at=req.due or now,
        # Collected automatically from its due date (unless issuing finds it paid).
        next_collect_at=req.due or now,
        created_at=now,
        updated_at=now,
        invoice_metadata=req.metadata,
        billing_address=req.billing_address,
        shipping_address=req.shipping_address,
        cost_center=req.cost_center if req.cost_center is not None else sub.cost_center,
        purchase_order_number=(
            req.purchase_order_number
            if req.purchase_order_number is not None
            else sub.purchase_order_number
        ),
        plan_handle=plan.handle if req.plan_manual else None,
        service_period_from=req.plan_period.start if req.plan_manual else None,
        service_period_to=req.plan_period.end if req.plan_manual else None,
        instant=req.instant,
        dunning=False,
        collect_attempts=0,
    )


def _handle_taken(account_id: uuid.UUID, handle: str) -> bool:
    return (
        db.session.scalar(
            select(Invoice.id).where(Invoice.account_id == account_id, Invoice.handle == handle)
        )
        is not None
    )


def create_subscription_invoice(
    account_id: uuid.UUID, subscription_handle: str, req: OnDemandRequest
) -> ChargePlan:
    """Store the invoice (open, numbered) in one transaction; see the module docstring.
    A manual transfer is recorded in it (the invoice is paid); a card chosen by `settle`
    or `instant` is claimed in it and charged by `charge_after_create`."""
    _check_request(req)
    now = utcnow()
    with write_transaction():
        sub = lock_subscription(account_id, subscription_handle)
        plan, parties = _subject(account_id, sub)
        if _handle_taken(account_id, req.handle):
            raise Duplicate("Invoice", f"Invoice handle {req.handle!r} is already used")
        method = _payment_method(account_id, sub, parties.customer, req)
        out = _assemble(sub, plan, parties, req, now, lock=True)

        invoice = _new_invoice(sub, plan, parties, req, now)
        invoice.lines = out.lines
        try:
            # Inserted once, issued: a parallel request for another subscription that took
            # the handle first is seen here, by the unique index.
            issue(invoice, entity=parties.entity, customer=parties.customer, now=now)
            db.session.flush()
        except IntegrityError:
            raise Duplicate("Invoice", f"Invoice handle {req.handle!r} is already used") from None
        if invoice.state == PAID:  # prepaid credit paid it all
            invoice.next_collect_at = None
        _consume(out, invoice, now)

        transaction_id = None
        if req.manual_transfer is not None and invoice.state != PAID:
            payments.settle_manually(invoice, req.manual_transfer)
        elif method is not None and invoice.state != PAID:
            transaction_id = payments.claim(invoice, method).id
            invoice.next_collect_at = None
        audit.record(
            account_id,
            "invoice.created",
            "invoice",
            invoice.id,
            after={
                "state": invoice.state,
                "number": invoice.number,
                "handle": invoice.handle,
                "total_minor": invoice.total_minor,
                "subscription": sub.handle,
                "additional_costs": [c.handle for c in out.costs],
            },
        )
    return ChargePlan(invoice, transaction_id, req.instant)


def charge_after_create(account_id: uuid.UUID, plan: ChargePlan) -> None:
    """Charge the card chosen at creation (instant or `settle`). A decline leaves the
    invoice `failed` when instant, else `pending` for automatic collection."""
    if plan.transaction_id is None:
        return
    payments.charge_and_record(account_id, plan.transaction_id, instant=plan.instant, dunning=False)
    if not plan.instant:
        # Not instant: a declined settle leaves the invoice pending, collectable now.
        with write_transaction():
            invoice = db.session.get(Invoice, plan.invoice_id)
            assert invoice is not None
            if invoice.state != PAID and invoice.next_collect_at is None:
                invoice.next_collect_at = invoice.due_at


def credit_breakdown(invoice_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """Credits each invoice consumed, for the dialect B `credits[]`."""
    out: dict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
    if not invoice_ids:
        return out
    rows = db.session.execute(
        select(CreditUse, Credit.handle, Credit.text)
        .join(Credit, Credit.id == CreditUse.credit_id)
        .where(CreditUse.invoice_id.in_(invoice_ids))
        .order_by(CreditUse.created_at)
    ).all()
    for use, handle, text in rows:
        out[use.invoice_id].append(
            {"credit": handle, "amount": use.amount, "created": use.created_at, "text": text}
        )
    return out
