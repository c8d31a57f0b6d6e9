from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text, Uuid
from sqlalchemy.orm import Mapped, deferred, mapped_column

from ..db import UTCDateTime, utcnow
from ..extensions import db


class InvoiceDocument(db.Model):  # type: ignore[name-defined]
    """The PDF of an invoice as issued: one row per invoice that has left draft.

    Finalizing writes the row (state `due`) with a snapshot of the issuer and the customer
    as they were at that moment; the PDF is rendered later, outside the finalize
    transaction, by `flask billing render-documents` or by the first download, and stored
    here with its SHA-256 (state `stored`). Every download afterwards returns these bytes.
    """

    __tablename__ = "invoice_documents"

    invoice_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("invoices.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), index=True)
    # `due` until the PDF is stored, then `stored` for good.
    state: Mapped[str] = mapped_column(String(10), default="due")
    # Issuer, customer and paper as printed (see documents.context.snapshot). None for
    # invoices finalized before documents existed: taken when the PDF is rendered.
    snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # Deferred: claiming and listing rows never drags the bytes along.
    pdf: Mapped[bytes | None] = deferred(mapped_column(LargeBinary, nullable=True))
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    size_bytes: Mapped[int | None] = mapped_column(nullable=True)
    # What rendered it, e.g. `WeasyPrint 70.0`.
    renderer: Mapped[str | None] = mapped_column(String(50), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    rendered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Worker lease: a claimed row is left alone by other workers until this passes.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        # The worker's claim query: due rows, oldest first.
        Index("ix_invoice_documents_state_created", "state", "created_at"),
    )
