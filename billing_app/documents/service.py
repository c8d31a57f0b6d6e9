"""Invoice documents: the print page's HTML, the PDF rendered once and stored, the worker.

Invariants:
- a PDF exists only for an invoice that was issued (left draft with its number):
  InvalidState otherwise, with the message dialect A documents - for a draft, and for a
  draft voided before it was finalized (it never was an invoice);
- the stored PDF is the invoice as issued, a legal document that never changes: rendered
  outside any database transaction, from the invoice's immutable columns and the
  snapshot taken at finalization, so any render of it gives the same bytes;
- the first render stored wins: storing happens under the row's lock (FOR UPDATE on
  PostgreSQL, the write lock on SQLite), and a later render that finds bytes already
  stored returns those and drops its own;
- a download answers the stored document while the invoice is payable (open, failed);
  once it is paid or void (both final) it answers the same document with where it stands
  (`invoices.settlement`: paid, how and when, nothing due; or void, nothing due), rendered
  on demand from the same snapshot and the settlement, both immutable by then, so every
  such render is the same file too (docs/pdf.md, "Paid and void").
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, render_template
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from ..customers.models import Customer
from ..db import is_sqlite, utcnow, write_transaction
from ..entities.models import BillingEntity
from ..errors import INVOICE_WRONG_STATE, InvalidState
from ..extensions import db
from ..invoices import service as invoices
from ..invoices.models import DRAFT, PAID, VOID, Invoice
from ..invoices.settlement import Settlement, settlement_of, was_issued
from ..payments.models import Transaction
from . import pdf as renderer
from .context import PrintSource, load_logo, print_context
from .models import InvoiceDocument
from .snapshot import take_snapshot

log = logging.getLogger(__name__)

DRAFT_MESSAGE = "Invoice must be finalized or paid to generate PDF"
DUE, STORED = "due", "stored"
# A row whose render failed this often is left to downloads (which still try) and
# reported by the worker instead of being retried forever.
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class StoredPdf:
    """A PDF as downloaded: the stored document, or a paid or void invoice's render."""

    invoice_id: uuid.UUID
    invoice_number: str
    data: bytes
    sha256: str

    @property
    def filename(self) -> str:
        return pdf_filename(self.invoice_number)


