"""The fair floor for bench/oneoff.py: the work the spec requires of the one-off create and
finalize endpoints, written plainly with SQLAlchemy Core on the same migrated schema, and
nothing else (no ORM, no schema validation beyond the arithmetic, no idempotency, no
OpenAPI, no error negotiation).

    DATABASE_URL=... gunicorn -c gunicorn.conf.py "bench.floor_app:create_app()"

Each request is one transaction. What both routes do first:
    the API key from `Authorization: Bearer <key>`, looked up by its visible prefix joined
    to its account; its SHA-256 compared in constant time; revoked or wrong: 401.

POST /floor/invoices (body as POST /v1/invoices/one_off), then:
    the customer and the billing entity that issues the invoice (the request's, else the
    customer's, else the account's default) in one read; the tax rates that may price it
    (organisation-wide, the customer's, the entity's) in one read; the lines priced at the
    rate that applies (customer's, else entity's, else organisation-wide, else the
    account's default VAT); INSERT the invoice, INSERT its lines (one executemany);
    append the audit record (below).

POST /floor/invoices/<id>/finalize, then:
    the draft with its entity's terms and its customer's payment term (locked: FOR UPDATE
    on PostgreSQL); the next number taken from the entity's counter (UPDATE ... RETURNING,
    the row stays locked until commit); UPDATE the invoice (number, printed number,
    handle, state, issued and due dates) while it is still a draft; append the audit
    record.

The audit record: the account row's sequence taken and its chain head read in one locking
UPDATE ... RETURNING; the record's SHA-256 over the previous hash and its canonical JSON
(the format billing_app's audit chain uses: `flask billing verify-audit` checks the
floor's records too); INSERT the record; move the head.

On SQLite the engine gets billing_app's tuning (WAL, busy_timeout, synchronous=NORMAL,
foreign_keys) and every transaction starts with BEGIN IMMEDIATE (every request writes).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, request

from billing_app.db import new_uuid  # the same time-ordered row ids as the app

# The app's own tables (same columns and column types: UTC datetimes, exact decimals as
# text, time-ordered UUIDs as defaults), used with Core only.
from billing_app.models import (
    Account,
    ApiKey,
    AuditRecord,
    BillingEntity,
    Customer,
    Invoice,
    InvoiceLine,
    TaxRate,
)

ACCOUNTS = Account.__table__
API_KEYS = ApiKey.__table__
AUDIT = AuditRecord.__table__
ENTITIES = BillingEntity.__table__
CUSTOMERS = Customer.__table__
INVOICES = Invoice.__table__
LINES = InvoiceLine.__table__
TAX_RATES = TaxRate.__table__

HUNDRED = Decimal(100)


class Refused(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


def normalise_url(url: str) -> str:
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str) -> sa.Engine:
    engine = sa.create_engine(normalise_url(url))
    if engine.dialect.name == "sqlite":
        busy_ms = int(os.environ.get("SQLITE_BUSY_TIMEOUT_MS", "30000"))

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: sa.Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


# ---------------------------------------------------------------- the statements

KEY_LOOKUP = (
    sa.select(
        API_KEYS.c.id,
        API_KEYS.c.key_hash,
        API_KEYS.c.revoked_at,
        ACCOUNTS.c.id.label("account_id"),
        ACCOUNTS.c.default_vat_percent,
    )
    .select_from(API_KEYS.join(ACCOUNTS, ACCOUNTS.c.id == API_KEYS.c.account_id))
    .where(API_KEYS.c.prefix == sa.bindparam("prefix"))
)


def customer_and_entity(named_entity: bool) -> sa.Select[Any]:
    """The customer and the entity issuing its invoice: the named one, else the
    customer's, else the account's default."""
    if named_entity:
        which = ENTITIES.c.id == sa.bindparam("entity_id", type_=ENTITIES.c.id.type)
    else:
        which = sa.or_(
            ENTITIES.c.id == CUSTOMERS.c.billing_entity_id,
            sa.and_(CUSTOMERS.c.billing_entity_id.is_(None), ENTITIES.c.is_default),
        )
    return (
        sa.select(
            CUSTOMERS.c.id,
            CUSTOMERS.c.tax_rate_id,
            CUSTOMERS.c.net_payment_term,
            ENTITIES.c.id.label("entity_id"),
            ENTITIES.c.default_tax_rate_id,
        )
        .select_from(
            CUSTOMERS.join(
                ENTITIES, sa.and_(ENTITIES.c.account_id == CUSTOMERS.c.account_id, which)
            )
        )
        .where(
            CUSTOMERS.c.account_id == sa.bindparam("account_id"),
            CUSTOMERS.c.id == sa.bindparam("customer_id"),
        )
        .limit(1)
    )


CUSTOMER_AND_NAMED_ENTITY = customer_and_entity(True)
CUSTOMER_AND_ENTITY = customer_and_entity(False)

TAX_RATES_FOR = sa.select(
    TAX_RATES.c.id, TAX_RATES.c.rate, TAX_RATES.c.applied_to_organization
).where(
    TAX_RATES.c.account_id == sa.bindparam("account_id"),
    sa.or_(
        TAX_RATES.c.applied_to_organization,
        TAX_RATES.c.id.in_(sa.bindparam("ids", expanding=True)),
    ),
)

DRAFT_TO_FINALIZE = (
    sa.select(
        INVOICES.c.state,
        INVOICES.c.billing_entity_id,
        INVOICES.c.total_minor,
        INVOICES.c.vat_minor,
        INVOICES.c.currency,
        ENTITIES.c.invoice_prefix,
        ENTITIES.c.net_payment_term.label("entity_term"),
        CUSTOMERS.c.net_payment_term.label("customer_term"),
    )
    .select_from(
        INVOICES.join(ENTITIES, ENTITIES.c.id == INVOICES.c.billing_entity_id).join(
            CUSTOMERS, CUSTOMERS.c.id == INVOICES.c.customer_id
        )
    )
    .where(INVOICES.c.account_id == sa.bindparam("account_id"), INVOICES.c.id == sa.bindparam("id"))
    .with_for_update(of=INVOICES)
)

TAKE_NUMBER = (
    sa.update(ENTITIES)
    .where(ENTITIES.c.id == sa.bindparam("entity_id"))
    .values(next_invoice_number=ENTITIES.c.next_invoice_number + 1)
    .returning(ENTITIES.c.next_invoice_number - 1)
)

ISSUE = (
    sa.update(INVOICES)
    .where(INVOICES.c.id == sa.bindparam("invoice_id"), INVOICES.c.state == "draft")
    .values(
        number=sa.bindparam("number"),
        invoice_number=sa.bindparam("printed"),
        handle=sa.bindparam("handle"),
        state="open",
        issued_at=sa.bindparam("stamp"),
        due_at=sa.bindparam("due"),
        updated_at=sa.bindparam("stamp"),
    )
)

TAKE_AUDIT_SEQ = (
    sa.update(ACCOUNTS)
    .where(ACCOUNTS.c.id == sa.bindparam("account_id"))
    .values(audit_seq=ACCOUNTS.c.audit_seq + 1)
    .returning(ACCOUNTS.c.audit_seq, ACCOUNTS.c.audit_head)
)
MOVE_AUDIT_HEAD = (
    sa.update(ACCOUNTS)
    .where(ACCOUNTS.c.id == sa.bindparam("account_id"))
    .values(audit_head=sa.bindparam("head"))
)


# ---------------------------------------------------------------- the work


def authenticate(conn: sa.Connection, authorization: str | None) -> sa.Row[Any]:
    raw = (authorization or "").removeprefix("Bearer ").strip()
    prefix = raw.rsplit("_", 1)[0] if "_" in raw else ""
    key = conn.execute(KEY_LOOKUP, {"prefix": prefix}).one_or_none() if prefix else None
    digest = hashlib.sha256(raw.encode()).hexdigest()
    if key is None or key.revoked_at is not None or not hmac.compare_digest(digest, key.key_hash):
        raise Refused(401, "Invalid API key")
    return key


def append_audit(
    conn: sa.Connection,
    key: sa.Row[Any],
    action: str,
    invoice_id: uuid.UUID,
    after: dict[str, Any],
    stamp: datetime,
) -> None:
    seq, prev_hash = conn.execute(TAKE_AUDIT_SEQ, {"account_id": key.account_id}).one()
    content = {
        "account_id": str(key.account_id),
        "seq": seq,
        "actor_type": "api_key",
        "actor_id": str(key.id),
        "action": action,
        "object_type": "invoice",
        "object_id": str(invoice_id),
        "before": None,
        "after": after,
        "request_id": None,
        "created_at": stamp.isoformat(),
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256((prev_hash + canonical).encode()).hexdigest()
    conn.execute(
        sa.insert(AUDIT),
        {
            **content,
            "account_id": key.account_id,
            "created_at": stamp,
            "prev_hash": prev_hash,
            "hash": digest,
        },
    )
    conn.execute(MOVE_AUDIT_HEAD, {"account_id": key.account_id, "head": digest})


def applicable_rate(
    rates: dict[uuid.UUID, Decimal], org_rate: Decimal | None, parties: sa.Row[Any], key: Any
) -> Decimal:
    """Customer's rate, else the entity's, else the organisation-wide one, else the
    account's default VAT, else 0 (a percentage)."""
    for tax_id in (parties.tax_rate_id, parties.default_tax_rate_id):
        if tax_id in rates:
            return rates[tax_id]
    if org_rate is not None:
        return org_rate
    return key.default_vat_percent or Decimal(0)


