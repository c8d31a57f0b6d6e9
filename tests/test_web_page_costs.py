"""What the page speed work must not change: the session's lifetime and cookie, the
remembered session cookies, and the invoice list's index-driven text search (the same
matches as a scan, whichever way a text is looked up)."""

from __future__ import annotations

import re
import uuid

import pytest
from web_support import counting_statements, make_customer, make_invoice, signed_in

from billing_app.invoices import search as text_search
from billing_app.invoices import service as invoices
from billing_app.web import sessions


@pytest.fixture
def web(client, tenant):
    return signed_in(client, tenant)


def _rows(html: str) -> list[str]:
    return re.findall(r'<td class="nowrap"><a href="/invoices/[0-9a-f-]+">([^<]+)</a></td>', html)


def test_session_lasts_12_hours_and_is_not_reissued_by_pages(app, client, tenant):
    browser = signed_in(client, tenant)
    assert app.permanent_session_lifetime.total_seconds() == 12 * 3600
    assert app.config["SESSION_REFRESH_EACH_REQUEST"] is False
    browser.text("/settings/api-keys")  # the session now holds its CSRF token
    for path in ("/invoices/", "/customers/", "/static/css/app.css"):
        resp = client.get(path)
        resp.close()  # the static file's handle
        assert resp.status_code == 200
        assert "Set-Cookie" not in resp.headers, path


def test_remembered_session_cookies_still_expire_and_still_need_their_signature(
    app, client, tenant, monkeypatch
):
    signed_in(client, tenant)
    assert client.get("/invoices/").status_code == 200
    assert client.get("/invoices/").status_code == 200  # served from the remembered cookie
    cookie = client.get_cookie("session")
    assert cookie is not None
    # A tampered cookie is not the remembered string: verified, refused.
    client.set_cookie("session", cookie.value[:-2] + ("AA" if cookie.value[-2:] != "AA" else "BB"))
    assert client.get("/invoices/").status_code == 302
    client.set_cookie("session", cookie.value)
    assert client.get("/invoices/").status_code == 200
    # 12 hours and a second after signing, the remembered cookie is expired too.
    now = sessions.time.time()
    monkeypatch.setattr(sessions.time, "time", lambda: now + 12 * 3600 + 1)
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: now + 12 * 3600 + 1)
    assert client.get("/invoices/").status_code == 302


def test_text_search_finds_numbers_and_names_by_substring_through_the_index(
    app, web, tenant, monkeypatch
):
    acme = make_customer(app, tenant, "acme", name="ACME Corp")
    globex = make_customer(app, tenant, "globex", name="Globex Ltd")
    kept = [make_invoice(app, tenant, acme.id, finalize=True) for _ in range(3)]
    draft = make_invoice(app, tenant, globex.id)
    deleted = make_invoice(app, tenant, globex.id)
    with app.app_context():
        invoices.delete_draft(tenant.account_id, deleted.id)
    assert [k.invoice_number for k in kept] == ["INV-000001", "INV-000002", "INV-000003"]
    # Selective (few matches: a UNION of the candidates) and broad (the index walk with a
    # filter) answer the same, newest first; the finalized numbers are found by their new
    # number (the index follows the UPDATE) and the deleted draft is gone.
    expected = {
        "inv-000002": ["INV-000002"],
        "000003": ["INV-000003"],
        "acme": ["INV-000003", "INV-000002", "INV-000001"],
        "globex": [draft.invoice_number],
        draft.invoice_number[-5:].lower(): [draft.invoice_number],
        deleted.invoice_number: [],
        "nothing like it": [],
    }
    for caps in ((50, 1000), (0, 0)):
        monkeypatch.setattr(text_search, "CUSTOMER_CAP", caps[0])
        monkeypatch.setattr(text_search, "NUMBER_CAP", caps[1])
        for text, numbers in expected.items():
            assert _rows(web.text(f"/invoices/?q={text}")) == numbers, (caps, text)
    # Two characters cannot use a trigram index: the walk answers. ("V-": drafts are
    # numbered DRAFT-<random hex>, so two digits could match one by chance.)
    monkeypatch.setattr(text_search, "CUSTOMER_CAP", 50)
    monkeypatch.setattr(text_search, "NUMBER_CAP", 1000)
    assert _rows(web.text("/invoices/?q=v-")) == ["INV-000003", "INV-000002", "INV-000001"]


