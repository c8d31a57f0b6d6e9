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


# ---------------------------------------------------------------- subscriptions


def test_create_a_subscription_with_add_ons(app, web, cat):
    customer = cat.customer("acme", name="ACME GmbH")
    cat.plan("basic", amount=10000)
    with app.app_context():
        db.session.add_all(
            [
                AddOn(
                    account_id=cat.account_id,
                    handle="seats",
                    name="Extra seats",
                    amount=500,
                    type="quantity",
                ),
                AddOn(account_id=cat.account_id, handle="backup", name="Backup", amount=900),
            ]
        )
        db.session.commit()
        db.session.remove()
    html = web.text("/subscriptions/new?customer=acme")
    assert '<option selected value="acme">' in html and 'id="add_on-seats-quantity"' in html
    resp = web.post(
        "/subscriptions/new",
        {
            "customer": "acme",
            "plan": "basic",
            "handle": "",
            "amount": "80",
            "add_on-seats": "1",
            "add_on-seats-quantity": "3",
            "add_on-backup": "1",
            "cost_center": "Sales",
        },
    )
    assert resp.status_code == 302
    handle = resp.headers["Location"].rsplit("/", 1)[1]
    assert handle.startswith("sub-")
    created = _one(app, Subscription, handle=handle)
    assert (created.customer_id, created.amount, created.cost_center) == (
        customer.id,
        8000,
        "Sales",
    )
    links = {a.handle: a.quantity for a in _all(app, SubscriptionAddOn, subscription_id=created.id)}
    assert links == {"seats": 3, "backup": 1}
    page = web.text(f"/subscriptions/{handle}")
    assert "Extra seats" in page and "Backup" in page and "(override)" in page
    assert "€80.00" in page and "Sales" in page


@pytest.mark.parametrize(
    "changes, field, message",
    [
        ({"customer": ""}, "customer", "Choose a customer."),
        ({"customer": "nobody"}, "customer", "Choose one from the list."),
        ({"plan": "nope"}, "plan", "Choose a plan from the list."),
        ({"handle": "a b"}, "handle", "Use letters, digits"),
        ({"handle": "taken"}, "handle", "already exists"),
        ({"amount": "x"}, "amount", "Not an amount"),
        ({"quantity": "0"}, "quantity", "Number must be"),
        ({"add_on-seats": "1", "add_on-seats-quantity": "0"}, "add_on-seats", "at least 1"),
    ],
)
def test_subscription_errors_are_shown_on_the_field_and_nothing_is_saved(
    app, web, cat, changes, field, message
):
    customer = cat.customer("acme")
    plan = cat.plan("basic")
    cat.subscription(customer, plan, "taken")
    with app.app_context():
        db.session.add(
            AddOn(account_id=cat.account_id, handle="seats", name="Seats", type="quantity")
        )
        db.session.commit()
        db.session.remove()
    before = row_counts(app)
    resp = web.post("/subscriptions/new", {"customer": "acme", "plan": "basic", **changes})
    assert resp.status_code == 422
    assert message in _error(resp.get_data(as_text=True), field)
    assert row_counts(app) == before


def test_an_add_on_the_plan_does_not_take_is_refused_by_the_service(app, web, cat):
    cat.customer("acme")
    cat.plan("basic")
    cat.plan("pro")
    with app.app_context():
        db.session.add(
            AddOn(
                account_id=cat.account_id,
                handle="pro-only",
                name="Pro only",
                all_plans=False,
                eligible_plans=["pro"],
            )
        )
        db.session.commit()
        db.session.remove()
    before = row_counts(app)
    resp = web.post(
        "/subscriptions/new", {"customer": "acme", "plan": "basic", "add_on-pro-only": "1"}
    )
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "is not eligible for plan" in html
    assert row_counts(app) == before


