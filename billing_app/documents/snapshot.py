"""What an issued invoice prints about its issuer and its customer, frozen at finalization.

The invoice's own columns (number, dates, lines, totals, addresses of subscription
invoices) never change once it is open; the billing entity and the customer may. So that
the PDF is the document as issued, however late it is rendered, `record_due` stores a
snapshot of the printed fields of both next to the invoice, in the issuing transaction.
It costs one row and no query (issuer and customer are already loaded by then): no
rendering happens here. The logo is not copied (up to 512 KB per invoice): the document
prints the issuer's logo as stored when it is first rendered (docs/pdf.md).
"""

from __future__ import annotations

from typing import Any

from ..customers.models import Customer
from ..entities.models import BillingEntity
from ..extensions import db
from ..invoices.models import Invoice
from .models import InvoiceDocument

SNAPSHOT_VERSION = 1


def _clean(*parts: str | None) -> list[str]:
    return [p.strip() for p in parts if p and p.strip()]


def _city_line(postal_code: str | None, city: str | None) -> str | None:
    return " ".join(_clean(postal_code, city)) or None


def issuer_party(entity: BillingEntity) -> dict[str, Any]:
    return {
        "name": entity.legal_name or entity.name,
        "lines": _clean(
            entity.address_line1,
            entity.address_line2,
            _city_line(entity.zip_code, entity.city),
            entity.state,
        ),
        "country": entity.country,
        "tax_id": entity.tax_id,
        "email": entity.email,
        "footer": entity.invoice_footer,
    }


def customer_party(customer: Customer) -> dict[str, Any]:
    name = customer.company or customer.name
    return {
        "name": name,
        "lines": _clean(
            customer.name if customer.company and customer.name != name else None,
            customer.address_line1,
            customer.address_line2,
            _city_line(customer.zip_code, customer.city),
            customer.state,
        ),
        "country": customer.country,
        "tax_id": customer.tax_id,
        "email": customer.email,
    }


def address_party(address: dict[str, Any]) -> dict[str, Any]:
    """A dialect B address (`billing_address` / `shipping_address` on the invoice)."""

    def get(key: str) -> str | None:
        value = address.get(key)
        return str(value) if value not in (None, "") else None

    person = " ".join(_clean(get("first_name"), get("last_name"))) or None
    name = get("company") or person or ""
    return {
        "name": name,
        "lines": _clean(
            person if person != name else None,
            get("attention"),
            get("address"),
            get("address2"),
            _city_line(get("postal_code"), get("city")),
            get("state_or_province"),
        ),
        "country": get("country"),
        "tax_id": get("vat"),
        "email": get("email"),
    }


def take_snapshot(invoice: Invoice, entity: BillingEntity, customer: Customer) -> dict[str, Any]:
    bill_to = (
        address_party(invoice.billing_address)
        if invoice.billing_address
        else customer_party(customer)
    )
    if not bill_to["tax_id"]:
        bill_to["tax_id"] = customer.tax_id
    return {
        "version": SNAPSHOT_VERSION,
        "locale": customer.document_locale or entity.document_locale or "en",
        "paper_size": entity.paper_size,
        "timezone": entity.timezone or "UTC",
        "customer_number": customer.external_id,
        "issuer": issuer_party(entity),
        "bill_to": bill_to,
        "ship_to": address_party(invoice.shipping_address) if invoice.shipping_address else None,
    }


def record_due(invoice: Invoice, entity: BillingEntity, customer: Customer) -> InvoiceDocument:
    """Inside the issuing transaction: note that this invoice's PDF is due, with the
    snapshot it will be printed from (`take_snapshot`). The invoice must be in the session;
    a new one is flushed first, so its row exists before the document's."""
    assert invoice.id is not None and invoice.issued_at is not None
    if invoice in db.session.new:
        db.session.flush()
    document = InvoiceDocument(
        invoice_id=invoice.id,
        account_id=invoice.account_id,
        state="due",
        snapshot=take_snapshot(invoice, entity, customer),
        created_at=invoice.issued_at,
        attempts=0,
    )
    db.session.add(document)
    return document
