"""Dialect B invoices: the on-demand subscription invoice and invoice reads/actions."""

from __future__ import annotations

from .blueprint_b import bp  # noqa: F401  (routes are added below)