def test_list_filters_by_state_and_customer(app, web, cat):
    acme = cat.customer("acme", name="ACME GmbH")
    other = cat.customer("globex", name="Globex")
    plan = cat.plan("basic")
    cat.subscription(acme, plan, "acme-1")
    cat.subscription(acme, plan, "acme-held", state="on_hold")
    cat.subscription(other, plan, "globex-1")
    html = web.text("/subscriptions/")
    assert all(h in html for h in ("acme-1", "acme-held", "globex-1"))
    held = web.text("/subscriptions/?state=on_hold")
    assert "acme-held" in held and "acme-1<" not in held and "globex-1" not in held
    mine = web.text("/subscriptions/?customer=acme")
    assert "acme-1" in mine and "globex-1" not in mine and "Customer: " in mine
    fragment = web.get("/subscriptions/?customer=globex", htmx=True).get_data(as_text=True)
    assert not is_whole_page(fragment) and "globex-1" in fragment and "acme-1" not in fragment
    assert "No subscription matches" in web.text("/subscriptions/?customer=nobody")
    # The customer's page links to their subscriptions.
    assert "/subscriptions/?customer=acme" in web.text(f"/customers/{acme.id}")


def test_detail_shows_everything_in_the_customers_locale(app, web, cat, sub):
    cat.add_on(sub, "backup", 900)
    cat.cost(sub, "setup", 4900)
    cat.credit(sub, "goodwill", 1500)
    cat.discount(sub, "ten", percentage="10")
    html = web.text("/subscriptions/sub-1")
    assert "ACME GmbH" in html and "Plan basic" in html
    assert "100,00\xa0€" in html  # the plan price, German format
    assert "Add-on backup" in html and "9,00\xa0€" in html
    assert "Cost setup" in html and "49,00\xa0€" in html
    assert "Credit goodwill" in html and "15,00\xa0€" in html
    assert "Discount ten" in html and "10 %" in html
    assert "Invoice now" in html and "Put on hold…" in html and "Cancel subscription…" in html
    assert "Reactivate…" not in html


def test_state_actions_and_what_they_offer(app, web, sub):
    resp = web.post("/subscriptions/sub-1/hold")
    assert resp.status_code == 302 and resp.headers["Location"] == "/subscriptions/sub-1"
    assert _one(app, Subscription, handle="sub-1").state == "on_hold"
    html = web.text("/subscriptions/sub-1")
    assert "is on hold" in html and "Reactivate…" in html and "Invoice now" not in html
    assert web.post("/subscriptions/sub-1/reactivate").status_code == 302
    assert _one(app, Subscription, handle="sub-1").state == "active"
    assert web.post("/subscriptions/sub-1/cancel").status_code == 302
    cancelled = _one(app, Subscription, handle="sub-1")
    assert cancelled.is_cancelled and cancelled.state == "active"
    html = web.text("/subscriptions/sub-1")
    assert "Cancelled</span>" in html and "Cancel subscription…" not in html
    assert "Invoice now" not in html


def test_actions_the_state_forbids_are_refused_with_409(app, web, sub):
    resp = web.post("/subscriptions/sub-1/reactivate")
    assert resp.status_code == 409 and "not on hold" in resp.get_data(as_text=True)
    web.post("/subscriptions/sub-1/cancel")
    before = row_counts(app)
    resp = web.post("/subscriptions/sub-1/cancel")
    assert resp.status_code == 409 and "Nothing was changed" in resp.get_data(as_text=True)
    assert row_counts(app) == before


def test_add_and_cancel_costs_and_credits(app, web, sub):
    resp = web.post(
        "/subscriptions/sub-1/costs",
        {
            "cost-ordertext": "Setup fee",
            "cost-amount": "49,50",
            "cost-quantity": "2",
            "cost-vat": "25",
            "cost-amount_incl_vat": "y",
        },
    )
    assert resp.status_code == 302
    cost = _one(app, AdditionalCost, ordertext="Setup fee")
    assert (cost.amount, cost.quantity, cost.vat, cost.state) == (
        4950,
        2,
        Decimal("0.25"),
        "pending",
    )
    resp = web.post(
        "/subscriptions/sub-1/credits",
        {"credit-text": "Outage", "credit-amount": "10", "credit-valid_from": "2026-01-01"},
    )
    assert resp.status_code == 302
    credit = _one(app, Credit, text="Outage")
    assert (credit.amount, credit.pending_amount, str(credit.valid_from)) == (
        1000,
        1000,
        "2026-01-01",
    )
    html = web.text("/subscriptions/sub-1")
    assert "Setup fee" in html and "49,50\xa0€" in html and "Outage" in html

    assert web.post(f"/subscriptions/sub-1/costs/{cost.handle}/cancel").status_code == 302
    assert _one(app, AdditionalCost, handle=cost.handle).state == "cancelled"
    assert web.post(f"/subscriptions/sub-1/credits/{credit.handle}/cancel").status_code == 302
    assert _one(app, Credit, handle=credit.handle).state == "cancelled"
    # Cancelling twice is refused by the service's state rule.
    again = web.post(f"/subscriptions/sub-1/costs/{cost.handle}/cancel")
    assert again.status_code == 409


