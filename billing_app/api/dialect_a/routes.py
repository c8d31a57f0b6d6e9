"""Dialect A routes (seed 000): one-off invoices, customers, billing entities, taxes.

Routes are thin: parse (the endpoint decorator), call one service, serialise here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from flask import g

from ...customers import service as customers
from ...customers.models import Customer
from ...db import decimal_to_str
from ...entities import service as entities
from ...entities.models import BillingEntity
from ...errors import InvalidInput, InvalidState, NotFound
from ...invoices import service as invoices
from ...invoices.models import DIALECT_A_STATUS, DRAFT, FAILED, OPEN, PAID, VOID, Invoice
from ...querying import parse_uuid
from ...taxes import service as taxes
from ...taxes.models import TaxRate
from ..http import iso
from . import schemas as s
from .blueprint import bp, endpoint

STATUS_TO_STATES = {
    "draft": (DRAFT,),
    "finalized": (OPEN, FAILED),
    "paid": (PAID,),
    "voided": (VOID,),
}
AUTH_ERRORS = {401: "Unauthorized - invalid or missing API key"}


def account_id() -> uuid.UUID:
    return g.account.id


def _code(code: str, resource: str) -> str:
    """A code from the path. Codes may contain `/` (the routes take the rest of the path);
    one with a NUL character names nothing (and PostgreSQL text cannot even hold it)."""
    if "\x00" in code:
        raise NotFound(resource)
    return code


# ---------------------------------------------------------------- serialisers


def invoice_json(inv: Invoice) -> dict[str, Any]:
    return {
        "id": str(inv.id),
        "invoice_number": inv.invoice_number,
        "customer_id": str(inv.customer_id),
        "subscription_id": str(inv.subscription_id) if inv.subscription_id else None,
        "status": DIALECT_A_STATUS[inv.state],
        "invoice_type": inv.invoice_type,
        "billing_period_start": iso(inv.billing_period_start),
        "billing_period_end": iso(inv.billing_period_end),
        "subtotal_cents": str(inv.subtotal_minor),
        "tax_amount_cents": str(inv.vat_minor),
        "total_cents": str(inv.total_minor),
        "prepaid_credit_amount_cents": str(inv.prepaid_credit_minor),
        "coupons_amount_cents": str(inv.discount_minor + inv.credit_minor),
        "progressive_billing_credit_amount_cents": str(inv.progressive_credit_minor),
        "currency": inv.currency,
        "line_items": [
            {
                "id": str(line.id),
                "description": line.description,
                "quantity": decimal_to_str(line.quantity),
                "unit_price": decimal_to_str(line.unit_amount),
                "amount": str(line.amount_minor),
                "charge_id": str(line.charge_id) if line.charge_id else None,
                "metric_code": line.metric_code,
                "tax_rate": decimal_to_str(line.tax_rate),
                "tax_code": line.tax_code,
                "tax_amount_cents": str(line.vat_minor),
                "amount_incl_vat": line.amount_incl_vat,
                "origin": line.origin,
            }
            for line in inv.lines
        ],
        "due_date": iso(inv.due_at),
        "issued_at": iso(inv.issued_at),
        "paid_at": iso(inv.paid_at),
        "voided_at": iso(inv.voided_at),
        "created_at": iso(inv.created_at),
        "updated_at": iso(inv.updated_at),
        "billing_entity_id": str(inv.billing_entity_id),
        "number": inv.number,
    }


def customer_json(c: Customer, default_term: int) -> dict[str, Any]:
    return {
        "id": str(c.id),
        "external_id": c.external_id,
        "name": c.name,
        "email": c.email,
        "currency": c.currency,
        "timezone": c.timezone,
        "billing_metadata": c.billing_metadata or {},
        "invoice_grace_period": c.invoice_grace_period,
        "net_payment_term": c.net_payment_term if c.net_payment_term is not None else default_term,
        "billing_entity_id": str(c.billing_entity_id) if c.billing_entity_id else None,
        "document_locale": c.document_locale,
        "created_at": iso(c.created_at),
        "updated_at": iso(c.updated_at),
    }


def _default_term() -> int:
    return entities.default_entity(account_id()).net_payment_term


def entity_json(e: BillingEntity) -> dict[str, Any]:
    return {
        "id": str(e.id),
        "code": e.code,
        "name": e.name,
        "legal_name": e.legal_name,
        "address_line1": e.address_line1,
        "address_line2": e.address_line2,
        "city": e.city,
        "state": e.state,
        "country": e.country,
        "zip_code": e.zip_code,
        "tax_id": e.tax_id,
        "email": e.email,
        "currency": e.currency,
        "timezone": e.timezone,
        "document_locale": e.document_locale,
        "invoice_prefix": e.invoice_prefix,
        "next_invoice_number": e.next_invoice_number,
        "invoice_grace_period": e.invoice_grace_period,
        "net_payment_term": e.net_payment_term,
        "invoice_footer": e.invoice_footer,
        "is_default": e.is_default,
        "number_pattern": e.number_pattern,
        "created_at": iso(e.created_at),
        "updated_at": iso(e.updated_at),
    }


def tax_json(t: TaxRate) -> dict[str, Any]:
    return {
        "id": str(t.id),
        "code": t.code,
        "name": t.name,
        "rate": decimal_to_str(t.rate),
        "description": t.description,
        "category": t.category,
        "applied_to_organization": t.applied_to_organization,
        "created_at": iso(t.created_at),
        "updated_at": iso(t.updated_at),
    }


# ---------------------------------------------------------------- invoices

INVOICE_404 = {404: "Invoice not found"}


@endpoint(
    bp,
    "/invoices/one_off",
    "POST",
    summary="Create a one-off invoice",
    body=s.OneOffInvoiceCreate,
    response=s.InvoiceResponse,
    tags=("Invoices",),
    errors={**AUTH_ERRORS, 404: "Customer not found"},
)
def create_one_off(body: s.OneOffInvoiceCreate) -> dict[str, Any]:
    """Create a one-off invoice with custom line items (a draft)."""
    req = invoices.OneOffInvoiceRequest(
        customer_id=body.customer_id,
        currency=body.currency,
        due_at=body.due_date,
        billing_entity_id=body.billing_entity_id,
        lines=[
            invoices.LineDraft(
                description=item.description,
                quantity=item.quantity,
                unit_amount=item.unit_price,
                amount_minor=int(item.amount),
                tax_percent=item.tax_rate,
                charge_id=item.charge_id,
                metric_code=item.metric_code,
            )
            for item in body.line_items
        ],
    )
    return invoice_json(invoices.create_one_off_invoice(account_id(), req))


@endpoint(
    bp,
    "/invoices/",
    "GET",
    summary="List invoices",
    query=s.InvoiceListQuery,
    response=list[s.InvoiceResponse],
    tags=("Invoices",),
    errors=AUTH_ERRORS,
)
def list_invoices(query: s.InvoiceListQuery) -> list[dict[str, Any]]:
    """List invoices with optional filters, paging and ordering."""
    flt = invoices.InvoiceFilter(
        customer_id=query.customer_id,
        subscription_id=query.subscription_id,
        states=STATUS_TO_STATES[query.status] if query.status else None,
    )
    rows = invoices.list_invoices(account_id(), flt, query.skip, query.limit, query.order_by)
    return [invoice_json(inv) for inv in rows]


@endpoint(
    bp,
    "/invoices/<invoice_id>",
    "GET",
    summary="Get an invoice",
    response=s.InvoiceResponse,
    tags=("Invoices",),
    errors={**AUTH_ERRORS, **INVOICE_404},
)
def get_invoice(invoice_id: str) -> dict[str, Any]:
    """One invoice with its lines."""
    return invoice_json(invoices.get_invoice(account_id(), parse_uuid(invoice_id, "Invoice")))


@endpoint(
    bp,
    "/invoices/<invoice_id>",
    "PUT",
    summary="Update an invoice",
    body=s.InvoiceUpdate,
    response=s.InvoiceResponse,
    tags=("Invoices",),
    errors={**AUTH_ERRORS, **INVOICE_404, 400: "Invoice cannot be changed in its state"},
)
def update_invoice(invoice_id: str, body: s.InvoiceUpdate) -> dict[str, Any]:
    """Change a draft's due date, or move the invoice along its lifecycle via `status`."""
    aid = account_id()
    iid = parse_uuid(invoice_id, "Invoice")
    inv = invoices.get_invoice(aid, iid)
    fields = body.model_fields_set
    if "issued_at" in fields and body.issued_at != inv.issued_at:
        raise InvalidState("issued_at is set when the invoice is finalized")
    if "due_date" in fields and body.due_date != inv.due_at:
        inv = invoices.update_draft(aid, iid, due_at=body.due_date)
    if "paid_at" in fields and body.status != "paid" and body.paid_at != inv.paid_at:
        raise InvalidState("paid_at is set when the invoice is marked paid")
    target = body.status
    if target is not None and target != DIALECT_A_STATUS[inv.state]:
        if target == "finalized":
            inv = invoices.finalize_invoice(aid, iid)
        elif target == "paid":
            inv = invoices.mark_paid(aid, iid, body.paid_at)
        elif target == "voided":
            inv = invoices.void_invoice(aid, iid)
        else:
            raise InvalidState("An invoice never goes back to draft")
    # `inv` is what the last service returned: as stored now (the session's copy read at
    # the start may predate a change written with Core).
    return invoice_json(inv)


