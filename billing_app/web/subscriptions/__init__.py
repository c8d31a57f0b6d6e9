"""Subscription pages: plans, add-ons, discounts, subscriptions, costs, credits, invoice now."""
