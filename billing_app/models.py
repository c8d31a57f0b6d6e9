"""Every model, imported in one place so Alembic sees the whole schema."""

from .accounts.models import Account, ApiKey, SignInThrottle, User
from .audit.models import AuditRecord
from .catalog.models import AddOn, Charge, Coupon, Discount, Metric, Plan
from .customers.models import Customer, Wallet
from .documents.models import InvoiceDocument
from .entities.models import BillingEntity, BillingEntityLogo
from .idempotency.models import IdempotencyKey
from .invoices import guards  # noqa: F401  (flush-time immutability guard)
from .invoices.models import Invoice, InvoiceLine
from .payments.models import PaymentMethod, Transaction
from .subscriptions.models import (
    AdditionalCost,
    Credit,
    CreditUse,
    Subscription,
    SubscriptionAddOn,
    SubscriptionDiscount,
    UsageEvent,
)
from .taxes.models import TaxRate

__all__ = [
    "Account",
    "AddOn",
    "AdditionalCost",
    "ApiKey",
    "AuditRecord",
    "BillingEntity",
    "BillingEntityLogo",
    "Charge",
    "Coupon",
    "Credit",
    "CreditUse",
    "Customer",
    "Discount",
    "IdempotencyKey",
    "Invoice",
    "InvoiceDocument",
    "InvoiceLine",
    "Metric",
    "PaymentMethod",
    "Plan",
    "SignInThrottle",
    "Subscription",
    "SubscriptionAddOn",
    "SubscriptionDiscount",
    "TaxRate",
    "Transaction",
    "UsageEvent",
    "User",
    "Wallet",
]
