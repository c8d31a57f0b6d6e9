"""Append-only audit trail with a per-account hash chain.

Who did it comes from `actor_context`, set once per request by the door (API key or
signed-in user) and read here, so services record actors without ever seeing a request.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import Text, bindparam, func, insert, literal_column, select, update
from sqlalchemy import cast as sa_cast

from ..accounts.models import Account
from ..db import Precompiled, precompiled, utcnow
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


def _content(rec: Any) -> dict[str, Any]:
    """The hashed content of a record (an AuditRecord or a row mapping)."""
    get = rec.__getitem__ if isinstance(rec, dict) else rec.__getattribute__
    out = {name: get(name) for name in _FIELDS}
    out["account_id"] = str(out["account_id"])
    out["created_at"] = out["created_at"].isoformat()
    return out


_ACCOUNTS = Account.__table__
_TAKE_SEQ = (
    update(_ACCOUNTS)
    .where(_ACCOUNTS.c.id == bindparam("account"))
    .values(audit_seq=_ACCOUNTS.c.audit_seq + 1)
    .returning(_ACCOUNTS.c.audit_seq, _ACCOUNTS.c.audit_head)
)
_SET_HEAD = (
    update(_ACCOUNTS)
    .where(_ACCOUNTS.c.id == bindparam("account"))
    .values(audit_head=bindparam("head"))
)
_INSERT_RECORD = insert(AuditRecord.__table__)
_RECORD_KEYS = (*_FIELDS, "prev_hash", "hash")
_TAKE_SEQ_FAST = Precompiled(_TAKE_SEQ)
_INSERT_RECORD_FAST = Precompiled(_INSERT_RECORD, column_keys=_RECORD_KEYS)
_SET_HEAD_FAST = Precompiled(_SET_HEAD, column_keys=("audit_head",))


def record(
    account_id: uuid.UUID,
    action: str,
    object_type: str,
    object_id: Any,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    conn: Any = None,
    with_writes: Sequence[tuple[Any, dict[str, Any]]] = (),
    guard: int | None = None,
) -> Any:
    """Append one record inside the caller's write transaction (`conn`: its connection,
    when the caller already has it).

    `with_writes`: the caller's last writes, (Core INSERT/UPDATE, its parameters) pairs,
    run before the record: on PostgreSQL as part of the record's own statement
    (data-modifying CTEs: one round trip for all), elsewhere one after the other. Their
    parameter names must not be column names of `accounts` (the record's UPDATE would
    take them as SET values).

    `guard`: the index of one of those writes that has a RETURNING clause and must write
    a row (a conditional UPDATE: "only while it is still the draft that was read"). The
    record is appended only if it did, and its returned row is the answer (the columns by
    name). None means it wrote nothing and no record was appended; the caller must then
    raise, rolling the transaction back (on PostgreSQL the other writes did happen).

    The account row is locked (UPDATE ... RETURNING) to take the next sequence number and
    the chain head, so concurrent writers of one account append one after the other.
    Call it last in a transaction: the lock is held until commit. Written with Core (no ORM
    unit of work), as it is on every write path: on PostgreSQL one statement that also
    computes the hash (`_APPEND_PG`), elsewhere three (take the head, insert, move it).
    """
    conn = conn or db.session.connection()
    row = _row(account_id, action, object_type, object_id, before, after)
    if conn.dialect.name == "postgresql":
        # One statement: lock the head, hash in the database, move the head, insert.
        prefix = _canonical_without_seq(row)
        # Parameters prefixed: a key named like an accounts column (created_at) would
        # otherwise become a SET of the UPDATE in the statement.
        params = {f"r_{key}": value for key, value in row.items()}
        for _, write_params in with_writes:
            params |= write_params
        statement = _append_with(tuple(write for write, _ in with_writes), guard)
        appended = precompiled(statement).execute(conn, params | {"prefix": prefix, "suffix": "}"})
        found = appended.first()
        if found is None and guard is None:
            raise RuntimeError(f"audit record not appended for account {account_id}")
        return found
    # The three small statements (and the writes before them) without SQLAlchemy's
    # per-execution work; `Precompiled` falls back to it where it cannot run raw.
    found = None
    for index, (write, write_params) in enumerate(with_writes):
        done = precompiled(write).execute(conn, write_params)
        if index == guard:
            found = done.first()
            if found is None:
                return None
    take, insert_record, set_head = _TAKE_SEQ_FAST, _INSERT_RECORD_FAST, _SET_HEAD_FAST
    seq, prev_hash = take.execute(conn, {"account": account_id}).one()
    row["seq"] = seq
    row["prev_hash"] = prev_hash
    row["hash"] = _digest(prev_hash, _content(row))
    insert_record.execute(conn, row)
    set_head.execute(conn, {"account": account_id, "head": row["hash"]})
    return found


@dataclass(frozen=True, slots=True)
class Template:
    """A record for a PostgreSQL statement that works out some of its `after` values
    itself (`template`): its columns as `r_`-prefixed parameters (`after` left out), and
    the text of its canonical content and of its `after` split at those values. The
    statement joins the pieces with the values' JSON (`canonical` then continues with the
    record's sequence number and `}`), hashes the canonical text after the previous head
    as `_digest` does, and stores the joined `after` as the record's."""

    params: dict[str, Any]
    canonical: list[str]
    after: list[str]