def test_text_search_statements_do_not_grow_with_the_matches(app, client, web, tenant):
    acme = make_customer(app, tenant, "acme", name="ACME Corp")
    make_invoice(app, tenant, acme.id, finalize=True)
    with counting_statements(app) as one:
        assert len(_rows(client.get("/invoices/?q=acme").get_data(as_text=True))) == 1
    for _ in range(12):
        make_invoice(app, tenant, acme.id, finalize=True)
    with counting_statements(app) as many:
        assert len(_rows(client.get("/invoices/?q=acme").get_data(as_text=True))) == 13
    assert one["n"] == many["n"] <= 5


def test_list_cursors_are_the_services_own(app, tenant):
    """The list writes its page cursors itself for the time and total sorts: the same text
    as the service's encoder (a page link made by either stays valid), on every sort and
    for a number that needs JSON escaping."""
    from billing_app.invoices import queries as browse

    acme = make_customer(app, tenant, "acme", name="ACME Corp")
    made = [make_invoice(app, tenant, acme.id, finalize=n % 2 == 0) for n in range(4)]
    assert made
    with app.test_request_context("/"):
        for sort in ("created", "total", "number"):
            search = invoices.InvoiceSearch(sort=sort, descending=True, limit=2)
            page = browse.search_invoices(tenant.account_id, search)
            assert page.next_cursor is not None
            for row in page.rows:
                assert browse._cursor(sort, row) == invoices._encode_cursor(sort, row), sort
            # Page 2 from the list's own cursor, back again from its "previous" cursor.
            second = browse.search_invoices(
                tenant.account_id,
                invoices.InvoiceSearch(sort=sort, descending=True, limit=2, after=page.next_cursor),
            )
            back = browse.search_invoices(
                tenant.account_id,
                invoices.InvoiceSearch(
                    sort=sort, descending=True, limit=2, before=second.prev_cursor
                ),
            )
            assert [r.id for r in back.rows] == [r.id for r in page.rows], sort
        row = page.rows[0]
        row.invoice_number = 'INV-"ü\\'
        assert browse._cursor("number", row) == invoices._encode_cursor("number", row)


def test_entry_form_totals_from_the_rates_it_read_for_its_choices(app, tenant):
    """The entry form builds its totals' tax table from the rates it read for the VAT
    choices: the same lines as `build_lines` reading the rates itself, whichever level of
    the precedence decides (line, customer, organisation-wide, the account's default)."""
    from decimal import Decimal

    from web_support import make_tax

    from billing_app.invoices import queries as browse
    from billing_app.taxes import service as taxes

    plain = make_customer(app, tenant, "plain")
    with app.test_request_context("/"):
        none_yet = taxes.account_tax_rates(tenant.account_id)
    make_tax(app, tenant, "vat19", "19", applied_to_organization=True)
    make_tax(app, tenant, "vat7", "7")
    make_tax(app, tenant, "vat5", "5", applied_to_organization=True)
    taxed = make_customer(app, tenant, "taxed", tax_code="vat7")
    drafts = [
        invoices.LineDraft(description="a", quantity=Decimal(2), unit_amount=Decimal(1250)),
        invoices.LineDraft(
            description="b",
            quantity=Decimal(1),
            unit_amount=Decimal(999),
            tax_percent=Decimal("10.5"),
        ),
    ]
    for default_vat in (None, Decimal(16)):
        for customer, rows in ((plain, None), (taxed, None), (plain, none_yet)):
            with app.test_request_context("/"):
                if rows is None:
                    rows = taxes.account_tax_rates(tenant.account_id)
                table = taxes.tax_table(rows, default_vat)
                args = (tenant.account_id, default_vat, customer.id, None, drafts)
                read_itself = browse.preview_totals(*args)
                from_choices = browse.preview_totals(*args, tax_table=table)
            if rows is none_yet:
                # No rate at all: the account's default (or 0) either way.
                assert [line.tax_rate for line in from_choices[0]] == [
                    default_vat or Decimal(0),
                    Decimal("10.5"),
                ]
                continue
            assert [(x.tax_rate, x.tax_code, x.vat_minor) for x in read_itself[0]] == [
                (x.tax_rate, x.tax_code, x.vat_minor) for x in from_choices[0]
            ]
            assert read_itself[1] == from_choices[1]
    # The organisation-wide rate (marking vat5 so unmarked vat19); the customer's own wins.
    with app.test_request_context("/"):
        rows = taxes.account_tax_rates(tenant.account_id)
        lines, _ = browse.preview_totals(
            tenant.account_id, None, plain.id, None, drafts, tax_table=taxes.tax_table(rows, None)
        )
        assert lines[0].tax_rate == Decimal(5)
        lines, _ = browse.preview_totals(
            tenant.account_id, None, taxed.id, None, drafts, tax_table=taxes.tax_table(rows, None)
        )
        assert lines[0].tax_rate == Decimal(7)


