"""Browser routes: the print page, its PDF download, the logo the page shows.

Sign-in required and scoped to the signed-in user's account like every page (another
account's invoice is a 404). The print page renders the same template and context as the
PDF; only its asset URLs and the toolbar differ.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from flask import Response, render_template, request, url_for
from werkzeug.exceptions import BadRequest

from ..errors import InvalidState, NotFound
from ..invoices import service as invoices
from ..invoices.settlement import was_issued
from ..querying import parse_uuid
from ..web.pages import page_blueprint
from ..web.signin import account_id
from . import service as documents

bp = page_blueprint("documents", __name__)


@bp.errorhandler(InvalidState)
def _draft(exc: InvalidState) -> Any:
    """A PDF of a draft (or of a draft voided before it was issued): there is none."""
    return render_template("error.html", error=BadRequest(exc.message)), 400


@bp.get("/<invoice_id>/print")
def print_page(invoice_id: str) -> Any:
    """The invoice as printed, where it stands now (drafts marked DRAFT, paid invoices
    PAID with how and when, voids VOID), with a PDF download button once it was issued."""
    invoice = invoices.get_invoice(account_id(), parse_uuid(invoice_id, "Invoice"))
    source = documents.load_source(invoice)
    html, page_css = documents.print_document(
        source,
        asset_base=url_for("static", filename=""),
        logo_src=url_for("documents.logo", invoice_id=invoice.id, v=source.logo.sha256)
        if source.logo
        else None,
        toolbar={
            "back": url_for("invoices.invoice_detail", invoice_id=invoice.id),
            "pdf": url_for("documents.download_pdf", invoice_id=invoice.id)
            if was_issued(invoice)
            else None,
        },
    )
    response = Response(html, mimetype="text/html")
    # The app's pages allow no inline style; this page has one <style> (paper size, page
    # counter), allowed by its hash and nothing else. No scripts at all.
    digest = base64.b64encode(hashlib.sha256(page_css.encode()).digest())
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'none'; "
        f"style-src 'self' 'sha256-{digest.decode()}'; font-src 'self'; img-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return response


@bp.get("/<invoice_id>/pdf")
def download_pdf(invoice_id: str) -> Any:
    """The invoice's PDF (`documents.service.pdf_of`); drafts and drafts voided before
    they were issued have none (400)."""
    stored = documents.get_pdf(account_id(), parse_uuid(invoice_id, "Invoice"))
    return pdf_response(stored)


@bp.get("/<invoice_id>/print/logo")
def logo(invoice_id: str) -> Any:
    """The issuer logo the print page shows (the one the PDF prints)."""
    invoice = invoices.get_invoice(account_id(), parse_uuid(invoice_id, "Invoice"))
    source = documents.load_source(invoice)
    if source.logo is None:
        raise NotFound("Logo")
    response = Response(source.logo.data, mimetype=source.logo.content_type)
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    response.set_etag(source.logo.sha256)
    return response.make_conditional(request)


def pdf_response(stored: documents.StoredPdf) -> Response:
    """The PDF as a download: its digest as ETag; private (invoices hold personal data)."""
    response = Response(stored.data, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="{stored.filename}"'
    response.headers["Cache-Control"] = "private, no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.set_etag(stored.sha256)
    return response