@endpoint(
    bp,
    "/invoices/<invoice_id>",
    "DELETE",
    summary="Delete a draft invoice",
    status=204,
    tags=("Invoices",),
    errors={**AUTH_ERRORS, **INVOICE_404, 400: "Only draft invoices can be deleted"},
)
def delete_invoice(invoice_id: str) -> None:
    """Delete a draft. Numbered invoices are kept forever (void them instead)."""
    invoices.delete_draft(account_id(), parse_uuid(invoice_id, "Invoice"))


def _action(name: str, summary: str, error400: str) -> None:
    services: dict[str, Callable[[Any, uuid.UUID], Any]] = {
        "finalize": invoices.finalize_invoice,
        "pay": invoices.mark_paid,
        "void": invoices.void_invoice,
    }
    service = services[name]

    def view(invoice_id: str) -> dict[str, Any]:
        # The service returns the invoice as stored, lines loaded: no second read.
        return invoice_json(service(account_id(), parse_uuid(invoice_id, "Invoice")))

    view.__name__ = f"{name}_invoice"
    view.__doc__ = summary
    endpoint(
        bp,
        f"/invoices/<invoice_id>/{name}",
        "POST",
        summary=summary,
        response=s.InvoiceResponse,
        tags=("Invoices",),
        errors={**AUTH_ERRORS, **INVOICE_404, 400: error400},
    )(view)


