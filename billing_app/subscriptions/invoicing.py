"""On-demand invoices for subscriptions (`POST /v1/subscription/{handle}/invoice`).

The whole invoice is assembled and stored in ONE write transaction that starts by locking
the subscription row: on any error nothing is created and no additional cost, credit,
discount count or usage event changes; parallel requests for one subscription queue on the
lock, so a reused handle is seen (code 11) and pending costs/credits move only once.
Charging a card happens after that commit (payments.service, two-phase), so a declined
instant settle is not a failed request: the invoice exists, in state `failed`.

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
from functools import lru_cache
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ARRAY,
    JSON,
    Boolean,
    Date,
    Integer,
    String,
    Text,
    Uuid,
    any_,
    bindparam,
    func,
    insert,
    literal,
    literal_column,
    null,
    or_,
    select,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy import cast as sa_cast
from sqlalchemy.exc import IntegrityError

from ..accounts.models import Account
from ..audit import service as audit
from ..catalog.models import AddOn, Charge, Discount, Metric, Plan
from ..customers.models import Customer, Wallet
from ..db import (
    Precompiled,
    core_connection,
    core_write,
    new_uuid,
    precompiled,
    utcnow,
    write_transaction,
)
from ..documents.snapshot import due_write
from ..entities.models import BillingEntity
from ..errors import (
    NO_PAYMENT_METHOD,
    NOTHING_TO_INVOICE,
    SUBSCRIPTION_CANCELLED,
    SUBSCRIPTION_EXPIRED,
    SUBSCRIPTION_ON_HOLD,
    Duplicate,
    InvalidInput,
    InvalidState,
    NotFound,
)
from ..extensions import db
from ..invoices import calc
from ..invoices.models import DRAFT, PAID, SUBSCRIPTION, Invoice
from ..invoices.records import LineRecord
from ..invoices.service import (
    LineDraft,
    Parties,
    build_lines,
    draft_number,
    insert_invoice,
    issue_new,
    line_inputs,
    new_invoice_record,
)
from ..money import fraction_to_percent, percent_to_fraction
from ..payments import service as payments
from ..payments.models import PaymentMethod
from ..taxes.models import TaxRate
from ..taxes.service import tax_table
from .models import (
    EXPIRED,
    ON_HOLD,
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

MAX_ORDER_LINES = 100


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


# ---------------------------------------------------------------- statements

_S = Subscription.__table__
_P = Plan.__table__
_C = Customer.__table__
_A = Account.__table__
_E = BillingEntity.__table__
_I = Invoice.__table__
_W = Wallet.__table__
_SA = SubscriptionAddOn.__table__
_AO = AddOn.__table__
_AC = AdditionalCost.__table__
_CR = Credit.__table__
_CU = CreditUse.__table__
_SD = SubscriptionDiscount.__table__
_D = Discount.__table__
_U = UsageEvent.__table__
_M = Metric.__table__
_CH = Charge.__table__
_TR = TaxRate.__table__
_DEFAULT_E = _E.alias("default_entity")

# The subscription with its plan, customer, account settings and billing entity (the
# customer's, else the account's default) in one row; tables' columns prefixed s_, p_,
# c_, e_ so they do not collide. Also: whether the invoice handle is taken, and whether
# the customer has a wallet with credit in the plan's currency.
_CONTEXT = (
    select(
        *[c.label(f"s_{c.key}") for c in _S.c],
        *[c.label(f"p_{c.key}") for c in _P.c],
        *[c.label(f"c_{c.key}") for c in _C.c],
        *[c.label(f"e_{c.key}") for c in _E.c],
        _A.c.timezone.label("a_timezone"),
        _A.c.default_vat_percent.label("a_default_vat_percent"),
        # The tax rates pricing can use (one row each; the rest repeated): see tax_table.
        _TR.c.id,
        _TR.c.rate,
        _TR.c.code,
        _TR.c.applied_to_organization,
        select(_I.c.id)
        .where(_I.c.account_id == _S.c.account_id, _I.c.handle == bindparam("invoice_handle"))
        .exists()
        .label("handle_taken"),
        select(func.count())
        .where(
            _W.c.customer_id == _S.c.customer_id,
            _W.c.currency == _P.c.currency,
            _W.c.balance_minor > 0,
        )
        .scalar_subquery()
        .label("wallets_with_credit"),
    )
    .join(_P, _P.c.id == _S.c.plan_id)
    .join(_C, _C.c.id == _S.c.customer_id)
    .join(_A, _A.c.id == _S.c.account_id)
    .outerjoin(
        _E,
        _E.c.id
        == func.coalesce(
            _C.c.billing_entity_id,
            select(_DEFAULT_E.c.id)
            .where(_DEFAULT_E.c.account_id == _S.c.account_id)
            .order_by(_DEFAULT_E.c.is_default.desc(), _DEFAULT_E.c.created_at)
            .limit(1)
            .scalar_subquery(),
        ),
    )
    .outerjoin(
        _TR,
        (_TR.c.account_id == _S.c.account_id)
        & or_(
            _TR.c.applied_to_organization,
            _TR.c.id == _C.c.tax_rate_id,
            _TR.c.id == _E.c.default_tax_rate_id,
        ),
    )
    .where(_S.c.account_id == bindparam("account"), _S.c.handle == bindparam("handle"))
    .order_by(_TR.c.created_at)
)
# The same, row-locking the subscription until commit (parallel invoices of one
# subscription queue here; FOR UPDATE is not rendered on SQLite, whose write lock is held).
_CONTEXT_LOCKED = _CONTEXT.with_for_update(of=_S)
# What the assembly depended on, re-read under the lock when it ran before it.
_SUBSCRIPTION_NOW = (
    select(
        _S.c.state,
        _S.c.is_cancelled,
        _S.c.plan_id,
        _S.c.customer_id,
        _S.c.quantity,
        _S.c.amount,
        _S.c.payment_method_id,
        _S.c.cost_center,
        _S.c.purchase_order_number,
        _S.c.current_period_start,
        _S.c.current_period_end,
    )
    .where(_S.c.id == bindparam("id"))
    .with_for_update()
)
_TAX_CODES = select(_TR.c.code, _TR.c.rate).where(
    _TR.c.account_id == bindparam("account"), _TR.c.code.in_(bindparam("codes", expanding=True))
)
_UNBILLED_USAGE = (
    select(
        _U.c.id,
        _U.c.value,
        _M.c.id.label("metric_id"),
        _M.c.code.label("metric_code"),
        _M.c.name.label("metric_name"),
        _M.c.aggregation,
        _CH.c.id.label("charge_id"),
        _CH.c.unit_amount,
        _CH.c.tiers,
        _CH.c.vat,
        _CH.c.amount_incl_vat,
    )
    .join(_M, _M.c.id == _U.c.metric_id)
    .join(_CH, (_CH.c.metric_id == _M.c.id) & (_CH.c.plan_id == bindparam("plan")))
    .where(
        _U.c.subscription_id == bindparam("sub"),
        _U.c.invoice_id.is_(None),
        _U.c.timestamp >= bindparam("start"),
        _U.c.timestamp <= bindparam("end"),
    )
    .order_by(_M.c.code, _U.c.timestamp)
)
# The four collections an invoice draws on (add-ons, pending costs, active discounts,
# pending credits) in one query: a UNION ALL whose parts share one column layout, each
# row tagged with its `part`; `_children` turns them back into named rows.
_CHILD_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("id", Uuid()),
    ("created_at", _S.c.created_at.type),
    ("handle", String()),
    ("ref", String()),
    ("name", Text()),
    ("kind", String()),
    ("n1", Integer()),
    ("n2", Integer()),
    ("n3", Integer()),
    ("n4", Integer()),
    ("dec", _AC.c.vat.type),
    ("flag", Boolean()),
    ("j1", JSON()),
    ("j2", JSON()),
    ("day", Date()),
)


def _child_part(part: str, table: Any, **columns: Any) -> Any:
    values = [literal(part, String()).label("part")]
    for name, type_ in _CHILD_COLUMNS:
        expr = columns.get(name)
        values.append(
            # A typed NULL: PostgreSQL resolves a UNION's column types pairwise from
            # the left, and two untyped NULLs would become text.
            (sa_cast(null(), type_) if expr is None else type_coerce(expr, type_)).label(name)
        )
    return select(*values).select_from(table)


_CHILDREN = union_all(
    _child_part(
        "add_on",
        _SA.join(_AO, _AO.c.id == _SA.c.add_on_id),
        id=_SA.c.id,
        created_at=_SA.c.created_at,
        handle=_SA.c.handle,
        ref=_AO.c.handle,
        name=_AO.c.name,
        kind=_AO.c.type,
        n1=_SA.c.quantity,
        n2=_SA.c.amount,
        n3=_AO.c.amount,
        dec=_AO.c.vat,
        flag=_AO.c.amount_incl_vat,
    ).where(_SA.c.subscription_id == bindparam("sub")),
    _child_part(
        "cost",
        _AC,
        id=_AC.c.id,
        created_at=_AC.c.created_at,
        handle=_AC.c.handle,
        name=_AC.c.ordertext,
        n1=_AC.c.quantity,
        n2=_AC.c.amount,
        dec=_AC.c.vat,
        flag=_AC.c.amount_incl_vat,
    ).where(_AC.c.subscription_id == bindparam("sub"), _AC.c.state == PENDING),
    _child_part(
        "discount",
        _SD.join(_D, _D.c.id == _SD.c.discount_id),
        id=_SD.c.id,
        created_at=_SD.c.created_at,
        handle=_SD.c.handle,
        name=_D.c.name,
        kind=_D.c.fixed_period_unit,
        n1=_SD.c.invoice_count,
        n2=_D.c.amount,
        n3=_D.c.fixed_count,
        n4=_D.c.fixed_period,
        dec=_D.c.percentage,
        j1=_D.c.apply_to,
        j2=_SD.c.invoice_ids,
    ).where(_SD.c.subscription_id == bindparam("sub"), _SD.c.state == "active"),
    _child_part(
        "credit",
        _CR,
        id=_CR.c.id,
        created_at=_CR.c.created_at,
        handle=_CR.c.handle,
        name=_CR.c.text,
        n1=_CR.c.pending_amount,
        day=_CR.c.valid_from,
    ).where(_CR.c.subscription_id == bindparam("sub"), _CR.c.state == PENDING),
).order_by(literal_column("part"), literal_column("created_at"), literal_column("id"))

# Each part's generic columns under the names the assembly uses.
_CHILD_NAMES = {
    "add_on": {"handle": "handle", "ref": "add_on_handle", "name": "name", "kind": "type",
               "n1": "quantity", "n2": "amount", "n3": "add_on_amount", "dec": "vat",
               "flag": "amount_incl_vat"},
    "cost": {"id": "id", "handle": "handle", "name": "ordertext", "n1": "quantity",
             "n2": "amount", "dec": "vat", "flag": "amount_incl_vat"},
    "discount": {"id": "id", "handle": "handle", "created_at": "created_at", "name": "name",
                 "kind": "fixed_period_unit", "n1": "invoice_count", "n2": "amount",
                 "n3": "fixed_count", "n4": "fixed_period", "dec": "percentage",
                 "j1": "apply_to", "j2": "invoice_ids"},
    "credit": {"id": "id", "handle": "handle", "name": "text", "n1": "pending_amount",
               "day": "valid_from"},
}  # fmt: skip


def _children(conn: Any, subscription_id: uuid.UUID) -> dict[str, list[Any]]:
    """The subscription's add-ons, pending costs, active discounts and pending credits,
    each oldest first."""
    out: dict[str, list[Any]] = {part: [] for part in _CHILD_NAMES}
    for row in precompiled(_CHILDREN).execute(conn, {"sub": subscription_id}):
        names = _CHILD_NAMES[row.part]
        out[row.part].append(SimpleNamespace(**{names[k]: getattr(row, k) for k in names}))
    return out


# The writes: each only if the row is still as it was read (its row count tells).
_TRANSFER_COSTS = (
    update(_AC)
    .where(_AC.c.id.in_(bindparam("ids", expanding=True)), _AC.c.state == PENDING)
    .values(state=TRANSFERRED, invoice_id=bindparam("invoice"))
)
_BILL_USAGE = (
    update(_U)
    .where(_U.c.id.in_(bindparam("ids", expanding=True)), _U.c.invoice_id.is_(None))
    .values(invoice_id=bindparam("invoice"))
)
_COUNT_DISCOUNT = (
    update(_SD)
    .where(
        _SD.c.id == bindparam("_id"),
        _SD.c.state == "active",
        _SD.c.invoice_count == bindparam("_seen"),
    )
    .values(invoice_count=bindparam("_seen") + 1, invoice_ids=bindparam("_ids"))
)
_USE_CREDIT = (
    update(_CR)
    .where(
        _CR.c.id == bindparam("_id"),
        _CR.c.state == PENDING,
        _CR.c.pending_amount == bindparam("_seen"),
    )
    .values(pending_amount=bindparam("_left"), state=bindparam("_state"))
)
_INSERT_CREDIT_USES = insert(_CU)
_COUNT_DISCOUNT_FAST = Precompiled(_COUNT_DISCOUNT)
_USE_CREDIT_FAST = Precompiled(_USE_CREDIT)
_INSERT_CREDIT_USES_FAST = Precompiled(
    _INSERT_CREDIT_USES, column_keys=("id", "credit_id", "invoice_id", "amount", "created_at")
)


_NO_TOTALS = calc.compute_totals([])


class _Changed(Exception):
    """What the invoice was assembled from changed before the write lock was held."""


# ---------------------------------------------------------------- assembly


@dataclass
class _CreditTake:
    id: uuid.UUID
    handle: str
    text: str | None
    seen: int
    take: int


@dataclass
class _DiscountCount:
    id: uuid.UUID
    seen: int
    invoice_ids: list[str]


@dataclass
class _Assembly:
    """An invoice worked out from what was read, and what storing it must change."""

    ctx: Any  # the _CONTEXT row
    invoice_id: uuid.UUID
    now: datetime
    lines: list[LineRecord]
    totals: calc.Totals
    costs: list[Any] = field(default_factory=list)  # rows: id, handle
    usage_ids: list[uuid.UUID] = field(default_factory=list)
    discounts: list[_DiscountCount] = field(default_factory=list)
    credits: list[_CreditTake] = field(default_factory=list)
    due: tuple[Any, dict[str, Any]] | None = None  # the PDF's due row, written with the audit


def _checked_context(
    conn: Any,
    account_id: uuid.UUID,
    handle: str,
    req: OnDemandRequest,
    *,
    locked: bool,
    check_handle: bool,
) -> Any:
    """The subscription's context row, if it may be invoiced (codes 12, 13, 95, 22, 11)."""
    rows = (
        precompiled(_CONTEXT_LOCKED if locked else _CONTEXT)
        .execute(conn, {"account": account_id, "handle": handle, "invoice_handle": req.handle})
        .all()
    )
    if not rows:
        raise NotFound("Subscription")
    ctx = SimpleNamespace(**rows[0]._mapping)
    ctx.taxes = tax_table(rows, ctx.a_default_vat_percent)
    _check_invoiceable(ctx.s_state, ctx.s_is_cancelled)
    if check_handle and ctx.handle_taken:
        raise Duplicate("Invoice", f"Invoice handle {req.handle!r} is already used")
    if ctx.e_id is None:
        raise NotFound("Billing entity")
    return ctx


