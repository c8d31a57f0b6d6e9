"""The connection the browser pages read from.

Each request gets one Core connection for its reads (the signed-in user, the invoice
list, the invoice page, the entry form's lookups), kept in `flask.g` and returned to the
pool at app-context teardown. No ORM session is made for them: creating a session, its
transaction and its connection, then closing and removing it, cost a signed-in page more
than the user's query.

PostgreSQL: the connection is in autocommit mode: psycopg would otherwise send a BEGIN
before the first statement and SQLAlchemy a ROLLBACK at the end, two round trips that
cost a list page more client-side CPU than its own query. At READ COMMITTED every
statement takes its own snapshot whether or not it runs in a transaction, so reads see
exactly what they saw before. The connections come from an engine of their own
(`read_engine`), made with the app's URL and engine options and AUTOCOMMIT for good:
switching a pooled connection to autocommit on every checkout and back on its return
cost a page ~70 us. It is disposed with the app's engine.

SQLite: the reads share one read transaction (the engine's `BEGIN` event, a DEFERRED
one), so a page's statements see one snapshot, as they did on the ORM session's
connection; a `BEGIN` costs no round trip there. (An autocommit pysqlite connection is
reset on its return to the pool in a way that would undo the app's own transaction
handling, `database.install_sqlite_tuning`.) The connection only ever reads, so it never
needs SQLite's write lock; the request's writes run on their own connections
(`database.write_transaction`, `core_connection`), and no page reads here after writing.

Writes never use this connection.

The connection is kept between requests, one per thread (`_KeptConnections`): a sync
worker serves one request at a time in one thread, and taking a connection from the pool
and giving it back on every request ran more distinct code (the pool's queue and lock,
its records, their events) than a list page's query. At the end of a request only its
transaction is ended (SQLite's read transaction; on PostgreSQL nothing is open); a
connection found closed or invalidated (a lost database connection) is replaced, and
every kept connection is closed when the app's engine is disposed.
"""

from __future__ import annotations

import threading
from typing import Any

from flask import current_app, g, has_app_context
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine

from .extensions import db

_KEY = "_billing_read_connection"
_ENGINE = "billing_read_engine"
_KEPT = "billing_read_connections"


class _KeptConnections:
    """One read connection per thread, kept between requests (see the module's docstring)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.by_thread: dict[int, Connection] = {}
        self.lock = threading.Lock()

    def get(self) -> Connection:
        ident = threading.get_ident()
        conn = self.by_thread.get(ident)
        if conn is None or conn.closed or conn.invalidated:
            if conn is not None:
                conn.close()
            conn = self.engine.connect()
            with self.lock:
                self.by_thread[ident] = conn
        return conn

    def close_all(self) -> None:
        with self.lock:
            kept, self.by_thread = list(self.by_thread.values()), {}
        for conn in kept:
            if not conn.closed:
                # Closed for real, not handed back to a pool that is being disposed.
                conn.invalidate()
                conn.close()


def _kept_connections() -> _KeptConnections:
    kept: _KeptConnections | None = current_app.extensions.get(_KEPT)
    if kept is None:
        kept = _KeptConnections(read_engine())

        @event.listens_for(db.engine, "engine_disposed")
        def _close_with_the_app_engine(_engine: Engine) -> None:
            kept.close_all()

        current_app.extensions[_KEPT] = kept
    return kept


def read_engine() -> Engine:
    """The engine the request's reads connect to: on PostgreSQL one of its own in
    autocommit (made on first use, in the worker), else the app's."""
    engine: Engine = db.engine
    if engine.dialect.name != "postgresql":
        return engine
    reads: Engine | None = current_app.extensions.get(_ENGINE)
    if reads is None:
        options: dict[str, Any] = dict(current_app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}))
        options["isolation_level"] = "AUTOCOMMIT"
        reads = create_engine(engine.url, **options)
        main = engine

        @event.listens_for(main, "engine_disposed")
        def _dispose_with_the_app_engine(_engine: Engine) -> None:
            reads.dispose()

        current_app.extensions[_ENGINE] = reads
    return reads


def read_connection() -> Connection:
    """The request's read connection (see the module's docstring)."""
    if not has_app_context():
        return db.session.connection()
    conn: Connection | None = g.get(_KEY)
    if conn is None or conn.closed:
        conn = _kept_connections().get()
        setattr(g, _KEY, conn)
    return conn


def close_read_connection(_exc: BaseException | None = None) -> None:
    """App-context teardown: end the request's read transaction (SQLite's snapshot); the
    connection is kept for the thread's next request."""
    conn: Connection | None = g.pop(_KEY, None)
    if conn is None or conn.closed:
        return
    try:
        if conn.in_transaction() or conn.invalidated:
            conn.rollback()
    except Exception:
        # Whatever state it is in, it is not kept: the next request makes a new one.
        conn.invalidate()
        raise
