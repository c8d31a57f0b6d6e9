"""Idempotency keys (API.md): a POST sent again with the same `Idempotency-Key` gets the
first answer again, byte for byte, and changes nothing twice.

The keys live in the database, per account, so every app process sees them. A key is
reserved (`begin`) in a transaction of its own, committed at once so that a concurrent
retry sees it; the request then runs, and `finish` stores its answer or forgets the key.
The door reads the header and turns `IdempotencyConflict` into its own answer.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from ..db import utcnow, write_transaction
from ..errors import IdempotencyConflict
from ..extensions import db
from .models import IdempotencyKey

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class StoredResponse:
    """The answer a finished request gave, kept to be replayed."""

    status: int
    body: bytes
    content_type: str


def fingerprint(method: str, path: str, body: bytes) -> str:
    """What makes two requests under one key the same request."""
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode()):
        digest.update(part)
        digest.update(b"\0")
    digest.update(body)
    return digest.hexdigest()


def begin(account_id: uuid.UUID, key: str, request_fingerprint: str) -> uuid.UUID | StoredResponse:
    """Reserve `key` for this request (the reservation's id, for `finish`), or the stored
    answer of the finished request it repeats. IdempotencyConflict ("invalid_key",
    "mismatch": another request used the key, "in_progress": the first one still runs).
    """
    if not key or len(key) > MAX_KEY_LENGTH:
        raise IdempotencyConflict(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters", "invalid_key"
        )
    now = utcnow()
    ttl = timedelta(hours=current_app.config["IDEMPOTENCY_TTL_HOURS"])
    lease = timedelta(seconds=current_app.config["IDEMPOTENCY_LEASE_SECONDS"])
    with write_transaction():
        existing = db.session.scalars(
            select(IdempotencyKey).where(
                IdempotencyKey.account_id == account_id, IdempotencyKey.key == key
            )
        ).one_or_none()
        if existing is not None and (
            existing.expires_at <= now
            or (existing.state == "running" and existing.created_at + lease <= now)
        ):
            # Expired, or abandoned by a worker that died mid-request: start afresh.
            db.session.delete(existing)
            db.session.flush()
            existing = None
        if existing is None:
            record = IdempotencyKey(
                account_id=account_id,
                key=key,
                fingerprint=request_fingerprint,
                state="running",
                created_at=now,
                expires_at=now + ttl,
            )
            db.session.add(record)
            try:
                db.session.flush()
            except IntegrityError:
                # Another request reserved the same key a moment ago (PostgreSQL).
                raise _in_progress() from None
            return record.id
    if existing.fingerprint != request_fingerprint:
        raise IdempotencyConflict(
            "This Idempotency-Key was already used with a different request", "mismatch"
        )
    if existing.state == "running":
        raise _in_progress()
    return StoredResponse(
        status=existing.response_status or 200,
        body=existing.response_body or b"",
        content_type=existing.response_content_type or "application/json",
    )


def _in_progress() -> IdempotencyConflict:
    return IdempotencyConflict(
        "A request with this Idempotency-Key is still being processed", "in_progress"
    )


def finish(reservation_id: uuid.UUID, response: StoredResponse | None) -> None:
    """Store the answer of a reserved request; with None (the request failed validation or
    the server failed) forget the key, so the client can fix and retry with the same key."""
    with write_transaction():
        if response is None:
            db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == reservation_id))
            return
        db.session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.id == reservation_id)
            .values(
                state="done",
                response_status=response.status,
                response_body=response.body,
                response_content_type=response.content_type,
            )
        )


def purge_expired() -> int:
    """Delete expired keys (the CLI's `purge-idempotency-keys`); the number deleted."""
    with write_transaction():
        result = db.session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.expires_at <= utcnow())
        )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
