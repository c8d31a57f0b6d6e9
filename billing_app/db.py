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
from collections import namedtuple
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from operator import itemgetter
from typing import Any, TypeVar

from flask import g, has_app_context
from sqlalchemy import DateTime, String, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import ORMExecuteState, Session
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


@lru_cache(maxsize=4096)
def decimal_text(value: Decimal) -> str:
    """`decimal_to_str`, memoised: equal decimals have the same canonical text, and the
    same few prices, quantities and rates recur on every invoice."""
    return decimal_to_str(value)


class Precompiled:
    """A constant Core statement run without SQLAlchemy's per-execution work: compiled
    once per dialect to its SQL text, its parameter names and their bind processors, then
    run on the driver's cursor of the connection's open transaction (`_run_on_cursor`),
    firing the cursor events that count statements and raising SQLAlchemy's exceptions.
    That skips the compiled-cache lookup, the parameter construction and the execution
    context: about 50 µs a statement on SQLite and 0.1 to 0.2 ms on PostgreSQL, where the
    hot paths run several statements. Outside a transaction it begins one first, as
    SQLAlchemy would; a statement with expanding parameters goes through SQLAlchemy as
    usual. Result values get the result processors SQLAlchemy would apply; rows are named
    tuples with `_mapping`.
    """

    def __init__(self, statement: Any, column_keys: Sequence[str] | None = None):
        """`column_keys`: for an INSERT or UPDATE, the columns it sets (as SQLAlchemy's
        `execute` would take them from the first parameter set)."""
        self.statement = statement
        self.column_keys = list(column_keys) if column_keys is not None else None
        self._by_dialect: dict[str, _Compiled] = {}

    def _compiled(self, conn: Connection) -> _Compiled:
        found = self._by_dialect.get(conn.dialect.name)
        if found is None:
            compiled = self.statement.compile(dialect=conn.dialect, column_keys=self.column_keys)
            positional = compiled.positiontup is not None
            names = (
                list(compiled.positiontup or ())
                if positional
                else list(dict.fromkeys(compiled.bind_names.values()))
            )
            processors = compiled._bind_processors
            binds = compiled.binds  # by the name the statement text uses
            order = [
                # (name, processor, must the caller give it, the statement's own value)
                (name, processors.get(name), binds[name].required, binds[name].value)
                for name in names
            ]
            sql = str(compiled)
            raw = conn.dialect.name in ("sqlite", "postgresql") and "__[POSTCOMPILE_" not in sql
            # The result processors SQLAlchemy would apply (uuids, UTC times, exact decimals
            # stored as text, JSON), by position.
            results = tuple(
                column.type._cached_result_processor(conn.dialect, None)
                for column in getattr(compiled, "_result_columns", None) or ()
            )
            found = self._by_dialect[conn.dialect.name] = _Compiled(
                sql,
                order,
                positional,
                raw,
                results if any(results) else (),
                tuple(name for name, *_ in order),
                _taker([name for name, *_ in order]),
                tuple((i, process) for i, (_, process, *_) in enumerate(order) if process),
            )
        return found

    def execute(self, conn: Connection, params: dict[str, Any] | list[dict[str, Any]]) -> Any:
        """Run with `params` (a list: executemany). Every parameter the statement does
        not carry a value for must be given: no Python-side column defaults apply."""
        c = self._compiled(conn)
        if not c.raw:
            return conn.execute(self.statement, params)

        def values(row: dict[str, Any]) -> Any:
            if c.every_name[0]:
                # Every parameter given (the usual case): taken in one C call, and only
                # the values that have a bind processor go through one.
                try:
                    out = list(c.take(row))
                except KeyError:
                    c.every_name[0] = False  # some are left to the statement: as below
                else:
                    for i, process in c.processed:
                        out[i] = process(out[i])
                    if c.positional:
                        return tuple(out)
                    return dict(zip(c.names, out, strict=True))
            out = []
            for name, process, required, own in c.order:
                if required or name in row:
                    value = row[name]
                elif own is None:
                    # A Python-side default (e.g. an onupdate time): not applied here.
                    raise KeyError(f"{name}: give it (Precompiled applies no defaults)")
                else:
                    value = own
                out.append(value if process is None else process(value))
            if c.positional:
                return tuple(out)
            return dict(zip([name for name, *_ in c.order], out, strict=True))

        args: Any
        if isinstance(params, list):
            many, args = True, [values(row) for row in params]
        else:
            many, args = False, values(params)
        if not conn.in_transaction():
            conn.begin()  # as the first statement would (SQLite: the "begin" event's BEGIN)
        # executemany may drop the rows a single run gives: the shape is for single runs.
        return _run_on_cursor(conn, c.sql, args, many, c.results, None if many else c.shape)


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    order: list[tuple[str, Any, bool, Any]]
    positional: bool
    raw: bool  # may run on the driver's cursor
    results: tuple[Any, ...]  # result processors by position, () when none applies
    names: tuple[str, ...]  # the parameters, in order
    take: Callable[[dict[str, Any]], tuple[Any, ...]]  # their values from a dict
    processed: tuple[tuple[int, Any], ...]  # (position, bind processor) where there is one
    # The row type of the statement's result (None: it has none), learnt from the cursor
    # on the first run: psycopg builds a Column object per column every time
    # `cursor.description` is read, 0.3 ms for finalize's wide first read.
    shape: list[Any] = field(default_factory=list)
    # Whether callers give every parameter (until one does not).
    every_name: list[bool] = field(default_factory=lambda: [True])


