"""Subscription pages: the catalogue (plans, add-ons, discounts), subscriptions with their
add-ons, discounts, additional costs and credits, the state actions, and invoice-now with
its server-computed preview. Through the Flask client, signed in as one tenant."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from b_setup import Catalog
from conftest import row_counts
from sqlalchemy import select, update
from web_support import is_whole_page, make_tax, signed_in

from billing_app.accounts.models import Account
from billing_app.catalog.models import AddOn, Discount, Plan
from billing_app.extensions import db
from billing_app.invoices.models import Invoice
from billing_app.subscriptions.models import (
    AdditionalCost,
    Credit,
    Subscription,
    SubscriptionAddOn,
    SubscriptionDiscount,
)


@pytest.fixture
def web(client, tenant):
    return signed_in(client, tenant)


@pytest.fixture
def cat(app, tenant):
    return Catalog(app, tenant.account_id)


@pytest.fixture
def theirs(app, other_tenant):
    """Another account's catalogue and subscription, with a cost and a credit."""
    other = Catalog(app, other_tenant.account_id)
    customer = other.customer("their-cust")
    plan = other.plan("their-plan")
    sub = other.subscription(customer, plan, "their-sub")
    other.cost(sub, "their-cost", 500)
    other.credit(sub, "their-credit", 300)
    other.discount(sub, "their-discount", percentage="10")
    return sub


def _one(app, model, **filters):
    with app.app_context():
        row = db.session.scalars(select(model).filter_by(**filters)).one_or_none()
        db.session.expunge_all()
        db.session.remove()
    return row


def _all(app, model, **filters):
    with app.app_context():
        rows = list(db.session.scalars(select(model).filter_by(**filters)))
        db.session.expunge_all()
        db.session.remove()
    return rows


def _error(html, field_id):
    """The text of a field's error paragraph."""
    match = re.search(rf'id="{re.escape(field_id)}-error"[^>]*>([^<]*)<', html)
    assert match, f"no error paragraph for {field_id}"
    return match.group(1)


def _set_locale(app, customer, locale):
    from billing_app.customers.models import Customer

    with app.app_context():
        db.session.execute(
            update(Customer).where(Customer.id == customer.id).values(document_locale=locale)
        )
        db.session.commit()
        db.session.remove()


@pytest.fixture
def sub(app, cat):
    """An active subscription of a German customer on a 100 EUR plan (VAT 25 %, incl.)."""
    customer = cat.customer("acme", name="ACME GmbH")
    _set_locale(app, customer, "de")
    plan = cat.plan("basic", amount=10000)
    return cat.subscription(customer, plan, "sub-1")


# ---------------------------------------------------------------- catalogue


def test_empty_lists_say_what_to_do(web):
    assert "Create your first plan" in web.text("/plans/")
    assert "Create an add-on" in web.text("/add-ons/")
    assert "Create a discount" in web.text("/discounts/")
    assert "Create a subscription" in web.text("/subscriptions/")


def test_create_a_plan(app, web, tenant):
    html = web.text("/plans/new")
    assert '<label for="handle">Handle</label>' in html
    assert '<option selected value="EUR">' in html
    resp = web.post(
        "/plans/new",
        {
            "handle": "pro-monthly",
            "name": "Pro (monthly)",
            "currency": "DKK",
            "amount": "249,00",
            "vat": "25",
            "amount_incl_vat": "y",
            "quantity": "1",
            "schedule_type": "month_startdate",
            "interval_length": "1",
        },
    )
    assert resp.status_code == 302 and resp.headers["Location"] == "/plans/pro-monthly"
    plan = _one(app, Plan, handle="pro-monthly")
    assert (plan.amount, plan.vat, plan.currency, plan.amount_incl_vat) == (
        24900,
        Decimal("0.25"),
        "DKK",
        True,
    )
    page = web.text("/plans/pro-monthly")
    assert "Pro (monthly)" in page and "DKK249.00" in page and "25 %" in page
    assert "Every month" in page
    listing = web.text("/plans/")
    assert "/plans/pro-monthly" in listing and "DKK249.00" in listing


