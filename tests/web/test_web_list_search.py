"""The invoice list's text search and paging: the index-driven search finds what a scan
finds (whichever way a text is looked up), its statements do not grow with the matches,
and the keyset cursors page forward and back on every sort."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from web_support import counting_statements, make_customer, make_invoice, signed_in

from billing_app.invoices import queries
from billing_app.invoices import search as text_search
from billing_app.invoices import service as invoices


@pytest.fixture
def web(client, tenant):
    return signed_in(client, tenant)


def _rows(html: str) -> list[str]:
    return re.findall(r'<td class="nowrap"><a href="/invoices/[0-9a-f-]+">([^<]+)</a></td>', html)


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


def test_list_cursors_page_forward_and_back_on_every_sort(app, tenant):
    """A page's "next" cursor continues it and the next page's "previous" cursor comes
    back to it, on every sort; a number that needs JSON escaping round-trips."""

    acme = make_customer(app, tenant, "acme", name="ACME Corp")
    made = [make_invoice(app, tenant, acme.id, finalize=n % 2 == 0) for n in range(4)]
    assert made
    with app.test_request_context("/"):
        for sort in ("created", "total", "number"):
            search = queries.InvoiceSearch(sort=sort, descending=True, limit=2)
            page = queries.search_invoices(tenant.account_id, search)
            assert page.next_cursor is not None
            # Page 2 from the list's own cursor, back again from its "previous" cursor.
            second = queries.search_invoices(
                tenant.account_id,
                queries.InvoiceSearch(sort=sort, descending=True, limit=2, after=page.next_cursor),
            )
            back = queries.search_invoices(
                tenant.account_id,
                queries.InvoiceSearch(
                    sort=sort, descending=True, limit=2, before=second.prev_cursor
                ),
            )
            assert [r.id for r in back.rows] == [r.id for r in page.rows], sort
        row = replace(page.rows[0], invoice_number='INV-"ü\\')
        cursor = queries.encode_cursor("number", row)
        assert queries.decode_cursor("number", cursor) == ('INV-"ü\\', row.id)
