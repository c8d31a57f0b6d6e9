"""The invoice list's text search, paged: the index-driven statement ("selective": the
matched customers' invoices and the number matches, the first rows of their UNION ALL)
answers the same pages in the same order, with the same cursors, as the list's own index
walk filtered by the text ("broad", the reference: the plain list's statement with a
condition), forwards and back, under every sort, with filters, for texts with quotes,
LIKE characters, backslashes, non-ASCII letters, texts under the trigram minimum and
texts matching many invoices; and it never shows another account's invoice."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import select
from web_support import make_customer, make_invoice, scan_text_matches, signed_in

from billing_app.extensions import db
from billing_app.invoices import queries
from billing_app.invoices import search as text_search
from billing_app.invoices.models import Invoice
from billing_app.web.invoices import routes as invoice_routes

# The last one's invoices match "00001" by name and, some of them, by number too.
NAMES = [
    "ACME Corp",
    "Müller & Söhne",
    'The "100%_" Shop',
    "back\\slash Co",
    "Plain Ltd",
    "Shop 00001 Ltd",
]

TEXTS = [
    "INV-0000",  # every finalized number, in both accounts
    "00001",  # numbers, and a customer's name
    "inv-00001",
    "000",  # every number
    "draft-",
    "acme",
    "MÜLLER",
    "söhne",
    '"100%_"',
    "%_",
    "\\",  # under the trigram minimum
    "k\\s",
    "Co",  # under the trigram minimum: the walk
    "e",
    "zzz",
    "Ltd",
]


def _invoice_ids(app: Any, tenant: Any) -> list[Any]:
    with app.app_context():
        rows = db.session.execute(
            select(Invoice.id).where(Invoice.account_id == tenant.account_id)
        ).scalars()
        ids = set(rows)
        db.session.remove()
    return list(ids)


@pytest.fixture
def invoices_of_two_accounts(app, tenant, other_tenant):
    """18 invoices of the tenant (drafts, open, paid; two totals, so the total sort has
    ties its id breaks), 6 of another account whose customers have the same names and
    whose numbers (INV-000001 ...) are the tenant's too."""
    mine = [make_customer(app, tenant, f"c{n}", name=name) for n, name in enumerate(NAMES)]
    theirs = [make_customer(app, other_tenant, f"c{n}", name=name) for n, name in enumerate(NAMES)]
    for n in range(18):
        make_invoice(
            app,
            tenant,
            mine[n % len(mine)].id,
            [("Service", "1", "10000" if n % 2 else "5000")],
            finalize=n % 3 != 0,
            pay=n % 5 == 1,
        )
    for n in range(6):
        make_invoice(app, other_tenant, theirs[n % 4].id, finalize=n % 2 == 0)
    return _invoice_ids(app, other_tenant)


def _walk(app: Any, account_id: Any, search: queries.InvoiceSearch) -> dict[str, Any]:
    """Every page of a search from the first, then back from the last by the "previous"
    cursors: the pages' ids and cursors, and which statements answered each page."""
    modes: list[list[str]] = []
    build = queries._list_statement

    def recording(*args: Any) -> Any:
        modes[-1].append(args[4])  # the text mode the statement is built for
        return build(*args)

    def page(**cursor: Any) -> Any:
        modes.append([])
        with app.test_request_context("/"):
            queries._list_statement = recording  # type: ignore[assignment]
            try:
                got = queries.search_invoices(account_id, replace(search, **cursor))
            finally:
                queries._list_statement = build  # type: ignore[assignment]
            db.session.remove()
        return [row.id for row in got.rows], got.next_cursor, got.prev_cursor

    forwards = [page()]
    while forwards[-1][1] is not None:
        forwards.append(page(after=forwards[-1][1]))
        assert len(forwards) < 50
    backwards = [forwards[-1]]
    while backwards[-1][2] is not None:
        backwards.append(page(before=backwards[-1][2]))
        assert len(backwards) < 50
    return {"forwards": forwards, "backwards": backwards, "modes": modes}


def _scan(account_id: Any, q: str) -> set[Any]:
    """What the list's text search must answer (`web_support.scan_text_matches`)."""
    return set(scan_text_matches(account_id, q, Invoice.id))


