"""Customers (dialect A `/v1/customers/`, dialect B `/v1/customer`: one table)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from ..audit import service as audit
from ..db import write_transaction
from ..entities.models import BillingEntity
from ..errors import Duplicate, InUse, InvalidInput
from ..extensions import db
from ..invoices.models import Invoice
from ..querying import apply_changes, contains_pattern, get_scoped, order_clause, page
from .models import Customer, Wallet

ORDER_FIELDS = {
    "created_at": Customer.created_at,
    "name": Customer.name,
    "external_id": Customer.external_id,
    "email": Customer.email,
}
DUPLICATE_MESSAGE = "Customer with this external_id already exists"


def _resolve_refs(account_id: uuid.UUID, data: dict[str, Any]) -> dict[str, Any]:
    """Turn the `tax_code` / `billing_entity_code` extensions into ids."""
    data = dict(data)
    if "tax_code" in data:
        from ..taxes.service import tax_id_for_code

        data["tax_rate_id"] = tax_id_for_code(account_id, data.pop("tax_code"), ("tax_code",))
    if "billing_entity_code" in data:
        code = data.pop("billing_entity_code")
        data["billing_entity_id"] = None
        if code is not None:
            entity_id = db.session.scalar(
                select(BillingEntity.id).where(
                    BillingEntity.account_id == account_id, BillingEntity.code == code
                )
            )
            if entity_id is None:
                raise InvalidInput(("billing_entity_code",), f"Unknown billing entity {code!r}")
            data["billing_entity_id"] = entity_id
    return data


def create_customer(account_id: uuid.UUID, data: dict[str, Any]) -> Customer:
    with write_transaction():
        data = _resolve_refs(account_id, data)
        if db.session.scalar(
            select(func.count()).where(
                Customer.account_id == account_id, Customer.external_id == data["external_id"]
            )
        ):
            raise Duplicate("Customer", DUPLICATE_MESSAGE)
        customer = Customer(account_id=account_id, **data)
        db.session.add(customer)
        try:
            db.session.flush()
        except IntegrityError:
            raise Duplicate("Customer", DUPLICATE_MESSAGE) from None
        audit.record(account_id, "customer.created", "customer", customer.id, after=data)
    return customer


def update_customer(
    account_id: uuid.UUID, customer_id: uuid.UUID, changes: dict[str, Any]
) -> Customer:
    with write_transaction():
        customer = get_customer(account_id, customer_id)
        changes = _resolve_refs(account_id, changes)
        before, after = apply_changes(customer, changes)
        if after:
            audit.record(
                account_id, "customer.updated", "customer", customer.id, before=before, after=after
            )
    return customer


def delete_customer(account_id: uuid.UUID, customer_id: uuid.UUID) -> None:
    """Refused (InUse) while the customer has invoices: they must keep their customer."""
    with write_transaction():
        customer = get_customer(account_id, customer_id)
        if db.session.scalar(select(func.count()).where(Invoice.customer_id == customer.id)):
            raise InUse("Cannot delete a customer with invoices")
        balance = db.session.scalar(
            select(func.coalesce(func.sum(Wallet.balance_minor), 0)).where(
                Wallet.customer_id == customer.id
            )
        )
        if balance:
            raise InUse("Cannot delete a customer with prepaid credit")
        db.session.execute(Wallet.__table__.delete().where(Wallet.customer_id == customer.id))
        db.session.delete(customer)
        audit.record(
            account_id,
            "customer.deleted",
            "customer",
            customer.id,
            before={"external_id": customer.external_id, "name": customer.name},
        )


def get_customer(account_id: uuid.UUID, customer_id: uuid.UUID) -> Customer:
    return get_scoped(Customer, account_id, "Customer", id=customer_id)


def get_customer_by_handle(account_id: uuid.UUID, handle: str) -> Customer:
    return get_scoped(Customer, account_id, "Customer", external_id=handle)


def list_customers(
    account_id: uuid.UUID, skip: int, limit: int, order_by: str | None
) -> list[Customer]:
    stmt = (
        select(Customer)
        .where(Customer.account_id == account_id)
        .order_by(*order_clause(Customer, order_by, ORDER_FIELDS, "created_at"))
    )
    return page(stmt, skip, limit)


def credit_wallet(
    account_id: uuid.UUID, customer_id: uuid.UUID, currency: str, amount_minor: int
) -> Wallet:
    """Add prepaid credit; invoices in that currency consume it at finalization."""
    if amount_minor <= 0:
        raise InvalidInput(("amount",), "A top-up must be positive")
    with write_transaction():
        customer = get_customer(account_id, customer_id)
        wallet = db.session.scalars(
            select(Wallet)
            .where(Wallet.customer_id == customer.id, Wallet.currency == currency)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one_or_none()
        if wallet is None:
            wallet = Wallet(
                account_id=account_id, customer_id=customer.id, currency=currency, balance_minor=0
            )
            db.session.add(wallet)
        before = wallet.balance_minor
        wallet.balance_minor = before + amount_minor
        db.session.flush()
        audit.record(
            account_id,
            "wallet.credited",
            "wallet",
            wallet.id,
            before={"balance_minor": before},
            after={"balance_minor": wallet.balance_minor},
        )
    return wallet


def find_customers(
    account_id: uuid.UUID, text: str = "", *, skip: int = 0, limit: int = 50
) -> list[Customer]:
    """Customers by name (then handle), optionally only those whose name, email or handle
    contains `text`, case-insensitively. For the browser list and the customer picker."""
    stmt = select(Customer).where(Customer.account_id == account_id)
    text = text.strip()[:100]
    if text:
        pattern = contains_pattern(text)
        stmt = stmt.where(
            or_(
                Customer.name.ilike(pattern, escape="\\"),
                Customer.email.ilike(pattern, escape="\\"),
                Customer.external_id.ilike(pattern, escape="\\"),
            )
        )
    stmt = stmt.order_by(Customer.name, Customer.external_id, Customer.id)
    return page(stmt, skip, limit)
