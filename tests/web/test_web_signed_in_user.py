"""The signed-in user of every page comes from Flask-Login's loader
(`web.signin.load_user`): a session whose user is gone or whose password changed is
refused on every page, the list, the invoice page and the entry form alike, whatever the
page would have found, and nothing is saved for it."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import delete, update
from web_support import make_customer, make_invoice, signed_in
from werkzeug.security import generate_password_hash

from billing_app.accounts.models import User
from billing_app.extensions import db


@pytest.fixture
def web(client, tenant):
    return signed_in(client, tenant)


@pytest.fixture
def made(app, tenant):
    acme = make_customer(app, tenant, "acme", name="ACME Corp")
    return make_invoice(app, tenant, acme.id, finalize=True)


def _pages(made) -> list[str]:
    return ["/invoices/", "/invoices/?status=open", f"/invoices/{made.id}"]


def _change_password(app, email: str) -> None:
    with app.app_context():
        db.session.execute(
            update(User)
            .where(User.email == email)
            .values(password_hash=generate_password_hash("another password"))
        )
        db.session.commit()
        db.session.remove()


def _refused(resp, htmx: bool = False) -> bool:
    if htmx:
        return resp.status_code == 401 and resp.headers["HX-Redirect"].startswith("/signin")
    return resp.status_code == 302 and resp.headers["Location"].startswith("/signin")


def test_a_changed_password_is_refused_although_the_page_found_its_rows(app, web, made, tenant):
    for page in _pages(made):
        assert made.invoice_number in web.text(page)
    _change_password(app, tenant.email)
    for page in _pages(made):
        resp = web.get(page)
        assert _refused(resp), page
        assert made.invoice_number not in resp.get_data(as_text=True)
        assert _refused(web.get(page, htmx=True), htmx=True), page


def test_a_gone_user_is_refused_on_every_path(app, web, made, tenant):
    _ = made
    pages = [
        *_pages(made),
        "/invoices/?after=not-a-cursor",  # the list starts again from its first page
        "/invoices/not-an-id",  # NotFound before any read
        f"/invoices/{uuid.uuid4()}",  # read, nothing found
    ]
    for page in pages:
        assert web.get(page).status_code in (200, 404), page
    with app.app_context():
        db.session.execute(delete(User).where(User.email == tenant.email))
        db.session.commit()
        db.session.remove()
    for page in pages:
        assert _refused(web.get(page)), page
        assert _refused(web.get(page, htmx=True), htmx=True), page


def test_the_pages_show_only_the_users_account(app, web, made, other_tenant):
    theirs = make_customer(app, other_tenant, "theirs", name="Their Customer")
    foreign = make_invoice(app, other_tenant, theirs.id, finalize=True)
    html = web.text("/invoices/")
    assert made.invoice_number in html and "Their Customer" not in html
    assert web.get(f"/invoices/{foreign.id}").status_code == 404
    assert web.get(f"/invoices/?customer={theirs.id}").status_code == 404


def test_an_empty_list_and_a_date_filter_still_see_the_user(app, client, tenant, other_tenant):
    web = signed_in(client, other_tenant)
    empty = web.get("/invoices/")
    assert empty.status_code == 200 and other_tenant.email in empty.get_data(as_text=True)
    acme = make_customer(app, other_tenant, "acme", name="ACME Corp")
    made = make_invoice(app, other_tenant, acme.id, finalize=True)
    dated = web.text("/invoices/?date_from=2000-01-01&date_to=2999-12-31")
    assert made.invoice_number in dated
    assert made.invoice_number not in web.text("/invoices/?date_to=2000-01-01")
    assert made.invoice_number in web.text(f"/invoices/?customer={acme.id}")


def _entry(customer_id, action: str) -> dict[str, str]:
    return {
        "customer_id": str(customer_id),
        "action": action,
        "lines-0-description": "Work",
        "lines-0-quantity": "2",
        "lines-0-unit_price": "10",
        "lines-0-vat": "",
    }


def test_the_entry_form_refuses_a_changed_password_and_saves_nothing(app, web, tenant):
    from conftest import row_counts

    acme = make_customer(app, tenant, "acme", name="ACME Corp")
    assert web.post("/invoices/new", _entry(acme.id, "add_line"), htmx=True).status_code == 200
    _change_password(app, tenant.email)
    before = row_counts(app)
    for action in ("add_line", "recalc", "save", "finalize"):
        assert _refused(web.post("/invoices/new", _entry(acme.id, action), htmx=True), True)
        assert _refused(web.post("/invoices/new", _entry(acme.id, action)))
    assert _refused(web.get("/invoices/new"))
    assert row_counts(app) == before


def test_the_entry_form_saves_as_the_user_for_their_account(app, web, tenant, other_tenant):
    from billing_app.audit.models import AuditRecord
    from billing_app.invoices.models import Invoice

    acme = make_customer(app, tenant, "acme", name="ACME Corp")
    theirs = make_customer(app, other_tenant, "theirs", name="Their Customer")
    refused = web.post("/invoices/new", _entry(theirs.id, "save"))
    assert refused.status_code == 422  # another account's customer is not on the list
    saved = web.post("/invoices/new", _entry(acme.id, "save"), htmx=True)
    assert saved.status_code == 302, saved.get_data(as_text=True)
    with app.app_context():
        invoice = db.session.query(Invoice).filter_by(customer_id=acme.id).one()
        record = db.session.query(AuditRecord).filter_by(object_id=str(invoice.id)).one()
        user_id = db.session.query(User.id).filter_by(email=tenant.email).scalar()
        assert invoice.account_id == tenant.account_id
        assert (record.actor_type, record.actor_id) == ("user", str(user_id))
        assert db.session.query(Invoice).filter_by(customer_id=theirs.id).count() == 0