def _taker(names: list[str]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """`names`' values of a dict, as a tuple (itemgetter gives a bare value for one)."""
    if len(names) == 1:
        (name,) = names
        return lambda row: (row[name],)
    if not names:
        return lambda row: ()
    return itemgetter(*names)


class _Rows:
    """What `Precompiled` answers: the rows (named tuples, with `_mapping` as SQLAlchemy's
    rows have) and the row count, with the few `Result` methods the callers use."""

    def __init__(self, rows: list[Any], rowcount: int):
        self.rows, self.rowcount = rows, rowcount

    def first(self) -> Any:
        return self.rows[0] if self.rows else None

    def one(self) -> Any:
        if len(self.rows) != 1:
            raise LookupError(f"expected one row, got {len(self.rows)}")
        return self.rows[0]

    def scalar_one(self) -> Any:
        return self.one()[0]

    def one_or_none(self) -> Any:
        return self.one() if self.rows else None

    def all(self) -> list[Any]:
        return self.rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self.rows)


@lru_cache(maxsize=64)
def _row_type(names: tuple[str, ...]) -> Any:
    base = namedtuple("Row", names)  # type: ignore[misc]
    return type("Row", (base,), {"__slots__": (), "_mapping": property(base._asdict)})


def _run_on_cursor(
    conn: Connection,
    sql: str,
    args: Any,
    many: bool,
    results: tuple[Any, ...] = (),
    shape: list[Any] | None = None,
) -> _Rows:
    """Inside the connection's open transaction: run on a cursor of its driver
    connection, as SQLAlchemy would, minus its execution context (`on_driver_cursor`).
    Rows are named tuples with the result processors applied. `shape`: where a constant
    statement keeps its row type once known (empty until the first run)."""

    def read(cursor: Any) -> _Rows:
        if shape:
            make = shape[0]
        else:
            description = cursor.description
            make = _row_type(tuple(d[0] for d in description)) if description else None
            if shape is not None:
                shape.append(make)
        rows: list[Any] = list(cursor.fetchall()) if make is not None else []
        if rows:
            if results:
                rows = [
                    make(*[v if p is None else p(v) for p, v in zip(results, row, strict=True)])
                    for row in rows
                ]
            else:
                rows = [make(*row) for row in rows]
        return _Rows(rows, cursor.rowcount)

    return on_driver_cursor(conn, sql, args, many, read)


