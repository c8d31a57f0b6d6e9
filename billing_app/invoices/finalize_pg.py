"""Finalizing a draft on PostgreSQL in one statement.

`service._finalize` reads the draft and works out everything that does not depend on the
number: the totals, the state it goes to, its PDF snapshot, the audit record. What does
depend on it (the printed number and the handle, the issue time, the due date, the
record's hash) is finished by the database in the statement that takes the number, so a
finalize writes with one statement, in autocommit: no BEGIN, no COMMIT, no round trip
between taking the number and using it, and the number series is locked for that one
statement only.

The statement (`_ISSUE`), in the order its parts run:

1. `locked`: the invoice, locked, only while it is still the draft that was read (same
   state and `updated_at`). A finalize that had to wait for another writer of the invoice
   sees what that writer committed, so a draft finalized, edited or deleted meanwhile
   gives no row, and then nothing below writes anything (no number is taken).
2. `taken`: the next number of the entity's series, and the issue time read after it
   (`clock_timestamp()`), so numbers and issue times rise together.
3. `parts` / `issue`: the printed number, the handle and the printed number as JSON,
   from the entity's `NumberTemplate`: the number padded, the year and month of the issue
   time in the entity's time zone.
4. `issued`: the invoice's UPDATE. The handle is `inv-` and the printed number; if
   another invoice of the account already has it (another issuer printed the same
   number), the unique constraint refuses the statement, which then leaves nothing
   behind, and `issue` runs it again with the alternative of
   `service._handle_candidates` (a suffix from the invoice's id). Looking for the
   handle inside the statement would do it while the series is locked, and a planner
   with stale statistics read every invoice of the account for it (5 ms at 3 000).
5. `due`: the PDF row with its snapshot.
6. `head` / `moved`: the account's audit chain head, locked after the invoice (every
   writer of an invoice takes the invoice first and the account last), and moved to the
   hash of the new record, computed from `audit.Template`'s pieces.
7. The audit record itself; the statement returns the columns the number decided.

Locks are taken in the order invoice, entity, account; the statements that lock an
entity or an account in other transactions take the account last too.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, Uuid, bindparam, text
from sqlalchemy.exc import IntegrityError

from ..audit import service as audit
from ..db import Precompiled, UTCDateTime, core_write
from ..entities.service import NumberTemplate
from . import calc
from .models import PAID
from .records import TOTALS_COLUMNS

# The unique constraint of (account_id, handle) on invoices.
HANDLE_UNIQUE = "uq_invoices_account_id_handle"
# The values of the audit record's `after` that the statement writes itself.
NUMBER_MARK, PRINTED_MARK = "\x00number", "\x00invoice_number"

_ISSUE_SQL = """\
WITH locked AS (
 SELECT id FROM invoices WHERE id = :invoice AND account_id = :account
 AND state = 'draft' AND updated_at = :seen FOR UPDATE
), taken AS (
 UPDATE billing_entities SET next_invoice_number = next_invoice_number + 1
 WHERE id = :entity AND EXISTS (SELECT FROM locked)
 RETURNING next_invoice_number - 1 AS n, clock_timestamp() AS at
), parts AS (
 SELECT n, at, lpad(n::text, greatest(CAST(:width AS int), length(n::text)), :fill) AS num,
 lpad(n::text, greatest(CAST(:width AS int), length(n::text)), :handle_fill) AS hnum,
 to_char(at AT TIME ZONE :tz, 'YYYY') AS yyyy, to_char(at AT TIME ZONE :tz, 'MM') AS mm
 FROM taken
), issue AS (
 SELECT n, at,
 replace(replace(replace(:printed, chr(1), num), chr(2), yyyy), chr(3), mm) AS printed,
 replace(replace(replace(:handle, chr(1), hnum), chr(2), yyyy), chr(3), mm) AS handle,
 replace(replace(replace(:json, chr(1), num), chr(2), yyyy), chr(3), mm) AS json
 FROM parts
), issued AS (
 UPDATE invoices SET number = issue.n, invoice_number = issue.printed,
 handle = issue.handle || :handle_suffix,
 issued_at = issue.at,
 due_at = coalesce(:due_at, issue.at + make_interval(hours => 24 * CAST(:term_days AS int))),
 subtotal_minor = :subtotal_minor, discount_minor = :discount_minor,
 credit_minor = :credit_minor, net_minor = :net_minor, vat_minor = :vat_minor,
 gross_minor = :gross_minor, prepaid_credit_minor = :prepaid_credit_minor,
 total_minor = :total_minor, state = :state,
 paid_at = CASE WHEN CAST(:paid AS boolean) THEN issue.at END, updated_at = issue.at
 FROM issue WHERE invoices.id = :invoice
 RETURNING invoices.handle, invoices.number, invoices.invoice_number,
 invoices.issued_at, invoices.due_at, invoices.paid_at, issue.json
), due AS (
 INSERT INTO invoice_documents (invoice_id, account_id, state, snapshot, created_at, attempts)
 SELECT :invoice, :account, 'due', :snapshot, issued.issued_at, 0 FROM issued
), head AS (
 SELECT id, audit_seq, audit_head FROM accounts
 WHERE id = (SELECT :account FROM issued) FOR NO KEY UPDATE
), moved AS (
 UPDATE accounts SET audit_seq = head.audit_seq + 1,
 audit_head = encode(sha256(convert_to(head.audit_head || :c0 || issued.json || :c1
 || issued.number::text || :c2 || (head.audit_seq + 1)::text || '}', 'UTF8')), 'hex')
 FROM head, issued WHERE accounts.id = head.id
 RETURNING accounts.audit_seq, accounts.audit_head
)
INSERT INTO audit_records (account_id, seq, actor_type, actor_id, action, object_type,
 object_id, before, after, request_id, created_at, prev_hash, hash)
