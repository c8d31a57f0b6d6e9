"""Request and response models of dialect A (seed 000, `oneoff-api.openapi.json`).

Request models validate shape only; business rules (amount = quantity x unit price, a
non-negative total, known customers) live in the services.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    WithJsonSchema,
    field_validator,
)

from ...money import decimal_places
from ..types import (
    NUMERIC_PATTERN,
    Currency,
    ExactDecimal,
    LocaleCode,
    StrictBool,
    StrictInt,
    TimeZone,
    described_by,
)
from .descriptions import EXAMPLES, FIELDS

CentsString = Annotated[str, WithJsonSchema({"type": "string", "pattern": NUMERIC_PATTERN})]


def _aware(value: datetime | None) -> datetime | None:
    """Offset required; normalised to UTC so every response shows it as stored (+00:00)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("Date-times need an explicit UTC offset, e.g. 2026-12-01T00:00:00+00:00")
    return value.astimezone(UTC)


AwareDateTime = Annotated[datetime, AfterValidator(_aware)]


# Integers a JSON client can hold exactly (JavaScript's Number.MAX_SAFE_INTEGER); also far
# inside a 64-bit column, so no value reaches the database only to overflow there.
MAX_SAFE_INT = 2**53 - 1
# Day counts (payment terms, grace periods): a century is plenty, and keeps due-date
# arithmetic inside the calendar.
MAX_DAYS = 36500


def _contains_nul(value: Any, *, nested: bool = False) -> bool:
    """NUL in a string, or in any string of a free-form object. Lists at the top level are
    lists of models here (line_items): their objects are checked by their own model."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(
            _contains_nul(k, nested=True) or _contains_nul(v, nested=True) for k, v in value.items()
        )
    if isinstance(value, list | tuple):
        return any(
            _contains_nul(v, nested=nested) for v in value if nested or not isinstance(v, dict)
        )
    return False


class Request(BaseModel):
    # Unknown top-level fields are ignored (API.md).
    model_config = ConfigDict(extra="ignore", json_schema_extra=described_by(FIELDS, EXAMPLES))

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL text cannot hold NUL: refuse it on every database alike (a 422 naming
        # the field), instead of a 500 on PostgreSQL only.
        if _contains_nul(value):
            raise ValueError("Text may not contain NUL (\\u0000) characters")
        return value


class Response(BaseModel):
    model_config = ConfigDict(json_schema_extra=described_by(FIELDS, EXAMPLES))


class InvoiceLineItem(Request):
    """One line of a one-off invoice: amount = quantity x unit price, in minor units."""

    description: str = Field(min_length=1, max_length=1000)
    quantity: ExactDecimal
    unit_price: ExactDecimal
    amount: ExactDecimal
    charge_id: uuid.UUID | None = None
    metric_code: str | None = None
    # Extension: the line's VAT rate in percent ("19"); the first level of the precedence.
    tax_rate: ExactDecimal | None = None

    @field_validator("quantity")
    @classmethod
    def _quantity(cls, v: Decimal) -> Decimal:
        if v <= 0:
            raise ValueError("quantity must be greater than 0")
        if decimal_places(v) > 6:
            raise ValueError("quantity has at most 6 decimals")
        return v

    @field_validator("unit_price")
    @classmethod
    def _unit_price(cls, v: Decimal) -> Decimal:
        if decimal_places(v) > 6:
            raise ValueError("unit_price has at most 6 decimals (it is in minor units)")
        return v

    @field_validator("amount")
    @classmethod
    def _amount(cls, v: Decimal) -> Decimal:
        if v != v.to_integral_value():
            raise ValueError("amount is a whole number of minor units (cents)")
        return v

    @field_validator("tax_rate")
    @classmethod
    def _tax_rate(cls, v: Decimal | None) -> Decimal | None:
        if v is not None and not 0 <= v <= 100:
            raise ValueError("tax_rate is a percent between 0 and 100")
        return v


class OneOffInvoiceCreate(Request):
    """A one-off invoice, created as a draft; totals are computed by the server."""

    customer_id: uuid.UUID
    currency: Currency = Field(default="USD", min_length=3, max_length=3)
    line_items: list[InvoiceLineItem] = Field(min_length=1, max_length=500)
    due_date: AwareDateTime | None = None
    billing_entity_id: uuid.UUID | None = None


class InvoiceUpdate(Request):
    """Change a draft's due date, or move the invoice along its lifecycle with `status`."""

    status: Literal["draft", "finalized", "paid", "voided"] | None = None
    due_date: AwareDateTime | None = None
    issued_at: AwareDateTime | None = None
    paid_at: AwareDateTime | None = None


