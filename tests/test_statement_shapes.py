"""Shapes of the hot PostgreSQL statements (no database needed: compiled, not run).

psycopg keeps the parsed form of a statement (where its parameters go) only for texts of
at most 4096 bytes with at most 50 parameters; a longer one is parsed again on every
execution. The one-off create's single statement (invoice, lines and audit record) once
had 56 parameters and cost ~0.1-0.2 ms of parsing per request, finalize's first read once
had 4 999 bytes; they must stay cacheable.
"""

from __future__ import annotations

import uuid

import psycopg._queries as psycopg_queries
from sqlalchemy.dialects import postgresql

from billing_app.audit.service import _append_with
from billing_app.customers.models import Wallet
from billing_app.invoices import service as invoices

LIMIT_BYTES = getattr(psycopg_queries, "MAX_CACHED_STATEMENT_LENGTH", 4096)
LIMIT_PARAMS = getattr(psycopg_queries, "MAX_CACHED_STATEMENT_PARAMS", 50)


def _compiled(statement):
    return statement.compile(dialect=postgresql.psycopg.dialect())


def test_one_off_create_statement_stays_cacheable_by_psycopg():
    writes = tuple(stmt for stmt, _ in invoices.invoice_writes(_example_invoice(), []))
    compiled = _compiled(_append_with(writes))
    assert len(str(compiled).encode()) <= LIMIT_BYTES
    assert len(compiled.params) <= LIMIT_PARAMS


def test_finalize_statements_stay_cacheable_by_psycopg():
    """Finalize's read (invoice, issuer, customer, lines as JSON), its one write statement
    (`finalize_pg`), and the audit statement of the write in several statements (with the
    invoice's UPDATE as the guard, and the PDF's due row)."""
    from billing_app.documents.snapshot import _INSERT_DUE
    from billing_app.invoices import finalize_pg

    audit = _append_with((invoices._ISSUE_UPDATE, _INSERT_DUE), 0)
    for statement in (invoices._ISSUE_READ_WITH_LINES, finalize_pg._ISSUE.statement, audit):
        compiled = _compiled(statement)
        assert len(str(compiled).encode()) <= LIMIT_BYTES
        assert len(compiled.params) <= LIMIT_PARAMS


def test_composed_audit_statement_is_built_once_per_combination():
    writes = (invoices._INSERT_INVOICE_PARAMS, invoices._INSERT_LINES_JSON)
    assert _append_with(writes) is _append_with(writes)


def _example_invoice():
    from types import SimpleNamespace

    return SimpleNamespace(**invoices._NEW_INVOICE_DEFAULTS)


def test_precompiled_stores_what_sqlalchemy_stores():
    """`Precompiled` (SQLite's hot writes) binds every value as SQLAlchemy's own execute
    does: the two rows read back raw are equal, None JSON included; a Python-side default
    it cannot apply is refused, not stored as NULL."""
    import uuid
    from datetime import UTC, datetime
    from decimal import Decimal

    import pytest
    from sqlalchemy import (
        JSON,
        Column,
        Integer,
        MetaData,
        Table,
        bindparam,
        create_engine,
        insert,
        select,
    )

    from billing_app.db import DecimalText, Precompiled, UTCDateTime, utcnow

    table = Table(
        "t",
        MetaData(),
        Column("n", Integer, primary_key=True),
        Column("u", invoices.Invoice.__table__.c.id.type),
        Column("at", UTCDateTime),
        Column("amount", DecimalText),
        Column("doc", JSON),
        Column("touched", UTCDateTime, onupdate=utcnow),
    )
    engine = create_engine("sqlite://")
    table.metadata.create_all(engine)
    row = {
        "u": uuid.UUID("01234567-89ab-7def-8123-456789abcdef"),
        "at": datetime(2026, 11, 22, 1, 2, 3, tzinfo=UTC),
        "amount": Decimal("12.500"),
        "doc": None,
        "touched": None,
    }
    keys = [*row, "n"]
    with engine.begin() as conn:
        conn.execute(insert(table), row | {"n": 1})
        Precompiled(insert(table), column_keys=keys).execute(conn, row | {"n": 2})
        stored = conn.exec_driver_sql("SELECT u, at, amount, doc, touched FROM t ORDER BY n").all()
        assert stored[0] == stored[1]
        assert stored[0][3] == "null"  # JSON None, as SQLAlchemy writes it
        touch = table.update().where(table.c.n == 1).values(amount=Decimal(1))
        with pytest.raises(KeyError, match="touched"):
            Precompiled(touch).execute(conn, {})
        assert conn.execute(select(table.c.amount).where(table.c.n == 1)).scalar_one() == 12.5
        # A parameter with a value of its own: the given one when given, else its own,
        # whether or not earlier runs gave every parameter.
        tagged = Precompiled(
            insert(table).values(
                n=bindparam("n"), amount=bindparam("amount", Decimal("7.5"), required=False)
            )
        )
        tagged.execute(conn, {"n": 3, "amount": Decimal("0.1")})
        tagged.execute(conn, {"n": 4})
        tagged.execute(conn, {"n": 5, "amount": Decimal(2)})
        tagged.execute(conn, [{"n": 6, "amount": Decimal(3)}, {"n": 7}])
        amounts = conn.execute(select(table.c.n, table.c.amount).where(table.c.n > 2)).all()
        expected = [(3, "0.1"), (4, "7.5"), (5, "2"), (6, "3"), (7, "7.5")]
        assert sorted(amounts) == [(n, Decimal(text)) for n, text in expected]


