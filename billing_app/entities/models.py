from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from ..db import UTCDateTime, new_uuid, utcnow
from ..extensions import db

DEFAULT_NUMBER_PATTERN = "{prefix}-{number:06}"


class BillingEntity(db.Model):  # type: ignore[name-defined]
    """The legal issuer printed on invoices, and owner of one invoice number series."""

    __tablename__ = "billing_entities"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), index=True)
    code: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(255))
    legal_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    address_line1: Mapped[str | None] = mapped_column(Text, nullable=True)
    address_line2: Mapped[str | None] = mapped_column(Text, nullable=True)
    city: Mapped[str | None] = mapped_column(String(255), nullable=True)
    state: Mapped[str | None] = mapped_column(String(255), nullable=True)
    country: Mapped[str | None] = mapped_column(String(2), nullable=True)
    zip_code: Mapped[str | None] = mapped_column(String(32), nullable=True)
    tax_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    timezone: Mapped[str] = mapped_column(String(50), default="UTC")
    document_locale: Mapped[str] = mapped_column(String(10), default="en")
    invoice_prefix: Mapped[str | None] = mapped_column(String(20), nullable=True)
    number_pattern: Mapped[str] = mapped_column(String(100), default=DEFAULT_NUMBER_PATTERN)
    # The number series counter: the next number this entity will give. Locked and
    # incremented in the transaction that takes a number; a rollback gives it back.
    next_invoice_number: Mapped[int] = mapped_column(default=1)
    invoice_grace_period: Mapped[int] = mapped_column(default=0)
    net_payment_term: Mapped[int] = mapped_column(default=30)
    invoice_footer: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    is_default: Mapped[bool] = mapped_column(default=False)
    default_tax_rate_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tax_rates.id", ondelete="SET NULL"), nullable=True
    )
    paper_size: Mapped[str] = mapped_column(String(10), default="A4")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (UniqueConstraint("account_id", "code"),)


class BillingEntityLogo(db.Model):  # type: ignore[name-defined]
    """The logo printed on an entity's invoices: PNG or JPEG bytes, at most 512 KB, stored
    in the database so app processes keep no files. A table of its own so that loading an
    entity (every finalize does) never drags the image along."""

    __tablename__ = "billing_entity_logos"

    billing_entity_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("billing_entities.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), index=True)
    content_type: Mapped[str] = mapped_column(String(20))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
