from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from ..db import DecimalText, UTCDateTime, new_uuid, utcnow
from ..extensions import db


class TaxRate(db.Model):  # type: ignore[name-defined]
    """A named VAT/sales-tax rate. `rate` is a percent (19 means 19 %).

    `applied_to_organization` marks the account-wide default (at most one per account).
    Invoice lines copy the rate they used, so editing or deleting a rate never changes an
    existing invoice.
    """

    __tablename__ = "tax_rates"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), index=True)
    code: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    rate: Mapped[Decimal] = mapped_column(DecimalText)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    category: Mapped[str | None] = mapped_column(String(100), nullable=True)
    applied_to_organization: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (UniqueConstraint("account_id", "code"),)