def pdf_filename(invoice_number: str) -> str:
    """`INV-000042.pdf`: the printed number, reduced to characters safe in any header and
    on any file system."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", invoice_number).strip("._") or "invoice"
    return f"{name}.pdf"


# ---------------------------------------------------------------- reading


def settlement_for(invoice: Invoice) -> Settlement:
    """Where the invoice stands (`invoices.settlement.settlement_of`), its settled
    transaction read only for a paid invoice (one statement)."""
    transactions: list[Transaction] = []
    if invoice.state == PAID:
        transactions = list(
            db.session.scalars(
                select(Transaction).where(
                    Transaction.invoice_id == invoice.id,
                    Transaction.type == "settle",
                    Transaction.state == "settled",
                )
            )
        )
    return settlement_of(invoice, transactions)


def load_source(invoice: Invoice, *, as_issued: bool = False) -> PrintSource:
    """The invoice's print source: the stored snapshot once issued; live issuer and
    customer data for drafts (and for invoices issued before documents existed). With
    where the invoice stands now, unless `as_issued` (the stored document)."""
    snapshot = None
    if invoice.state != DRAFT:
        snapshot = db.session.scalar(
            select(InvoiceDocument.snapshot).where(InvoiceDocument.invoice_id == invoice.id)
        )
    if snapshot is None:
        entity = db.session.get(BillingEntity, invoice.billing_entity_id)
        customer = db.session.get(Customer, invoice.customer_id)
        assert entity is not None and customer is not None
        snapshot = take_snapshot(invoice, entity, customer)
    logo = load_logo(invoice.billing_entity_id)
    settlement = None if as_issued else settlement_for(invoice)
    return PrintSource(invoice=invoice, snapshot=snapshot, logo=logo, settlement=settlement)


def print_document(
    source: PrintSource,
    *,
    asset_base: str = "",
    logo_src: str | None = None,
    toolbar: dict[str, Any] | None = None,
) -> tuple[str, str]:
    """The print template rendered, and its inline page rules (for the page's CSP hash).
    By default for the PDF: asset URLs relative to the renderer's base; the browser page
    passes its own `asset_base`, `logo_src` and `toolbar`."""
    if logo_src is None and source.logo is not None:
        logo_src = renderer.logo_path(source.logo.sha256)
    context = print_context(source, asset_base=asset_base, logo_src=logo_src)
    return render_template("print/invoice.html", toolbar=toolbar, **context), context["page_css"]


def print_html(source: PrintSource) -> str:
    """The HTML the PDF is rendered from."""
    return print_document(source)[0]


def render_pdf(source: PrintSource) -> renderer.RenderResult:
    """Render a print source to PDF (no database access; call with no transaction open)."""
    html = print_html(source)
    logo = (source.logo.sha256, source.logo.data, source.logo.content_type) if source.logo else None
    static_folder = current_app.static_folder
    assert static_folder is not None
    result = renderer.html_to_pdf(html, static_folder=static_folder, logo=logo)
    if result.refused_urls:
        log.warning("PDF of invoice %s: refused URLs %s", source.invoice.id, result.refused_urls)
    return result


def _stored(invoice_id: uuid.UUID) -> tuple[bytes, str] | None:
    row = db.session.execute(
        select(InvoiceDocument.pdf, InvoiceDocument.sha256).where(
            InvoiceDocument.invoice_id == invoice_id, InvoiceDocument.state == STORED
        )
    ).first()
    if row is None or row.pdf is None or row.sha256 is None:
        return None
    return bytes(row.pdf), row.sha256


def require_issued(invoice: Invoice) -> Invoice:
    """The invoice if it has a document (it was issued); InvalidState for a draft and for
    a draft voided before it was finalized (no number, never an invoice)."""
    if not was_issued(invoice):
        raise InvalidState(DRAFT_MESSAGE, reason=INVOICE_WRONG_STATE)
    return invoice


def get_pdf(account_id: uuid.UUID, invoice_id: uuid.UUID) -> StoredPdf:
    """The PDF a download of this account's invoice answers (`pdf_of`). NotFound for
    another account's invoice; InvalidState for one never issued."""
    return pdf_of(require_issued(invoices.get_invoice(account_id, invoice_id)))


def pdf_of(invoice: Invoice) -> StoredPdf:
    """The PDF a download answers (the caller scoped and checked the invoice): the stored
    document as issued while it is payable; once paid or void, that document with where
    it stands, rendered now (deterministic, not stored: the stored one never changes)."""
    if invoice.state not in (PAID, VOID):
        return issued_pdf(invoice)
    source = load_source(invoice)
    db.session.commit()  # no transaction stays open while WeasyPrint works
    result = render_pdf(source)
    return StoredPdf(invoice.id, invoice.invoice_number, result.pdf, result.sha256)


def issued_pdf(invoice: Invoice) -> StoredPdf:
    """The stored PDF of an issued invoice, rendered and stored first if nobody has yet."""
    found = _stored(invoice.id)
    if found is None:
        source = load_source(invoice, as_issued=True)
        # No transaction stays open while WeasyPrint works (≈ 0.1 s to seconds).
        db.session.commit()
        result = render_pdf(source)
        found = store(invoice, source.snapshot, result)
    else:
        db.session.commit()
    data, sha256 = found
    return StoredPdf(invoice.id, invoice.invoice_number, data, sha256)


def store(
    invoice: Invoice, snapshot: dict[str, Any], result: renderer.RenderResult
) -> tuple[bytes, str]:
    """Store a render unless one is stored already; return what is stored."""
    for attempt in (1, 2):
        try:
            with write_transaction():
                doc = db.session.scalars(
                    select(InvoiceDocument)
                    .where(InvoiceDocument.invoice_id == invoice.id)
                    .with_for_update()
                    .execution_options(populate_existing=True)
                ).one_or_none()
                if doc is None:
                    doc = InvoiceDocument(
                        invoice_id=invoice.id,
                        account_id=invoice.account_id,
                        created_at=invoice.issued_at or utcnow(),
                        attempts=0,
                    )
                    db.session.add(doc)
                if doc.state == STORED and doc.pdf is not None and doc.sha256:
                    return bytes(doc.pdf), doc.sha256
                doc.state = STORED
                doc.snapshot = doc.snapshot or snapshot
                doc.pdf = result.pdf
                doc.sha256 = result.sha256
                doc.size_bytes = len(result.pdf)
                doc.renderer = renderer.renderer_name()
                doc.rendered_at = utcnow()
                doc.claimed_until = None
                doc.last_error = None
            return result.pdf, result.sha256
        except IntegrityError:
            # Two first downloads of an invoice without a row raced to insert it (only
            # possible on PostgreSQL); the loser reads the winner's row.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


# ---------------------------------------------------------------- worker


@dataclass
class RenderReport:
    rendered: int = 0
    already_stored: int = 0
    failed: int = 0
    given_up: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "rendered": self.rendered,
            "already_stored": self.already_stored,
            "failed": self.failed,
            "given_up": self.given_up,
        }