def test_entry_reads_give_what_the_two_reads_they_replace_give(app, tenant, other_tenant):
    """`browse.entry_reads` (an htmx change of the entry form with a customer chosen: the
    tax rates and the customer in one statement) answers exactly what
    `taxes.account_tax_rates` and `browse.customer_record` answer, for the default and a
    named billing entity, another account's entity, another account's and an unknown
    customer, and an account with no rate at all."""
    from web_support import make_tax

    from billing_app.entities.service import default_entity
    from billing_app.invoices import queries as browse
    from billing_app.taxes import service as taxes

    plain = make_customer(app, tenant, "plain")
    foreign = make_customer(app, other_tenant, "foreign")
    with app.app_context():
        own_entity = default_entity(tenant.account_id).id
        foreign_entity = default_entity(other_tenant.account_id).id

    def both(customer_id, entity_id):
        with app.test_request_context("/"):
            merged = browse.entry_reads(tenant.account_id, customer_id, entity_id)
            rates = taxes.account_tax_rates(tenant.account_id)
            found = browse.customer_record(tenant.account_id, customer_id, entity_id)
        return merged, (rates, found)

    def same(merged, separate):
        (rates, found), (rates_alone, found_alone) = merged, separate
        fields = ("id", "rate", "code", "applied_to_organization", "name")
        assert [tuple(getattr(r, f) for f in fields) for r in rates] == [
            tuple(getattr(r, f) for f in fields) for r in rates_alone
        ]
        if found_alone is None:
            assert found is None
        else:
            assert found is not None
            assert vars(found[0]) == vars(found_alone[0])
            assert found[1] == found_alone[1]

    merged, separate = both(plain.id, None)
    assert merged[0] == [] and merged[1] is not None  # no rate yet, the customer found
    same(merged, separate)
    make_tax(app, tenant, "vat19", "19", applied_to_organization=True)
    make_tax(app, tenant, "vat7", "7")
    taxed = make_customer(app, tenant, "taxed", tax_code="vat7")
    for customer_id in (plain.id, taxed.id, foreign.id, uuid.uuid4()):
        for entity_id in (None, own_entity, foreign_entity, uuid.uuid4()):
            merged, separate = both(customer_id, entity_id)
            same(merged, separate)
            assert len(merged[0]) == 2
            assert (merged[1] is None) == (customer_id not in (plain.id, taxed.id))
    merged, _ = both(taxed.id, foreign_entity)
    assert merged[1] is not None and merged[1][1].entity_id is None  # not this account's


def test_an_htmx_change_of_the_entry_form_reads_with_one_statement(app, web, tenant, is_postgres):
    """The rates and the chosen customer together, on PostgreSQL with the signed-in user
    (`web.common.page_scope`); on SQLite the user first, after the read transaction's
    BEGIN."""
    acme = make_customer(app, tenant, "acme")
    data = {
        "customer_id": str(acme.id),
        "action": "add_line",
        "lines-0-description": "Work",
        "lines-0-quantity": "2",
        "lines-0-unit_price": "10",
        "lines-0-vat": "",
    }
    assert web.post("/invoices/new", dict(data), htmx=True).status_code == 200
    with counting_statements(app) as counted:
        resp = web.post("/invoices/new", dict(data), htmx=True)
    assert resp.status_code == 200
    assert re.search(r'data-total="total">[^<]*20[.,]00', resp.get_data(as_text=True))
    assert counted["n"] == (1 if is_postgres else 3)
