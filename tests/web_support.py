"""Helpers for the browser-page tests: a Flask test client that signs in and sends the
CSRF token the way the pages do (a form field), and small service-level factories."""

from __future__ import annotations

import re
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, or_, select

from billing_app.customers.models import Customer
from billing_app.extensions import db
from billing_app.invoices.models import Invoice
from billing_app.querying import contains_pattern

_TOKEN = re.compile(r'"X-CSRFToken": "([^"]+)"')


class Browser:
    """A test client signed in as one tenant's user."""

    def __init__(self, client: FlaskClient):
        self.client = client
        self._token: str | None = None

    def token(self) -> str:
        if self._token is None:
            page = self.client.get("/signin" if not self.signed_in else "/settings/api-keys")
            html = page.get_data(as_text=True)
            match = _TOKEN.search(html)
            assert match, html[:500]
            self._token = match.group(1)
        return self._token

    signed_in = False

    def sign_in(self, email: str, password: str) -> Any:
        token = self.token()
        resp = self.client.post(
            "/signin", data={"email": email, "password": password, "csrf_token": token}
        )
        if resp.status_code == 302:
            self.signed_in = True
            self._token = None  # a new session: a new token
        return resp

    def get(self, path: str, htmx: bool = False, **kw: Any) -> Any:
        headers = {"HX-Request": "true"} if htmx else {}
        return self.client.get(path, headers=headers, **kw)

    def post(
        self, path: str, data: Any = None, *, htmx: bool = False, csrf: bool = True, **kw: Any
    ) -> Any:
        data = dict(data or {})
        if csrf:
            data.setdefault("csrf_token", self.token())
        headers = {"HX-Request": "true"} if htmx else {}
        return self.client.post(path, data=data, headers=headers, **kw)

    def text(self, path: str, **kw: Any) -> str:
        resp = self.get(path, **kw)
        assert resp.status_code == 200, (path, resp.status_code)
        return resp.get_data(as_text=True)


def signed_in(client: FlaskClient, tenant: Any) -> Browser:
    browser = Browser(client)
    resp = browser.sign_in(tenant.email, tenant.password)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return browser


def is_whole_page(html: str) -> bool:
    return html.lstrip().lower().startswith("<!doctype html>")


@contextmanager
def counting_statements(app: Flask) -> Any:
    """Counts SQL statements sent while the block runs (all connections of the app)."""
    counter = {"n": 0}
    with app.app_context():
        engines = {db.engine}

    def _count(*_: Any) -> None:
        counter["n"] += 1

    for engine in engines:
        event.listen(engine, "before_cursor_execute", _count)
    try:
        yield counter
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", _count)


# ---------------------------------------------------------------- data through the services


def make_customer(app: Flask, tenant: Any, external_id: str = "acme", **extra: Any) -> Any:
    from billing_app.customers.service import create_customer

    data = {"external_id": external_id, "name": f"Customer {external_id}", "currency": "EUR"}
    data.update(extra)
    with app.app_context():
        customer = create_customer(tenant.account_id, data)
        db.session.remove()
    return customer


def make_tax(app: Flask, tenant: Any, code: str, percent: str, **extra: Any) -> Any:
    from billing_app.taxes.service import create_tax

    with app.app_context():
        tax = create_tax(
            tenant.account_id,
            {"code": code, "name": f"VAT {percent}", "rate": Decimal(percent), **extra},
        ).tax
        db.session.remove()
    return tax


def make_invoice(
    app: Flask,
    tenant: Any,
    customer_id: Any,
    lines: list[tuple[str, str, str]] | None = None,
    *,
    finalize: bool = False,
    pay: bool = False,
    currency: str = "EUR",
) -> Any:
    """lines: (description, quantity, unit price in minor units)."""
    from billing_app.invoices import service as invoices

    drafts = [
        invoices.LineDraft(description=d, quantity=Decimal(q), unit_amount=Decimal(u))
        for d, q, u in (lines or [("Service", "1", "10000")])
    ]
    with app.app_context():
        inv = invoices.create_one_off_invoice(
            tenant.account_id,
            invoices.OneOffInvoiceRequest(customer_id=customer_id, currency=currency, lines=drafts),
        )
        if finalize or pay:
            inv = invoices.finalize_invoice(tenant.account_id, inv.id)
        if pay:
            inv = invoices.mark_paid(tenant.account_id, inv.id)
        db.session.remove()
    return inv


def load_invoice(app: Flask, tenant: Any, invoice_id: Any) -> Any:
    from billing_app.invoices.service import get_invoice

    with app.app_context():
        inv = get_invoice(tenant.account_id, invoice_id)
        _ = list(inv.lines)
        db.session.expunge_all()
        db.session.remove()
    return inv


def scan_text_matches(account_id: Any, q: str, column: Any) -> list[Any]:
    """`column` of the account's invoices whose number or customer name contains the text,
    by the case-insensitive LIKE alone, without any index (what the list's text search
    must answer). Unordered; call inside an app context."""
    pattern = contains_pattern(q)
    stmt = (
        select(column)
        .join(Customer, Customer.id == Invoice.customer_id)
        .where(
            Invoice.account_id == account_id,
            or_(
                Invoice.invoice_number.ilike(pattern, escape="\\"),
                Customer.name.ilike(pattern, escape="\\"),
            ),
        )
    )
    return list(db.session.scalars(stmt))