def _check_invoiceable(state: str, is_cancelled: bool) -> None:
    if state == EXPIRED:
        raise InvalidState("Subscription expired", reason=SUBSCRIPTION_EXPIRED)
    if state == ON_HOLD:
        raise InvalidState("Subscription on hold", reason=SUBSCRIPTION_ON_HOLD)
    if is_cancelled:
        raise InvalidState("Subscription cancelled", reason=SUBSCRIPTION_CANCELLED)


def _plan_drafts(add_ons: list[Any], ctx: Any, req: OnDemandRequest) -> list[LineDraft]:
    drafts = [
        LineDraft(
            description=ctx.p_name,
            quantity=Decimal(ctx.s_quantity),
            unit_amount=Decimal(ctx.s_amount if ctx.s_amount is not None else ctx.p_amount),
            tax_percent=_percent(ctx.p_vat),
            amount_incl_vat=ctx.p_amount_incl_vat,
            origin="plan",
            origin_handle=ctx.p_handle,
            period_from=req.plan_period.start,
            period_to=req.plan_period.end,
        )
    ]
    for row in add_ons:
        period = (
            req.add_on_service_periods.get(row.handle)
            or req.add_on_service_periods.get(row.add_on_handle)
            or Period()
        )
        drafts.append(
            LineDraft(
                description=row.name,
                quantity=Decimal(row.quantity if row.type == "quantity" else 1),
                unit_amount=Decimal(row.amount if row.amount is not None else row.add_on_amount),
                tax_percent=_percent(row.vat),
                amount_incl_vat=row.amount_incl_vat,
                origin="add_on",
                origin_handle=row.handle,
                period_from=period.start,
                period_to=period.end,
            )
        )
    return drafts