def create_invoice(conn: sa.Connection, key: sa.Row[Any], body: dict[str, Any]) -> dict[str, Any]:
    params = {"account_id": key.account_id, "customer_id": uuid.UUID(body["customer_id"])}
    if body.get("billing_entity_id"):
        parties = conn.execute(
            CUSTOMER_AND_NAMED_ENTITY,
            {**params, "entity_id": uuid.UUID(body["billing_entity_id"])},
        ).one_or_none()
    else:
        parties = conn.execute(CUSTOMER_AND_ENTITY, params).one_or_none()
    if parties is None:
        raise Refused(404, "Customer or billing entity not found")
    ids = [i for i in (parties.tax_rate_id, parties.default_tax_rate_id) if i is not None]
    rates: dict[uuid.UUID, Decimal] = {}
    org_rate = None
    for tax in conn.execute(TAX_RATES_FOR, {"account_id": key.account_id, "ids": ids}):
        rates[tax.id] = tax.rate
        if tax.applied_to_organization:
            org_rate = tax.rate
    rate = applicable_rate(rates, org_rate, parties, key)

    invoice_id = new_uuid()
    stamp = datetime.now(UTC)
    lines = []
    net = vat = 0
    for position, item in enumerate(body["line_items"]):
        amount = int(item["quantity"]) * int(item["unit_price"])
        if amount != int(item["amount"]):
            raise Refused(422, f"line_items[{position}].amount does not match")
        # Half up to the cent, as money.round_half_up does.
        line_vat = int((amount * rate / HUNDRED).quantize(Decimal(1), "ROUND_HALF_UP"))
        net += amount
        vat += line_vat
        lines.append(
            {
                "invoice_id": invoice_id,
                "position": position,
                "description": item["description"],
                "quantity": Decimal(item["quantity"]),
                "unit_amount": Decimal(item["unit_price"]),
                "amount_minor": amount,
                "tax_rate": rate,
                "amount_incl_vat": False,
                "vat_minor": line_vat,
                "origin": "one_off",
            }
        )
    invoice = {
        "id": invoice_id,
        "account_id": key.account_id,
        "billing_entity_id": parties.entity_id,
        "customer_id": parties.id,
        "invoice_type": "one_off",
        "state": "draft",
        "currency": body["currency"],
        "invoice_number": f"DRAFT-{secrets.token_hex(4).upper()}",
        "subtotal_minor": net,
        "discount_minor": 0,
        "credit_minor": 0,
        "progressive_credit_minor": 0,
        "net_minor": net,
        "vat_minor": vat,
        "gross_minor": net + vat,
        "prepaid_credit_minor": 0,
        "total_minor": net + vat,
        "billing_period_start": stamp,
        "billing_period_end": stamp,
        "created_at": stamp,
        "updated_at": stamp,
    }
    conn.execute(sa.insert(INVOICES), invoice)
    conn.execute(sa.insert(LINES), lines)  # one cached statement, the rows as a batch
    after = {
        "state": "draft",
        "number": None,
        "invoice_number": invoice["invoice_number"],
        "total_minor": net + vat,
        "vat_minor": vat,
        "currency": body["currency"],
    }
    append_audit(conn, key, "invoice.created", invoice_id, after, stamp)
    return {
        "id": str(invoice_id),
        "invoice_number": invoice["invoice_number"],
        "customer_id": str(parties.id),
        "status": "draft",
        "currency": body["currency"],
        "total_cents": str(net + vat),
        "created_at": stamp.isoformat(),
        "line_items": [
            {
                "description": line["description"],
                "quantity": str(line["quantity"]),
                "unit_price": str(line["unit_amount"]),
                "amount": str(line["amount_minor"]),
            }
            for line in lines
        ],
    }


