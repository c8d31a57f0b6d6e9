"""The connection the browser pages read from.

On PostgreSQL each request gets one connection in autocommit mode for its reads (the
signed-in user, the invoice list, the invoice page, the entry form's lookups): psycopg
would otherwise send a BEGIN before the first statement and SQLAlchemy a ROLLBACK at the
end, two round trips that cost a list page more client-side CPU than its own query. At
READ COMMITTED every statement takes its own snapshot whether or not it runs in a
transaction, so reads see exactly what they saw before. Writes never use it: they go
through the ORM session or `database.core_connection`, each with its own transaction.

On SQLite the pages read on the ORM session's connection as before: a BEGIN costs no
round trip there, and SQLAlchemy resets an autocommit pysqlite connection on its return
to the pool in a way that would undo the app's own transaction handling
(`database.install_sqlite_tuning`).
"""

from __future__ import annotations

from flask import g, has_app_context
from sqlalchemy.engine import Connection

from .extensions import db

_KEY = "_billing_read_connection"


def read_connection() -> Connection:
    """The request's read connection (see the module's docstring)."""
    if db.engine.dialect.name != "postgresql" or not has_app_context():
        return db.session.connection()
    conn: Connection | None = g.get(_KEY)
    if conn is None or conn.closed:
        conn = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        setattr(g, _KEY, conn)
    return conn


def close_read_connection(_exc: BaseException | None = None) -> None:
    """App-context teardown: return the request's read connection to the pool."""
    conn = g.pop(_KEY, None)
    if conn is not None:
        conn.close()
