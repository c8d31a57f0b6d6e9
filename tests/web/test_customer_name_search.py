"""The invoice list's text search by customer name through SQLite's FTS5 trigram table
(migration 0007; PostgreSQL's pg_trgm index is 0006's): the table is kept in step with
the customers, and the search answers exactly the rows the plain scan answered, for any
text, and only the account's own."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from sqlalchemy import text
from web_support import make_customer, make_invoice, scan_text_matches, signed_in

from billing_app.customers.service import delete_customer, update_customer
from billing_app.extensions import db
from billing_app.invoices import queries
from billing_app.invoices import search as text_search
from billing_app.invoices.models import Invoice


@pytest.fixture
def web(client, tenant):
    return signed_in(client, tenant)


def _rows(html: str) -> list[str]:
    return re.findall(r'<td class="nowrap"><a href="/invoices/[0-9a-f-]+">([^<]+)</a></td>', html)


def _indexed(name_text: str) -> set[str]:
    """The customer ids whose name the FTS5 table finds for `name_text` (a phrase)."""
    rows = db.session.execute(
        text(
            "SELECT customers.id FROM customer_name_search "
            "JOIN customers ON customers.rowid = customer_name_search.rowid "
            "WHERE customer_name_search MATCH :phrase"
        ),
        {"phrase": text_search.index_phrase(name_text)},
    )
    return {r[0] for r in rows}


def _integrity_check() -> None:
    # rank 1: the index is compared with the content table (customers) too.
    db.session.execute(
        text(
            "INSERT INTO customer_name_search(customer_name_search, rank) "
            "VALUES ('integrity-check', 1)"
        )
    )


def test_the_customer_name_index_exists_and_follows_the_customers_on_sqlite(app, tenant):
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("SQLite's FTS5 table (PostgreSQL: pg_trgm, test_migrations.py)")
        objects = set(
            db.session.execute(
                text("SELECT type, name FROM sqlite_master WHERE name LIKE 'customer_name_search%'")
            ).all()
        )
        db.session.remove()
    assert {
        ("table", "customer_name_search"),
        ("trigger", "customer_name_search_insert"),
        ("trigger", "customer_name_search_update"),
        ("trigger", "customer_name_search_delete"),
    } <= objects

    keep = make_customer(app, tenant, "keep", name="Zebra Keepers")
    gone = make_customer(app, tenant, "gone", name="Quokka Imports")
    with app.app_context():
        hex_keep, hex_gone = keep.id.hex, gone.id.hex
        # Insert: found by any substring of three characters or more, in any ASCII case.
        assert _indexed("bra kee") == {hex_keep}
        assert _indexed("QUOKKA") == {hex_gone}
        _integrity_check()
        db.session.remove()

        # Rename: the new name is found, the old one is not.
        update_customer(tenant.account_id, keep.id, {"name": "Yak Herders"})
        db.session.remove()
        assert _indexed("Zebra") == set()
        assert _indexed("ak herd") == {hex_keep}
        # An update that leaves the name alone keeps the entry.
        update_customer(tenant.account_id, keep.id, {"email": "yak@example.com"})
        db.session.remove()
        assert _indexed("Yak Herders") == {hex_keep}
        _integrity_check()
        db.session.remove()

        # Delete: gone from the index.
        delete_customer(tenant.account_id, gone.id)
        db.session.remove()
        assert _indexed("Quokka") == set()
        assert _indexed("Yak") == {hex_keep}
        _integrity_check()
        db.session.remove()


def test_a_renamed_customer_is_found_by_its_new_name_only(app, web, tenant):
    acme = make_customer(app, tenant, "acme", name="Old Name Traders")
    made = make_invoice(app, tenant, acme.id, finalize=True)
    assert _rows(web.text("/invoices/?q=name trad")) == [made.invoice_number]
    with app.app_context():
        update_customer(tenant.account_id, acme.id, {"name": "Brand New Holdings"})
        db.session.remove()
    assert _rows(web.text("/invoices/?q=name trad")) == []
    assert _rows(web.text("/invoices/?q=new hold")) == [made.invoice_number]


def test_the_name_search_takes_special_characters_literally(app, web, tenant):
    odd = make_customer(app, tenant, "odd", name='Ça "50%_off" Łódź \\ Bäckerei')
    plain = make_customer(app, tenant, "plain", name="Plain 50 Percent off")
    made = make_invoice(app, tenant, odd.id, finalize=True)
    other = make_invoice(app, tenant, plain.id, finalize=True)
    for q in ('"50%_off"', "50%", "%_o", '"', "Łódź", "ódź", "Bäck", "Ça", "\\ B", "\\"):
        found = _rows(web.text(f"/invoices/?q={quote(q)}"))
        assert made.invoice_number in found, q
        assert other.invoice_number not in found, q
    for q in ("50%%", "5_%", "%%%", "___", "0_o", 'x"y', '" OR "', '""""', "Lodz", "ó d"):
        assert made.invoice_number not in _rows(web.text(f"/invoices/?q={quote(q)}")), q
    # "_" and "%" are not wildcards: "50 P" matches the plain one only.
    assert _rows(web.text(f"/invoices/?q={quote('50 p')}")) == [other.invoice_number]


