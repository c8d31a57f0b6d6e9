"""A 500-line invoice on Letter paper paginates cleanly: "Seite N von M" on every page,
the table header repeated on every page with lines, every line exactly once and whole on
one page, in order, and the totals at the end. One render (the slow one of the suite)."""

from __future__ import annotations

import re

import pytest
from pdf_support import make_customer, read_pdf, set_up_entity

from billing_app.money import format_money

LETTER = (612, 792)  # points


def description(i: int) -> str:
    text = f"Pos-{i:03d} Wartung Server-Cluster"
    if i % 7 == 0:
        # Long descriptions wrap over several lines; their row must still stay whole.
        text += ", inklusive Überwachung, Sicherheitsupdates, Datensicherung und Bereitschaft"
    return text


@pytest.mark.slow
def test_500_lines_paginate_cleanly(api, app, tenant):
    set_up_entity(app, tenant.account_id, paper_size="Letter")
    customer_id = make_customer(app, tenant.account_id, "long", document_locale="de")
    items = [
        {
            "description": description(i),
            "quantity": 1 + i % 3,
            "unit_price": 1000 + i,
            "amount": (1 + i % 3) * (1000 + i),
            "tax_rate": "19" if i % 5 else "7",
        }
        for i in range(1, 501)
    ]
    created = api.post(
        "/v1/invoices/one_off",
        {"customer_id": str(customer_id), "currency": "EUR", "line_items": items},
    )
    assert created.status_code == 200, created.get_json()
    inv = api.post(f"/v1/invoices/{created.get_json()['id']}/finalize").get_json()
    pdf = read_pdf(api.get(f"/v1/invoices/{inv['id']}/download_pdf").data)

    total_pages = len(pdf.pages)
    assert total_pages >= 10
    for page in pdf.reader.pages:
        assert (round(float(page.mediabox.width)), round(float(page.mediabox.height))) == LETTER
    seen: list[int] = []
    for number, text in enumerate(pdf.pages, start=1):
        assert f"Seite {number} von {total_pages}" in text, number
        on_page = [int(m) for m in re.findall(r"Pos-(\d{3}) ", text)]
        if on_page:
            assert "BESCHREIBUNG" in text.upper() and "EINZELPREIS" in text.upper(), number
        for i in on_page:
            # The whole row is on this page: its amount too.
            amount = format_money((1 + i % 3) * (1000 + i), "EUR", "de")
            assert amount.replace("\xa0", " ") in text, (number, i)
        seen += on_page
    assert seen == list(range(1, 501))
    last = pdf.pages[-1]
    assert (
        f"Zahlbetrag {format_money(int(inv['total_cents']), 'EUR', 'de')}".replace("\xa0", " ")
        in last
    )
    assert "Umsatzsteuer nach Steuersätzen".upper() in last.upper()
