from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from ..db import DecimalText, UTCDateTime, new_uuid, utcnow
from ..extensions import db

ACTIVE, ON_HOLD, EXPIRED = "active", "on_hold", "expired"
PENDING, TRANSFERRED, CANCELLED = "pending", "transferred", "cancelled"


class Subscription(db.Model):  # type: ignore[name-defined]
    __tablename__ = "subscriptions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), index=True)
    handle: Mapped[str] = mapped_column(String(255))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"), index=True)
    plan_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("plans.id"))
    state: Mapped[str] = mapped_column(String(10), default=ACTIVE)
    is_cancelled: Mapped[bool] = mapped_column(default=False)
    # Price override per unit (minor units) and quantity of the plan.
    amount: Mapped[int | None] = mapped_column(nullable=True)
    quantity: Mapped[int] = mapped_column(default=1)
    start_date: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    current_period_start: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    current_period_end: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    payment_method_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("payment_methods.id"), nullable=True
    )
    cost_center: Mapped[str | None] = mapped_column(String(255), nullable=True)
    purchase_order_number: Mapped[str | None] = mapped_column(String(255), nullable=True)
    on_hold_reason: Mapped[str | None] = mapped_column(String(20), nullable=True)
    on_hold_date: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancelled_date: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    expired_date: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reactivated_date: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("account_id", "handle"),)


class SubscriptionAddOn(db.Model):  # type: ignore[name-defined]
    __tablename__ = "subscription_add_ons"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE"), index=True
    )
    handle: Mapped[str] = mapped_column(String(255))
    add_on_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("add_ons.id"))
    quantity: Mapped[int] = mapped_column(default=1)
    amount: Mapped[int | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("subscription_id", "handle"),)


class SubscriptionDiscount(db.Model):  # type: ignore[name-defined]
    """A discount attached to a subscription; `invoice_count` counts invoices it reduced."""

    __tablename__ = "subscription_discounts"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), index=True)
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE"), index=True
    )
    handle: Mapped[str] = mapped_column(String(255))
    discount_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("discounts.id"))
    coupon_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("coupons.id"), nullable=True)
    state: Mapped[str] = mapped_column(String(20), default="active")
    invoice_count: Mapped[int] = mapped_column(default=0)
    invoice_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("subscription_id", "handle"),)


class AdditionalCost(db.Model):  # type: ignore[name-defined]
    __tablename__ = "additional_costs"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"))
    handle: Mapped[str] = mapped_column(String(255))
    subscription_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subscriptions.id"))
    ordertext: Mapped[str] = mapped_column(String(512))
    amount: Mapped[int] = mapped_column()
    quantity: Mapped[int] = mapped_column(default=1)
    vat: Mapped[Decimal | None] = mapped_column(DecimalText, nullable=True)
    amount_incl_vat: Mapped[bool] = mapped_column(default=True)
    state: Mapped[str] = mapped_column(String(20), default=PENDING)
    invoice_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("invoices.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("account_id", "handle"),
        Index("ix_additional_costs_subscription_state", "subscription_id", "state"),
    )


class Credit(db.Model):  # type: ignore[name-defined]
    """Money owed back to a subscriber; consumed (possibly partly) by invoices."""

    __tablename__ = "credits"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"))
    handle: Mapped[str] = mapped_column(String(255))
    subscription_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subscriptions.id"))
    amount: Mapped[int] = mapped_column()
    pending_amount: Mapped[int] = mapped_column()
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    valid_from: Mapped[date | None] = mapped_column(Date, nullable=True)
    state: Mapped[str] = mapped_column(String(20), default=PENDING)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("account_id", "handle"),
        Index("ix_credits_subscription_state", "subscription_id", "state"),
    )


class CreditUse(db.Model):  # type: ignore[name-defined]
    """How much of a credit one invoice consumed."""

    __tablename__ = "credit_uses"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    credit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("credits.id"), index=True)
    invoice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("invoices.id"), index=True)
    amount: Mapped[int] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UsageEvent(db.Model):  # type: ignore[name-defined]
    __tablename__ = "usage_events"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"))
    transaction_id: Mapped[str] = mapped_column(String(255))
    subscription_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subscriptions.id"))
    metric_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("metrics.id"))
    value: Mapped[Decimal] = mapped_column(DecimalText)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    invoice_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("invoices.id"), nullable=True)
    properties: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("account_id", "transaction_id"),
        Index("ix_usage_events_unbilled", "subscription_id", "invoice_id", "timestamp"),
    )
