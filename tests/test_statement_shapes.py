"""Shapes of the hot PostgreSQL statements (no database needed: compiled, not run).

psycopg keeps the parsed form of a statement (where its parameters go) only for texts of
at most 4096 bytes with at most 50 parameters; a longer one is parsed again on every
execution. The one-off create's single statement (invoice, lines and audit record) once
had 56 parameters and cost ~0.1-0.2 ms of parsing per request; it must stay cacheable.
"""

from __future__ import annotations

import psycopg._queries as psycopg_queries
from sqlalchemy.dialects import postgresql

from billing_app.audit.service import _append_with
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


def test_composed_audit_statement_is_built_once_per_combination():
    writes = (invoices._INSERT_INVOICE_PARAMS, invoices._INSERT_LINES_JSON)
    assert _append_with(writes) is _append_with(writes)


def _example_invoice():
    from types import SimpleNamespace

    return SimpleNamespace(**invoices._NEW_INVOICE_DEFAULTS)
