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
"""

from __future__ import annotations

from typing import Any

from flask import current_app, g, has_app_context
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine

from .extensions import db

_KEY = "_billing_read_connection"
_ENGINE = "billing_read_engine"


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
        conn = read_engine().connect()
        setattr(g, _KEY, conn)
    return conn


def close_read_connection(_exc: BaseException | None = None) -> None:
    """App-context teardown: return the request's read connection to the pool (on SQLite
    ending its read transaction)."""
    conn = g.pop(_KEY, None)
    if conn is not None:
        conn.close()