def claim_due(batch: int, lease: timedelta, now: datetime | None = None) -> list[uuid.UUID]:
    """Claim up to `batch` due documents for this worker: FOR UPDATE SKIP LOCKED on
    PostgreSQL (workers on many hosts never wait for each other or claim one row twice),
    the write lock on SQLite; a claim is a lease, so a crashed worker's rows come back."""
    now = now or utcnow()
    with write_transaction():
        stmt = (
            select(InvoiceDocument.invoice_id)
            .where(
                InvoiceDocument.state == DUE,
                InvoiceDocument.attempts < MAX_ATTEMPTS,
                or_(InvoiceDocument.claimed_until.is_(None), InvoiceDocument.claimed_until < now),
            )
            .order_by(InvoiceDocument.created_at, InvoiceDocument.invoice_id)
            .limit(batch)
        )
        if not is_sqlite():
            stmt = stmt.with_for_update(skip_locked=True).execution_options(populate_existing=True)
        ids = list(db.session.scalars(stmt))
        if ids:
            db.session.execute(
                update(InvoiceDocument)
                .where(InvoiceDocument.invoice_id.in_(ids))
                .values(claimed_until=now + lease, attempts=InvoiceDocument.attempts + 1)
            )
    return ids


def render_claimed(invoice_id: uuid.UUID, report: RenderReport) -> None:
    invoice = db.session.scalars(
        select(Invoice).where(Invoice.id == invoice_id).options(selectinload(Invoice.lines))
    ).one()
    try:
        if _stored(invoice.id) is not None:
            report.already_stored += 1
            db.session.commit()
            return
        issued_pdf(invoice)
        report.rendered += 1
    except Exception as exc:
        db.session.rollback()
        log.exception("rendering the PDF of invoice %s failed", invoice_id)
        report.failed += 1
        # The claim's lease stays: the row is tried again once it runs out, not in a loop.
        with write_transaction():
            db.session.execute(
                update(InvoiceDocument)
                .where(InvoiceDocument.invoice_id == invoice_id)
                .values(last_error=f"{type(exc).__name__}: {exc}"[:2000])
            )


def render_due(
    *, limit: int | None = None, batch: int = 10, lease: timedelta = timedelta(minutes=5)
) -> RenderReport:
    """Render and store due documents until none is left (or `limit` were handled)."""
    report = RenderReport()
    handled = 0
    while limit is None or handled < limit:
        size = batch if limit is None else min(batch, limit - handled)
        ids = claim_due(size, lease)
        if not ids:
            break
        for invoice_id in ids:
            render_claimed(invoice_id, report)
        handled += len(ids)
    report.given_up = int(
        db.session.scalar(
            select(db.func.count()).where(
                InvoiceDocument.state == DUE, InvoiceDocument.attempts >= MAX_ATTEMPTS
            )
        )
        or 0
    )
    db.session.commit()
    return report