class InvoiceResponse(Response):
    """An invoice with its lines; amounts are decimal strings of minor units."""

    id: uuid.UUID
    invoice_number: str
    customer_id: uuid.UUID
    subscription_id: uuid.UUID | None
    status: str
    invoice_type: str
    billing_period_start: datetime
    billing_period_end: datetime
    subtotal_cents: CentsString
    tax_amount_cents: CentsString
    total_cents: CentsString
    prepaid_credit_amount_cents: CentsString
    coupons_amount_cents: CentsString
    progressive_billing_credit_amount_cents: CentsString
    currency: str
    line_items: list[dict[str, Any]]
    due_date: datetime | None
    issued_at: datetime | None
    paid_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ListQuery(Request):
    """Paging and ordering of a list."""

    skip: StrictInt = Field(default=0, ge=0, le=MAX_SAFE_INT)
    limit: StrictInt = Field(default=100, ge=1, le=1000)
    order_by: str | None = None


class InvoiceListQuery(ListQuery):
    """Filters, paging and ordering of the invoice list."""

    customer_id: uuid.UUID | None = None
    subscription_id: uuid.UUID | None = None
    status: Literal["draft", "finalized", "paid", "voided"] | None = None


# ---------------------------------------------------------------- customers


class CustomerCreate(Request):
    """A customer of the account."""

    external_id: str = Field(min_length=1, max_length=255)
    name: str = Field(min_length=1, max_length=255)
    email: EmailStr | None = None
    currency: Currency = Field(default="USD", min_length=3, max_length=3)
    timezone: TimeZone = Field(default="UTC", max_length=50)
    billing_metadata: dict[str, Any] = Field(default_factory=dict)
    invoice_grace_period: StrictInt = Field(default=0, ge=0, le=MAX_DAYS)
    net_payment_term: StrictInt = Field(default=30, ge=0, le=MAX_DAYS)
    # Extensions (documented in docs/api.md): tax precedence and issuer of this customer.
    tax_code: str | None = None
    billing_entity_code: str | None = None
    document_locale: LocaleCode | None = None


class CustomerUpdate(Request):
    """The customer's fields to change; omitted fields keep their value."""

    name: str | None = Field(default=None, min_length=1, max_length=255)
    email: EmailStr | None = None
    currency: Currency | None = Field(default=None, min_length=3, max_length=3)
    timezone: TimeZone | None = Field(default=None, max_length=50)
    billing_metadata: dict[str, Any] | None = None
    invoice_grace_period: StrictInt | None = Field(default=None, ge=0, le=MAX_DAYS)
    net_payment_term: StrictInt | None = Field(default=None, ge=0, le=MAX_DAYS)
    tax_code: str | None = None
    billing_entity_code: str | None = None
    document_locale: LocaleCode | None = None


class CustomerResponse(Response):
    """A customer of the account."""

    id: uuid.UUID
    external_id: str
    name: str
    email: str | None
    currency: str
    timezone: str
    billing_metadata: dict[str, Any]
    invoice_grace_period: int
    net_payment_term: int
    billing_entity_id: uuid.UUID | None = None
    created_at: datetime
    updated_at: datetime


# ---------------------------------------------------------------- billing entities