def _cost_drafts(costs: list[Any], req: OnDemandRequest) -> list[LineDraft]:
    drafts = []
    for cost in costs:
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


def _order_drafts(conn: Any, account_id: uuid.UUID, req: OnDemandRequest) -> list[LineDraft]:
    codes = {line.tax_policy for line in req.order_lines if line.tax_policy}
    rates: dict[str, Decimal] = {}
    if codes:
        rates = dict(conn.execute(_TAX_CODES, {"account": account_id, "codes": list(codes)}).all())
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


def _usage_drafts(
    conn: Any, ctx: Any, now: datetime, usage_ids: list[uuid.UUID]
) -> list[LineDraft]:
    """Usage of the current period not billed yet, priced by the plan's charge for the
    metric (graduated tiers when the charge has them). Usage of a metric the plan does not
    price stays unbilled."""
    period_end = ctx.s_current_period_end or now
    rows = conn.execute(
        _UNBILLED_USAGE,
        {
            "plan": ctx.s_plan_id,
            "sub": ctx.s_id,
            "start": ctx.s_current_period_start,
            "end": period_end,
        },
    ).all()
    grouped: dict[uuid.UUID, tuple[Any, list[Decimal]]] = {}
    for row in rows:
        grouped.setdefault(row.metric_id, (row, []))[1].append(row.value)
        usage_ids.append(row.id)
    drafts = []
    for row, values in grouped.values():
        total = _aggregate(values, row.aggregation)
        for quantity, unit, label in _tiers(total, row.unit_amount, row.tiers):
            if quantity <= 0:
                continue
            drafts.append(
                LineDraft(
                    description=f"{row.metric_name}{label}",
                    quantity=quantity,
                    unit_amount=unit,
                    tax_percent=_percent(row.vat),
                    amount_incl_vat=row.amount_incl_vat,
                    charge_id=row.charge_id,
                    metric_code=row.metric_code,
                    origin="usage",
                    origin_handle=row.metric_code,
                    period_from=ctx.s_current_period_start,
                    period_to=period_end,
                )
            )
    return drafts