_action(
    "finalize",
    "Finalize a draft invoice: number, issue date, due date",
    "Only draft invoices can be finalized",
)
_action("pay", "Mark a finalized invoice as paid", "Only finalized invoices can be marked paid")
_action("void", "Void an invoice (it keeps its number)", "Paid invoices cannot be voided")


# ---------------------------------------------------------------- customers

CUSTOMER_404 = {404: "Customer not found"}
_CUSTOMER_EXT = ("tax_code", "billing_entity_code")


def _customer_data(body: s.CustomerCreate | s.CustomerUpdate, create: bool) -> dict[str, Any]:
    data = body.model_dump(exclude_unset=not create)
    if create:
        if "net_payment_term" not in body.model_fields_set:
            data["net_payment_term"] = None
        for ext in (*_CUSTOMER_EXT, "document_locale"):
            if ext not in body.model_fields_set:
                data.pop(ext, None)
    else:
        for name in ("name", "currency", "timezone", "invoice_grace_period", "document_locale"):
            if name in data and data[name] is None:
                raise InvalidInput((name,), f"{name} cannot be null")
        if data.get("billing_metadata", {}) is None:
            data["billing_metadata"] = {}
    return data


@endpoint(
    bp,
    "/customers/",
    "POST",
    summary="Create a customer",
    body=s.CustomerCreate,
    response=s.CustomerResponse,
    status=201,
    tags=("Customers",),
    errors={**AUTH_ERRORS, 409: "Customer with this external_id already exists"},
)
def create_customer(body: s.CustomerCreate) -> dict[str, Any]:
    """Create a customer; `external_id` is its handle in the subscription dialect."""
    customer = customers.create_customer(account_id(), _customer_data(body, True))
    return customer_json(customer, _default_term())


