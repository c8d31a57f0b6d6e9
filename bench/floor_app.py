"""The bare floor for bench/oneoff.py: a minimal Flask app writing the same rows as
billing_app's one-off create and finalize, with plain SQLAlchemy Core, into the same
migrated schema. No auth, no ORM, no validation beyond the arithmetic, no audit record.

    DATABASE_URL=... BENCH_ACCOUNT_ID=<uuid> BENCH_ENTITY_ID=<uuid> \\
        gunicorn -c gunicorn.conf.py "bench.floor_app:create_app()"

Routes (both POST, JSON in and out):
    /floor/invoices                 body as POST /v1/invoices/one_off: one transaction
                                    inserting 1 invoices row and N invoice_lines rows.
    /floor/invoices/<id>/finalize   one transaction: take a number from the billing
                                    entity's counter (UPDATE ... RETURNING), then
                                    UPDATE invoices SET number, invoice_number, state='open'.

On SQLite the engine gets the same tuning as billing_app (WAL, busy_timeout,
synchronous=NORMAL, foreign_keys, BEGIN IMMEDIATE for every transaction, all of which
here are writes), so the comparison is fair.
"""

from __future__ import annotations

import json
import os
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, request

# The same time-ordered row ids as the app (a data-layout choice both sides make alike).
from billing_app.db import new_uuid

metadata = sa.MetaData()

# Only the columns written here; the others are nullable or have no default in the schema
# that matters for these inserts (NOT NULL ones are all listed).
invoices = sa.Table(
    "invoices",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("account_id", sa.Uuid),
    sa.Column("billing_entity_id", sa.Uuid),
    sa.Column("customer_id", sa.Uuid),
    sa.Column("invoice_type", sa.String(20)),
    sa.Column("state", sa.String(10)),
    sa.Column("currency", sa.String(3)),
    sa.Column("number", sa.BigInteger),
    sa.Column("invoice_number", sa.String(100)),
    sa.Column("handle", sa.String(255)),
    sa.Column("subtotal_minor", sa.BigInteger),
    sa.Column("discount_minor", sa.BigInteger),
    sa.Column("credit_minor", sa.BigInteger),
    sa.Column("progressive_credit_minor", sa.BigInteger),
    sa.Column("net_minor", sa.BigInteger),
    sa.Column("vat_minor", sa.BigInteger),
    sa.Column("gross_minor", sa.BigInteger),
    sa.Column("prepaid_credit_minor", sa.BigInteger),
    sa.Column("total_minor", sa.BigInteger),
    sa.Column("billing_period_start", sa.DateTime(timezone=True)),
    sa.Column("billing_period_end", sa.DateTime(timezone=True)),
    sa.Column("due_at", sa.DateTime(timezone=True)),
    sa.Column("issued_at", sa.DateTime(timezone=True)),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
)

invoice_lines = sa.Table(
    "invoice_lines",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("invoice_id", sa.Uuid),
    sa.Column("position", sa.BigInteger),
    sa.Column("description", sa.Text),
    # DecimalText columns: canonical decimal strings.
    sa.Column("quantity", sa.String(64)),
    sa.Column("unit_amount", sa.String(64)),
    sa.Column("amount_minor", sa.BigInteger),
    sa.Column("tax_rate", sa.String(64)),
    sa.Column("amount_incl_vat", sa.Boolean),
    sa.Column("vat_minor", sa.BigInteger),
    sa.Column("origin", sa.String(30)),
)

billing_entities = sa.Table(
    "billing_entities",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("account_id", sa.Uuid),
    sa.Column("next_invoice_number", sa.BigInteger),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
)