def _tiers(
    total: Decimal, unit_amount: Decimal, tiers: list[dict[str, Any]] | None
) -> list[tuple[Decimal, Decimal, str]]:
    if not tiers:
        return [(total, unit_amount, "")]
    out: list[tuple[Decimal, Decimal, str]] = []
    lower = Decimal(0)
    for tier in tiers:
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
    discounts: list[Any], out: _Assembly, lines: list[LineRecord], now: datetime
) -> list[LineRecord]:
    extra: list[LineRecord] = []
    for row in discounts:
        if row.fixed_count is not None and row.invoice_count >= row.fixed_count:
            continue
        if row.fixed_period is not None and _period_passed(row, now):
            continue
        targets = [
            line
            for line in lines
            if line.amount_minor > 0
            and (
                "all" in row.apply_to
                or line.origin in row.apply_to
                or (line.origin == "usage" and "plan" in row.apply_to)
            )
        ]
        remaining_fixed = row.amount
        made = 0
        for line in targets:
            if row.percentage is not None:
                take = calc.percentage_of(line.amount_minor, row.percentage)
            else:
                assert remaining_fixed is not None
                take = min(remaining_fixed, line.amount_minor)
                remaining_fixed -= take
            if take <= 0:
                continue
            line.discounted_amount = (line.discounted_amount or 0) + take
            extra.append(
                LineRecord(
                    id=new_uuid(),
                    description=row.name,
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
                    origin_handle=row.handle,
                )
            )
            made += 1
        if made:
            out.discounts.append(
                _DiscountCount(row.id, row.invoice_count, [*row.invoice_ids, str(out.invoice_id)])
            )
    return extra


