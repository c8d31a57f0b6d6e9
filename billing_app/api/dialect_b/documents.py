"""Dialect B's PDF download: `GET /v1/invoice/{id-or-handle}/pdf`, the stored PDF of an
invoice of the calling account (another account's invoice is a 404 like a missing one).
Drafts have no document yet: 400 with code 82."""

from __future__ import annotations

from flask import Response

from ...documents import service as documents
from ...documents.routes import pdf_response
from .blueprint import bp, endpoint
from .invoices import INVOICE_ERRORS, find_invoice


@endpoint(
    bp,
    "/invoice/<ref>/pdf",
    "GET",
    summary="Get invoice PDF",
    content_type="application/pdf",
    tags=("Subscription invoices",),
    errors={**INVOICE_ERRORS, 400: "Invoice wrong state: a draft has no PDF (code 82)"},
)
def get_invoice_pdf(ref: str) -> Response:
    """The invoice, by id or handle, as a PDF."""
    return pdf_response(documents.pdf_of(documents.require_issued(find_invoice(ref))))
