"""Customer pages: list and search, create, edit, one customer with their invoices."""

from __future__ import annotations

import re
import uuid

import pytest
from conftest import row_counts
from web_support import is_whole_page, make_customer, make_invoice, make_tax, signed_in

from billing_app.customers.models import Customer
from billing_app.extensions import db


@pytest.fixture
def web(client, tenant):
    return signed_in(client, tenant)


def _customer(app, customer_id):
    with app.app_context():
        c = db.session.get(Customer, customer_id)
        db.session.expunge_all()
        db.session.remove()
    return c


def test_empty_list_invites_the_first_customer(web):
    html = web.text("/customers/")
    assert "No customers yet." in html and "Add your first customer" in html


def test_list_and_search(app, web, tenant):
    make_customer(app, tenant, "acme", name="ACME Corp", email="ap@acme.example")
    make_customer(app, tenant, "globex", name="Globex")
    html = web.text("/customers/")
    assert html.index("ACME Corp") < html.index("Globex")
    found = web.text("/customers/?q=acme.example")
    assert "ACME Corp" in found and "Globex" not in found
    fragment = web.get("/customers/?q=glob", htmx=True).get_data(as_text=True)
    assert not is_whole_page(fragment) and "Globex" in fragment and "ACME" not in fragment
    assert "No customer matches" in web.text("/customers/?q=nobody")


def test_list_pages(app, web, tenant, monkeypatch):
    from billing_app.web.customers import routes

    monkeypatch.setattr(routes, "PAGE_SIZE", 2)
    for name in ("A", "B", "C"):
        make_customer(app, tenant, name.lower(), name=f"Customer {name}")
    first = web.text("/customers/")
    assert "Customer B" in first and "Customer C" not in first and 'rel="next"' in first
    second = web.text("/customers/?page=2")
    assert "Customer C" in second and 'rel="prev"' in second and 'rel="next"' not in second


def test_create_a_customer(app, web, tenant):
    make_tax(app, tenant, "vat7", "7")
    html = web.text("/customers/new")
    assert '<label for="external_id">Handle</label>' in html
    assert '<option selected value="EUR">' in html  # the account's default currency
    resp = web.post(
        "/customers/new",
        {
            "external_id": "initech",
            "name": "Initech",
            "email": "ap@initech.example",
            "country": "de",
            "currency": "EUR",
            "timezone": "Europe/Berlin",
            "document_locale": "de",
            "net_payment_term": "14",
            "tax_code": "vat7",
            "billing_entity_code": "",
        },
    )
    assert resp.status_code == 302
    customer_id = resp.headers["Location"].rsplit("/", 1)[1]
    page = web.text(f"/customers/{customer_id}")
    assert "Initech" in page and "14 days" in page and "VAT 7 (7 %)" in page
    c = _customer(app, uuid.UUID(customer_id))
    assert (c.country, c.net_payment_term, c.document_locale) == ("DE", 14, "de")
    assert c.tax_rate_id is not None and c.billing_entity_id is None


@pytest.mark.parametrize(
    "changes, field, message",
    [
        ({"name": ""}, "name", "Enter a name."),
        ({"email": "not-an-email"}, "email", "Enter a valid email address."),
        ({"currency": "XAU"}, "currency", "Choose a currency from the list."),
        ({"timezone": "Mars/Olympus"}, "timezone", "Use a time zone name"),
        ({"document_locale": "xx_YY_ZZ"}, "document_locale", "Use a locale code"),
        ({"country": "Germany"}, "country", "two-letter country code"),
        ({"net_payment_term": "-1"}, "net_payment_term", "Between 0 and 3650"),
        ({"external_id": "taken"}, "external_id", "already exists"),
    ],
)
def test_create_errors_are_shown_on_the_field_and_nothing_is_saved(
    app, web, tenant, changes, field, message
):
    make_customer(app, tenant, "taken")
    before = row_counts(app)
    data = {
        "external_id": "new",
        "name": "New",
        "currency": "EUR",
        "timezone": "UTC",
        "document_locale": "en",
        **changes,
    }
    resp = web.post("/customers/new", data)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert re.search(rf'id="{field}-error">[^<]*{re.escape(message)}', html), html
    assert row_counts(app) == before


def test_edit_a_customer(app, web, tenant):
    c = make_customer(app, tenant, "acme", name="ACME")
    html = web.text(f"/customers/{c.id}/edit")
    assert 'value="ACME"' in html and 'name="external_id"' not in html
    resp = web.post(
        f"/customers/{c.id}/edit",
        {
            "name": "ACME Renamed",
            "currency": "USD",
            "timezone": "UTC",
            "document_locale": "en_US",
            "net_payment_term": "",
        },
    )
    assert resp.status_code == 302
    after = _customer(app, c.id)
    assert (after.name, after.currency, after.net_payment_term) == ("ACME Renamed", "USD", None)
    bad = web.post(f"/customers/{c.id}/edit", {"name": "", "currency": "USD"})
    assert bad.status_code == 422 and _customer(app, c.id).name == "ACME Renamed"


def test_customer_page_lists_their_invoices(app, web, tenant):
    c = make_customer(app, tenant, "acme", name="ACME", document_locale="de")
    other = make_customer(app, tenant, "other")
    make_invoice(app, tenant, c.id, [("x", "1", "4200")], finalize=True)
    make_invoice(app, tenant, other.id, finalize=True)
    html = web.text(f"/customers/{c.id}")
    assert "INV-000001" in html and "INV-000002" not in html and "42,00\xa0€" in html
    assert f"/invoices/?customer={c.id}" in html and f"/invoices/new?customer={c.id}" in html
    empty = web.text(f"/customers/{other.id}")
    assert "INV-000002" in empty


def test_another_accounts_customer_is_not_found(app, web, other_tenant):
    theirs = make_customer(app, other_tenant, "theirs", name="Theirs")
    before = row_counts(app)
    assert web.get(f"/customers/{theirs.id}").status_code == 404
    assert web.get(f"/customers/{theirs.id}/edit").status_code == 404
    resp = web.post(f"/customers/{theirs.id}/edit", {"name": "Hacked", "currency": "EUR"})
    assert resp.status_code == 404
    assert row_counts(app) == before and _customer(app, theirs.id).name == "Theirs"
    assert "Theirs" not in web.text("/customers/")


def test_customer_forms_need_the_csrf_token(app, web):
    before = row_counts(app)
    resp = web.post("/customers/new", {"external_id": "x", "name": "X"}, csrf=False)
    assert resp.status_code == 400 and row_counts(app) == before
