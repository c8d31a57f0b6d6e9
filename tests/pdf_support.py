"""Helpers for the PDF tests: set-up through the services, reading PDFs back with pypdf,
signing in to the browser pages."""

from __future__ import annotations

import hashlib
import io
import os
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pypdf
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from billing_app.customers import service as customers
from billing_app.documents.models import InvoiceDocument
from billing_app.entities.models import BillingEntity
from billing_app.extensions import db
from billing_app.invoices import service as invoices

# Characters Babel and the template use that text extraction may give back differently.
_SPACES = re.compile(r"[\s\u00a0\u202f\u2009]+")


def norm(text: str) -> str:
    """Text with every run of (no-break, narrow, thin) spaces as one space."""
    return _SPACES.sub(" ", text).strip()


@dataclass
class Pdf:
    data: bytes
    reader: pypdf.PdfReader
    pages: list[str]

    @property
    def text(self) -> str:
        return " ".join(self.pages)

    def has(self, fragment: str) -> bool:
        """Whether the text shows `fragment`, ignoring case (headings are set in capitals
        by the stylesheet) and the kind of space."""
        return norm(fragment).casefold() in self.text.casefold()


def read_pdf(data: bytes) -> Pdf:
    """Parse a PDF. With PDF_DUMP_DIR set, also keep a copy there to look at (pdftoppm)."""
    assert data.startswith(b"%PDF-"), data[:40]
    dump = os.environ.get("PDF_DUMP_DIR")
    if dump:
        name = os.environ.get("PYTEST_CURRENT_TEST", "pdf").split(" ")[0]
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[-120:]
        Path(dump).mkdir(parents=True, exist_ok=True)
        (Path(dump) / f"{name}-{hashlib.sha256(data).hexdigest()[:8]}.pdf").write_bytes(data)
    reader = pypdf.PdfReader(io.BytesIO(data))
    return Pdf(data, reader, [norm(page.extract_text()) for page in reader.pages])


def set_up_entity(app: Flask, account_id: uuid.UUID, **fields: Any) -> uuid.UUID:
    """Fill in the default billing entity's printed details (legal name, address …)."""
    values = {
        "legal_name": "Nordlicht Software GmbH",
        "address_line1": "Torstraße 12",
        "zip_code": "10119",
        "city": "Berlin",
        "country": "DE",
        "tax_id": "DE123456789",
        "email": "billing@nordlicht.example",
        "invoice_footer": "IBAN DE89 3704 0044 0532 0130 00 · BIC COBADEFFXXX",
        **fields,
    }
    with app.app_context():
        entity = db.session.scalars(
            select(BillingEntity).where(
                BillingEntity.account_id == account_id, BillingEntity.is_default.is_(True)
            )
        ).one()
        for key, value in values.items():
            setattr(entity, key, value)
        db.session.commit()
        entity_id: uuid.UUID = entity.id
        db.session.remove()
    return entity_id


def make_customer(
    app: Flask, account_id: uuid.UUID, handle: str = "acme", **fields: Any
) -> uuid.UUID:
    data = {
        "external_id": handle,
        "name": "Jane Buyer",
        "company": "ACME Corporation",
        "currency": "EUR",
        "document_locale": "en",
        "address_line1": "1 Main Street",
        "zip_code": "12345",
        "city": "Springfield",
        "country": "US",
        "tax_id": "US-99-1234567",
        **fields,
    }
    with app.app_context():
        customer = customers.create_customer(account_id, data)
        customer_id: uuid.UUID = customer.id
        db.session.remove()
    return customer_id


def line(
    description: str, quantity: str, unit: str, tax: str | None = "19", **kw: Any
) -> invoices.LineDraft:
    return invoices.LineDraft(
        description=description,
        quantity=Decimal(quantity),
        unit_amount=Decimal(unit),
        tax_percent=Decimal(tax) if tax is not None else None,
        **kw,
    )


def make_invoice(
    app: Flask,
    account_id: uuid.UUID,
    customer_id: uuid.UUID,
    lines: list[invoices.LineDraft],
    currency: str = "EUR",
    finalize: bool = True,
) -> uuid.UUID:
    with app.app_context():
        inv = invoices.create_one_off_invoice(
            account_id,
            invoices.OneOffInvoiceRequest(customer_id=customer_id, currency=currency, lines=lines),
        )
        if finalize:
            invoices.finalize_invoice(account_id, inv.id)
        invoice_id: uuid.UUID = inv.id
        db.session.remove()
    return invoice_id


def document_row(app: Flask, invoice_id: uuid.UUID) -> dict[str, Any] | None:
    """The invoice_documents row as plain values (the bytes included)."""
    with app.app_context():
        doc = db.session.get(InvoiceDocument, invoice_id)
        if doc is None:
            db.session.remove()
            return None
        row = {
            "state": doc.state,
            "sha256": doc.sha256,
            "pdf": doc.pdf,
            "snapshot": doc.snapshot,
            "attempts": doc.attempts,
            "last_error": doc.last_error,
            "renderer": doc.renderer,
            "size_bytes": doc.size_bytes,
        }
        db.session.remove()
    return row


def sign_in(client: FlaskClient, email: str, password: str) -> None:
    """The real sign-in form, CSRF token included."""
    page = client.get("/signin")
    token = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page.data)
    if token is None:
        token = re.search(rb'name="csrf_token" value="([^"]+)"', page.data)
    assert token is not None, page.data[:500]
    resp = client.post(
        "/signin",
        data={"email": email, "password": password, "csrf_token": token.group(1).decode()},
    )
    assert resp.status_code == 302, resp.data[:500]
