"""Dialect B (seed 002, Reepay-compatible): customers, plans, subscriptions and their
invoices, payments, PDFs."""

from . import documents, invoices, resources  # noqa: F401  (their routes join bp)
from .blueprint import bp

__all__ = ["bp"]