SELECT :r_account_id, moved.audit_seq, :r_actor_type, :r_actor_id, :r_action,
 :r_object_type, :r_object_id, :r_before,
 CAST(:a0 || issued.json || :a1 || issued.number::text || :a2 AS json),
 :r_request_id, :r_created_at, head.audit_head, moved.audit_head
FROM moved, head, issued
RETURNING (SELECT handle FROM issued) AS handle, (SELECT number FROM issued) AS number,
 (SELECT invoice_number FROM issued) AS invoice_number,
 (SELECT issued_at FROM issued) AS issued_at, (SELECT due_at FROM issued) AS due_at,
 (SELECT paid_at FROM issued) AS paid_at"""

_ISSUE = Precompiled(
    text(_ISSUE_SQL)
    .bindparams(
        bindparam("invoice", type_=Uuid),
        bindparam("account", type_=Uuid),
        bindparam("entity", type_=Uuid),
        bindparam("seen", type_=UTCDateTime),
        bindparam("due_at", type_=UTCDateTime),
        bindparam("snapshot", type_=JSON),
        bindparam("r_account_id", type_=Uuid),
        bindparam("r_before", type_=JSON),
        bindparam("r_created_at", type_=UTCDateTime),
    )
    .columns(
        handle=String,
        number=Integer,
        invoice_number=String,
        issued_at=UTCDateTime,
        due_at=UTCDateTime,
        paid_at=UTCDateTime,
    )
)


def issue(
    conn: Any,
    *,
    account_id: uuid.UUID,
    invoice_id: uuid.UUID,
    entity_id: uuid.UUID,
    seen_updated_at: datetime,
    template: NumberTemplate,
    timezone: str,
    handle_suffix: str,
    due_at: datetime | None,
    term_days: int,
    totals: calc.Totals,
    state: str,
    snapshot: dict[str, Any],
    record: audit.Template,
) -> Any:
    """Run the statement, a transaction by itself (twice if the handle was taken). The
    row of the columns the number decided (handle, number, invoice_number, issued_at,
    due_at, paid_at), or None if the invoice was no longer the draft that was read."""
    params: dict[str, Any] = {
        "invoice": invoice_id,
        "account": account_id,
        "entity": entity_id,
        "seen": seen_updated_at,
        "width": template.width,
        "fill": template.fill,
        "handle_fill": template.handle_fill,
        "tz": timezone if template.dated else "UTC",
        "printed": template.printed,
        "handle": template.handle,
        "json": template.json,
        "handle_suffix": handle_suffix,
        "due_at": due_at,
        "term_days": term_days,
        "state": state,
        "paid": state == PAID,
        "snapshot": snapshot,
        "c0": record.canonical[0],
        "c1": record.canonical[1],
        "c2": record.canonical[2],
        "a0": record.after[0],
        "a1": record.after[1],
        "a2": record.after[2],
    }
    for name in TOTALS_COLUMNS:
        params[name] = getattr(totals, name)
    params |= record.params
    try:
        with core_write(conn, one_statement=True):
            return _ISSUE.execute(conn, params | {"handle_suffix": ""}).first()
    except IntegrityError as exc:
        if getattr(getattr(exc.orig, "diag", None), "constraint_name", None) != HANDLE_UNIQUE:
            raise
    with core_write(conn, one_statement=True):
        return _ISSUE.execute(conn, params).first()