class _NotDraft(Exception):
    pass


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
            # Every transaction of this app writes: take the write lock up front.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def create_app() -> Flask:
    app = Flask(__name__)
    engine = make_engine(os.environ["DATABASE_URL"])
    app.extensions["floor_engine"] = engine  # for bench/profile_oneoff.py
    sqlite = engine.dialect.name == "sqlite"
    account_id = uuid.UUID(os.environ["BENCH_ACCOUNT_ID"])
    entity_id = uuid.UUID(os.environ["BENCH_ENTITY_ID"])

    def now() -> datetime:
        # UTC; SQLite stores it naive, as billing_app's UTCDateTime does.
        value = datetime.now(UTC)
        return value.replace(tzinfo=None) if sqlite else value

    def respond(obj: Any, status: int = 200) -> Response:
        body = json.dumps(obj, separators=(",", ":"))
        return Response(body, status=status, mimetype="application/json")

    @app.get("/healthz")
    def healthz() -> Response:
        return respond({"status": "ok"})

    @app.post("/floor/invoices")
    def create_invoice() -> Response:
        body = json.loads(request.get_data())
        items = body["line_items"]
        invoice_id = new_uuid()
        stamp = now()
        lines = []
        total = 0
        for position, item in enumerate(items):
            amount = int(item["quantity"]) * int(item["unit_price"])
            if amount != int(item["amount"]):
                return respond({"detail": "amount mismatch"}, 422)
            total += amount
            lines.append(
                {
                    "id": new_uuid(),
                    "invoice_id": invoice_id,
                    "position": position,
                    "description": item["description"],
                    "quantity": str(item["quantity"]),
                    "unit_amount": str(item["unit_price"]),
                    "amount_minor": amount,
                    "tax_rate": "0",
                    "amount_incl_vat": False,
                    "vat_minor": 0,
                    "origin": "one_off",
                }
            )
        row = {
            "id": invoice_id,
            "account_id": account_id,
            "billing_entity_id": entity_id,
            "customer_id": uuid.UUID(body["customer_id"]),
            "invoice_type": "one_off",
            "state": "draft",
            "currency": body["currency"],
            "invoice_number": f"DRAFT-{secrets.token_hex(4).upper()}",
            "subtotal_minor": total,
            "discount_minor": 0,
            "credit_minor": 0,
            "progressive_credit_minor": 0,
            "net_minor": total,
            "vat_minor": 0,
            "gross_minor": total,
            "prepaid_credit_minor": 0,
            "total_minor": total,
            "billing_period_start": stamp,
            "billing_period_end": stamp,
            "created_at": stamp,
            "updated_at": stamp,
        }
        with engine.begin() as conn:
            conn.execute(invoices.insert(), row)
            conn.execute(invoice_lines.insert(), lines)
        return respond(
            {
                "id": str(invoice_id),
                "invoice_number": row["invoice_number"],
                "customer_id": body["customer_id"],
                "status": "draft",
                "currency": row["currency"],
                "total_cents": str(total),
                "created_at": stamp.isoformat(),
                "line_items": [
                    {
                        "id": str(line["id"]),
                        "description": line["description"],
                        "quantity": line["quantity"],
                        "unit_price": line["unit_amount"],
                        "amount": str(line["amount_minor"]),
                    }
                    for line in lines
                ],
            }
        )

    take_number = (
        sa.update(billing_entities)
        .where(billing_entities.c.id == sa.bindparam("entity_id"))
        .values(
            next_invoice_number=billing_entities.c.next_invoice_number + 1,
            updated_at=sa.bindparam("stamp"),
        )
        .returning(billing_entities.c.next_invoice_number - 1)
    )

    @app.post("/floor/invoices/<invoice_id>/finalize")
    def finalize_invoice(invoice_id: str) -> Response:
        iid = uuid.UUID(invoice_id)
        stamp = now()
        try:
            number, invoice_number = _finalize(iid, stamp)
        except _NotDraft:
            return respond({"detail": "Only draft invoices can be finalized"}, 400)
        return respond(
            {
                "id": invoice_id,
                "number": number,
                "invoice_number": invoice_number,
                "status": "finalized",
                "issued_at": stamp.isoformat(),
            }
        )

    def _finalize(iid: uuid.UUID, stamp: datetime) -> tuple[int, str]:
        with engine.begin() as conn:
            number = conn.execute(
                take_number, {"entity_id": entity_id, "stamp": stamp}
            ).scalar_one()
            invoice_number = f"INV-{number:06}"
            result = conn.execute(
                sa.update(invoices)
                .where(
                    invoices.c.id == iid,
                    invoices.c.billing_entity_id == entity_id,
                    invoices.c.state == "draft",
                )
                .values(
                    number=number,
                    invoice_number=invoice_number,
                    handle=f"inv-{invoice_number}",
                    state="open",
                    issued_at=stamp,
                    due_at=stamp + timedelta(days=30),
                    updated_at=stamp,
                )
            )
            if result.rowcount != 1:
                raise _NotDraft  # the transaction rolls back: the number is given back
        return number, invoice_number

    return app
