"""PDF downloads in both API dialects, next to the invoice routes they belong to.

Dialect A: `POST` and `GET /v1/invoices/{invoice_id}/download_pdf` (seed 000).
Dialect B: `GET /v1/invoice/{id-or-handle}/pdf`.
Both answer the stored PDF of an invoice of the calling account (another account's
invoice is a 404 like a missing one), and refuse drafts: they have no document yet.
"""

from __future__ import annotations

from flask import Response

from ..documents import service as documents
from ..documents.routes import pdf_response
from ..querying import parse_uuid
from .dialect_a import blueprint as dialect_a
from .dialect_a.routes import AUTH_ERRORS, INVOICE_404, account_id
from .dialect_a.routes import bp as bp_a
from .dialect_b import blueprint as dialect_b
from .dialect_b.blueprint import bp as bp_b
from .dialect_b.invoices import INVOICE_ERRORS, find_invoice

PDF = "application/pdf"
_A_ERRORS = {**AUTH_ERRORS, **INVOICE_404, 400: documents.DRAFT_MESSAGE}


def _download_a(invoice_id: str) -> Response:
    return pdf_response(documents.get_pdf(account_id(), parse_uuid(invoice_id, "Invoice")))


@dialect_a.endpoint(
    bp_a,
    "/invoices/<invoice_id>/download_pdf",
    "POST",
    summary="Download the invoice PDF",
    content_type=PDF,
    tags=("Invoices",),
    errors=_A_ERRORS,
)
def download_pdf(invoice_id: str) -> Response:
    """The invoice as a PDF (finalized, paid or voided invoices; drafts answer 400)."""
    return _download_a(invoice_id)


@dialect_a.endpoint(
    bp_a,
    "/invoices/<invoice_id>/download_pdf",
    "GET",
    summary="Download the invoice PDF",
    content_type=PDF,
    tags=("Invoices",),
    errors=_A_ERRORS,
)
def download_pdf_get(invoice_id: str) -> Response:
    """The same as the POST: the invoice as a PDF."""
    return _download_a(invoice_id)


@dialect_b.endpoint(
    bp_b,
    "/invoice/<ref>/pdf",
    "GET",
    summary="Get invoice PDF",
    content_type=PDF,
    tags=("Subscription invoices",),
    errors={**INVOICE_ERRORS, 400: "Invoice wrong state: a draft has no PDF (code 82)"},
)
def get_invoice_pdf(ref: str) -> Response:
    """The invoice, by id or handle, as a PDF."""
    return pdf_response(documents.pdf_of(documents.require_issued(find_invoice(ref))))