def _period_passed(row: Any, now: datetime) -> bool:
    if row.fixed_period_unit == "days":
        end = row.created_at + timedelta(days=row.fixed_period)
    else:
        start = row.created_at
        months = start.month - 1 + row.fixed_period
        year, month = start.year + months // 12, months % 12 + 1
        day = min(start.day, 28)
        end = start.replace(year=year, month=month, day=day)
    return bool(now >= end)


def _credit_lines(
    pending: list[Any], out: _Assembly, lines: list[LineRecord], today_local: date
) -> list[LineRecord]:
    credits = [row for row in pending if row.valid_from is None or row.valid_from <= today_local]
    if not credits:
        return []
    totals = calc.compute_totals(line_inputs(lines))
    # What is left to credit per VAT rate, largest first (deterministic).
    room = sorted(
        ((r.gross_minor, r.rate) for r in totals.by_rate if r.gross_minor > 0),
        key=lambda item: (-item[0], item[1]),
    )
    left_by_rate = dict((rate, gross) for gross, rate in room)
    extra: list[LineRecord] = []
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
                LineRecord(
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
        out.credits.append(
            _CreditTake(credit.id, credit.handle, credit.text, credit.pending_amount, take)
        )
    return extra


def _assemble(conn: Any, account_id: uuid.UUID, ctx: Any, req: OnDemandRequest) -> _Assembly:
    """Every line and total of the invoice, from what `conn` reads now; nothing written.
    Order: plan and add-ons, pending costs, order lines, usage, then discounts and credits
    on what those add up to."""
    now = utcnow()
    out = _Assembly(ctx, new_uuid(), now, [], _NO_TOTALS)
    children = _children(conn, ctx.s_id)
    drafts: list[LineDraft] = []
    if req.plan_manual:
        drafts += _plan_drafts(children["add_on"], ctx, req)
    if req.collect_additional_costs:
        out.costs = children["cost"]
        drafts += _cost_drafts(out.costs, req)
    drafts += _order_drafts(conn, account_id, req)
    if req.include_unbilled_usage:
        drafts += _usage_drafts(conn, ctx, now, out.usage_ids)
    parties = Parties(
        account_id, ctx.a_default_vat_percent, ctx.c_tax_rate_id, ctx.e_default_tax_rate_id
    )
    lines = (
        build_lines(parties, drafts, max_lines=None, conn=conn, taxes=ctx.taxes) if drafts else []
    )
    if req.apply_discounts and lines:
        lines += _discount_lines(children["discount"], out, lines, now)
    if req.collect_credit and lines:
        today_local = now.astimezone(ZoneInfo(ctx.a_timezone)).date()
        lines += _credit_lines(children["credit"], out, lines, today_local)
    if not lines:
        raise InvalidState(
            "The request results in an invoice with no order lines", reason=NOTHING_TO_INVOICE
        )
    for position, line in enumerate(lines):
        line.position = position
        line.invoice_id = out.invoice_id
    out.lines = lines
    out.totals = calc.compute_totals(line_inputs(lines))
    if out.totals.total_minor < 0:
        raise InvalidInput(("order_lines",), "The invoice amount cannot be negative")
    return out


# ---------------------------------------------------------------- storing


def _new_invoice(out: _Assembly, account_id: uuid.UUID, req: OnDemandRequest) -> Any:
    ctx, now = out.ctx, out.now
    invoice = new_invoice_record(
        id=out.invoice_id,
        account_id=account_id,
        billing_entity_id=ctx.e_id,
        customer_id=ctx.c_id,
        subscription_id=ctx.s_id,
        handle=req.handle,
        invoice_type=SUBSCRIPTION,
        state=DRAFT,
        currency=ctx.p_currency,
        invoice_number=draft_number(),
        billing_period_start=req.plan_period.start or now,
        billing_period_end=req.plan_period.end or now,
        due_at=req.due or now,
        created_at=now,
        updated_at=now,
        invoice_metadata=req.metadata,
        billing_address=req.billing_address,
        shipping_address=req.shipping_address,
        cost_center=req.cost_center if req.cost_center is not None else ctx.s_cost_center,
        purchase_order_number=(
            req.purchase_order_number
            if req.purchase_order_number is not None
            else ctx.s_purchase_order_number
        ),
        plan_handle=ctx.p_handle if req.plan_manual else None,
        service_period_from=req.plan_period.start if req.plan_manual else None,
        service_period_to=req.plan_period.end if req.plan_manual else None,
        instant=req.instant,
    )
    invoice.lines = out.lines
    return invoice


def _still_as_read(conn: Any, ctx: Any) -> None:
    """Under the lock: the subscription is still invoiceable and what the lines were
    priced from has not changed (else _Changed: assemble again)."""
    now = precompiled(_SUBSCRIPTION_NOW).execute(conn, {"id": ctx.s_id}).first()
    if now is None:
        raise _Changed
    _check_invoiceable(now.state, now.is_cancelled)
    for name in now._fields:
        if name not in ("state", "is_cancelled") and getattr(now, name) != getattr(
            ctx, f"s_{name}"
        ):
            raise _Changed


def _store(conn: Any, account_id: uuid.UUID, out: _Assembly, req: OnDemandRequest) -> Any:
    """Inside the write transaction: number the invoice, insert it with its lines, move
    the costs, credits, discount counts and usage it consumed (each only if still as
    read: else _Changed), note its PDF as due, append the audit record."""
    ctx = out.ctx
    entity = _prefixed(ctx, "e_")
    customer = _prefixed(ctx, "c_")
    invoice = _new_invoice(out, account_id, req)
    issue_new(
        conn,
        invoice,
        entity,
        customer,
        wallet_may_have_credit=bool(ctx.wallets_with_credit),
        now=out.now,
        totals=out.totals,
    )
    invoice.next_collect_at = None if invoice.state == PAID else invoice.due_at
    try:
        insert_invoice(conn, invoice, out.lines)
    except IntegrityError:
        raise Duplicate("Invoice", f"Invoice handle {req.handle!r} is already used") from None
    if conn.dialect.name == "postgresql":
        _consume_pg(conn, out)
    else:
        _consume(conn, out)
    out.due = due_write(invoice, entity, customer)
    return invoice


def _consume(conn: Any, out: _Assembly) -> None:
    """Move the costs, usage, discount counts and credits the invoice consumed, each only
    if still as read (else _Changed): one statement each (SQLite; the fixed ones without
    SQLAlchemy's per-execution work, database.Precompiled)."""
    invoice_id = out.invoice_id
    if out.costs:
        ids = [cost.id for cost in out.costs]
        if conn.execute(_TRANSFER_COSTS, {"ids": ids, "invoice": invoice_id}).rowcount != len(ids):
            raise _Changed
    if out.usage_ids:
        moved = conn.execute(_BILL_USAGE, {"ids": out.usage_ids, "invoice": invoice_id}).rowcount
        if moved != len(out.usage_ids):
            raise _Changed
    for count in out.discounts:
        changed = _COUNT_DISCOUNT_FAST.execute(
            conn, {"_id": count.id, "_seen": count.seen, "_ids": count.invoice_ids}
        ).rowcount
        if changed != 1:
            raise _Changed
    for credit in out.credits:
        left = credit.seen - credit.take
        changed = _USE_CREDIT_FAST.execute(
            conn,
            {
                "_id": credit.id,
                "_seen": credit.seen,
                "_left": left,
                "_state": TRANSFERRED if left == 0 else PENDING,
            },
        ).rowcount
        if changed != 1:
            raise _Changed
    if out.credits:
        _INSERT_CREDIT_USES_FAST.execute(
            conn,
            [
                {
                    "id": new_uuid(),
                    "credit_id": credit.id,
                    "invoice_id": invoice_id,
                    "amount": credit.take,
                    "created_at": out.now,
                }
                for credit in out.credits
            ],
        )


def _consume_pg(conn: Any, out: _Assembly) -> None:
    """`_consume` on PostgreSQL: all those writes in one statement, which answers how many
    rows each of them touched (else _Changed, and the transaction rolls back)."""
    statement = _consume_statement(
        bool(out.costs), bool(out.usage_ids), len(out.discounts), len(out.credits)
    )
    if statement is None:
        return
    invoice_id = out.invoice_id
    params: dict[str, Any] = {"invoice": invoice_id}
    expected: dict[str, int] = {}
    if out.costs:
        params["k_ids"] = [cost.id for cost in out.costs]
        expected["k"] = len(out.costs)
    if out.usage_ids:
        params["u_ids"] = out.usage_ids
        expected["u"] = len(out.usage_ids)
    for i, count in enumerate(out.discounts):
        params |= {f"d{i}_id": count.id, f"d{i}_seen": count.seen, f"d{i}_ids": count.invoice_ids}
        expected[f"d{i}"] = 1
    for i, credit in enumerate(out.credits):
        left = credit.seen - credit.take
        params |= {
            f"c{i}_id": credit.id,
            f"c{i}_seen": credit.seen,
            f"c{i}_left": left,
            f"c{i}_state": TRANSFERRED if left == 0 else PENDING,
            f"c{i}_use": new_uuid(),
            f"c{i}_take": credit.take,
        }
        expected[f"c{i}"] = 1
    if out.credits:
        params["now"] = out.now
    touched = precompiled(statement).execute(conn, params).one()._mapping
    if any(touched[name] != count for name, count in expected.items()):
        raise _Changed


@lru_cache(maxsize=64)
def _consume_statement(costs: bool, usage: bool, discounts: int, credits: int) -> Any:
    """The statement `_consume_pg` runs for this shape, built once per shape: each write
    of `_consume` a data-modifying CTE (PostgreSQL runs every one to completion), the
    credit uses inserted alongside, and as the answer the number of rows each touched.
    None when the invoice consumed nothing."""
    writes: list[Any] = []
    if costs:
        writes.append(
            update(_AC)
            # = ANY(array): one statement text for any number of costs (an expanding IN
            # is rendered per call, so it could not be precompiled).
            .where(_AC.c.id == any_(bindparam("k_ids", type_=ARRAY(Uuid))))
            .where(_AC.c.state == PENDING)
            .values(state=TRANSFERRED, invoice_id=bindparam("invoice"))
            .returning(_AC.c.id)
            .cte("k")
        )
    if usage:
        writes.append(
            update(_U)
            .where(_U.c.id == any_(bindparam("u_ids", type_=ARRAY(Uuid))))
            .where(_U.c.invoice_id.is_(None))
            .values(invoice_id=bindparam("invoice"))
            .returning(_U.c.id)
            .cte("u")
        )
    for i in range(discounts):
        seen = bindparam(f"d{i}_seen", type_=_SD.c.invoice_count.type)
        writes.append(
            update(_SD)
            .where(_SD.c.id == bindparam(f"d{i}_id"), _SD.c.state == "active")
            .where(_SD.c.invoice_count == seen)
            .values(invoice_count=seen + 1, invoice_ids=bindparam(f"d{i}_ids"))
            .returning(_SD.c.id)
            .cte(f"d{i}")
        )
    for i in range(credits):
        writes.append(
            update(_CR)
            .where(_CR.c.id == bindparam(f"c{i}_id"), _CR.c.state == PENDING)
            .where(_CR.c.pending_amount == bindparam(f"c{i}_seen"))
            .values(pending_amount=bindparam(f"c{i}_left"), state=bindparam(f"c{i}_state"))
            .returning(_CR.c.id)
            .cte(f"c{i}")
        )
    if not writes:
        return None
    statement = select(
        *[select(func.count()).select_from(w).scalar_subquery().label(w.name) for w in writes]
    )
    # One single-row INSERT per credit use: a multi-row VALUES has no cache key, and
    # SQLAlchemy would compile the whole statement again on every request.
    for i in range(credits):
        use = insert(_CU).values(
            id=bindparam(f"c{i}_use"),
            credit_id=bindparam(f"c{i}_id"),
            invoice_id=bindparam("invoice"),
            amount=bindparam(f"c{i}_take"),
            created_at=bindparam("now"),
        )
        statement = statement.add_cte(use.cte(f"use{i}"))
    return statement


def _audit(conn: Any, account_id: uuid.UUID, invoice: Any, out: _Assembly) -> None:
    """The audit record, with the PDF's due row (one statement on PostgreSQL)."""
    assert out.due is not None
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
            "subscription": out.ctx.s_handle,
            "additional_costs": [c.handle for c in out.costs],
        },
        conn=conn,
        with_writes=(out.due,),
    )


