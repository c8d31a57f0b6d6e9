"""What an issued invoice prints about its issuer and its customer, frozen at finalization.

The invoice's own columns (number, dates, lines, totals, addresses of subscription
invoices) never change once it is open; the billing entity and the customer may. So that
the PDF is the document as issued, however late it is rendered, `record_due` stores a
snapshot of the printed fields of both next to the invoice, in the finalize transaction.
It costs one row and no query (issuer and customer are already loaded by finalize): no
rendering happens here. The logo is not copied (up to 512 KB per invoice): the document
prints the issuer's logo as stored when it is first rendered (docs/pdf.md).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, insert

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


def record_due(
    invoice: Invoice, entity: BillingEntity, customer: Customer, conn: Any = None
) -> None:
    """Inside the finalize transaction: note that this invoice's PDF is due, with the
    snapshot it will be printed from. Cheap by design (the finalize benchmark): one Core
    insert on the transaction's connection."""
    statement, params = due_write(invoice, entity, customer)
    (conn or db.session.connection()).execute(statement, params)


def due_write(
    invoice: Invoice,
    entity: BillingEntity,
    customer: Customer,
    snapshot: dict[str, Any] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """`record_due` as (statement, parameters), for `audit.record(with_writes=...)`: on
    PostgreSQL it then costs no round trip of its own. `snapshot`: `take_snapshot`'s, if
    the caller took it already."""
    assert invoice.id is not None
    return _INSERT_DUE, {
        "wd_invoice_id": invoice.id,
        "wd_account_id": invoice.account_id,
        "wd_snapshot": take_snapshot(invoice, entity, customer) if snapshot is None else snapshot,
        "wd_created_at": invoice.issued_at,
    }


_DOCUMENTS = InvoiceDocument.__table__
# Named parameters (prefixed: see audit.record) and every column the row needs spelled
# out, so the statement is the same whether it runs alone or inside another one.
_INSERT_DUE = insert(_DOCUMENTS).values(
    invoice_id=bindparam("wd_invoice_id", type_=_DOCUMENTS.c.invoice_id.type),
    account_id=bindparam("wd_account_id", type_=_DOCUMENTS.c.account_id.type),
    state="due",
    snapshot=bindparam("wd_snapshot", type_=_DOCUMENTS.c.snapshot.type),
    created_at=bindparam("wd_created_at", type_=_DOCUMENTS.c.created_at.type),
    attempts=0,
)