def finalize_invoice(
    conn: sa.Connection, key: sa.Row[Any], invoice_id: uuid.UUID
) -> dict[str, Any]:
    draft = conn.execute(
        DRAFT_TO_FINALIZE, {"account_id": key.account_id, "id": invoice_id}
    ).one_or_none()
    if draft is None:
        raise Refused(404, "Invoice not found")
    if draft.state != "draft":
        raise Refused(400, "Only draft invoices can be finalized")
    number = conn.execute(TAKE_NUMBER, {"entity_id": draft.billing_entity_id}).scalar_one()
    printed = f"{draft.invoice_prefix or 'INV'}-{number:06}"
    stamp = datetime.now(UTC)
    term = draft.customer_term if draft.customer_term is not None else draft.entity_term
    due = stamp + timedelta(days=term)
    conn.execute(
        ISSUE,
        {
            "invoice_id": invoice_id,
            "number": number,
            "printed": printed,
            "handle": f"inv-{printed.lower()}",
            "stamp": stamp,
            "due": due,
        },
    )
    after = {
        "state": "open",
        "number": number,
        "invoice_number": printed,
        "total_minor": draft.total_minor,
        "vat_minor": draft.vat_minor,
        "currency": draft.currency,
    }
    append_audit(conn, key, "invoice.finalized", invoice_id, after, stamp)
    return {
        "id": str(invoice_id),
        "number": number,
        "invoice_number": printed,
        "status": "finalized",
        "issued_at": stamp.isoformat(),
        "due_at": due.isoformat(),
    }


def create_app() -> Flask:
    app = Flask(__name__)
    engine = make_engine(os.environ["DATABASE_URL"])

    def respond(obj: Any, status: int = 200) -> Response:
        return Response(json.dumps(obj, separators=(",", ":")), status, mimetype="application/json")

    def in_transaction(work: Any, *args: Any) -> Response:
        try:
            with engine.begin() as conn:
                key = authenticate(conn, request.headers.get("Authorization"))
                return respond(work(conn, key, *args))
        except Refused as refused:  # the transaction is rolled back
            return respond({"detail": refused.detail}, refused.status)

    @app.get("/healthz")
    def healthz() -> Response:
        return respond({"status": "ok"})

    @app.post("/floor/invoices")
    def create() -> Response:
        return in_transaction(create_invoice, json.loads(request.get_data()))

    @app.post("/floor/invoices/<uuid:invoice_id>/finalize")
    def finalize(invoice_id: uuid.UUID) -> Response:
        return in_transaction(finalize_invoice, invoice_id)

    return app
