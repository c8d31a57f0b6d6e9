from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import DecimalText, UTCDateTime, new_uuid, utcnow
from ..extensions import db

# One state machine (DOMAIN.md). The dialects show each state under their own name.
DRAFT, OPEN, PAID, FAILED, VOID = "draft", "open", "paid", "failed", "void"
STATES = (DRAFT, OPEN, PAID, FAILED, VOID)
DIALECT_A_STATUS = {
    DRAFT: "draft",
    OPEN: "finalized",
    PAID: "paid",
    FAILED: "finalized",
    VOID: "voided",
}
DIALECT_B_STATE = {
    DRAFT: "created",
    OPEN: "pending",
    PAID: "settled",
    FAILED: "failed",
    VOID: "cancelled",
}

ONE_OFF, SUBSCRIPTION = "one_off", "subscription"


class Invoice(db.Model):  # type: ignore[name-defined]
    __tablename__ = "invoices"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"))
    billing_entity_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("billing_entities.id"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    subscription_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("subscriptions.id"), nullable=True
    )
    handle: Mapped[str | None] = mapped_column(String(255), nullable=True)
    invoice_type: Mapped[str] = mapped_column(String(20), default=ONE_OFF)
    state: Mapped[str] = mapped_column(String(10), default=DRAFT)
    currency: Mapped[str] = mapped_column(String(3))
    # Series number (None while draft) and the printed number (provisional while draft).
    number: Mapped[int | None] = mapped_column(nullable=True)
    invoice_number: Mapped[str] = mapped_column(String(100))
    # Totals, all in minor units, stored from calc.compute_totals and nothing else.
    subtotal_minor: Mapped[int] = mapped_column(default=0)
    discount_minor: Mapped[int] = mapped_column(default=0)
    credit_minor: Mapped[int] = mapped_column(default=0)
    progressive_credit_minor: Mapped[int] = mapped_column(default=0)
    net_minor: Mapped[int] = mapped_column(default=0)
    vat_minor: Mapped[int] = mapped_column(default=0)
    gross_minor: Mapped[int] = mapped_column(default=0)
    prepaid_credit_minor: Mapped[int] = mapped_column(default=0)
    total_minor: Mapped[int] = mapped_column(default=0)
    billing_period_start: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    billing_period_end: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    invoice_metadata: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, nullable=True)
    billing_address: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    shipping_address: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    cost_center: Mapped[str | None] = mapped_column(String(255), nullable=True)
    purchase_order_number: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # Subscription invoices (dialect B): the plan billed and its service period, whether
    # it was collected instantly, and the state of automatic collection and dunning.
    plan_handle: Mapped[str | None] = mapped_column(String(255), nullable=True)
    service_period_from: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    service_period_to: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    instant: Mapped[bool] = mapped_column(default=False)
    dunning: Mapped[bool] = mapped_column(default=False)
    collect_attempts: Mapped[int] = mapped_column(default=0)
    next_collect_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    lines: Mapped[list[InvoiceLine]] = relationship(
        back_populates="invoice",
        order_by="InvoiceLine.position",
        cascade="all, delete-orphan",
        lazy="raise_on_sql",
    )

    __table_args__ = (
        # The series has no duplicates, whatever the concurrency.
        UniqueConstraint("billing_entity_id", "number"),
        UniqueConstraint("account_id", "handle"),
        Index("ix_invoices_account_created", "account_id", "created_at", "id"),
        Index("ix_invoices_account_state_created", "account_id", "state", "created_at"),
        Index("ix_invoices_account_customer_created", "account_id", "customer_id", "created_at"),
        # The browser list sorts by number and by total with keyset paging (docs/web.md).
        Index("ix_invoices_account_number", "account_id", "invoice_number", "id"),
        Index("ix_invoices_account_total", "account_id", "total_minor", "id"),
        Index("ix_invoices_collectable", "state", "next_collect_at"),
        Index("ix_invoices_subscription", "subscription_id"),
    )


class InvoiceLine(db.Model):  # type: ignore[name-defined]
    __tablename__ = "invoice_lines"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    invoice_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("invoices.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column()
    description: Mapped[str] = mapped_column(Text)
    quantity: Mapped[Decimal] = mapped_column(DecimalText)
    # Unit price in minor units, may be fractional (up to 6 decimals) and negative.
    unit_amount: Mapped[Decimal] = mapped_column(DecimalText)
    amount_minor: Mapped[int] = mapped_column()
    # VAT rate as a percent (19 = 19 %), copied onto the line when it is made.
    tax_rate: Mapped[Decimal] = mapped_column(DecimalText, default=Decimal(0))
    tax_code: Mapped[str | None] = mapped_column(String(255), nullable=True)
    amount_incl_vat: Mapped[bool] = mapped_column(default=False)
    # Display figures of this line alone; the invoice VAT comes from the per-rate sums.
    vat_minor: Mapped[int] = mapped_column(default=0)
    origin: Mapped[str] = mapped_column(String(30), default="one_off")
    origin_handle: Mapped[str | None] = mapped_column(String(255), nullable=True)
    charge_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    metric_code: Mapped[str | None] = mapped_column(String(255), nullable=True)
    period_from: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    period_to: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Dialect B: how much a discount line took off this line (set on the discounted line).
    discounted_amount: Mapped[int | None] = mapped_column(nullable=True)

    invoice: Mapped[Invoice] = relationship(back_populates="lines")
