from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from ..db import DecimalText, UTCDateTime, new_uuid, utcnow
from ..extensions import db


class Plan(db.Model):  # type: ignore[name-defined]
    """What a subscription pays per period. `vat` is a fraction (0.25 = 25 %); None means
    the account default applies."""

    __tablename__ = "plans"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), index=True)
    handle: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    amount: Mapped[int] = mapped_column(default=0)
    vat: Mapped[Decimal | None] = mapped_column(DecimalText, nullable=True)
    amount_incl_vat: Mapped[bool] = mapped_column(default=True)
    quantity: Mapped[int] = mapped_column(default=1)
    currency: Mapped[str] = mapped_column(String(3))
    schedule_type: Mapped[str] = mapped_column(String(30), default="manual")
    interval_length: Mapped[int] = mapped_column(default=1)
    state: Mapped[str] = mapped_column(String(20), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("account_id", "handle"),)


class AddOn(db.Model):  # type: ignore[name-defined]
    __tablename__ = "add_ons"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), index=True)
    handle: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    amount: Mapped[int] = mapped_column(default=0)
    vat: Mapped[Decimal | None] = mapped_column(DecimalText, nullable=True)
    amount_incl_vat: Mapped[bool] = mapped_column(default=True)
    type: Mapped[str] = mapped_column(String(10), default="on_off")
    all_plans: Mapped[bool] = mapped_column(default=True)
    eligible_plans: Mapped[list[str]] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(String(20), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("account_id", "handle"),)


class Discount(db.Model):  # type: ignore[name-defined]
    """A fixed amount (minor units, in the price basis of the lines it reduces) or a
    percentage, applied to the lines whose origin is in `apply_to`."""

    __tablename__ = "discounts"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), index=True)
    handle: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    amount: Mapped[int | None] = mapped_column(nullable=True)
    percentage: Mapped[Decimal | None] = mapped_column(DecimalText, nullable=True)
    apply_to: Mapped[list[str]] = mapped_column(JSON, default=lambda: ["all"])
    fixed_count: Mapped[int | None] = mapped_column(nullable=True)
    fixed_period: Mapped[int | None] = mapped_column(nullable=True)
    fixed_period_unit: Mapped[str | None] = mapped_column(String(10), nullable=True)
    state: Mapped[str] = mapped_column(String(20), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("account_id", "handle"),)


class Coupon(db.Model):  # type: ignore[name-defined]
    """A code that attaches a discount to a subscription."""

    __tablename__ = "coupons"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), index=True)
    handle: Mapped[str] = mapped_column(String(255))
    code: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(255))
    discount_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("discounts.id"))
    max_redemptions: Mapped[int | None] = mapped_column(nullable=True)
    redemptions: Mapped[int] = mapped_column(default=0)
    state: Mapped[str] = mapped_column(String(20), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("account_id", "handle"),
        UniqueConstraint("account_id", "code"),
    )


class Metric(db.Model):  # type: ignore[name-defined]
    """A usage metric (billable metric): code and how its events aggregate."""

    __tablename__ = "metrics"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), index=True)
    code: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    aggregation: Mapped[str] = mapped_column(String(10), default="sum")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("account_id", "code"),)


class Charge(db.Model):  # type: ignore[name-defined]
    """A priced item a line can refer to (`charge_id`): a plan's per-unit price of a metric,
    optionally tiered (`tiers`: [{"up_to": int|null, "unit_amount": "decimal"}])."""

    __tablename__ = "charges"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), index=True)
    plan_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("plans.id"), nullable=True)
    metric_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("metrics.id"), nullable=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    unit_amount: Mapped[Decimal] = mapped_column(DecimalText, default=Decimal(0))
    tiers: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    vat: Mapped[Decimal | None] = mapped_column(DecimalText, nullable=True)
    amount_incl_vat: Mapped[bool] = mapped_column(default=True)
    tax_rate_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tax_rates.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