def template(
    account_id: uuid.UUID,
    action: str,
    object_type: str,
    object_id: Any,
    *,
    before: dict[str, Any] | None,
    after: dict[str, Any],
    marks: Sequence[str],
) -> Template | None:
    """`Template` of the record `record` would append, where the `after` values that are
    the strings `marks` are left to the statement, in that order. None if the record's
    text holds a mark anywhere else (say, a client's request id): the caller then appends
    it with `record`."""
    row = _row(account_id, action, object_type, object_id, before, after)
    canonical = _split(_canonical_without_seq(row), marks)
    after_text = json.dumps(row["after"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    after_parts = _split(after_text, marks)
    if canonical is None or after_parts is None:
        return None
    params = {f"r_{key}": value for key, value in row.items() if key != "after"}
    return Template(params, canonical, after_parts)


def _split(text: str, marks: Sequence[str]) -> list[str] | None:
    """`text` cut at each mark's JSON (each found once, in order), or None."""
    pieces = []
    for mark in marks:
        encoded = json.dumps(mark)
        before, found, text = text.partition(encoded)
        if not found or encoded in before or encoded in text:
            return None
        pieces.append(before)
    return [*pieces, text]


def _row(
    account_id: uuid.UUID,
    action: str,
    object_type: str,
    object_id: Any,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> dict[str, Any]:
    """The record's columns but its place in the chain (seq, prev_hash, hash)."""
    actor = current_actor()
    return {
        "account_id": account_id,
        "actor_type": actor.type,
        "actor_id": actor.id,
        "action": action,
        "object_type": object_type,
        "object_id": str(object_id),
        "before": jsonable(before) if before is not None else None,
        "after": jsonable(after) if after is not None else None,
        "request_id": actor.request_id,
        "created_at": utcnow(),
    }


def _canonical_without_seq(row: dict[str, Any]) -> str:
    """The canonical text `_digest` hashes, up to where the sequence number goes: `seq`
    sorts last among the fields, so the text is this prefix, the number, and `}`."""
    content = _content(row | {"seq": 0})
    del content["seq"]
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text[:-1] + ',"seq":'


assert max(_FIELDS) == "seq", "the PostgreSQL append relies on seq sorting last"

# PostgreSQL: the whole append as one statement. `head` locks the account row (a locking
# read returns the newest committed head when it had to wait), `moved` advances the
# head to sha256(previous head + canonical record) computed by the database, and the
# record is inserted from both. The hash is the same `_digest` computes (verify_chain
# checks every record either way).
_HEAD = (
    select(_ACCOUNTS.c.id, _ACCOUNTS.c.audit_seq, _ACCOUNTS.c.audit_head)
    .where(_ACCOUNTS.c.id == bindparam("r_account_id"))
    # NO KEY UPDATE, as the UPDATE itself takes: it does not conflict with the KEY SHARE
    # locks that inserts referencing the account hold (FOR UPDATE would deadlock them).
    .with_for_update(key_share=True)
    .cte("head")
)
_NEW_HASH = func.encode(
    func.sha256(
        func.convert_to(
            _HEAD.c.audit_head
            + bindparam("prefix", type_=Text)
            + sa_cast(_HEAD.c.audit_seq + 1, Text)
            + bindparam("suffix", type_=Text),
            literal_column("'UTF8'"),
        )
    ),
    literal_column("'hex'"),
)
_MOVED = (
    update(_ACCOUNTS)
    .where(_ACCOUNTS.c.id == _HEAD.c.id)
    .values(audit_seq=_HEAD.c.audit_seq + 1, audit_head=_NEW_HASH)
    .returning(_ACCOUNTS.c.audit_seq, _ACCOUNTS.c.audit_head)
    .cte("moved")
)
_AR = AuditRecord.__table__
_BOUND = ("account_id", "actor_type", "actor_id", "action", "object_type", "object_id",
          "before", "after", "request_id", "created_at")  # fmt: skip


def _append_statement(guard: Any = None) -> Any:
    """The append (see above); with a `guard` CTE (see `record`) the record is selected
    from the guard's rows too (none: nothing inserted) and returns the guard's columns."""
    sources = _MOVED.join(_HEAD, literal_column("TRUE"))
    returning: list[Any] = [_AR.c.seq]
    if guard is not None:
        sources = sources.join(guard, literal_column("TRUE"))
        # A RETURNING may read a sibling CTE: the guard's single row.
        returning += [select(column).scalar_subquery().label(column.name) for column in guard.c]
    return (
        insert(_AR)
        .from_select(
            [*_BOUND, "seq", "prev_hash", "hash"],
            select(
                *[bindparam(f"r_{name}", type_=_AR.c[name].type) for name in _BOUND],
                _MOVED.c.audit_seq,
                _HEAD.c.audit_head,
                _MOVED.c.audit_head,
            ).select_from(sources),
        )
        .returning(*returning)
    )


_APPEND_PG = _append_statement()


@lru_cache(maxsize=64)
def _append_with(writes: tuple[Any, ...], guard: int | None = None) -> Any:
    """`_APPEND_PG` with the caller's writes as CTEs before it. Built once per combination
    (the writes are module-level statements): a statement composed anew on every call
    costs SQLAlchemy a fresh cache key, a walk of the whole statement, on every request."""
    ctes = [write.cte(f"write_{index}") for index, write in enumerate(writes)]
    statement = _APPEND_PG if guard is None else _append_statement(ctes[guard])
    for cte in ctes:
        statement = statement.add_cte(cte)
    return statement


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
