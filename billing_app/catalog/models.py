from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from ..database import DecimalText, UTCDateTime, new_uuid, utcnow
from ..extensions import db


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
    """A priced item a line can refer to (`charge_id`): per-unit price of a metric."""

    __tablename__ = "charges"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), index=True)
    metric_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("metrics.id"), nullable=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    unit_amount: Mapped[Decimal] = mapped_column(DecimalText, default=Decimal(0))
    tax_rate_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tax_rates.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