def _prefixed(row: Any, prefix: str) -> Any:
    """One table's columns out of the context, under their own names (a stand-in for the
    ORM object)."""
    cut = len(prefix)
    return SimpleNamespace(**{k[cut:]: v for k, v in vars(row).items() if k.startswith(prefix)})


# ---------------------------------------------------------------- the service


@dataclass(frozen=True)
class ChargePlan:
    """What to do after the invoice is stored: charge this method, and how. `created`:
    what was stored, to answer with without reading it back (None when a payment was
    recorded in the same transaction: then the answer reads the invoice)."""

    invoice_id: uuid.UUID
    transaction_id: uuid.UUID | None
    instant: bool
    created: CreatedInvoice | None = None


@dataclass(frozen=True)
class CreatedInvoice:
    invoice: Any  # plain record with the model's attributes and `lines`
    customer_handle: str
    subscription_handle: str
    cost_handles: list[str]
    credit_uses: list[dict[str, Any]]


@dataclass(frozen=True)
class InvoicePreview:
    """What `create_subscription_invoice` would store for a request, computed by the same
    code under the same rules (errors included), with nothing written."""

    currency: str
    lines: list[LineRecord]
    totals: calc.Totals


def _check_request(req: OnDemandRequest) -> None:
    if req.due is not None and req.instant:
        raise InvalidInput(("due",), "due cannot be combined with instant")
    if len(req.order_lines) > MAX_ORDER_LINES:
        raise InvalidInput(("order_lines",), f"At most {MAX_ORDER_LINES} order lines")