@pytest.mark.parametrize(
    "path, data, field, message",
    [
        ("costs", {"cost-ordertext": "", "cost-amount": "5"}, "cost-ordertext", "Enter a text."),
        ("costs", {"cost-ordertext": "X", "cost-amount": "5,555"}, "cost-amount", "2 decimals"),
        (
            "costs",
            {"cost-ordertext": "X", "cost-amount": "5", "cost-vat": "abc"},
            "cost-vat",
            "Not a",
        ),
        (
            "costs",
            {
                "cost-ordertext": "X",
                "cost-amount": "5",
                "cost-quantity": "1",
                "cost-handle": "taken",
            },
            "cost-handle",
            "already exists",
        ),
        ("credits", {"credit-amount": ""}, "credit-amount", "Enter an amount."),
        ("credits", {"credit-amount": "0"}, "credit-amount", "greater than 0"),
        (
            "credits",
            {"credit-amount": "1", "credit-valid_from": "soon"},
            "credit-valid_from",
            "Not a valid date",
        ),
        ("discounts", {}, "discount-discount", "Choose a discount or enter a coupon"),
        ("discounts", {"discount-discount": "nope"}, "discount-discount", "Discount not found"),
        ("discounts", {"discount-coupon": "NOPE"}, "discount-coupon", "not found or not eligible"),
    ],
)
def test_detail_form_errors_reopen_the_page_with_the_field_named(
    app, web, cat, sub, path, data, field, message
):
    cat.cost(sub, "taken", 100)
    before = row_counts(app)
    resp = web.post(f"/subscriptions/sub-1/{path}", data)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422 and is_whole_page(html)
    assert message in _error(html, field), _error(html, field)
    assert row_counts(app) == before


def test_attach_a_discount(app, web, cat, sub):
    with app.app_context():
        db.session.add(
            Discount(account_id=cat.account_id, handle="five", name="Five off", amount=500)
        )
        db.session.commit()
        db.session.remove()
    html = web.text("/subscriptions/sub-1")
    assert '<option value="five">Five off (five)</option>' in html
    resp = web.post("/subscriptions/sub-1/discounts", {"discount-discount": "five"})
    assert resp.status_code == 302
    sub_row = _one(app, Subscription, handle="sub-1")
    attached = _all(app, SubscriptionDiscount, subscription_id=sub_row.id)
    assert [a.handle for a in attached] == ["five"]
    assert "Five off" in web.text("/subscriptions/sub-1")
    # The same handle twice is the service's Duplicate, shown on the handle field.
    again = web.post("/subscriptions/sub-1/discounts", {"discount-discount": "five"})
    assert again.status_code == 422
    assert "already used" in _error(again.get_data(as_text=True), "discount-handle")


def test_a_cost_of_another_subscription_is_not_found_here(app, web, cat, sub):
    other_sub = cat.subscription(cat.customer("other"), cat.plan("other-plan"), "sub-2")
    cat.cost(other_sub, "c2", 100)
    cat.credit(other_sub, "k2", 100)
    assert web.post("/subscriptions/sub-1/costs/c2/cancel").status_code == 404
    assert web.post("/subscriptions/sub-1/credits/k2/cancel").status_code == 404
    assert _one(app, AdditionalCost, handle="c2").state == "pending"
    assert _one(app, Credit, handle="k2").state == "pending"


# ---------------------------------------------------------------- invoice now