def test_another_accounts_customer_never_matches(app, web, tenant, other_tenant):
    mine = make_customer(app, tenant, "shared", name="Shared Name Industries")
    theirs = make_customer(app, other_tenant, "shared", name="Shared Name Industries")
    only_theirs = make_customer(app, other_tenant, "probe", name="Tenancy Probe Ltd")
    my_invoice = make_invoice(app, tenant, mine.id, finalize=True)
    make_invoice(app, other_tenant, theirs.id, finalize=True)
    make_invoice(app, other_tenant, only_theirs.id, finalize=True)
    for caps in ((50, 1000), (0, 0)):  # through the index, and the broad walk
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(text_search, "CUSTOMER_CAP", caps[0])
            mp.setattr(text_search, "NUMBER_CAP", caps[1])
            assert _rows(web.text("/invoices/?q=name indus")) == [my_invoice.invoice_number]
            assert _rows(web.text("/invoices/?q=tenancy probe")) == []
            assert _rows(web.text("/invoices/?q=Pro")) == []


NAMES = [
    'The "100%_" Shop',
    "Müller & Söhne",
    "MÜLLER AG",
    "ÉCOLE Ångström",
    "back\\slash Co",
    "ACME Corp",
    "acme lowercase",
    "Near (AND) OR NOT* ^x:y",
    "日本語の会社",
    "ab",
]

TEXTS = [
    '"100%_"',
    "100%",
    "%_",
    '"',
    "%%%",
    "___",
    'x"y',
    '" OR "',
    '""""',
    "müller",
    "MÜLLER",
    "Müll",
    "ller & S",
    "söhne",
    "SÖHNE",
    "ångström",
    "ÅNGSTRÖM",
    "ecole",
    "école",
    "ÉCOLE",
    "k\\s",
    "\\",
    "\\\\",
    "acme",
    "ACME",
    "me C",
    "a",
    "A",
    "Ü",
    "ö",
    "ab",
    "AB",
    "NEAR",
    "(AND)",
    "NOT*",
    "^x:y",
    "OR NOT",
    "*",
    "本語",
    "日本語",
    "語の会社",
    "INV",
    "inv-0000",
    "-00000",
    "e",
    " ",
    "shop ",
    "zzz",
]


def _scan(account_id, q: str) -> list[str]:
    """What the list's text search must answer (`web_support.scan_text_matches`)."""
    return sorted(scan_text_matches(account_id, q, Invoice.invoice_number))


def test_the_indexed_search_answers_exactly_what_the_scan_answered(
    app, tenant, other_tenant, monkeypatch
):
    for n, name in enumerate(NAMES):
        for who in (tenant, other_tenant):
            customer = make_customer(app, who, f"c{n}", name=name)
            make_invoice(app, who, customer.id, finalize=n % 2 == 0)
    found_some = 0
    for caps in ((50, 1000), (0, 0)):
        monkeypatch.setattr(text_search, "CUSTOMER_CAP", caps[0])
        monkeypatch.setattr(text_search, "NUMBER_CAP", caps[1])
        for q in TEXTS:
            with app.test_request_context("/"):
                page = queries.search_invoices(
                    tenant.account_id,
                    queries.InvoiceSearch(text=q, limit=queries.MAX_PAGE_SIZE),
                )
                got = sorted(row.invoice_number for row in page.rows)
                expected = _scan(tenant.account_id, q.strip())
                db.session.remove()
            assert got == expected, (caps, q)
            found_some += bool(expected)
    assert found_some > len(TEXTS)  # not an empty comparison
