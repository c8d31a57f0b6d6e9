"""Request and response models of the dialect B resources (Reepay paths and shapes, API.md
"The resources it draws on").

Request models check shape only (types, lengths, formats, ranges of single fields) and
ignore unknown fields; rules that involve other objects or several fields live in the
services. Amounts are integers in minor units; `vat` is a fraction (0.25 = 25 %).
Response models document the JSON the serialisers in `resources` build.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, EmailStr, Field

from ...subscriptions.dates import FORMATS_TEXT, is_local_datetime
from ..paging import PageQuery
from ..types import Currency, ExactDecimal, LocaleCode, StrictBool, StrictInt, described_by
from .descriptions import EXAMPLES, FIELDS

HANDLE_PATTERN = r"^[a-zA-Z0-9_.\-@]+$"
MAX_AMOUNT = 10**13

Handle = Annotated[str, Field(min_length=1, max_length=255, pattern=HANDLE_PATTERN)]
Amount = Annotated[StrictInt, Field(ge=0, le=MAX_AMOUNT)]
Quantity = Annotated[StrictInt, Field(ge=1, le=10**9)]


def _vat(value: Decimal | None) -> Decimal | None:
    if value is not None and not 0 <= value <= 1:
        raise ValueError("vat is a fraction between 0 and 1 (0.25 = 25 %)")
    return value


Vat = Annotated[ExactDecimal, AfterValidator(_vat)]


def _local(value: str) -> str:
    if not is_local_datetime(value):
        raise ValueError(f"Use one of {FORMATS_TEXT}")
    return value


LocalDateTime = Annotated[str, AfterValidator(_local)]


def _iso_date(value: Any) -> date:
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("Use yyyy-MM-dd")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError("Not a valid date (yyyy-MM-dd)") from None


IsoDate = Annotated[date, BeforeValidator(_iso_date)]


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("Date-times need an explicit UTC offset, e.g. 2026-12-01T10:00:00+00:00")
    return value.astimezone(UTC)


AwareDateTime = Annotated[datetime, AfterValidator(_aware)]


def _country(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z]{2}", value):
        raise ValueError("country is an ISO 3166-1 alpha-2 code, e.g. DK")
    return value.upper()


Country = Annotated[str, AfterValidator(_country)]


class Request(BaseModel):
    # Unknown top-level fields are ignored (API.md).
    model_config = ConfigDict(extra="ignore", json_schema_extra=described_by(FIELDS, EXAMPLES))


class Response(BaseModel):
    model_config = ConfigDict(json_schema_extra=described_by(FIELDS, EXAMPLES))


class ListQuery(PageQuery):
    model_config = ConfigDict(extra="ignore", json_schema_extra=described_by(FIELDS, EXAMPLES))


# ---------------------------------------------------------------- customers


class CreateCustomer(Request):
    handle: Handle | None = None
    generate_handle: StrictBool = False
    email: EmailStr | None = None
    first_name: str | None = Field(default=None, max_length=255)
    last_name: str | None = Field(default=None, max_length=255)
    company: str | None = Field(default=None, max_length=255)
    address: str | None = Field(default=None, max_length=1000)
    address2: str | None = Field(default=None, max_length=1000)
    city: str | None = Field(default=None, max_length=255)
    postal_code: str | None = Field(default=None, max_length=32)
    country: Country | None = None
    vat: str | None = Field(default=None, max_length=64)
    phone: str | None = Field(default=None, max_length=64)
    locale: LocaleCode | None = Field(default=None, max_length=10)
    currency: Currency | None = None


class CustomerB(Response):
    handle: str
    id: str
    email: str | None
    first_name: str | None
    last_name: str | None
    company: str | None
    name: str
    address: str | None
    address2: str | None
    city: str | None
    postal_code: str | None
    country: str | None
    vat: str | None
    phone: str | None
    locale: str
    currency: str
    created: str


class CreateCard(Request):
    """Test gateway only: the card itself (never stored)."""

    card_number: str = Field(min_length=1, max_length=32)
    exp_month: StrictInt = Field(ge=0, le=99)
    exp_year: StrictInt = Field(ge=0, le=9999)
    cvv: str | None = Field(default=None, pattern=r"^\d{3,4}$")


class PaymentMethodB(Response):
    id: str
    state: str
    customer: str
    payment_type: str
    card_type: str
    masked_card: str
    exp_date: str
    created: str


# ---------------------------------------------------------------- plans and add-ons

ScheduleType = Literal[
    "manual", "daily", "weekly_fixedday", "month_startdate", "month_fixedday", "month_lastday"
]


class CreatePlan(Request):
    handle: Handle
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=5000)
    amount: Amount
    vat: Vat | None = None
    currency: Currency | None = None
    amount_incl_vat: StrictBool = True
    quantity: Quantity = 1
    schedule_type: ScheduleType = "manual"
    interval_length: StrictInt = Field(default=1, ge=1, le=1000)


class PlanB(Response):
    handle: str
    name: str
    description: str | None
    amount: int
    vat: float | None
    currency: str
    amount_incl_vat: bool
    quantity: int
    schedule_type: str
    interval_length: int
    state: str
    created: str


class CreateAddOn(Request):
    handle: Handle
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=5000)
    amount: Amount
    vat: Vat | None = None
    amount_incl_vat: StrictBool = True
    type: Literal["on_off", "quantity"] = "on_off"
    all_plans: StrictBool | None = None
    eligible_plans: list[Handle] = Field(default_factory=list, max_length=1000)


class AddOnB(Response):
    handle: str
    name: str
    description: str | None
    amount: int
    vat: float | None
    amount_incl_vat: bool
    type: str
    all_plans: bool
    eligible_plans: list[str]
    state: str
    created: str


# ---------------------------------------------------------------- subscriptions


class SubscriptionAddOnIn(Request):
    handle: Handle | None = None
    add_on: Handle
    quantity: Quantity | None = None
    amount: Amount | None = None


class CreateSubscription(Request):
    handle: Handle
    customer: Handle
    plan: Handle
    amount: Amount | None = None
    quantity: Quantity | None = None
    start_date: LocalDateTime | None = None
    source: str | None = Field(default=None, min_length=1, max_length=255)
    add_ons: list[SubscriptionAddOnIn] = Field(default_factory=list, max_length=100)
    cost_center: str | None = Field(default=None, max_length=255)
    purchase_order_number: str | None = Field(default=None, max_length=255)


class SubscriptionB(Response):
    handle: str
    customer: str
    plan: str
    state: str
    is_cancelled: bool
    renewing: bool
    amount: int | None
    quantity: int
    amount_incl_vat: bool
    currency: str
    timezone: str
    created: str
    activated: str
    start_date: str
    current_period_start: str
    current_period_end: str | None
    next_period_start: str | None
    cancelled_date: str | None
    expired_date: str | None
    on_hold_date: str | None
    on_hold_reason: str | None
    reactivated: str | None
    payment_method: str | None
    payment_method_added: bool
    active_payment_methods: list[str]
    subscription_add_ons: list[str]
    subscription_discounts: list[str]
    cost_center: str | None
    purchase_order_number: str | None


class SubscriptionListQuery(ListQuery):
    customer: str | None = Field(default=None, max_length=255)
    state: Literal["active", "on_hold", "expired"] | None = None


class ChangePaymentMethod(Request):
    source: str = Field(min_length=1, max_length=255)


class CreateSubscriptionDiscount(Request):
    handle: Handle | None = None
    discount: Handle | None = None
    coupon: str | None = Field(default=None, min_length=1, max_length=100)


class SubscriptionDiscountB(Response):
    handle: str
    subscription: str
    discount: str
    coupon: str | None
    state: str
    name: str
    description: str | None
    amount: int | None
    percentage: float | None
    apply_to: list[str]
    count: int
    invoices: list[str]
    fixed_count: int | None
    fixed_period: int | None
    fixed_period_unit: str | None
    created: str


# ---------------------------------------------------------------- additional costs, credits


class CreateAdditionalCost(Request):
    handle: Handle
    subscription: Handle
    ordertext: str = Field(min_length=1, max_length=512)
    amount: Amount
    quantity: Quantity = 1
    vat: Vat | None = None
    amount_incl_vat: StrictBool = True


class AdditionalCostB(Response):
    handle: str
    subscription: str
    ordertext: str
    amount: int
    quantity: int
    vat: float | None
    amount_incl_vat: bool
    state: Literal["pending", "transferred", "cancelled"]
    invoice: str | None
    created: str


class CreateCredit(Request):
    handle: Handle
    subscription: Handle
    amount: StrictInt = Field(gt=0, le=MAX_AMOUNT)
    text: str | None = Field(default=None, max_length=1024)
    valid_from: IsoDate | None = None


class CreditInvoiceB(Response):
    invoice: str
    amount: int
    created: str


class CreditB(Response):
    handle: str
    subscription: str
    amount: int
    pending_amount: int
    text: str | None
    state: Literal["pending", "transferred", "cancelled"]
    valid_from: str | None
    credit_invoices: list[CreditInvoiceB]
    created: str


class ListBySubscriptionQuery(ListQuery):
    subscription: str | None = Field(default=None, max_length=255)


# ---------------------------------------------------------------- discounts and coupons

ApplyTo = Literal["all", "plan", "add_on", "additional_cost", "ondemand"]


def _all() -> list[ApplyTo]:
    return ["all"]


class CreateDiscount(Request):
    handle: Handle
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=5000)
    amount: StrictInt | None = Field(default=None, ge=1, le=MAX_AMOUNT)
    percentage: ExactDecimal | None = None
    apply_to: list[ApplyTo] = Field(default_factory=_all, min_length=1, max_length=5)
    fixed_count: StrictInt | None = Field(default=None, ge=1, le=10**6)
    fixed_period: StrictInt | None = Field(default=None, ge=1, le=10**6)
    fixed_period_unit: Literal["days", "months"] | None = None


class DiscountB(Response):
    handle: str
    name: str
    description: str | None
    amount: int | None
    percentage: float | None
    apply_to: list[str]
    fixed_count: int | None
    fixed_period: int | None
    fixed_period_unit: str | None
    state: str
    created: str


class CreateCoupon(Request):
    handle: Handle
    code: str = Field(min_length=1, max_length=100, pattern=HANDLE_PATTERN)
    name: str = Field(min_length=1, max_length=255)
    discount: Handle
    max_redemptions: StrictInt | None = Field(default=None, ge=1, le=10**9)


class CouponB(Response):
    handle: str
    code: str
    name: str
    discount: str
    state: str
    redemptions: int
    max_redemptions: int | None
    created: str


# ---------------------------------------------------------------- usage


class CreateMetric(Request):
    code: Handle
    name: str = Field(min_length=1, max_length=255)
    aggregation: Literal["count", "sum", "max"] = "sum"


class MetricB(Response):
    code: str
    name: str
    aggregation: str
    created: str


class TierIn(Request):
    up_to: StrictInt | None = Field(default=None, ge=1, le=10**15)
    unit_amount: ExactDecimal


class CreateCharge(Request):
    metric: Handle
    name: str | None = Field(default=None, max_length=255)
    unit_amount: ExactDecimal | None = None
    tiers: list[TierIn] | None = Field(default=None, min_length=1, max_length=50)
    vat: Vat | None = None
    amount_incl_vat: StrictBool = True


class TierB(Response):
    up_to: int | None
    unit_amount: float


class ChargeB(Response):
    id: str
    plan: str
    metric: str
    name: str
    unit_amount: float
    tiers: list[TierB] | None
    vat: float | None
    amount_incl_vat: bool
    created: str


class CreateUsage(Request):
    transaction_id: str = Field(min_length=1, max_length=255)
    subscription: Handle
    metric: Handle
    value: ExactDecimal
    timestamp: AwareDateTime | None = None
    properties: dict[str, Any] | None = None


class UsageB(Response):
    id: str
    transaction_id: str
    subscription: str
    metric: str
    value: float
    timestamp: str
    properties: dict[str, Any] | None
    invoice: str | None
    created: str


class UsageListQuery(ListQuery):
    subscription: str | None = Field(default=None, max_length=255)
    metric: str | None = Field(default=None, max_length=255)