def preview_subscription_invoice(
    account_id: uuid.UUID, subscription_handle: str, req: OnDemandRequest
) -> InvoicePreview:
    """The lines and totals an on-demand invoice would have now; nothing is stored and
    nothing locked. The request's handle is not checked."""
    _check_request(req)
    with core_connection() as conn:
        ctx = _checked_context(
            conn, account_id, subscription_handle, req, locked=False, check_handle=False
        )
        out = _assemble(conn, account_id, ctx, req)
    return InvoicePreview(ctx.p_currency, out.lines, out.totals)


ATTEMPTS = 3


def create_subscription_invoice(
    account_id: uuid.UUID, subscription_handle: str, req: OnDemandRequest
) -> ChargePlan:
    """Store the invoice (open, numbered) in one transaction; see the module docstring.

    Without a payment to record, everything is read and priced with Core, and on SQLite
    before the write lock (which serialises every writer of the database); under the lock
    the subscription is re-read and every consumed cost, credit, discount count and usage
    event is changed only if it is still as read. If anything changed meanwhile, the
    transaction rolls back and the invoice is assembled again, this time under the lock.
    On PostgreSQL the subscription row is locked first (it only serialises invoices of
    that subscription).
    """
    _check_request(req)
    if req.settle_requested or req.instant or req.manual_transfer is not None:
        return _create_with_payment(account_id, subscription_handle, req)
    for attempt in range(ATTEMPTS):
        with core_connection() as conn:
            lock_first = attempt > 0 or conn.dialect.name != "sqlite"
            try:
                return _create(conn, account_id, subscription_handle, req, lock_first=lock_first)
            except _Changed:
                continue
    raise InvalidState("The subscription changed while invoicing it; try again")