def on_driver_cursor(
    conn: Connection, sql: str, args: Any, many: bool, read: Callable[[Any], _T]
) -> _T:
    """Run `sql` on a cursor of the connection's driver connection and return what `read`
    takes from that cursor. The cursor events still fire (statement counts in tests and
    benches), and driver errors are raised as SQLAlchemy's (an IntegrityError stays one).
    The caller sees to the transaction."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    events = conn._has_events or conn.engine._has_events
    try:
        if events:
            for fn in conn.dispatch.before_cursor_execute:
                sql, args = fn(conn, cursor, sql, args, None, many)
        if many:
            cursor.executemany(sql, args)
        else:
            cursor.execute(sql, args)
        result = read(cursor)
        if events:
            conn.dispatch.after_cursor_execute(conn, cursor, sql, args, None, many)
    except conn.dialect.loaded_dbapi.Error as exc:
        raise sa_exc.DBAPIError.instance(
            sql, args, exc, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect
        ) from exc
    finally:
        cursor.close()
    return result


@lru_cache(maxsize=256)
def precompiled(statement: Any) -> Precompiled:
    """The `Precompiled` of a module-level statement, made once."""
    return Precompiled(statement)


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
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        _run_on_cursor(conn, _BEGIN[mode], (), False)


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


_REQUEST_CONNECTION = "_billing_core_connection"


@contextmanager
def core_connection() -> Iterator[Connection]:
    """A Core connection for the hot paths (one-off create and finalize, subscription
    invoices, API key lookup): no ORM session, no unit of work, a fraction of their CPU
    cost. `core_write` opens the write transaction on it.

    SQLite: a pooled connection per use; reads run in an implicit read transaction that
    `core_write` ends before it takes the write lock (BEGIN IMMEDIATE).

    PostgreSQL: one connection per request (kept in `flask.g`, closed at teardown), in
    autocommit mode: the key lookup and the reads run without a BEGIN (at READ COMMITTED
    each statement takes its own snapshot in a transaction or not, so they read what they
    would read in one), and `core_write` sends BEGIN for a write of several statements.
    The one-off create's write is one statement, a transaction by itself: its request is
    three round trips (key, read, write) instead of five.

    Called inside a session write transaction (a service composing others), it joins that
    transaction instead: the session's pending changes are flushed first, and
    `core_write` neither begins nor commits.
    """
    session = _existing_session()
    if session is not None and session.info.get("write_depth", 0):
        session.flush()
        conn = session.connection()
        conn.info["joined"] = conn.info.get("joined", 0) + 1
        try:
            yield conn
        finally:
            conn.info["joined"] -= 1
        return
    engine = db.engine
    if engine.dialect.name != "sqlite" and has_app_context():
        conn = g.get(_REQUEST_CONNECTION)
        if conn is None or conn.closed:
            # Autocommit: the reads need no BEGIN round trip, and a write of one statement
            # (the one-off create) is its own transaction; `core_write` begins one for more.
            conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            setattr(g, _REQUEST_CONNECTION, conn)
        yield conn
        return
    with engine.connect() as conn:
        yield conn


def close_request_connection(_exc: BaseException | None = None) -> None:
    """App-context teardown: return the request's Core connection (rolling back whatever
    it left open)."""
    conn = g.pop(_REQUEST_CONNECTION, None)
    if conn is not None:
        conn.close()


@contextmanager
def core_write(conn: Connection, *, one_statement: bool = False) -> Iterator[Connection]:
    """One write transaction on `conn`, committed at the end and rolled back on any error;
    inside a joined session transaction, just that one. SQLite: the read transaction is
    ended and the write starts with BEGIN IMMEDIATE. PostgreSQL: the request's connection
    is in autocommit mode (see core_connection), so BEGIN is sent here, unless the caller
    writes `one_statement` only: a single statement is a transaction by itself, and its
    BEGIN and COMMIT would be two round trips for nothing."""
    if conn.info.get("joined"):
        yield conn
        return
    if conn.dialect.name != "sqlite":
        if not conn.in_transaction():
            conn.begin()
        dbapi_connection: Any = conn.connection.dbapi_connection
        if not one_statement and dbapi_connection.autocommit:
            # Not through the cursor events: it is the BEGIN psycopg would send itself.
            dbapi_connection.execute("BEGIN")
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()
        return
    if conn.in_transaction():
        conn.rollback()
    conn.execution_options(sqlite_begin="IMMEDIATE")
    try:
        with conn.begin():
            yield conn
    finally:
        conn.execution_options(sqlite_begin="DEFERRED")
    # The ORM session's read transaction, if the request opened one, still shows SQLite's
    # snapshot from before this write: end it, so what the request reads next includes it.
    session = _existing_session()
    if session is not None and session.in_transaction() and not session.info.get("write_depth"):
        session.commit()


def _existing_session() -> Session | None:
    """The request's ORM session if it has one; None rather than making one (the hot Core
    paths need none, and making and removing it costs every request)."""
    registry = db.session.registry
    return registry() if registry.has() else None


@event.listens_for(Session, "do_orm_execute")
def _locked_reads_are_fresh(state: ORMExecuteState) -> None:
    """A row read with FOR UPDATE must show what is stored now, not what this session
    loaded before it took the lock: without this, an object already in the identity map
    would keep its old attributes and a check made under the lock would be made on stale
    data (two settles of one invoice could both see it unpaid)."""
    if state.is_select and getattr(state.statement, "_for_update_arg", None) is not None:
        state.update_execution_options(populate_existing=True)
