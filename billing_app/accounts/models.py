from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import DecimalText, UTCDateTime, new_uuid, utcnow
from ..extensions import db


class Account(db.Model):  # type: ignore[name-defined]
    """A company using the server; the tenant every other row belongs to."""

    __tablename__ = "accounts"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(255))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    default_currency: Mapped[str] = mapped_column(String(3), default="EUR")
    # Percent, e.g. 25 for 25 %; the last level of the tax precedence (DOMAIN.md).
    default_vat_percent: Mapped[Decimal | None] = mapped_column(DecimalText, nullable=True)
    # Head of the audit hash chain; the row is locked while a record is appended.
    audit_seq: Mapped[int] = mapped_column(default=0)
    audit_head: Mapped[str] = mapped_column(String(64), default="0" * 64)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(db.Model):  # type: ignore[name-defined]
    """A person who signs in to the browser pages."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiKey(db.Model):  # type: ignore[name-defined]
    """An API key: shown once, stored as a SHA-256 hash with a visible prefix."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_uuid)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(255), default="API key")
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    account: Mapped[Account] = relationship()

    __table_args__ = (Index("ix_api_keys_account_created", "account_id", "created_at"),)


class SignInThrottle(db.Model):  # type: ignore[name-defined]
    """Failed sign-ins counted per key in a fixed window. The key is a hash of the email
    or of the client address, never the address itself. Kept in the database so that any
    number of app processes share the counters (nothing lives in a process)."""

    __tablename__ = "sign_in_throttles"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    failures: Mapped[int] = mapped_column(default=0)

    __table_args__ = (Index("ix_sign_in_throttles_window_start", "window_start"),)