def _now(**changes):
    """The invoice-now form as a browser posts it with the defaults left alone."""
    data = {
        "collect_additional_costs": "y",
        "collect_credit": "y",
        "apply_discounts": "y",
        "settlement": "none",
        "transfer_method": "bank_transfer",
        "lines-0-ordertext": "",
        "lines-0-quantity": "1",
        "lines-0-amount": "",
        "lines-0-tax": "",
        "lines-0-amount_incl_vat": "1",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def _total(html):
    match = re.search(r'data-total="total">([^<]*)<', html)
    assert match, "no total in the preview"
    return match.group(1)


@pytest.fixture
def pending(cat, sub):
    """sub-1 with a pending cost (49 EUR), a credit (15 EUR) and a 10 % discount."""
    cat.cost(sub, "setup", 4900)
    cat.credit(sub, "goodwill", 1500)
    cat.discount(sub, "ten", percentage="10")
    return sub


def test_invoice_now_previews_every_change_then_creates(app, web, pending):
    page = web.text("/subscriptions/sub-1/invoice")
    # Defaults: costs, credits and discounts, no plan line: 49 - 4.90 - 15 = 29.10.
    assert _total(page) == "29,10\xa0€" and "Cost setup" in page and "Credit goodwill" in page
    before = row_counts(app)
    resp = web.post("/subscriptions/sub-1/invoice", _now(plan_manual="y"), htmx=True)
    fragment = resp.get_data(as_text=True)
    assert resp.status_code == 200 and not is_whole_page(fragment)
    assert 'id="preview"' in fragment and 'hx-swap-oob="true"' in fragment
    # Plan 100 + cost 49, 10 % off each (14.90), credit 15: 119.10.
    assert _total(fragment) == "119,10\xa0€" and "Plan basic" in fragment
    without = web.post(
        "/subscriptions/sub-1/invoice",
        _now(plan_manual="y", apply_discounts=None, collect_credit=None),
        htmx=True,
    ).get_data(as_text=True)
    assert _total(without) == "149,00\xa0€" and "Discount ten" not in without
    # Previewing stores nothing; the plain Preview button answers the whole page.
    plain = web.post("/subscriptions/sub-1/invoice", _now(plan_manual="y", action="preview"))
    assert plain.status_code == 200 and is_whole_page(plain.get_data(as_text=True))
    assert _total(plain.get_data(as_text=True)) == "119,10\xa0€"
    assert row_counts(app) == before

    resp = web.post(
        "/subscriptions/sub-1/invoice",
        _now(
            plan_manual="y",
            action="create",
            plan_period_from="2026-03-01",
            plan_period_to="2026-03-31",
        ),
    )
    assert resp.status_code == 302
    invoice_id = resp.headers["Location"].rsplit("/", 1)[1]
    invoice = _one(app, Invoice, handle=_all(app, Invoice)[0].handle)
    assert str(invoice.id) == invoice_id and invoice.handle.startswith("inv-")
    assert invoice.total_minor == 11910 and invoice.number is not None
    assert _one(app, AdditionalCost, handle="setup").state == "transferred"
    detail = web.text(f"/invoices/{invoice_id}")
    assert "is created" in detail and "119,10\xa0€" in detail
    link = re.search(r'href="(/subscriptions/by-id/[^"]+)"', detail).group(1)
    follow = web.get(link)
    assert follow.status_code == 302 and follow.headers["Location"] == "/subscriptions/sub-1"
    assert invoice.invoice_number in web.text("/subscriptions/sub-1")


def test_invoice_now_with_order_lines_and_a_manual_transfer(app, web, cat, sub):
    make_tax(app, cat, "vat7", "7")
    resp = web.post(
        "/subscriptions/sub-1/invoice",
        _now(
            **{
                "lines-0-ordertext": "Consulting",
                "lines-0-quantity": "2",
                "lines-0-amount": "150",
                "lines-0-amount_incl_vat": "0",
                "lines-1-ordertext": "Books",
                "lines-1-quantity": "1",
                "lines-1-amount": "10,70",
                "lines-1-tax": "vat7",
                "lines-1-amount_incl_vat": "1",
            },
            handle="march-2026",
            settlement="manual",
            transfer_method="cash",
            transfer_reference="R-1",
        ),
        htmx=True,
    )
    html = resp.get_data(as_text=True)
    # 300 net at the account's default rate (none set: 0 %), plus 10.70 incl. 7 %: 310.70.
    assert resp.status_code == 200 and _total(html) == "310,70\xa0€", html
    assert "Order line" in html and "7 %" in html
    data = _now(
        **{
            "lines-0-ordertext": "Consulting",
            "lines-0-quantity": "2",
            "lines-0-amount": "150",
            "lines-0-amount_incl_vat": "0",
        },
        handle="march-2026",
        settlement="manual",
        transfer_method="cash",
        action="create",
    )
    assert web.post("/subscriptions/sub-1/invoice", data).status_code == 302
    invoice = _one(app, Invoice, handle="march-2026")
    assert invoice.state == "paid" and invoice.total_minor == 30000


@pytest.mark.parametrize(
    "changes, field, message",
    [
        ({"lines-0-ordertext": "X", "lines-0-amount": "abc"}, "lines-0-amount", "Not an amount"),
        ({"lines-0-ordertext": "", "lines-0-amount": "5"}, "lines-0-ordertext", "Enter a text."),
        (
            {"lines-0-ordertext": "X", "lines-0-amount": "5", "lines-0-quantity": "1.5"},
            "lines-0-quantity",
            "whole number",
        ),
        ({"plan_manual": "y", "handle": "bad handle"}, "handle", "Use letters"),
        ({"plan_manual": "y", "handle": "used"}, "handle", "already used"),
        ({"plan_manual": "y", "due_date": "2026-13-01"}, "due_date", "Not a valid date"),
        (
            {"plan_manual": "y", "due_date": "2026-12-01", "settlement": "instant"},
            "due_date",
            "instant",
        ),
        ({"plan_manual": "y", "settlement": "bogus"}, "settlement", "Not a valid choice"),
    ],
)
def test_invoice_now_errors_are_shown_on_the_field_and_nothing_is_created(
    app, web, cat, sub, changes, field, message
):
    web.post("/subscriptions/sub-1/invoice", _now(plan_manual="y", handle="used", action="create"))
    before = row_counts(app)
    resp = web.post("/subscriptions/sub-1/invoice", _now(action="create", **changes))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422 and is_whole_page(html)
    assert message in _error(html, field), _error(html, field)
    assert row_counts(app) == before


def test_invoice_now_refusals_from_the_service(app, web, cat, sub):
    before = row_counts(app)
    # Nothing to invoice: no plan line, nothing pending, no order line.
    page = web.text("/subscriptions/sub-1/invoice")
    assert "Nothing to invoice" in page and 'data-total="total"' not in page
    resp = web.post("/subscriptions/sub-1/invoice", _now(action="create"))
    assert resp.status_code == 422 and "There is nothing to invoice" in resp.get_data(as_text=True)
    # Instant needs the subscription's card (it has none): code 76, on the form.
    resp = web.post(
        "/subscriptions/sub-1/invoice", _now(plan_manual="y", settlement="instant", action="create")
    )
    assert resp.status_code == 422 and "Payment method not provided" in resp.get_data(as_text=True)
    # On hold: the preview says so and nothing can be created.
    web.post("/subscriptions/sub-1/hold")
    held = web.post("/subscriptions/sub-1/invoice", _now(plan_manual="y"), htmx=True)
    assert held.status_code == 422 and "Subscription on hold" in held.get_data(as_text=True)
    resp = web.post("/subscriptions/sub-1/invoice", _now(plan_manual="y", action="create"))
    assert resp.status_code == 422 and "Subscription on hold" in resp.get_data(as_text=True)
    after = row_counts(app)
    assert after["invoices"] == before["invoices"] == 0


def test_invoice_now_rows_come_and_go_with_htmx_and_without(web, sub):
    added = web.post("/subscriptions/sub-1/invoice", _now(action="add_line"), htmx=True)
    fragment = added.get_data(as_text=True)
    assert fragment.lstrip().startswith('<tr id="lines-1-row">') and "lines-0" not in fragment
    plain = web.post("/subscriptions/sub-1/invoice", _now(action="add_line")).get_data(as_text=True)
    assert 'id="lines-0-row"' in plain and 'id="lines-1-row"' in plain
    data = _now(
        plan_manual="y",
        remove_line="1",
        **{"lines-1-ordertext": "Gone", "lines-1-quantity": "1", "lines-1-amount": "1000"},
    )
    removed = web.post("/subscriptions/sub-1/invoice", data, htmx=True).get_data(as_text=True)
    assert _total(removed) == "100,00\xa0€" and "Gone" not in removed
    page = web.post("/subscriptions/sub-1/invoice", data).get_data(as_text=True)
    assert 'id="lines-1-row"' not in page and _total(page) == "100,00\xa0€"


# ---------------------------------------------------------------- tenancy, CSRF, escaping


def test_another_accounts_objects_are_not_found_anywhere(app, web, cat, sub, theirs, theirs_add_on):
    before = row_counts(app)
    for path in (
        "/plans/their-plan",
        "/add-ons/their-addon",
        "/discounts/their-discount",
        "/subscriptions/their-sub",
        "/subscriptions/their-sub/invoice",
        f"/subscriptions/by-id/{theirs.id}",
    ):
        resp = web.get(path)
        assert resp.status_code == 404, path
        assert "Page not found" in resp.get_data(as_text=True)
    posts = {
        "/subscriptions/their-sub/hold": {},
        "/subscriptions/their-sub/reactivate": {},
        "/subscriptions/their-sub/cancel": {},
        "/subscriptions/their-sub/costs": {"cost-ordertext": "x", "cost-amount": "1"},
        "/subscriptions/their-sub/credits": {"credit-amount": "1"},
        "/subscriptions/their-sub/discounts": {"discount-discount": "their-discount"},
        "/subscriptions/their-sub/costs/their-cost/cancel": {},
        "/subscriptions/their-sub/credits/their-credit/cancel": {},
        "/subscriptions/their-sub/invoice": _now(plan_manual="y", action="create"),
        # Their cost and credit through my own subscription's URL.
        "/subscriptions/sub-1/costs/their-cost/cancel": {},
        "/subscriptions/sub-1/credits/their-credit/cancel": {},
    }
    for path, data in posts.items():
        assert web.post(path, data).status_code == 404, path
    assert web.post("/subscriptions/their-sub/invoice", _now(), htmx=True).status_code == 404
    # Their objects named in my forms are not found either: errors on the field.
    resp = web.post("/subscriptions/sub-1/discounts", {"discount-discount": "their-discount"})
    assert resp.status_code == 422 and "Discount not found" in resp.get_data(as_text=True)
    resp = web.post("/subscriptions/new", {"customer": "their-cust", "plan": "their-plan"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "Choose a plan from the list." in _error(html, "plan")
    resp = web.post("/subscriptions/new", {"customer": "their-cust", "plan": "basic"})
    assert resp.status_code == 422
    assert "Choose one from the list." in _error(resp.get_data(as_text=True), "customer")
    # Their objects do not show in my lists.
    for path in ("/plans/", "/add-ons/", "/discounts/", "/subscriptions/", "/subscriptions/new"):
        assert "their-" not in web.text(path), path
    assert "their-" not in web.text("/subscriptions/sub-1")
    assert row_counts(app) == before
    assert _one(app, AdditionalCost, handle="their-cost").state == "pending"
    assert _one(app, Subscription, handle="their-sub").state == "active"


@pytest.fixture
def theirs_add_on(app, other_tenant, theirs):
    Catalog(app, other_tenant.account_id).add_on(theirs, "their-addon", 100)


def test_every_post_without_csrf_token_is_rejected(app, web, cat, pending):
    cat.plan("other")
    before = row_counts(app)
    for path in (
        "/plans/new",
        "/add-ons/new",
        "/discounts/new",
        "/subscriptions/new",
        "/subscriptions/sub-1/hold",
        "/subscriptions/sub-1/reactivate",
        "/subscriptions/sub-1/cancel",
        "/subscriptions/sub-1/costs",
        "/subscriptions/sub-1/costs/setup/cancel",
        "/subscriptions/sub-1/credits",
        "/subscriptions/sub-1/credits/goodwill/cancel",
        "/subscriptions/sub-1/discounts",
        "/subscriptions/sub-1/invoice",
    ):
        resp = web.post(path, _now(plan_manual="y", action="create"), csrf=False)
        assert resp.status_code == 400, path
        forged = web.post(path, {"csrf_token": "forged", "action": "create"}, csrf=False)
        assert forged.status_code == 400, path
    assert row_counts(app) == before
    assert _one(app, Subscription, handle="sub-1").state == "active"


def test_user_text_is_escaped_everywhere(app, web, cat):
    evil = cat.customer("evil", name="<b>Evil</b> & Co")
    plan = cat.plan("evil-plan")
    with app.app_context():
        db.session.execute(
            update(Plan).where(Plan.id == plan.id).values(name="<script>alert(1)</script>")
        )
        db.session.commit()
        db.session.remove()
    sub = cat.subscription(evil, plan, "evil-sub")
    cat.cost(sub, "c", 100)
    with app.app_context():
        db.session.execute(
            update(AdditionalCost).values(ordertext='<img src=x onerror="alert(2)">')
        )
        db.session.commit()
        db.session.remove()
    cat.discount(sub, "d", percentage="5")
    pages = {
        path: web.text(path)
        for path in (
            "/plans/",
            "/plans/evil-plan",
            "/subscriptions/",
            "/subscriptions/evil-sub",
            "/subscriptions/evil-sub/invoice",
            "/subscriptions/new",
        )
    }
    data = _now(plan_manual="y", **{"lines-0-ordertext": "<i>x</i>", "lines-0-amount": "1"})
    pages["preview"] = web.post("/subscriptions/evil-sub/invoice", data, htmx=True).get_data(
        as_text=True
    )
    for name, html in pages.items():
        body = html.split("</head>", 1)[-1]
        assert "<script>alert(1)</script>" not in body, name
        assert "<b>Evil</b>" not in body and "<img src=x" not in body and "<i>x</i>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages["/plans/evil-plan"]
    assert "&lt;b&gt;Evil&lt;/b&gt; &amp; Co" in pages["/subscriptions/evil-sub"]
    assert "&lt;img src=x" in pages["/subscriptions/evil-sub/invoice"]
    assert "&lt;i&gt;x&lt;/i&gt;" in pages["preview"]


def test_dates_are_shown_in_the_account_time_zone(app, web, cat, sub):
    start = datetime(2026, 3, 1, 23, 30, tzinfo=ZoneInfo("UTC"))
    with app.app_context():
        db.session.execute(
            update(Subscription)
            .where(Subscription.id == sub.id)
            .values(current_period_start=start, start_date=start, created_at=start)
        )
        db.session.execute(
            update(Account).where(Account.id == cat.account_id).values(timezone="Asia/Tokyo")
        )
        db.session.commit()
        db.session.remove()
    for path in ("/subscriptions/", "/subscriptions/sub-1"):
        html = web.text(path)
        assert "2026-03-02" in html and "2026-03-01" not in html, path
    # A service period typed as days is the account's days: 1 March 00:00 in Tokyo.
    data = _now(plan_manual="y", plan_period_from="2026-03-01", plan_period_to="2026-03-31")
    html = web.post("/subscriptions/sub-1/invoice", data, htmx=True).get_data(as_text=True)
    assert "2026-03-01 \u2013 2026-03-31" in html
    web.post("/subscriptions/sub-1/invoice", {**data, "action": "create"})
    invoice = _all(app, Invoice)[0]
    assert invoice.service_period_from == datetime(2026, 2, 28, 15, 0, tzinfo=ZoneInfo("UTC"))


def test_list_costs_the_same_statements_for_3_or_30_rows(app, client, web, cat):
    from web_support import counting_statements

    plan = cat.plan("basic")
    customers = [cat.customer(f"c{i}") for i in range(3)]

    def count() -> int:
        web.text("/subscriptions/")  # warm up
        with counting_statements(app) as counter:
            web.text("/subscriptions/")
        return counter["n"]

    for i in range(3):
        cat.subscription(customers[i % 3], plan, f"s{i}")
    few = count()
    for i in range(3, 30):
        cat.subscription(customers[i % 3], plan, f"s{i}")
    assert count() == few