@pytest.mark.parametrize(
    "changes, field, message",
    [
        ({"handle": ""}, "handle", "Enter a handle."),
        ({"handle": "no spaces"}, "handle", "Use letters, digits"),
        ({"name": ""}, "name", "Enter a name."),
        ({"amount": ""}, "amount", "Enter an amount."),
        ({"amount": "12.345"}, "amount", "EUR amounts have 2 decimals."),
        ({"amount": "1.234,50"}, "amount", "Not an amount"),
        ({"amount": "-5"}, "amount", "must not be negative"),
        ({"vat": "125"}, "vat", "Between 0 and 100"),
        ({"currency": "XAU"}, "currency", "Choose a currency"),
        ({"quantity": "0"}, "quantity", "Number must be"),
        ({"handle": "taken"}, "handle", "already exists"),
    ],
)
def test_plan_errors_are_shown_on_the_field_and_nothing_is_saved(
    app, web, cat, changes, field, message
):
    cat.plan("taken")
    before = row_counts(app)
    data = {
        "handle": "new",
        "name": "New",
        "currency": "EUR",
        "amount": "10",
        "quantity": "1",
        "schedule_type": "manual",
        "interval_length": "1",
        **changes,
    }
    resp = web.post("/plans/new", data)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert message in _error(html, field), html
    assert row_counts(app) == before


def test_create_an_add_on_for_some_plans(app, web, cat):
    cat.plan("basic")
    cat.plan("pro")
    html = web.text("/add-ons/new")
    assert '<option value="basic">' in html
    resp = web.post(
        "/add-ons/new",
        {
            "handle": "support",
            "name": "Priority support",
            "amount": "20",
            "vat": "",
            "type": "quantity",
            "eligible_plans": ["pro"],
        },
    )
    assert resp.status_code == 302 and resp.headers["Location"] == "/add-ons/support"
    add_on = _one(app, AddOn, handle="support")
    assert (add_on.amount, add_on.vat, add_on.all_plans, add_on.eligible_plans) == (
        2000,
        None,
        False,
        ["pro"],
    )
    assert "amount_incl_vat" in web.text("/add-ons/new")  # the checkbox is offered
    listing = web.text("/add-ons/")
    assert "Priority support" in listing and "€20.00" in listing and "<code>pro</code>" in listing
    assert "Priority support" in web.text("/plans/pro")
    assert "Priority support" not in web.text("/plans/basic")
    # A plan that is not in the list is refused on the field.
    bad = web.post(
        "/add-ons/new",
        {"handle": "x", "name": "X", "amount": "1", "type": "on_off", "eligible_plans": ["nope"]},
    )
    assert bad.status_code == 422 and "not a valid choice" in _error(
        bad.get_data(as_text=True), "eligible_plans"
    )
    assert _one(app, AddOn, handle="x") is None


def test_create_discounts(app, web):
    resp = web.post(
        "/discounts/new",
        {
            "handle": "ten",
            "name": "Ten percent",
            "percentage": "10",
            "apply_to": ["plan", "add_on"],
            "fixed_count": "3",
        },
    )
    assert resp.status_code == 302 and resp.headers["Location"] == "/discounts/ten"
    ten = _one(app, Discount, handle="ten")
    assert (ten.percentage, ten.amount, ten.apply_to, ten.fixed_count) == (
        Decimal("10"),
        None,
        ["plan", "add_on"],
        3,
    )
    resp = web.post("/discounts/new", {"handle": "fiver", "name": "Five off", "amount": "5"})
    assert resp.status_code == 302
    assert _one(app, Discount, handle="fiver").amount == 500
    listing = web.text("/discounts/")
    assert "10 %" in listing and "€5.00" in listing and "first 3 invoices" in listing
    assert "Plan lines" in web.text("/discounts/ten")


@pytest.mark.parametrize(
    "changes, field, message",
    [
        ({"amount": "5", "percentage": "10"}, "amount", "exactly one"),
        ({}, "amount", "exactly one"),
        ({"percentage": "150"}, "percentage", "at most 100"),
        ({"percentage": "ten"}, "percentage", "Not a percentage"),
        ({"percentage": "10", "fixed_period": "2"}, "fixed_period_unit", "go together"),
    ],
)
def test_discount_errors_from_form_and_service(app, web, changes, field, message):
    before = row_counts(app)
    resp = web.post("/discounts/new", {"handle": "d", "name": "D", **changes})
    assert resp.status_code == 422
    assert message in _error(resp.get_data(as_text=True), field)
    assert row_counts(app) == before


def test_catalogue_lists_page_by_keyset(app, web, cat, monkeypatch):
    from billing_app.web.subscriptions import routes

    monkeypatch.setattr(routes, "PAGE_SIZE", 2)
    for handle in ("a", "b", "c"):
        cat.plan(handle)
    first = web.text("/plans/")
    assert first.count("<code>") == 2
    token = re.search(r'rel="next" href="/plans/\?after=([^"]+)"', first).group(1)
    second = web.text(f"/plans/?after={token}")
    assert second.count("<code>") == 1 and "First page" in second
    # A token that is not one starts again from the first page.
    assert web.text("/plans/?after=garbage").count("<code>") == 2
