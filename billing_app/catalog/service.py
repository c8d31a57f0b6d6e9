"""The catalogue: plans, add-ons, discounts, coupons, usage metrics and the charges that
price them on a plan.

Every function takes the account id and plain values, owns its write transaction and
raises domain errors: NotFound for anything unknown in this account (another account's
objects included), Duplicate for a handle or code already taken in this account (per
resource type), InvalidInput naming the field for values that break a rule. Every create
writes an audit record.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError

from ..accounts.models import Account
from ..audit import service as audit
from ..db import decimal_to_str, write_transaction
from ..errors import COUPON_CODE_TAKEN, Duplicate, InvalidInput, InvalidState, NotFound
from ..extensions import db
from ..money import decimal_places
from ..querying import get_scoped, paged
from .models import AddOn, Charge, Coupon, Discount, Metric, Plan

T = TypeVar("T")

SCHEDULE_TYPES = (
    "manual",
    "daily",
    "weekly_fixedday",
    "month_startdate",
    "month_fixedday",
    "month_lastday",
)
ADD_ON_TYPES = ("on_off", "quantity")
APPLY_TO = ("all", "plan", "add_on", "additional_cost", "ondemand")
PERIOD_UNITS = ("days", "months")
AGGREGATIONS = ("count", "sum", "max")
MAX_UNIT_DECIMALS = 6


# ---------------------------------------------------------------- shared helpers


def insert_unique(obj: Any, resource: str, taken: Select[Any], message: str | None = None) -> None:
    """Add `obj` unless `taken` (a count of rows already holding its handle) finds one.

    The check gives the clean answer; the unique constraint behind it catches the race
    of two concurrent creates (PostgreSQL), reported the same way.
    """
    if db.session.scalar(taken):
        raise Duplicate(resource, message)
    db.session.add(obj)
    try:
        db.session.flush()
    except IntegrityError:
        raise Duplicate(resource, message) from None


def _count(model: Any, account_id: uuid.UUID, **filters: Any) -> Select[Any]:
    stmt = select(func.count()).select_from(model).where(model.account_id == account_id)
    for name, value in filters.items():
        stmt = stmt.where(getattr(model, name) == value)
    return stmt


def values_by_id(
    model: Any, ids: Iterable[uuid.UUID | None], attr: str = "handle"
) -> dict[uuid.UUID, Any]:
    """`{id: model.attr}` for the given ids, in one query (serialising lists without N+1)."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    column = getattr(model, attr)
    return dict(db.session.execute(select(model.id, column).where(model.id.in_(wanted))).all())


def account_currency(account_id: uuid.UUID) -> str:
    account = db.session.get(Account, account_id)
    if account is None:
        raise NotFound("Account")
    return account.default_currency


def _check_vat(vat: Decimal | None, loc: str = "vat") -> None:
    if vat is not None and not 0 <= vat <= 1:
        raise InvalidInput((loc,), "vat is a fraction between 0 and 1 (0.25 = 25 %)")


