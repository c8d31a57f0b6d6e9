"""Request and response models of `POST /v1/subscription/{handle}/invoice` and the
dialect B invoice (seed 002, API.md)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, field_validator

from ...subscriptions.dates import FORMATS_TEXT, is_local_datetime
from ..types import ExactDecimal, StrictBool, StrictInt
from .schemas import HANDLE_PATTERN, ListQuery, Request, Response


def _local(value: str | None) -> str | None:
    if value is not None and not is_local_datetime(value):
        raise ValueError(f"Use one of {FORMATS_TEXT}")
    return value


class ServicePeriod(Request):
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None

    _check = field_validator("from_", "to")(_local)


class SettleRequest(Request):
    payment_method: str | None = None


class OrderLine(Request):
    ordertext: str = Field(min_length=1, max_length=512)
    amount: StrictInt = Field(ge=-(10**15), le=10**15)
    vat: ExactDecimal | None = None
    quantity: StrictInt = Field(default=1, ge=1, le=10**9)
    amount_incl_vat: StrictBool = True
    tax_policy: str | None = None

    @field_validator("vat")
    @classmethod
    def _vat(cls, v: Decimal | None) -> Decimal | None:
        if v is not None and not 0 <= v <= 1:
            raise ValueError("vat is a fraction between 0 and 1 (0.25 = 25 %)")
        return v


class Address(Request):
    company: str | None = None
    vat: str | None = None
    attention: str | None = None
    address: str | None = None
    address2: str | None = None
    city: str | None = None
    country: str | None = Field(default=None, min_length=2, max_length=2)
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    postal_code: str | None = None
    state_or_province: str | None = None


class ManualTransferRequest(Request):
    method: Literal["cash", "bank_transfer", "check", "other"]
    payment_date: str
    comment: str | None = None
    reference: str | None = None

    _check = field_validator("payment_date")(_local)


class SubscriptionInvoiceCreate(Request):
    handle: str = Field(min_length=1, max_length=255, pattern=HANDLE_PATTERN)
    due: str | None = None
    metadata: dict[str, Any] | None = None
    instant: StrictBool = False
    settle: SettleRequest | None = None
    plan_manual: StrictBool = False
    plan_period_from: str | None = None
    plan_period_to: str | None = None
    add_on_service_periods: dict[str, ServicePeriod] | None = None
    collect_additional_costs: StrictBool = True
    additional_cost_service_periods: dict[str, ServicePeriod] | None = None
    collect_credit: StrictBool = True
    apply_discounts: StrictBool = True
    include_unbilled_usage: StrictBool = False
    cost_center: str | None = Field(default=None, max_length=255)
    purchase_order_number: str | None = Field(default=None, max_length=255)
    order_lines: list[OrderLine] = Field(default_factory=list, max_length=100)
    billing_address: Address | None = None
    shipping_address: Address | None = None
    manual_transfer: ManualTransferRequest | None = None

    _check = field_validator("due", "plan_period_from", "plan_period_to")(_local)


class InvoiceSettle(Request):
    payment_method: str | None = None


class OrderLineResponse(Response):
    id: str
    ordertext: str
    amount: int
    vat: float | str
    quantity: int | str
    origin: str
    origin_handle: str | None
    timestamp: str
    amount_vat: int
    amount_ex_vat: int
    unit_amount: int
    unit_amount_vat: int
    unit_amount_ex_vat: int
    amount_defined_incl_vat: bool
    discounted_amount: int | None
    period_from: str | None
    period_to: str | None


class InvoiceB(Response):
    id: str
    handle: str
    customer: str
    subscription: str | None
    plan: str | None
    state: Literal["created", "pending", "dunning", "settled", "authorized", "cancelled", "failed"]
    type: str
    amount: int
    number: int | None
    currency: str
    due: str | None
    created: str
    settled: str | None
    failed: str | None
    cancelled: str | None
    discount_amount: int
    org_amount: int
    amount_vat: int
    amount_ex_vat: int
    settled_amount: int
    refunded_amount: int
    credits: list[dict[str, Any]]
    additional_costs: list[str]
    transactions: list[dict[str, Any]]
    order_lines: list[OrderLineResponse]
    period_from: str | None
    period_to: str | None
    billing_address: dict[str, Any] | None
    shipping_address: dict[str, Any] | None


class InvoiceListQuery(ListQuery):
    state: Literal["created", "pending", "dunning", "settled", "cancelled", "failed"] | None = None
    customer: str | None = None
    subscription: str | None = None