@endpoint(
    bp,
    "/customers/",
    "GET",
    summary="List customers",
    query=s.ListQuery,
    response=list[s.CustomerResponse],
    tags=("Customers",),
    errors=AUTH_ERRORS,
)
def list_customers(query: s.ListQuery) -> list[dict[str, Any]]:
    """Customers of the account, paged."""
    rows = customers.list_customers(account_id(), query.skip, query.limit, query.order_by)
    term = _default_term()
    return [customer_json(c, term) for c in rows]


@endpoint(
    bp,
    "/customers/<customer_id>",
    "GET",
    summary="Get a customer",
    response=s.CustomerResponse,
    tags=("Customers",),
    errors={**AUTH_ERRORS, **CUSTOMER_404},
)
def get_customer(customer_id: str) -> dict[str, Any]:
    """One customer."""
    c = customers.get_customer(account_id(), parse_uuid(customer_id, "Customer"))
    return customer_json(c, _default_term())


@endpoint(
    bp,
    "/customers/<customer_id>",
    "PUT",
    summary="Update a customer",
    body=s.CustomerUpdate,
    response=s.CustomerResponse,
    tags=("Customers",),
    errors={**AUTH_ERRORS, **CUSTOMER_404},
)
def update_customer(customer_id: str, body: s.CustomerUpdate) -> dict[str, Any]:
    """Change the fields given; omitted fields keep their value."""
    c = customers.update_customer(
        account_id(), parse_uuid(customer_id, "Customer"), _customer_data(body, False)
    )
    return customer_json(c, _default_term())


@endpoint(
    bp,
    "/customers/<customer_id>",
    "DELETE",
    summary="Delete a customer",
    status=204,
    tags=("Customers",),
    errors={**AUTH_ERRORS, **CUSTOMER_404, 400: "Cannot delete a customer with invoices"},
)
def delete_customer(customer_id: str) -> None:
    """Delete a customer that has no invoices."""
    customers.delete_customer(account_id(), parse_uuid(customer_id, "Customer"))


# ---------------------------------------------------------------- billing entities

ENTITY_404 = {404: "Billing entity not found"}


def _entity_data(
    body: s.BillingEntityCreate | s.BillingEntityUpdate, create: bool
) -> dict[str, Any]:
    data = body.model_dump(exclude_unset=True) if not create else body.model_dump()
    if create and data.get("number_pattern") is None:
        data.pop("number_pattern", None)
    if "tax_code" in data:
        code = data.pop("tax_code")
        if create and code is None:
            pass
        else:
            data["default_tax_rate_id"] = taxes.tax_id_for_code(account_id(), code, ("tax_code",))
    if not create:
        for name in (
            "name",
            "currency",
            "timezone",
            "document_locale",
            "next_invoice_number",
            "invoice_grace_period",
            "net_payment_term",
            "is_default",
            "number_pattern",
        ):
            if name in data and data[name] is None:
                raise InvalidInput((name,), f"{name} cannot be null")
    return data


@endpoint(
    bp,
    "/billing_entities/",
    "POST",
    summary="Create a billing entity",
    body=s.BillingEntityCreate,
    response=s.BillingEntityResponse,
    status=201,
    tags=("Billing entities",),
    errors={**AUTH_ERRORS, 409: "Billing entity with this code already exists"},
)
def create_entity(body: s.BillingEntityCreate) -> dict[str, Any]:
    """Create an issuer with its own invoice number series."""
    return entity_json(entities.create_entity(account_id(), _entity_data(body, True)))


@endpoint(
    bp,
    "/billing_entities/",
    "GET",
    summary="List billing entities",
    query=s.ListQuery,
    response=list[s.BillingEntityResponse],
    tags=("Billing entities",),
    errors=AUTH_ERRORS,
)
def list_entities(query: s.ListQuery) -> list[dict[str, Any]]:
    """Billing entities of the account."""
    rows = entities.list_entities(account_id(), query.skip, query.limit, query.order_by)
    return [entity_json(e) for e in rows]