def _snapshot(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


# ---------------------------------------------------------------- plans


def create_plan(account_id: uuid.UUID, data: dict[str, Any]) -> Plan:
    """A plan. `currency` defaults to the account's; `vat` None means the tax precedence
    (customer, billing entity, account) decides at invoicing."""
    data = dict(data)
    _check_vat(data.get("vat"))
    if data.get("schedule_type", "manual") not in SCHEDULE_TYPES:
        raise InvalidInput(("schedule_type",), f"schedule_type must be one of {SCHEDULE_TYPES}")
    with write_transaction():
        if not data.get("currency"):
            data["currency"] = account_currency(account_id)
        plan = Plan(account_id=account_id, **data)
        insert_unique(plan, "Plan", _count(Plan, account_id, handle=plan.handle))
        audit.record(account_id, "plan.created", "plan", plan.id, after=_snapshot(data))
    return plan


def get_plan(account_id: uuid.UUID, handle: str) -> Plan:
    return get_scoped(Plan, account_id, "Plan", handle=handle)


def list_plans(
    account_id: uuid.UUID, size: int, token: str | None
) -> tuple[list[Plan], str | None]:
    return paged(select(Plan).where(Plan.account_id == account_id), Plan, size, token)


# ---------------------------------------------------------------- add-ons


def create_add_on(account_id: uuid.UUID, data: dict[str, Any]) -> AddOn:
    """An add-on. `eligible_plans` are plan handles of this account (each must exist);
    without any, the add-on fits every plan unless `all_plans` is explicitly false."""
    data = dict(data)
    _check_vat(data.get("vat"))
    if data.get("type", "on_off") not in ADD_ON_TYPES:
        raise InvalidInput(("type",), "type must be on_off or quantity")
    eligible = list(dict.fromkeys(data.pop("eligible_plans", None) or []))
    all_plans = data.pop("all_plans", None)
    if all_plans is None:
        all_plans = not eligible
    with write_transaction():
        for i, plan_handle in enumerate(eligible):
            if not db.session.scalar(_count(Plan, account_id, handle=plan_handle)):
                raise NotFound("Plan", f"Plan not found: eligible_plans[{i}] {plan_handle!r}")
        add_on = AddOn(account_id=account_id, all_plans=all_plans, eligible_plans=eligible, **data)
        insert_unique(add_on, "Add-on", _count(AddOn, account_id, handle=add_on.handle))
        audit.record(
            account_id,
            "add_on.created",
            "add_on",
            add_on.id,
            after=_snapshot({**data, "all_plans": all_plans, "eligible_plans": eligible}),
        )
    return add_on


def get_add_on(account_id: uuid.UUID, handle: str) -> AddOn:
    return get_scoped(AddOn, account_id, "Add-on", handle=handle)


def list_add_ons(
    account_id: uuid.UUID, size: int, token: str | None
) -> tuple[list[AddOn], str | None]:
    return paged(select(AddOn).where(AddOn.account_id == account_id), AddOn, size, token)


def add_on_fits_plan(add_on: AddOn, plan: Plan) -> bool:
    return add_on.all_plans or plan.handle in (add_on.eligible_plans or [])


# ---------------------------------------------------------------- discounts and coupons


def create_discount(account_id: uuid.UUID, data: dict[str, Any]) -> Discount:
    """A fixed `amount` (minor units) XOR a `percentage` (0 < p <= 100), applied to the
    invoice lines whose origin is in `apply_to` (default all), optionally only for
    `fixed_count` invoices or for `fixed_period` days/months after it is attached."""
    data = dict(data)
    amount, percentage = data.get("amount"), data.get("percentage")
    if (amount is None) == (percentage is None):
        raise InvalidInput(("amount",), "Give either amount or percentage (exactly one)")
    if amount is not None and amount <= 0:
        raise InvalidInput(("amount",), "amount must be greater than 0")
    if percentage is not None:
        if not 0 < percentage <= 100:
            raise InvalidInput(("percentage",), "percentage must be greater than 0 and at most 100")
        if decimal_places(percentage) > MAX_UNIT_DECIMALS:
            raise InvalidInput(("percentage",), "percentage has at most 6 decimals")
    apply_to = list(dict.fromkeys(data.get("apply_to") or ["all"]))
    for i, target in enumerate(apply_to):
        if target not in APPLY_TO:
            raise InvalidInput(("apply_to", i), f"apply_to takes {', '.join(APPLY_TO)}")
    data["apply_to"] = apply_to
    period, unit = data.get("fixed_period"), data.get("fixed_period_unit")
    if (period is None) != (unit is None):
        loc = "fixed_period_unit" if unit is None else "fixed_period"
        raise InvalidInput((loc,), "fixed_period and fixed_period_unit go together")
    if unit is not None and unit not in PERIOD_UNITS:
        raise InvalidInput(("fixed_period_unit",), "fixed_period_unit must be days or months")
    with write_transaction():
        discount = Discount(account_id=account_id, **data)
        insert_unique(discount, "Discount", _count(Discount, account_id, handle=discount.handle))
        audit.record(account_id, "discount.created", "discount", discount.id, after=_snapshot(data))
    return discount


def get_discount(account_id: uuid.UUID, handle: str) -> Discount:
    return get_scoped(Discount, account_id, "Discount", handle=handle)


def list_discounts(
    account_id: uuid.UUID, size: int, token: str | None
) -> tuple[list[Discount], str | None]:
    return paged(select(Discount).where(Discount.account_id == account_id), Discount, size, token)


def create_coupon(account_id: uuid.UUID, data: dict[str, Any]) -> Coupon:
    """A code that attaches `discount` (a discount handle). Handles and codes are each
    unique in the account: a taken handle is a Duplicate, a taken code is refused
    (InvalidState, COUPON_CODE_TAKEN)."""
    data = dict(data)
    discount_handle = data.pop("discount")
    with write_transaction():
        discount = get_discount(account_id, discount_handle)
        if db.session.scalar(_count(Coupon, account_id, code=data["code"])):
            raise InvalidState("Coupon code already exists", reason=COUPON_CODE_TAKEN)
        coupon = Coupon(account_id=account_id, discount_id=discount.id, **data)
        insert_unique(coupon, "Coupon", _count(Coupon, account_id, handle=coupon.handle))
        audit.record(
            account_id,
            "coupon.created",
            "coupon",
            coupon.id,
            after=_snapshot({**data, "discount": discount.handle}),
        )
    return coupon


def get_coupon(account_id: uuid.UUID, handle: str) -> Coupon:
    return get_scoped(Coupon, account_id, "Coupon", handle=handle)


def list_coupons(
    account_id: uuid.UUID, size: int, token: str | None
) -> tuple[list[Coupon], str | None]:
    return paged(select(Coupon).where(Coupon.account_id == account_id), Coupon, size, token)


# ---------------------------------------------------------------- metrics and charges


def create_metric(account_id: uuid.UUID, data: dict[str, Any]) -> Metric:
    """A usage metric; `code` is unique in the account, `aggregation` count|sum|max."""
    if data.get("aggregation", "sum") not in AGGREGATIONS:
        raise InvalidInput(("aggregation",), "aggregation must be count, sum or max")
    with write_transaction():
        metric = Metric(account_id=account_id, **data)
        insert_unique(
            metric,
            "Metric",
            _count(Metric, account_id, code=metric.code),
            "A metric with this code already exists",
        )
        audit.record(account_id, "metric.created", "metric", metric.id, after=_snapshot(data))
    return metric


def get_metric(account_id: uuid.UUID, code: str) -> Metric:
    return get_scoped(Metric, account_id, "Metric", code=code)


def list_metrics(
    account_id: uuid.UUID, size: int, token: str | None
) -> tuple[list[Metric], str | None]:
    return paged(select(Metric).where(Metric.account_id == account_id), Metric, size, token)


def _check_unit_amount(value: Decimal, loc: tuple[str | int, ...]) -> None:
    if value < 0:
        raise InvalidInput(loc, "unit_amount must not be negative")
    if decimal_places(value) > MAX_UNIT_DECIMALS:
        raise InvalidInput(loc, "unit_amount has at most 6 decimals (it is in minor units)")


def _checked_tiers(tiers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Graduated tiers, ascending `up_to`; only the last may be open (`up_to` null)."""
    out: list[dict[str, Any]] = []
    previous = 0
    for i, tier in enumerate(tiers):
        up_to, unit = tier.get("up_to"), tier["unit_amount"]
        _check_unit_amount(unit, ("tiers", i, "unit_amount"))
        if up_to is None:
            if i != len(tiers) - 1:
                raise InvalidInput(("tiers", i, "up_to"), "Only the last tier may be open-ended")
        elif up_to <= previous:
            raise InvalidInput(("tiers", i, "up_to"), "up_to must increase from tier to tier")
        else:
            previous = up_to
        out.append({"up_to": up_to, "unit_amount": decimal_to_str(unit)})
    return out


def create_charge(account_id: uuid.UUID, plan_handle: str, data: dict[str, Any]) -> Charge:
    """The plan's price of a metric (`metric` is its code): `unit_amount` in minor units
    (>= 0, at most 6 decimals), optionally graduated `tiers`. Its id may be given as
    `charge_id` on dialect A invoice lines."""
    data = dict(data)
    metric_code = data.pop("metric")
    _check_vat(data.get("vat"))
    unit_amount = data.get("unit_amount")
    tiers = data.pop("tiers", None)
    if unit_amount is None and not tiers:
        raise InvalidInput(("unit_amount",), "unit_amount is required (or tiers)")
    if unit_amount is None:
        unit_amount = Decimal(0)
    _check_unit_amount(unit_amount, ("unit_amount",))
    data["unit_amount"] = unit_amount
    checked = _checked_tiers(tiers) if tiers else None
    with write_transaction():
        plan = get_plan(account_id, plan_handle)
        metric = get_metric(account_id, metric_code)
        if not data.get("name"):
            data["name"] = metric.name
        charge = Charge(
            account_id=account_id, plan_id=plan.id, metric_id=metric.id, tiers=checked, **data
        )
        db.session.add(charge)
        db.session.flush()
        audit.record(
            account_id,
            "charge.created",
            "charge",
            charge.id,
            after=_snapshot({**data, "plan": plan.handle, "metric": metric.code, "tiers": checked}),
        )
    return charge


def list_charges(
    account_id: uuid.UUID, plan_handle: str, size: int, token: str | None
) -> tuple[list[Charge], str | None]:
    plan = get_plan(account_id, plan_handle)
    stmt = select(Charge).where(Charge.account_id == account_id, Charge.plan_id == plan.id)
    return paged(stmt, Charge, size, token)
