"""Dialect A's PDF download: `POST` and `GET /v1/invoices/{invoice_id}/download_pdf`
(seed 000), the stored PDF of an invoice of the calling account (another account's invoice
is a 404 like a missing one). Drafts have no document yet: 400."""

from __future__ import annotations

from flask import Response

from ...documents import service as documents
from ...documents.routes import pdf_response
from ...querying import parse_uuid
from .blueprint import bp, endpoint
from .routes import AUTH_ERRORS, INVOICE_404, account_id

PDF = "application/pdf"
_ERRORS = {**AUTH_ERRORS, **INVOICE_404, 400: documents.DRAFT_MESSAGE}


def _download(invoice_id: str) -> Response:
    return pdf_response(documents.get_pdf(account_id(), parse_uuid(invoice_id, "Invoice")))


@endpoint(
    bp,
    "/invoices/<invoice_id>/download_pdf",
    "POST",
    summary="Download the invoice PDF",
    content_type=PDF,
    tags=("Invoices",),
    errors=_ERRORS,
)
def download_pdf(invoice_id: str) -> Response:
    """The invoice as a PDF (finalized, paid or voided invoices; drafts answer 400)."""
    return _download(invoice_id)


@endpoint(
    bp,
    "/invoices/<invoice_id>/download_pdf",
    "GET",
    summary="Download the invoice PDF",
    content_type=PDF,
    tags=("Invoices",),
    errors=_ERRORS,
)
def download_pdf_get(invoice_id: str) -> Response:
    """The same as the POST: the invoice as a PDF."""
    return _download(invoice_id)