def _create(
    conn: Any, account_id: uuid.UUID, handle: str, req: OnDemandRequest, *, lock_first: bool
) -> ChargePlan:
    if lock_first:
        with core_write(conn):
            ctx = _checked_context(conn, account_id, handle, req, locked=True, check_handle=True)
            out = _assemble(conn, account_id, ctx, req)
            invoice = _store(conn, account_id, out, req)
            _audit(conn, account_id, invoice, out)
    else:
        ctx = _checked_context(conn, account_id, handle, req, locked=False, check_handle=True)
        out = _assemble(conn, account_id, ctx, req)
        with core_write(conn):
            _still_as_read(conn, ctx)
            invoice = _store(conn, account_id, out, req)
            _audit(conn, account_id, invoice, out)
    created = CreatedInvoice(
        invoice,
        ctx.c_external_id,
        ctx.s_handle,
        [cost.handle for cost in out.costs],
        [
            {"credit": c.handle, "amount": c.take, "created": out.now, "text": c.text}
            for c in out.credits
        ],
    )
    return ChargePlan(invoice.id, None, req.instant, created)


def _create_with_payment(account_id: uuid.UUID, handle: str, req: OnDemandRequest) -> ChargePlan:
    """The invoice and its payment (a manual transfer, or a card charge claimed for
    `charge_after_create`) in one session transaction, the subscription locked first."""
    with write_transaction(), core_connection() as conn:
        ctx = _checked_context(conn, account_id, handle, req, locked=True, check_handle=True)
        method: PaymentMethod | None = None
        if req.settle_requested:
            if not req.settle_payment_method:
                raise InvalidState("Payment method not provided", reason=NO_PAYMENT_METHOD)
            method = payments.resolve_payment_method(
                account_id, ctx.c_id, req.settle_payment_method
            )
        elif req.instant and req.manual_transfer is None:
            if ctx.s_payment_method_id is None:
                raise InvalidState("Payment method not provided", reason=NO_PAYMENT_METHOD)
            method = db.session.get(PaymentMethod, ctx.s_payment_method_id)
            if method is None or method.state != "active":
                raise InvalidState("Payment method not provided", reason=NO_PAYMENT_METHOD)
        out = _assemble(conn, account_id, ctx, req)
        record = _store(conn, account_id, out, req)
        invoice = db.session.get(Invoice, record.id)
        assert invoice is not None
        transaction_id = None
        if req.manual_transfer is not None and invoice.state != PAID:
            payments.settle_manually(invoice, req.manual_transfer)
        elif method is not None and invoice.state != PAID:
            transaction_id = payments.claim(invoice, method).id
            invoice.next_collect_at = None
        db.session.flush()
        _audit(conn, account_id, invoice, out)
    return ChargePlan(record.id, transaction_id, req.instant)


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
            if invoice.state not in (PAID,) and invoice.next_collect_at is None:
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