class BillingEntityCreate(Request):
    """An issuer of invoices, with its own number series."""

    code: str = Field(min_length=1, max_length=100)
    name: str = Field(min_length=1, max_length=255)
    legal_name: str | None = Field(default=None, max_length=255)
    address_line1: str | None = None
    address_line2: str | None = None
    city: str | None = None
    state: str | None = None
    country: str | None = Field(default=None, min_length=2, max_length=2)
    zip_code: str | None = None
    tax_id: str | None = None
    email: EmailStr | None = None
    currency: Currency = Field(default="USD", min_length=3, max_length=3)
    timezone: TimeZone = Field(default="UTC", max_length=50)
    document_locale: LocaleCode = Field(default="en", max_length=10)
    invoice_prefix: str | None = Field(default=None, max_length=20)
    next_invoice_number: StrictInt = Field(default=1, ge=1, le=MAX_SAFE_INT)
    invoice_grace_period: StrictInt = Field(default=0, ge=0, le=MAX_DAYS)
    net_payment_term: StrictInt = Field(default=30, ge=0, le=MAX_DAYS)
    invoice_footer: str | None = Field(default=None, max_length=1024)
    is_default: StrictBool = False
    # Extensions: printed number pattern and the entity's default tax (by code).
    number_pattern: str | None = Field(default=None, max_length=100)
    tax_code: str | None = None


class BillingEntityUpdate(Request):
    """The billing entity's fields to change; omitted fields keep their value."""

    name: str | None = Field(default=None, min_length=1, max_length=255)
    legal_name: str | None = Field(default=None, max_length=255)
    address_line1: str | None = None
    address_line2: str | None = None
    city: str | None = None
    state: str | None = None
    country: str | None = Field(default=None, min_length=2, max_length=2)
    zip_code: str | None = None
    tax_id: str | None = None
    email: EmailStr | None = None
    currency: Currency | None = Field(default=None, min_length=3, max_length=3)
    timezone: TimeZone | None = Field(default=None, max_length=50)
    document_locale: LocaleCode | None = Field(default=None, max_length=10)
    invoice_prefix: str | None = Field(default=None, max_length=20)
    next_invoice_number: StrictInt | None = Field(default=None, ge=1, le=MAX_SAFE_INT)
    invoice_grace_period: StrictInt | None = Field(default=None, ge=0, le=MAX_DAYS)
    net_payment_term: StrictInt | None = Field(default=None, ge=0, le=MAX_DAYS)
    invoice_footer: str | None = Field(default=None, max_length=1024)
    is_default: StrictBool | None = None
    number_pattern: str | None = Field(default=None, max_length=100)
    tax_code: str | None = None


class BillingEntityResponse(Response):
    """An issuer of invoices, with its own number series."""

    id: uuid.UUID
    code: str
    name: str
    legal_name: str | None
    address_line1: str | None
    address_line2: str | None
    city: str | None
    state: str | None
    country: str | None
    zip_code: str | None
    tax_id: str | None
    email: str | None
    currency: str
    timezone: str
    document_locale: str
    invoice_prefix: str | None
    next_invoice_number: int
    invoice_grace_period: int
    net_payment_term: int
    invoice_footer: str | None
    is_default: bool
    created_at: datetime
    updated_at: datetime


# ---------------------------------------------------------------- taxes


class TaxCreate(Request):
    """A tax rate of the account."""

    code: str = Field(min_length=1, max_length=255)
    name: str = Field(min_length=1, max_length=255)
    rate: ExactDecimal
    description: str | None = None
    category: str | None = Field(default=None, max_length=100)
    applied_to_organization: StrictBool = False


class TaxUpdate(Request):
    """The tax's fields to change. Existing invoices keep the rate they were made with."""

    name: str | None = Field(default=None, min_length=1, max_length=255)
    rate: ExactDecimal | None = None
    description: str | None = None
    category: str | None = Field(default=None, max_length=100)
    applied_to_organization: StrictBool | None = None


class TaxResponse(Response):
    """A tax rate of the account."""

    id: uuid.UUID
    code: str
    name: str
    rate: CentsString
    description: str | None = None
    category: str | None = None
    applied_to_organization: bool
    created_at: datetime
    updated_at: datetime


class TaxCreatedResponse(TaxResponse):
    """The tax just created, and the organisation-wide default it replaced, if any."""

    replaced_organization_tax: str | None = Field(
        description="The code of the organisation-wide tax this one replaced as the account "
        "default (`applied_to_organization`: only one tax is the default at a time); null "
        "when none was replaced."
    )


class HTTPValidationErrorItem(Response):
    loc: list[str | int]
    msg: str
    type: str


class HTTPValidationError(Response):
    """A request that failed validation: every invalid field."""

    detail: list[HTTPValidationErrorItem]


class ErrorDetail(Response):
    """Any other error."""

    detail: str
