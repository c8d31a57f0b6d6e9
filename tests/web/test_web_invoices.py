"""Invoice pages through the Flask client: list, detail, lifecycle actions, one-off entry."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from conftest import row_counts
from sqlalchemy import update
from web_support import (
    counting_statements,
    is_whole_page,
    load_invoice,
    make_customer,
    make_invoice,
    make_tax,
    signed_in,
)

from billing_app.accounts.models import Account
from billing_app.extensions import db
from billing_app.invoices.models import Invoice


@pytest.fixture
def web(client, tenant):
    return signed_in(client, tenant)


@pytest.fixture
def acme(app, tenant):
    return make_customer(app, tenant, "acme", name="ACME Corp", document_locale="de")


def _rows(html: str) -> list[str]:
    """Invoice numbers of the list, in order."""
    return re.findall(r'<td class="nowrap"><a href="/invoices/[0-9a-f-]+">([^<]+)</a></td>', html)


# ---------------------------------------------------------------- list


def test_empty_list_invites_the_first_invoice(web):
    html = web.text("/invoices/")
    assert "No invoices yet." in html and "Enter your first invoice" in html


def test_list_shows_invoices_with_money_in_the_customers_locale(app, web, tenant, acme):
    make_invoice(app, tenant, acme.id, [("Work", "1", "123456")], finalize=True)
    html = web.text("/invoices/")
    assert "INV-000001" in html and "ACME Corp" in html
    assert "1.234,56\xa0€" in html  # German format, EUR
    assert 'class="badge state-open">Open<' in html


def test_list_filters_by_status_customer_text_and_date(app, web, tenant, acme):
    other = make_customer(app, tenant, "globex", name="Globex 50%_off")
    draft = make_invoice(app, tenant, acme.id)
    opened = make_invoice(app, tenant, acme.id, finalize=True)
    paid = make_invoice(app, tenant, other.id, pay=True)
    assert _rows(web.text("/invoices/?status=draft")) == [draft.invoice_number]
    assert set(_rows(web.text("/invoices/?status=unpaid"))) == {"INV-000001"}
    assert _rows(web.text("/invoices/?status=paid")) == ["INV-000002"]
    assert set(_rows(web.text(f"/invoices/?customer={acme.id}"))) == {
        draft.invoice_number,
        "INV-000001",
    }
    # Text: the number, or the customer name; % and _ are literal characters.
    assert _rows(web.text("/invoices/?q=000002")) == ["INV-000002"]
    assert _rows(web.text("/invoices/?q=globex")) == ["INV-000002"]
    assert _rows(web.text("/invoices/?q=50%25_")) == ["INV-000002"]
    assert _rows(web.text("/invoices/?q=5%25%25")) == []
    # Dates are calendar days in the account's time zone.
    today = datetime.now(ZoneInfo("UTC")).date()
    assert len(_rows(web.text(f"/invoices/?date_from={today}&date_to={today}"))) == 3
    tomorrow = today + timedelta(days=1)
    html = web.text(f"/invoices/?date_from={tomorrow}")
    assert _rows(html) == [] and "No invoices match these filters." in html
    assert opened.id and paid.id


def test_customer_filter_shows_a_removable_chip(app, web, tenant, acme):
    make_invoice(app, tenant, acme.id)
    html = web.text(f"/invoices/?customer={acme.id}&status=draft")
    assert "Customer: <strong>ACME Corp</strong>" in html
    assert 'href="/invoices/?status=draft">Show all customers' in html


def test_another_accounts_customer_as_filter_is_not_found(app, web, other_tenant):
    foreign = make_customer(app, other_tenant, "theirs")
    assert web.get(f"/invoices/?customer={foreign.id}").status_code == 404


def test_list_sorts_and_pages_by_keyset(app, web, tenant, acme, monkeypatch):
    from billing_app.web.invoices import routes

    monkeypatch.setattr(routes, "PAGE_SIZE", 3)
    for amount in (500, 100, 900, 300, 700, 200, 800):
        make_invoice(app, tenant, acme.id, [("x", "1", str(amount))], finalize=True)
    numbers = [f"INV-{n:06}" for n in range(1, 8)]
    page1 = web.text("/invoices/")
    assert _rows(page1) == numbers[::-1][:3]  # newest first
    assert "Previous page" not in page1
    next_url = re.search(r'rel="next" href="([^"]+)"', page1).group(1).replace("&amp;", "&")
    page2 = web.text(next_url)
    assert _rows(page2) == numbers[::-1][3:6]
    prev_url = re.search(r'rel="prev" href="([^"]+)"', page2).group(1).replace("&amp;", "&")
    assert _rows(web.text(prev_url)) == numbers[::-1][:3]
    page3 = web.text(re.search(r'rel="next" href="([^"]+)"', page2).group(1).replace("&amp;", "&"))
    assert _rows(page3) == numbers[:1] and "Next page" not in page3

    by_total = web.text("/invoices/?sort=-total")
    assert _rows(by_total) == ["INV-000003", "INV-000007", "INV-000005"]
    assert 'aria-sort="descending"' in by_total
    ascending = web.text("/invoices/?sort=number")
    assert _rows(ascending) == numbers[:3]
    # A cursor of another sort, or garbage, starts from the first page instead of failing.
    assert _rows(web.text("/invoices/?sort=total&after=garbage")) == [
        "INV-000002",
        "INV-000006",
        "INV-000004",
    ]


def test_list_answers_htmx_with_the_results_fragment(app, web, tenant, acme):
    make_invoice(app, tenant, acme.id)
    page = web.get("/invoices/")
    fragment = web.get("/invoices/?status=draft", htmx=True)
    assert is_whole_page(page.get_data(as_text=True))
    html = fragment.get_data(as_text=True)
    assert not is_whole_page(html)
    assert html.lstrip().startswith('<section id="invoice-results"')


def test_list_costs_the_same_statements_for_3_or_40_rows(app, client, web, tenant, acme):
    for _ in range(3):
        make_invoice(app, tenant, acme.id)
    with counting_statements(app) as few:
        assert client.get("/invoices/").status_code == 200
    other = make_customer(app, tenant, "other", document_locale="fr")
    for _ in range(37):
        make_invoice(app, tenant, other.id)
    with counting_statements(app) as many:
        html = client.get("/invoices/").get_data(as_text=True)
    assert len(_rows(html)) == 40
    assert few["n"] == many["n"] <= 3


# ---------------------------------------------------------------- detail


def test_detail_shows_lines_vat_per_rate_totals_and_history(app, web, tenant, acme):
    inv = make_invoice(
        app,
        tenant,
        acme.id,
        [("Consulting", "2", "15000"), ("Books", "3", "1250")],
        finalize=False,
    )
    from billing_app.invoices import service

    with app.app_context():
        service.replace_lines(
            tenant.account_id,
            inv.id,
            [
                service.LineDraft(
                    "Consulting", Decimal(2), Decimal(15000), tax_percent=Decimal(19)
                ),
                service.LineDraft("Books", Decimal(3), Decimal("1250.5"), tax_percent=Decimal(7)),
            ],
        )
        service.finalize_invoice(tenant.account_id, inv.id)
        db.session.remove()
    html = web.text(f"/invoices/{inv.id}")
    assert 'Invoice <span class="invoice-number">INV-000001</span>' in html
    assert "Consulting" in html and "12,505\xa0€" in html  # unit price with its fraction
    # 19 % of 300.00 = 57.00; 7 % of 37.52 (3 x 12.505 = 37.515 -> 37.52) = 2.6264 -> 2.63
    assert "57,00\xa0€" in html and "2,63\xa0€" in html and "37,52\xa0€" in html
    assert "397,15\xa0€" in html  # 300.00 + 37.52 + 57.00 + 2.63
    assert load_invoice(app, tenant, inv.id).total_minor == 39715
    assert "Created" in html and "Lines changed" in html and "Finalized" in html
    assert "Draft → Open" in html


def test_detail_history_names_the_user_who_acted(app, web, tenant, acme):
    inv = make_invoice(app, tenant, acme.id)
    web.post(f"/invoices/{inv.id}/finalize")
    html = web.text(f"/invoices/{inv.id}")
    assert f"by {tenant.email}" in html  # the finalize, done in the browser
    assert "by the system" in html  # the create, done by a script


def test_detail_costs_the_same_statements_for_1_or_50_lines(app, client, web, tenant, acme):
    small = make_invoice(app, tenant, acme.id, finalize=True)
    big = make_invoice(app, tenant, acme.id, [(f"Line {i}", "1", "100") for i in range(50)])
    with counting_statements(app) as one:
        assert client.get(f"/invoices/{small.id}").status_code == 200
    with counting_statements(app) as fifty:
        html = client.get(f"/invoices/{big.id}").get_data(as_text=True)
    assert "Line 49" in html
    assert one["n"] == fifty["n"] <= 10


@pytest.mark.parametrize(
    "state, offered, absent",
    [
        ("draft", ["Edit draft", "Finalize…", "Delete draft…", "Void…"], ["Mark paid…"]),
        ("open", ["Mark paid…", "Void…"], ["Edit draft", "Finalize…", "Delete draft…"]),
        ("paid", [], ["Edit draft", "Finalize…", "Delete draft…", "Void…", "Mark paid…"]),
        ("void", [], ["Edit draft", "Finalize…", "Delete draft…", "Void…", "Mark paid…"]),
    ],
)
def test_detail_offers_only_the_actions_the_state_allows(
    app, web, tenant, acme, state, offered, absent
):
    inv = make_invoice(app, tenant, acme.id, finalize=state != "draft", pay=state == "paid")
    if state == "void":
        assert web.post(f"/invoices/{inv.id}/void").status_code == 302
    html = web.text(f"/invoices/{inv.id}")
    for label in offered:
        assert label in html, label
    for label in absent:
        assert label not in html, label
    if state != "draft":
        assert "/edit" not in html and 'name="lines-' not in html


def test_another_accounts_invoice_is_not_found_anywhere(app, web, other_tenant):
    theirs_customer = make_customer(app, other_tenant, "theirs")
    theirs = make_invoice(app, other_tenant, theirs_customer.id)
    before = row_counts(app)
    assert web.get(f"/invoices/{theirs.id}").status_code == 404
    assert web.get(f"/invoices/{theirs.id}/edit").status_code == 404
    for action in ("finalize", "pay", "void", "delete", "edit"):
        resp = web.post(f"/invoices/{theirs.id}/{action}", {"action": "save"})
        assert resp.status_code == 404, action
        assert "Page not found" in resp.get_data(as_text=True)
    assert web.get("/invoices/not-a-uuid").status_code == 404
    assert row_counts(app) == before
    assert load_invoice(app, other_tenant, theirs.id).state == "draft"


# ---------------------------------------------------------------- actions


def test_finalize_pay_void_and_delete_from_the_detail_page(app, web, tenant, acme):
    inv = make_invoice(app, tenant, acme.id)
    resp = web.post(f"/invoices/{inv.id}/finalize")
    assert resp.status_code == 302 and resp.headers["Location"] == f"/invoices/{inv.id}"
    html = web.text(f"/invoices/{inv.id}")
    assert "Invoice INV-000001 is finalized." in html and "INV-000001" in html

    assert web.post(f"/invoices/{inv.id}/pay", {"paid_on": ""}).status_code == 302
    paid = load_invoice(app, tenant, inv.id)
    assert paid.state == "paid" and paid.paid_at is not None

    other = make_invoice(app, tenant, acme.id, finalize=True)
    assert web.post(f"/invoices/{other.id}/void").status_code == 302
    assert load_invoice(app, tenant, other.id).state == "void"

    draft = make_invoice(app, tenant, acme.id)
    resp = web.post(f"/invoices/{draft.id}/delete")
    assert resp.status_code == 302 and resp.headers["Location"] == "/invoices/"
    assert web.get(f"/invoices/{draft.id}").status_code == 404


def test_mark_paid_on_a_past_day_in_the_account_time_zone(app, web, tenant, acme):
    inv = make_invoice(app, tenant, acme.id, finalize=True)
    assert web.post(f"/invoices/{inv.id}/pay", {"paid_on": "2026-01-15"}).status_code == 302
    assert load_invoice(app, tenant, inv.id).paid_at == datetime(
        2026, 1, 15, tzinfo=ZoneInfo("UTC")
    )


def test_mark_paid_in_the_future_is_refused(app, web, tenant, acme):
    inv = make_invoice(app, tenant, acme.id, finalize=True)
    future = (datetime.now(ZoneInfo("UTC")) + timedelta(days=3)).date()
    resp = web.post(f"/invoices/{inv.id}/pay", {"paid_on": str(future)}, follow_redirects=True)
    assert "cannot be in the future" in resp.get_data(as_text=True)
    assert load_invoice(app, tenant, inv.id).state == "open"


def test_actions_without_csrf_token_are_rejected_and_change_nothing(app, web, tenant, acme):
    inv = make_invoice(app, tenant, acme.id)
    for action in ("finalize", "pay", "void", "delete"):
        resp = web.post(f"/invoices/{inv.id}/{action}", csrf=False)
        assert resp.status_code == 400, action
    resp = web.post(f"/invoices/{inv.id}/finalize", {"csrf_token": "forged"}, csrf=False)
    assert resp.status_code == 400
    assert load_invoice(app, tenant, inv.id).state == "draft"


def test_actions_the_state_forbids_are_refused_with_409(app, web, tenant, acme):
    paid = make_invoice(app, tenant, acme.id, pay=True)
    resp = web.post(f"/invoices/{paid.id}/void")
    assert resp.status_code == 409
    assert "A paid invoice cannot be voided" in resp.get_data(as_text=True)
    assert web.post(f"/invoices/{paid.id}/finalize").status_code == 409
    assert web.post(f"/invoices/{paid.id}/delete").status_code == 409
    assert load_invoice(app, tenant, paid.id).state == "paid"


def test_finalized_invoice_refuses_edits_posted_by_hand(app, web, tenant, acme):
    inv = make_invoice(app, tenant, acme.id, [("Original", "1", "1000")], finalize=True)
    assert web.get(f"/invoices/{inv.id}/edit").status_code == 409
    before = row_counts(app)
    resp = web.post(
        f"/invoices/{inv.id}/edit",
        {
            "action": "save",
            "lines-0-description": "Changed",
            "lines-0-quantity": "9",
            "lines-0-unit_price": "99",
            "due_date": "2030-01-01",
        },
    )
    assert resp.status_code == 409
    assert "cannot be changed" in resp.get_data(as_text=True)
    after = load_invoice(app, tenant, inv.id)
    assert [line.description for line in after.lines] == ["Original"]
    assert after.total_minor == inv.total_minor
    assert row_counts(app) == before


# ---------------------------------------------------------------- one-off entry


def _line(i: int, description: str, quantity: str, price: str, vat: str = "") -> dict[str, str]:
    return {
        f"lines-{i}-description": description,
        f"lines-{i}-quantity": quantity,
        f"lines-{i}-unit_price": price,
        f"lines-{i}-vat": vat,
    }


def test_new_invoice_form_is_accessible(web, acme):
    html = web.text(f"/invoices/new?customer={acme.id}")
    assert '<label for="customer_id">Customer</label>' in html
    assert f'<option selected value="{acme.id}">' in html or f'value="{acme.id}" selected' in html
    assert '<label class="visually-hidden" for="lines-0-description">Description</label>' in html
    assert 'aria-describedby="lines-0-quantity-error"' in html
    assert 'name="action" value="save"' in html and 'value="finalize"' in html


def test_save_a_draft_with_totals_from_the_service(app, web, tenant, acme):
    make_tax(app, tenant, "vat19", "19", applied_to_organization=True)
    make_tax(app, tenant, "vat7", "7")
    data = {
        "customer_id": str(acme.id),
        "action": "save",
        **_line(0, "Consulting", "2", "150"),
        **_line(1, "Books", "3", "12,505", vat="7"),
        **_line(2, "", "1", ""),  # an untouched row is no line
    }
    resp = web.post("/invoices/new", data)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    invoice_id = uuid.UUID(resp.headers["Location"].rsplit("/", 1)[1])
    inv = load_invoice(app, tenant, invoice_id)
    assert inv.state == "draft" and inv.currency == "EUR"
    assert [(line.description, line.unit_amount, line.tax_rate) for line in inv.lines] == [
        ("Consulting", Decimal(15000), Decimal(19)),
        ("Books", Decimal("1250.5"), Decimal(7)),
    ]
    assert (inv.subtotal_minor, inv.vat_minor, inv.total_minor) == (33752, 5700 + 263, 39715)


def test_save_and_finalize_gives_the_number(app, web, tenant, acme):
    data = {"customer_id": str(acme.id), "action": "finalize", **_line(0, "Work", "1", "100")}
    resp = web.post("/invoices/new", data, follow_redirects=True)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "Invoice INV-000001 is finalized." in html


def test_currency_and_entity_and_due_date_are_taken(app, web, tenant, acme):
    data = {
        "customer_id": str(acme.id),
        "currency": "JPY",
        "due_date": "2031-03-01",
        "action": "save",
        **_line(0, "Tea", "2", "1500"),
    }
    resp = web.post("/invoices/new", data)
    inv = load_invoice(app, tenant, uuid.UUID(resp.headers["Location"].rsplit("/", 1)[1]))
    assert inv.currency == "JPY" and inv.total_minor == 3000
    assert inv.due_at == datetime(2031, 3, 1, tzinfo=ZoneInfo("UTC"))


@pytest.mark.parametrize(
    "line, field, message",
    [
        (_line(0, "", "1", "10"), "lines-0-description", "Enter a description."),
        (_line(0, "Work", "abc", "10"), "lines-0-quantity", "Not a number"),
        (_line(0, "Work", "0", "10"), "lines-0-quantity", "must be greater than 0"),
        (_line(0, "Work", "1.1234567", "10"), "lines-0-quantity", "At most 6 decimals."),
        (_line(0, "Work", "1", "1.000000001"), "lines-0-unit_price", "Too many decimals"),
        (_line(0, "Work", "1", ""), "lines-0-unit_price", "Enter a unit price."),
        (_line(0, "Work", "1", "10", vat="33"), "lines-0-vat", "Choose one of the listed"),
        (_line(0, "Work", "1", "1,234.50"), "lines-0-unit_price", "Not a number"),
    ],
)
def test_line_errors_are_shown_on_the_field_and_nothing_is_saved(
    app, web, acme, line, field, message
):
    before = row_counts(app)
    resp = web.post("/invoices/new", {"customer_id": str(acme.id), "action": "save", **line})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert re.search(rf'id="{field}-error">[^<]*{re.escape(message)}', html), html
    assert f'aria-describedby="{field}-error"' in html
    assert row_counts(app) == before


def test_header_errors_and_rule_errors_from_the_service(app, web, tenant, acme, other_tenant):
    before = row_counts(app)
    no_customer = web.post("/invoices/new", {"action": "save", **_line(0, "Work", "1", "10")})
    assert no_customer.status_code == 422
    assert 'id="customer_id-error">Choose a customer.' in no_customer.get_data(as_text=True)
    foreign = make_customer(app, other_tenant, "theirs")
    before = row_counts(app)
    resp = web.post(
        "/invoices/new",
        {"customer_id": str(foreign.id), "action": "save", **_line(0, "Work", "1", "10")},
    )
    assert resp.status_code == 422
    assert "Choose a customer from the list." in resp.get_data(as_text=True)
    no_lines = web.post("/invoices/new", {"customer_id": str(acme.id), "action": "save"})
    assert no_lines.status_code == 422 and "Add at least one line." in no_lines.get_data(
        as_text=True
    )
    # The service's rule (no negative total) comes back onto the form.
    negative = web.post(
        "/invoices/new",
        {"customer_id": str(acme.id), "action": "save", **_line(0, "Refund", "1", "-10")},
    )
    assert negative.status_code == 422
    assert "cannot be negative" in negative.get_data(as_text=True)
    assert row_counts(app) == before


def test_entry_without_csrf_token_is_rejected(app, web, acme):
    before = row_counts(app)
    resp = web.post(
        "/invoices/new",
        {"customer_id": str(acme.id), "action": "save", **_line(0, "W", "1", "1")},
        csrf=False,
    )
    assert resp.status_code == 400
    assert row_counts(app) == before


def test_htmx_add_line_answers_the_new_row_and_the_totals(web, acme):
    data = {"customer_id": str(acme.id), "action": "add_line", **_line(0, "Work", "2", "10")}
    resp = web.post("/invoices/new", data, htmx=True)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and not is_whole_page(html)
    assert html.lstrip().startswith('<tr id="lines-1-row">')
    assert 'id="totals" class="totals-panel"' in html and 'hx-swap-oob="true"' in html
    assert 'data-total="total">23,80\xa0€' not in html  # no tax rate: 0 %
    assert 'data-total="total">20,00\xa0€' in html
    # The same button without JavaScript: the whole page with two rows.
    plain = web.post("/invoices/new", data)
    page = plain.get_data(as_text=True)
    assert is_whole_page(page) and 'id="lines-1-row"' in page and "20,00\xa0€" in page


def test_htmx_recalc_returns_server_totals_per_rate(app, web, tenant, acme):
    make_tax(app, tenant, "vat19", "19", applied_to_organization=True)
    make_tax(app, tenant, "vat7", "7")
    data = {
        "customer_id": str(acme.id),
        **_line(0, "A", "1", "100"),
        **_line(3, "B", "2", "0.05", vat="7"),
    }
    resp = web.post("/invoices/new", data, htmx=True)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and not is_whole_page(html)
    assert 'data-total="vat-19 %">19,00\xa0€' in html
    assert 'data-total="vat-7 %">0,01\xa0€' in html  # 7 % of 0.10 = 0.007 -> 0.01
    assert 'data-total="total">119,11\xa0€' in html
    assert '<span id="lines-3-amount" hx-swap-oob="true">0,10\xa0€</span>' in html


def test_htmx_recalc_with_errors_answers_422_with_errors_on_fields(web, acme):
    data = {"customer_id": str(acme.id), **_line(0, "A", "x", "1"), **_line(1, "B", "1", "5")}
    resp = web.post("/invoices/new", data, htmx=True)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert 'id="lines-0-quantity-error" hx-swap-oob="true">Not a number' in html
    assert "Lines with errors are not counted" in html
    assert 'data-total="total">5,00\xa0€' in html


def test_htmx_remove_line_recomputes_without_it(web, acme):
    data = {
        "customer_id": str(acme.id),
        "remove_line": "0",
        **_line(0, "A", "1", "100"),
        **_line(1, "B", "1", "5"),
    }
    html = web.post("/invoices/new", data, htmx=True).get_data(as_text=True)
    assert 'data-total="total">5,00\xa0€' in html and "lines-0-amount" not in html
    page = web.post("/invoices/new", data).get_data(as_text=True)
    assert 'id="lines-0-row"' not in page and 'id="lines-1-row"' in page


def test_customer_search_for_the_picker(app, web, tenant, acme):
    make_customer(app, tenant, "globex", name="Globex")
    html = web.get("/invoices/new/customer-options?customer_q=glob", htmx=True).get_data(
        as_text=True
    )
    assert "Globex (globex)" in html and "ACME" not in html
    keep = web.get(
        f"/invoices/new/customer-options?customer_q=glob&customer_id={acme.id}", htmx=True
    ).get_data(as_text=True)
    assert "ACME Corp (acme)" in keep and "selected" in keep
    plain = web.get("/invoices/new/customer-options?customer_q=glob")
    assert plain.status_code == 302 and "customer_q=glob" in plain.headers["Location"]
    page = web.text("/invoices/new?customer_q=glob")
    assert "Globex (globex)" in page and "ACME Corp (acme)" not in page


def test_edit_a_draft(app, web, tenant, acme):
    inv = make_invoice(app, tenant, acme.id, [("Old", "1", "1000")])
    html = web.text(f"/invoices/{inv.id}/edit")
    assert 'value="Old"' in html and 'value="10"' in html  # 1000 cents shown as 10
    resp = web.post(
        f"/invoices/{inv.id}/edit",
        {"action": "save", "due_date": "2031-01-31", **_line(0, "New", "3", "2.5")},
    )
    assert resp.status_code == 302
    after = load_invoice(app, tenant, inv.id)
    assert [line.description for line in after.lines] == ["New"]
    assert after.total_minor == 750 and after.state == "draft"
    assert after.due_at == datetime(2031, 1, 31, tzinfo=ZoneInfo("UTC"))
    # Save and finalize from the edit page.
    resp = web.post(
        f"/invoices/{inv.id}/edit", {"action": "finalize", **_line(0, "New", "3", "2.5")}
    )
    assert load_invoice(app, tenant, inv.id).invoice_number == "INV-000001"


# ---------------------------------------------------------------- escaping, zones


def test_user_text_is_escaped_everywhere(app, web, tenant):
    evil = make_customer(app, tenant, "evil", name="<b>Evil</b> & Co")
    inv = make_invoice(app, tenant, evil.id, [("<script>alert(1)</script>", "1", "100")])
    for path in (
        f"/invoices/{inv.id}",
        "/invoices/",
        f"/invoices/{inv.id}/edit",
        f"/customers/{evil.id}",
    ):
        html = web.text(path)
        assert "<script>alert(1)</script>" not in html, path
        assert "<b>Evil</b>" not in html, path
    detail = web.text(f"/invoices/{inv.id}")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in detail
    assert "&lt;b&gt;Evil&lt;/b&gt; &amp; Co" in detail
    search = web.text("/invoices/?q=%3Cscript%3E")
    assert "<script>" not in search.split("</head>", 1)[1].replace(
        '<script src="/static/vendor/htmx-2.0.11.min.js" defer></script>', ""
    )


def test_dates_are_shown_in_the_account_time_zone(app, web, tenant, acme):
    inv = make_invoice(app, tenant, acme.id)
    created = datetime(2026, 3, 1, 23, 30, tzinfo=ZoneInfo("UTC"))
    with app.app_context():
        db.session.execute(update(Invoice).where(Invoice.id == inv.id).values(created_at=created))
        db.session.execute(
            update(Account).where(Account.id == tenant.account_id).values(timezone="Asia/Tokyo")
        )
        db.session.commit()
        db.session.remove()
    html = web.text("/invoices/")
    assert "2026-03-02" in html and "2026-03-01" not in html
    # And the day filter follows the zone: 1 March in Tokyo ends at 15:00 UTC.
    assert _rows(web.text("/invoices/?date_to=2026-03-01")) == []
    assert len(_rows(web.text("/invoices/?date_from=2026-03-02&date_to=2026-03-02"))) == 1


# ---------------------------------------------------------------- preview = save (issue 14)


def _assigned_to_own_entity(app, tenant) -> tuple[Any, Any]:
    """The issue's scenario: the account's default entity prices at 25 %, a second entity
    at 10 %, and the customer is assigned to the second one."""
    from billing_app.entities.models import BillingEntity
    from billing_app.entities.service import create_entity, default_entity

    std = make_tax(app, tenant, "std25", "25")
    reduced = make_tax(app, tenant, "red10", "10")
    with app.app_context():
        default = default_entity(tenant.account_id)
        db.session.get(BillingEntity, default.id).default_tax_rate_id = std.id
        db.session.commit()
        own = create_entity(
            tenant.account_id, {"code": "own", "name": "Own Ltd", "default_tax_rate_id": reduced.id}
        )
        db.session.remove()
    customer = make_customer(
        app, tenant, "assigned", name="Assigned Co", document_locale="en", billing_entity_code="own"
    )
    return customer, own


def _figure(html: str, name: str) -> str:
    found = re.search(rf'data-total="{re.escape(name)}">([^<]+)<', html)
    assert found, (name, html)
    return found.group(1)


def test_the_entry_forms_live_totals_are_the_saved_totals(app, web, tenant):
    """A customer assigned to a non-default billing entity with its own tax rate, one line
    of 100.00, the entity left on "The customer's default": the live totals show what the
    save stores (10.00 VAT, 110.00), not the account default entity's 25 %."""
    from billing_app.money import format_money

    customer, own = _assigned_to_own_entity(app, tenant)
    line = _line(0, "Work", "1", "100")
    data = {"customer_id": str(customer.id), "billing_entity_id": "", **line}
    preview = web.post("/invoices/new", dict(data, action="recalc"), htmx=True)
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200 and not is_whole_page(html)
    shown = {name: _figure(html, name) for name in ("subtotal", "vat-10 %", "total")}
    assert shown == {"subtotal": "€100.00", "vat-10 %": "€10.00", "total": "€110.00"}
    assert 'data-total="vat-25 %"' not in html
    saved = web.post("/invoices/new", dict(data, action="save"))
    assert saved.status_code == 302, saved.get_data(as_text=True)
    inv = load_invoice(app, tenant, uuid.UUID(saved.headers["Location"].rsplit("/", 1)[1]))
    assert inv.billing_entity_id == own.id
    assert (inv.subtotal_minor, inv.vat_minor, inv.total_minor) == (10000, 1000, 11000)
    assert shown == {
        "subtotal": format_money(inv.subtotal_minor, "EUR", "en"),
        "vat-10 %": format_money(inv.vat_minor, "EUR", "en"),
        "total": format_money(inv.total_minor, "EUR", "en"),
    }
    # The saved invoice's page shows the same figures.
    page = web.text(f"/invoices/{inv.id}")
    assert "<dt>VAT</dt><dd>€10.00</dd>" in page and "€110.00" in page


def test_the_whole_entry_page_previews_what_it_saves(app, web, tenant):
    """Without JavaScript ("Update totals" posts the whole form) the same figures."""
    customer, _ = _assigned_to_own_entity(app, tenant)
    data = {"customer_id": str(customer.id), "action": "recalc", **_line(0, "Work", "1", "100")}
    html = web.post("/invoices/new", data).get_data(as_text=True)
    assert is_whole_page(html)
    assert _figure(html, "vat-10 %") == "€10.00" and _figure(html, "total") == "€110.00"
