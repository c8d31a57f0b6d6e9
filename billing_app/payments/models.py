from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from ..db import UTCDateTime, new_uuid, utcnow
from ..extensions import db


class PaymentMethod(db.Model):  # type: ignore[name-defined]
    """A customer's card registered with a gateway. The card number is never stored: only
    the gateway's token, the brand, a masked number and the expiry."""

    __tablename__ = "payment_methods"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"))
    handle: Mapped[str] = mapped_column(String(64), unique=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"), index=True)
    gateway: Mapped[str] = mapped_column(String(20), default="test")
    gateway_token: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(20), default="active")
    card_type: Mapped[str] = mapped_column(String(20))
    masked_card: Mapped[str] = mapped_column(String(32))
    exp_date: Mapped[str] = mapped_column(String(5))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Transaction(db.Model):  # type: ignore[name-defined]
    """A settle (or refund) of an invoice: by card through a gateway, or a manual transfer."""

    __tablename__ = "transactions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"))
    invoice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("invoices.id"), index=True)
    type: Mapped[str] = mapped_column(String(10), default="settle")
    # processing -> settled | failed
    state: Mapped[str] = mapped_column(String(12), default="processing")
    amount: Mapped[int] = mapped_column()
    currency: Mapped[str] = mapped_column(String(3))
    payment_type: Mapped[str] = mapped_column(String(20), default="card")
    payment_method_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("payment_methods.id"), nullable=True
    )
    manual_method: Mapped[str | None] = mapped_column(String(20), nullable=True)
    manual_reference: Mapped[str | None] = mapped_column(String(255), nullable=True)
    manual_comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    payment_date: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    gateway_reference: Mapped[str | None] = mapped_column(String(255), nullable=True)
    error: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        # Exactly one settlement per invoice, whatever the concurrency: the database
        # refuses a second settled settle transaction, and a second one in flight.
        Index(
            "uq_transactions_one_settlement",
            "invoice_id",
            unique=True,
            postgresql_where=text("type = 'settle' AND state = 'settled'"),
            sqlite_where=text("type = 'settle' AND state = 'settled'"),
        ),
        Index(
            "uq_transactions_one_in_flight",
            "invoice_id",
            unique=True,
            postgresql_where=text("state = 'processing'"),
            sqlite_where=text("state = 'processing'"),
        ),
    )
