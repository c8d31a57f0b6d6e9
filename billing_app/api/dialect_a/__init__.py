"""Dialect A (seed 000): one-off invoices, customers, billing entities, taxes, PDFs."""

from . import documents, routes  # noqa: F401  (their routes join bp)
from .blueprint import bp

__all__ = ["bp"]