def test_the_search_pages_like_the_walk_in_every_sort_and_direction(
    app, tenant, invoices_of_two_accounts, monkeypatch
):
    foreign = set(invoices_of_two_accounts)
    with app.app_context():
        created = sorted(
            db.session.scalars(
                select(Invoice.created_at).where(Invoice.account_id == tenant.account_id)
            )
        )
        db.session.remove()
    filters: list[dict[str, Any]] = [
        {},
        {"states": ("open",)},
        {"states": ("draft", "paid")},
        {"created_from": created[7] - timedelta(microseconds=1)},
    ]
    answered = {"selective": 0, "broad": 0}
    for q in TEXTS:
        with app.app_context():
            expected = _scan(tenant.account_id, q.strip())
            db.session.remove()
        for sort in ("created", "number", "total"):
            for descending in (True, False):
                for extra in filters:
                    search = queries.InvoiceSearch(
                        text=q, sort=sort, descending=descending, limit=4, **extra
                    )
                    monkeypatch.setattr(text_search, "CUSTOMER_CAP", 50)
                    monkeypatch.setattr(text_search, "NUMBER_CAP", 1000)
                    indexed = _walk(app, tenant.account_id, search)
                    monkeypatch.setattr(text_search, "CUSTOMER_CAP", 0)
                    monkeypatch.setattr(text_search, "NUMBER_CAP", 0)
                    walked = _walk(app, tenant.account_id, search)
                    where = (q, sort, descending, extra)
                    # The same pages, ids in order, and the same cursors, both ways.
                    assert indexed["forwards"] == walked["forwards"], where
                    assert indexed["backwards"] == walked["backwards"], where
                    # Back from the last page: the forward pages in reverse (the last
                    # one's rows again, then each before it).
                    assert [p[0] for p in indexed["backwards"]] == [
                        p[0] for p in reversed(indexed["forwards"])
                    ], where
                    ids = [i for p in indexed["forwards"] for i in p[0]]
                    assert len(ids) == len(set(ids)), where  # no row twice
                    assert not foreign & set(ids), where
                    if not extra:
                        assert set(ids) == expected, where
                    last = indexed["modes"][0][-1]
                    answered[last or "broad"] += 1
                    if len(q) < text_search.MIN_INDEXED:
                        assert indexed["modes"][0] == ["broad"], where
    # Both ways of answering were compared, many times each (not an empty comparison).
    assert answered["selective"] > 200 and answered["broad"] > 50, answered


def test_paging_through_a_search_page_by_page_over_http(
    app, client, tenant, invoices_of_two_accounts, monkeypatch
):
    """The list page's own pager links, followed to the end: the same invoices in the same
    order whether the index-driven statement or the walk answers, and none of the other
    account's (whose numbers contain the text too)."""
    web = signed_in(client, tenant)
    monkeypatch.setattr(invoice_routes, "PAGE_SIZE", 3)

    def follow(q: str, sort: str) -> list[list[str]]:
        pages = []
        path: str | None = f"/invoices/?q={quote(q)}&sort={sort}"
        while path is not None:
            body = web.text(path)
            pages.append(
                re.findall(
                    r'<td class="nowrap"><a href="/invoices/([0-9a-f-]+)">[^<]+</a></td>', body
                )
            )
            following = re.search(r'<a rel="next" href="([^"]+)"', body)
            path = html.unescape(following.group(1)) if following else None
            assert len(pages) < 20
        return pages

    foreign = {str(i) for i in invoices_of_two_accounts}
    for q, sort in (("INV-0000", "-created"), ("inv-0000", "number"), ("shop", "-total")):
        monkeypatch.setattr(text_search, "CUSTOMER_CAP", 50)
        monkeypatch.setattr(text_search, "NUMBER_CAP", 1000)
        indexed = follow(q, sort)
        monkeypatch.setattr(text_search, "CUSTOMER_CAP", 0)
        monkeypatch.setattr(text_search, "NUMBER_CAP", 0)
        walked = follow(q, sort)
        assert indexed == walked, (q, sort)
        shown = [i for p in indexed for i in p]
        assert len(indexed) >= 2 and len(shown) == len(set(shown)), (q, sort)
        assert not foreign & set(shown), (q, sort)