def test_precompiled_inside_a_transaction_counts_and_raises_like_sqlalchemy(database_url):
    """Inside a transaction `Precompiled` runs on the driver's cursor (SQLite's positional
    and PostgreSQL's named parameters): the cursor events still see the statement,
    RETURNING rows read by name, and a constraint violation is SQLAlchemy's
    IntegrityError (what the services catch)."""
    import uuid
    from datetime import UTC, datetime
    from decimal import Decimal

    import pytest
    from sqlalchemy import (
        Column,
        Integer,
        MetaData,
        String,
        Table,
        Uuid,
        create_engine,
        event,
        insert,
        select,
    )
    from sqlalchemy.exc import IntegrityError

    from billing_app.db import DecimalText, Precompiled, UTCDateTime

    table = Table(
        "precompiled_u",
        MetaData(),
        Column("n", Integer, primary_key=True),
        Column("s", String),
        Column("u", Uuid),
        Column("amount", DecimalText),
        Column("at", UTCDateTime),
    )
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    table.metadata.create_all(engine)
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    keys = ["n", "s", "u", "amount", "at"]
    add = Precompiled(insert(table).returning(table.c.n, table.c.s), column_keys=keys)
    values = {
        "u": uuid.UUID("01234567-89ab-7def-8123-456789abcdef"),
        "amount": Decimal("0.250"),
        "at": datetime(2026, 11, 22, 3, 4, 5, tzinfo=UTC),
    }
    try:
        with engine.connect() as conn:
            with conn.begin():
                row = add.execute(conn, {"n": 1, "s": "one"} | values).one()
                assert (row.n, row.s) == (1, "one")
                assert len(seen) == 1 and seen[0].startswith("INSERT INTO precompiled_u")
                # Reads come back typed as SQLAlchemy's own rows (uuid, Decimal, aware time).
                read = Precompiled(select(table)).execute(conn, {}).one()
                assert tuple(read) == tuple(conn.execute(select(table)).one())
                assert read._mapping["amount"] == Decimal("0.25") and read.at == values["at"]
                # The row type is learnt on the first single run and kept: an executemany
                # of the same statement (whose rows the driver may drop) does not teach it
                # "no rows", and the next runs still read by name.
                add.execute(conn, [{"n": 2, "s": "two"} | values, {"n": 3, "s": "3"} | values])
                again = add.execute(conn, {"n": 4, "s": "four"} | values).one()
                assert (again.n, again._mapping["s"]) == (4, "four")
                all_rows = Precompiled(select(table).order_by(table.c.n))
                assert [r.n for r in all_rows.execute(conn, {})] == [1, 2, 3, 4]
                assert [r.s for r in all_rows.execute(conn, {})] == ["one", "two", "3", "four"]
            with conn.begin(), pytest.raises(IntegrityError):
                add.execute(conn, {"n": 1, "s": "again"} | values)
    finally:
        table.drop(engine)
        engine.dispose()


def test_postgres_round_trips_of_create_and_finalize(app, api, is_postgres, tmp_path):
    """On PostgreSQL the request's connection reads in autocommit, and the one-off create
    and finalize each write with one statement, and look the API key up with their read:
    two round trips each (the key with the read, the write), no BEGIN or COMMIT. A
    finalize that applies prepaid credit writes several statements, in one transaction.
    Read off psycopg's protocol trace."""
    import pytest
    from sqlalchemy import event

    from billing_app.extensions import db

    if not is_postgres:
        pytest.skip("PostgreSQL's round trips")
    customer = api.customer()
    trace = tmp_path / "trace.txt"
    with app.app_context():
        engine = db.engine
        engine.dispose()
    out = trace.open("w")

    def traced(dbapi_connection, _record):
        dbapi_connection.pgconn.trace(out.fileno())

    event.listen(engine, "connect", traced)
    try:

        def commands(fn):
            out.flush()
            start = trace.stat().st_size
            fn()
            out.flush()
            text = trace.read_text()[start:]
            sent = [line.split("\t") for line in text.splitlines() if "\tF\t" in line]
            queries = [fields[4].strip().strip('"') for fields in sent if fields[3] == "Query"]
            # Every statement, and BEGIN and COMMIT, ends with a Sync or is a Query.
            trips = sum(fields[3] in ("Sync", "Query") for fields in sent)
            return queries, trips

        created = {}
        sent, trips = commands(lambda: created.update(api.invoice(customer["id"])))
        assert created["status"] == "draft"
        assert not [c for c in sent if c in ("BEGIN", "COMMIT")], sent
        assert trips == 2
        sent, trips = commands(lambda: api.post(f"/v1/invoices/{created['id']}/finalize"))
        assert not [c for c in sent if c in ("BEGIN", "COMMIT")], sent
        assert trips == 2
        assert api.get(f"/v1/invoices/{created['id']}").get_json()["number"] == 1

        credited = api.invoice(customer["id"])
        with app.app_context():
            db.session.add(
                Wallet(
                    account_id=api.tenant.account_id,
                    customer_id=uuid.UUID(customer["id"]),
                    currency="EUR",
                    balance_minor=100,
                )
            )
            db.session.commit()
        sent, trips = commands(lambda: api.post(f"/v1/invoices/{credited['id']}/finalize"))
        assert sent.count("BEGIN") == 1 and sent.count("COMMIT") == 1, sent
        done = api.get(f"/v1/invoices/{credited['id']}").get_json()
        assert done["number"] == 2
        assert done["prepaid_credit_amount_cents"] == "100"  # the credit applied
        assert int(done["total_cents"]) == int(credited["total_cents"]) - 100
    finally:
        event.remove(engine, "connect", traced)
        out.close()
        with app.app_context():
            db.engine.dispose()
