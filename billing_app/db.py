"""Database plumbing shared by every area: column types, SQLite tuning, write transactions.

SQLite runs in WAL mode with a busy timeout, and every write transaction starts with
`BEGIN IMMEDIATE`, so two writers queue for the lock instead of failing with
"database is locked" when a read transaction tries to upgrade. PostgreSQL needs none of
this: row locks (`SELECT ... FOR UPDATE`, `UPDATE ... RETURNING`) do the serialising.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import DateTime, String, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.types import TypeDecorator

from .extensions import db

_T = TypeVar("_T")


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_uuid() -> uuid.UUID:
    """A time-ordered UUID (version 7, RFC 9562): 48 bits of Unix milliseconds, then 74
    random bits. Row ids made now sort after older ones, so a new row goes onto the last
    page of its primary-key index instead of a random one: an invoice's 23 lines dirty one
    or two index pages, not 23, which every commit (SQLite's WAL, PostgreSQL's WAL and its
    full-page images) has to write."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10))
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # RFC 9562 variant
    return uuid.UUID(int=value)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes stored in UTC on every database; naive values are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class DecimalText(TypeDecorator[Decimal]):
    """Exact decimals stored as text: SQLite has no exact numeric type, and floats never
    touch money here. The text is canonical (no exponent, no trailing zeros)."""

    impl = String(64)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"DecimalText takes Decimal, got {type(value).__name__}")
        return decimal_to_str(value)

    def process_result_value(self, value: str | None, dialect: Any) -> Decimal | None:
        return None if value is None else Decimal(value)


def decimal_to_str(value: Decimal) -> str:
    """`Decimal('2.500')` -> `'2.5'`, `Decimal('1E+2')` -> `'100'`."""
    if value == 0:
        return "0"
    text = format(value.normalize(), "f")
    return text


_BEGIN = {mode: f"BEGIN {mode}" for mode in ("DEFERRED", "IMMEDIATE", "EXCLUSIVE")}


def install_sqlite_tuning(engine: Engine, busy_timeout_ms: int) -> None:
    """WAL, busy timeout, foreign keys, and BEGIN modes chosen per transaction."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own is unusable).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # SQLAlchemy's documented recipe for pysqlite, with the mode the transaction asks for.
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(_BEGIN[mode])


def is_sqlite() -> bool:
    return db.session.get_bind().dialect.name == "sqlite"


@contextmanager
def write_transaction() -> Iterator[None]:
    """One write transaction: committed at the end, rolled back on any error.

    On SQLite it starts with BEGIN IMMEDIATE (taking the write lock up front). Nested use
    joins the outer transaction. Any read transaction left open by the request (auth,
    lookups) is ended first, so the write lock is taken at a clean start.
    """
    session = db.session()
    depth = session.info.get("write_depth", 0)
    if depth:
        session.info["write_depth"] = depth + 1
        try:
            yield
        finally:
            session.info["write_depth"] = depth
        return
    if session.in_transaction():
        session.commit()
    session.info["write_depth"] = 1
    try:
        session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
        yield
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.info["write_depth"] = 0