@endpoint(
    bp,
    "/billing_entities/<path:code>",
    "GET",
    summary="Get a billing entity",
    response=s.BillingEntityResponse,
    tags=("Billing entities",),
    errors={**AUTH_ERRORS, **ENTITY_404},
)
def get_entity(code: str) -> dict[str, Any]:
    """One billing entity, by code."""
    return entity_json(entities.get_entity(account_id(), _code(code, "Billing entity")))


@endpoint(
    bp,
    "/billing_entities/<path:code>",
    "PATCH",
    summary="Update a billing entity",
    body=s.BillingEntityUpdate,
    response=s.BillingEntityResponse,
    tags=("Billing entities",),
    errors={**AUTH_ERRORS, **ENTITY_404},
)
def update_entity(code: str, body: s.BillingEntityUpdate) -> dict[str, Any]:
    """Change the fields given."""
    code = _code(code, "Billing entity")
    return entity_json(entities.update_entity(account_id(), code, _entity_data(body, False)))


@endpoint(
    bp,
    "/billing_entities/<path:code>",
    "DELETE",
    summary="Delete a billing entity",
    status=204,
    tags=("Billing entities",),
    errors={**AUTH_ERRORS, **ENTITY_404, 400: "Cannot delete billing entity with invoices"},
)
def delete_entity(code: str) -> None:
    """Delete an entity that has issued no invoice and is not the default."""
    entities.delete_entity(account_id(), _code(code, "Billing entity"))


# ---------------------------------------------------------------- taxes

TAX_404 = {404: "Tax not found"}


@endpoint(
    bp,
    "/taxes/",
    "POST",
    summary="Create a tax",
    body=s.TaxCreate,
    response=s.TaxCreatedResponse,
    status=201,
    tags=("Taxes",),
    errors={**AUTH_ERRORS, 409: "Tax with this code already exists"},
)
def create_tax(body: s.TaxCreate) -> dict[str, Any]:
    """Create a tax rate (percent). `applied_to_organization` makes it the account's
    organisation-wide default, replacing the previous one: the answer's
    `replaced_organization_tax` names it (null when there was none)."""
    created = taxes.create_tax(account_id(), body.model_dump())
    return tax_json(created.tax) | {"replaced_organization_tax": created.replaced_organization_tax}


@endpoint(
    bp,
    "/taxes/",
    "GET",
    summary="List taxes",
    query=s.ListQuery,
    response=list[s.TaxResponse],
    tags=("Taxes",),
    errors=AUTH_ERRORS,
)
def list_taxes(query: s.ListQuery) -> list[dict[str, Any]]:
    """Tax rates of the account."""
    rows = taxes.list_taxes(account_id(), query.skip, query.limit, query.order_by)
    return [tax_json(t) for t in rows]


@endpoint(
    bp,
    "/taxes/<path:code>",
    "GET",
    summary="Get a tax",
    response=s.TaxResponse,
    tags=("Taxes",),
    errors={**AUTH_ERRORS, **TAX_404},
)
def get_tax(code: str) -> dict[str, Any]:
    """One tax rate, by code."""
    return tax_json(taxes.get_tax(account_id(), _code(code, "Tax")))


@endpoint(
    bp,
    "/taxes/<path:code>",
    "PUT",
    summary="Update a tax",
    body=s.TaxUpdate,
    response=s.TaxResponse,
    tags=("Taxes",),
    errors={**AUTH_ERRORS, **TAX_404},
)
def update_tax(code: str, body: s.TaxUpdate) -> dict[str, Any]:
    """Change the fields given. Existing invoices keep the rate they were made with."""
    changes = body.model_dump(exclude_unset=True)
    for name in ("name", "rate", "applied_to_organization"):
        if name in changes and changes[name] is None:
            raise InvalidInput((name,), f"{name} cannot be null")
    return tax_json(taxes.update_tax(account_id(), _code(code, "Tax"), changes))


@endpoint(
    bp,
    "/taxes/<path:code>",
    "DELETE",
    summary="Delete a tax",
    status=204,
    tags=("Taxes",),
    errors={**AUTH_ERRORS, **TAX_404},
)
def delete_tax(code: str) -> None:
    """Delete a tax rate; invoice lines keep the rate they copied."""
    taxes.delete_tax(account_id(), _code(code, "Tax"))
