"""Catalogue set-up for dialect B invoice tests, written straight through the models so
these tests do not depend on the catalogue routes they are not about."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from billing_app.catalog.models import AddOn, Charge, Discount, Metric, Plan
from billing_app.customers.models import Customer
from billing_app.db import utcnow
from billing_app.extensions import db
from billing_app.payments.gateway import CardDetails
from billing_app.payments.service import add_payment_method
from billing_app.subscriptions.models import (
    AdditionalCost,
    Credit,
    Subscription,
    SubscriptionAddOn,
    SubscriptionDiscount,
    UsageEvent,
)

APPROVE = "4111111111111111"
DECLINE = "4000000000000002"


@dataclass
class Catalog:
    app: Any
    account_id: uuid.UUID

    def _add(self, obj: Any) -> Any:
        with self.app.app_context():
            db.session.add(obj)
            db.session.commit()
            db.session.refresh(obj)
            db.session.expunge(obj)
            db.session.remove()
        return obj

    def customer(self, handle: str = "cust", **kw: Any) -> Customer:
        return self._add(
            Customer(
                account_id=self.account_id,
                external_id=handle,
                name=kw.pop("name", f"Customer {handle}"),
                currency="EUR",
                **kw,
            )
        )

    def card(self, customer: Customer, number: str = APPROVE) -> str:
        with self.app.app_context():
            method = add_payment_method(
                self.account_id, customer.id, CardDetails(number, 12, date.today().year + 2, "123")
            )
            handle = method.handle
            db.session.remove()
        return handle

    def plan(
        self,
        handle: str = "basic",
        amount: int = 10000,
        vat: str | None = "0.25",
        incl: bool = True,
        **kw: Any,
    ) -> Plan:
        return self._add(
            Plan(
                account_id=self.account_id,
                handle=handle,
                name=f"Plan {handle}",
                amount=amount,
                vat=Decimal(vat) if vat else None,
                amount_incl_vat=incl,
                currency=kw.pop("currency", "EUR"),
                **kw,
            )
        )

    def subscription(
        self,
        customer: Customer,
        plan: Plan,
        handle: str = "sub-1",
        card: str | None = None,
        **kw: Any,
    ) -> Subscription:
        method_id = None
        if card:
            from billing_app.payments.models import PaymentMethod

            with self.app.app_context():
                method_id = db.session.query(PaymentMethod.id).filter_by(handle=card).scalar()
                db.session.remove()
        return self._add(
            Subscription(
                account_id=self.account_id,
                handle=handle,
                customer_id=customer.id,
                plan_id=plan.id,
                payment_method_id=method_id,
                **kw,
            )
        )

    def add_on(
        self,
        sub: Subscription,
        handle: str,
        amount: int,
        vat: str = "0.25",
        type_: str = "on_off",
        quantity: int = 1,
        incl: bool = True,
    ) -> AddOn:
        add_on = self._add(
            AddOn(
                account_id=self.account_id,
                handle=handle,
                name=f"Add-on {handle}",
                amount=amount,
                vat=Decimal(vat),
                amount_incl_vat=incl,
                type=type_,
            )
        )
        self._add(
            SubscriptionAddOn(
                subscription_id=sub.id, handle=handle, add_on_id=add_on.id, quantity=quantity
            )
        )
        return add_on

    def cost(
        self,
        sub: Subscription,
        handle: str,
        amount: int,
        quantity: int = 1,
        vat: str = "0.25",
        incl: bool = True,
    ) -> AdditionalCost:
        return self._add(
            AdditionalCost(
                account_id=self.account_id,
                handle=handle,
                subscription_id=sub.id,
                ordertext=f"Cost {handle}",
                amount=amount,
                quantity=quantity,
                vat=Decimal(vat),
                amount_incl_vat=incl,
            )
        )

    def credit(
        self, sub: Subscription, handle: str, amount: int, valid_from: date | None = None
    ) -> Credit:
        return self._add(
            Credit(
                account_id=self.account_id,
                handle=handle,
                subscription_id=sub.id,
                amount=amount,
                pending_amount=amount,
                text=f"Credit {handle}",
                valid_from=valid_from,
            )
        )

    def discount(
        self,
        sub: Subscription,
        handle: str,
        *,
        percentage: str | None = None,
        amount: int | None = None,
        apply_to: list[str] | None = None,
        fixed_count: int | None = None,
    ) -> Discount:
        discount = self._add(
            Discount(
                account_id=self.account_id,
                handle=handle,
                name=f"Discount {handle}",
                percentage=Decimal(percentage) if percentage else None,
                amount=amount,
                apply_to=apply_to or ["all"],
                fixed_count=fixed_count,
            )
        )
        self._add(
            SubscriptionDiscount(
                account_id=self.account_id,
                subscription_id=sub.id,
                handle=f"sd-{handle}",
                discount_id=discount.id,
            )
        )
        return discount

    def metric_charge(
        self,
        plan: Plan,
        code: str,
        unit_amount: str,
        aggregation: str = "sum",
        tiers: list[dict[str, Any]] | None = None,
    ) -> Charge:
        metric = self._add(
            Metric(
                account_id=self.account_id,
                code=code,
                name=f"Metric {code}",
                aggregation=aggregation,
            )
        )
        return self._add(
            Charge(
                account_id=self.account_id,
                plan_id=plan.id,
                metric_id=metric.id,
                unit_amount=Decimal(unit_amount),
                vat=Decimal("0.25"),
                amount_incl_vat=False,
                tiers=tiers,
            )
        )

    def usage(
        self, sub: Subscription, charge: Charge, tx: str, value: str, at: datetime | None = None
    ) -> UsageEvent:
        return self._add(
            UsageEvent(
                account_id=self.account_id,
                transaction_id=tx,
                subscription_id=sub.id,
                metric_id=charge.metric_id,
                value=Decimal(value),
                timestamp=at or utcnow(),
            )
        )
