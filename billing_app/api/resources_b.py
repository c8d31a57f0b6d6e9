"""Dialect B resources (Reepay paths and shapes): customers, payment methods, plans,
add-ons, subscriptions, additional costs, credits, discounts, coupons, usage."""

from __future__ import annotations

from .blueprint_b import bp  # noqa: F401  (routes are added below)
