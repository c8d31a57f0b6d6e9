"""Append-only audit trail with a per-account hash chain: the one home of the audit
record and its hash.

Who did it comes from `actor_context`, set once per request by the door (API key or
signed-in user) and read here, so services record actors without ever seeing a request.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from ..accounts.models import Account
from ..db import utcnow
from ..extensions import db
from .models import AuditRecord

GENESIS = "0" * 64


@dataclass(frozen=True)
class Actor:
    type: str  # "api_key", "user" or "system"
    id: str | None = None
    request_id: str | None = None


SYSTEM = Actor("system")
_actor: ContextVar[Actor] = ContextVar("audit_actor", default=SYSTEM)


@contextmanager
def acting_as(actor: Actor) -> Iterator[None]:
    token = _actor.set(actor)
    try:
        yield
    finally:
        _actor.reset(token)


def set_actor(actor: Actor) -> None:
    _actor.set(actor)


def current_actor() -> Actor:
    return _actor.get()


def jsonable(value: Any) -> Any:
    """Plain JSON values for before/after snapshots (exact decimals as strings)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _digest(prev_hash: str, record: dict[str, Any]) -> str:
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


_FIELDS = (
    "account_id",
    "seq",
    "actor_type",
    "actor_id",
    "action",
    "object_type",
    "object_id",
    "before",
    "after",
    "request_id",
    "created_at",
)


def _content(rec: AuditRecord) -> dict[str, Any]:
    """The hashed content of a record."""
    out = {name: getattr(rec, name) for name in _FIELDS}
    out["account_id"] = str(out["account_id"])
    out["created_at"] = out["created_at"].isoformat()
    return out


def record(
    account_id: uuid.UUID,
    action: str,
    object_type: str,
    object_id: Any,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditRecord:
    """Append one record to the account's chain, inside the caller's write transaction.

    The account row is locked (`SELECT ... FOR NO KEY UPDATE`) to take the next sequence
    number and the chain head, so concurrent writers of one account append one after the
    other; the lock is held until commit, so call it last in a transaction (every writer
    takes the account last). The hash is SHA-256 over the previous head and the record's
    canonical content (`_digest`), computed here in Python, and becomes the account's new
    head; `verify_chain` recomputes it the same way.
    """
    actor = current_actor()
    # FOR NO KEY UPDATE (what the UPDATE of the head takes anyway): it does not wait for
    # the KEY SHARE locks that inserts referencing the account hold, as FOR UPDATE would
    # (two writers of one account would deadlock).
    account = db.session.scalars(
        select(Account)
        .where(Account.id == account_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    ).one()
    entry = AuditRecord(
        account_id=account_id,
        seq=account.audit_seq + 1,
        actor_type=actor.type,
        actor_id=actor.id,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        before=jsonable(before) if before is not None else None,
        after=jsonable(after) if after is not None else None,
        request_id=actor.request_id,
        created_at=utcnow(),
        prev_hash=account.audit_head,
    )
    entry.hash = _digest(account.audit_head, _content(entry))
    account.audit_seq = entry.seq
    account.audit_head = entry.hash
    db.session.add(entry)
    return entry


def verify_chain(account_id: uuid.UUID) -> int | None:
    """The sequence number of the first record that does not match its chain, or None."""
    prev = GENESIS
    expected_seq = 1
    rows = db.session.scalars(
        select(AuditRecord)
        .where(AuditRecord.account_id == account_id)
        .order_by(AuditRecord.seq)
        # Read what is stored now, not what this session may have cached.
        .execution_options(populate_existing=True)
    )
    for rec in rows:
        if (
            rec.seq != expected_seq
            or rec.prev_hash != prev
            or rec.hash != _digest(prev, _content(rec))
        ):
            return expected_seq
        prev = rec.hash
        expected_seq += 1
    head = db.session.execute(
        select(Account.audit_seq, Account.audit_head).where(Account.id == account_id)
    ).one()
    if head.audit_seq != expected_seq - 1 or head.audit_head != prev:
        return expected_seq
    return None


def history(account_id: uuid.UUID, object_type: str, object_id: Any) -> list[AuditRecord]:
    return list(
        db.session.scalars(
            select(AuditRecord)
            .where(
                AuditRecord.account_id == account_id,
                AuditRecord.object_type == object_type,
                AuditRecord.object_id == str(object_id),
            )
            .order_by(AuditRecord.seq)
        )
    )
