"""Who an invoice is between and which tax rates may price it: the one home of both rules.

Every door and every preview asks here, so the entity and rates a preview shows are the
ones the saved invoice gets.

- The billing entity that issues an invoice is the one the request names, else the
  customer's own, else the account's default entity (`entities.service.default_entity`).
  A named entity of another account is not found, like a missing one.
- The tax rates that may price its lines are the organisation-wide rate, the customer's
  and the entity's (`taxes.service.TaxTable` holds them and the precedence between them);
  rates an item names (a charge, a plan) are added by whoever prices that item
  (`Parties.with_item_rates`).
- A stored invoice keeps its billing entity: re-pricing a draft's lines uses the
  invoice's own parties (`invoice_parties`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select

from ..accounts.models import Account
from ..customers.models import Customer
from ..entities.models import BillingEntity
from ..entities.service import default_entity
from ..errors import NotFound
from ..extensions import db
from ..querying import get_scoped
from ..taxes.service import TaxTable, load_tax_table
from .models import Invoice


@dataclass(frozen=True)
class Parties:
    """The account, the customer and the issuing billing entity of one invoice, and the
    tax rates its lines may use."""

    account: Account
    customer: Customer
    entity: BillingEntity
    taxes: TaxTable

    @property
    def account_id(self) -> uuid.UUID:
        return self.account.id

    def with_item_rates(self, tax_ids: Iterable[uuid.UUID | None]) -> Parties:
        """The same parties with the rates items name (charges, plans, add-ons) loaded too."""
        ids = {tax_id for tax_id in tax_ids if tax_id is not None} - set(self.taxes.by_id)
        if not ids:
            return self
        taxes = load_tax_table(
            self.account.id,
            [*ids, self.customer.tax_rate_id, self.entity.default_tax_rate_id],
            self.account.default_vat_percent,
        )
        return Parties(self.account, self.customer, self.entity, taxes)


def issuing_entity(
    account_id: uuid.UUID, customer: Customer, requested_id: uuid.UUID | None = None
) -> BillingEntity:
    """The request's billing entity, else the customer's, else the account's default.
    NotFound("Billing entity") for one that is not the account's."""
    entity_id = requested_id if requested_id is not None else customer.billing_entity_id
    if entity_id is None:
        return default_entity(account_id)
    entity = db.session.scalars(
        select(BillingEntity).where(
            BillingEntity.account_id == account_id, BillingEntity.id == entity_id
        )
    ).one_or_none()
    if entity is None:
        raise NotFound("Billing entity")
    return entity


def _pricing(account: Account, customer: Customer, entity: BillingEntity) -> Parties:
    taxes = load_tax_table(
        account.id,
        [customer.tax_rate_id, entity.default_tax_rate_id],
        account.default_vat_percent,
    )
    return Parties(account, customer, entity, taxes)


def parties_of(
    account: Account, customer: Customer, requested_entity_id: uuid.UUID | None = None
) -> Parties:
    """The parties of an invoice to `customer` (already read, the account's own)."""
    return _pricing(account, customer, issuing_entity(account.id, customer, requested_entity_id))


def issuer_and_customer(invoice: Invoice) -> tuple[BillingEntity, Customer]:
    """The billing entity and the customer a stored invoice is between (one query)."""
    entity, customer = db.session.execute(
        select(BillingEntity, Customer)
        .join_from(BillingEntity, Customer, Customer.account_id == BillingEntity.account_id)
        .where(BillingEntity.id == invoice.billing_entity_id, Customer.id == invoice.customer_id)
    ).one()
    return entity, customer


def invoice_parties(invoice: Invoice) -> Parties:
    """The parties of a stored invoice: the ones it was made for (its billing entity
    stays), with the rates they allow now (for re-pricing a draft's lines)."""
    account = db.session.get(Account, invoice.account_id)
    if account is None:
        raise NotFound("Account")
    entity, customer = issuer_and_customer(invoice)
    return _pricing(account, customer, entity)


def resolve_parties(
    account_id: uuid.UUID,
    customer_id: uuid.UUID,
    requested_entity_id: uuid.UUID | None = None,
) -> Parties:
    """The parties of an invoice from the account's customer `customer_id` and the billing
    entity the request names (None: the customer's, else the account's default).
    NotFound("Customer") / NotFound("Billing entity") for what is not the account's."""
    customer = get_scoped(Customer, account_id, "Customer", id=customer_id)
    account = db.session.get(Account, account_id)
    if account is None:
        raise NotFound("Account")
    return parties_of(account, customer, requested_entity_id)
