# ruff: noqa: RUF001  (dashes and minus signs as printed)
"""The PDF read back (pypdf) shows what the JSON API says about the same invoice: number,
dates, every line, the VAT breakdown and the totals, in several locales and currencies
(EUR, JPY with no minor unit, KWD with three decimals); and the print page is the same
document in HTML."""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from datetime import datetime
from decimal import Decimal

import pytest
from b_setup import Catalog
from babel.dates import format_date
from pdf_support import make_customer, norm, read_pdf, set_up_entity, sign_in

from billing_app.documents.i18n import TEXTS, DocumentLocale
from billing_app.extensions import db
from billing_app.invoices import service as invoices
from billing_app.money import format_money

LINES = [
    # description, quantity, unit price (minor units), amount, tax rate
    ("Consulting: architecture review", "1.5", "95000", 142500, "19"),
    ("Licence fee (annual), 3 seats", "3", "33333.5", 100001, "19"),
    ("Travel costs Berlin – Hamburg", "1", "23450", 23450, "7"),
    ("Goodwill discount", "1", "-5000", -5000, "19"),
]
# Golden strings, written out by hand (not by the formatter under test).
GOLDEN = {
    ("en", "EUR"): ["€1,425.00", "€333.335", "Page 1 of 1", "Amount due"],
    ("de", "EUR"): ["1.425,00 €", "333,335 €", "Seite 1 von 1", "Zahlbetrag", "19 %"],
    ("en", "JPY"): ["¥142,500", "¥33,333.5", "Amount due"],
    ("de", "JPY"): ["142.500 ¥", "Rechnungsnummer", "USt-IdNr. DE123456789"],
    ("fr", "KWD"): ["142,500 KWD", "Page 1 sur 1", "Net à payer", "Facture"],
    ("da", "KWD"): ["142,500 KWD", "Side 1 af 1", "Til betaling", "Faktura"],
}


def _issue(api, app, tenant, locale: str, currency: str) -> tuple[dict, dict]:
    set_up_entity(app, tenant.account_id)
    customer_id = make_customer(
        app, tenant.account_id, f"c-{locale}-{currency}", currency=currency, document_locale=locale
    )
    lines = [
        {"description": d, "quantity": q, "unit_price": u, "amount": a, "tax_rate": t}
        for d, q, u, a, t in LINES
    ]
    created = api.post(
        "/v1/invoices/one_off",
        {"customer_id": str(customer_id), "currency": currency, "line_items": lines},
    )
    assert created.status_code == 200, created.get_json()
    invoice_id = created.get_json()["id"]
    finalized = api.post(f"/v1/invoices/{invoice_id}/finalize")
    assert finalized.status_code == 200, finalized.get_json()
    return finalized.get_json(), {"customer_id": customer_id}


@pytest.mark.parametrize("locale,currency", list(GOLDEN))
def test_pdf_matches_dialect_a_json(api, app, tenant, locale, currency):
    inv, _ = _issue(api, app, tenant, locale, currency)
    resp = api.post(f"/v1/invoices/{inv['id']}/download_pdf")
    assert resp.status_code == 200
    assert resp.mimetype == "application/pdf"
    pdf = read_pdf(resp.data)
    loc = DocumentLocale.for_tag(locale)

    def money(cents: str | int) -> str:
        return format_money(int(cents), currency, locale)

    assert len(pdf.pages) == 1
    assert pdf.has(inv["invoice_number"])
    issued = datetime.fromisoformat(inv["issued_at"]).date()
    due = datetime.fromisoformat(inv["due_date"]).date()
    assert pdf.has(format_date(issued, format="long", locale=locale))
    assert pdf.has(format_date(due, format="long", locale=locale))
    for item in inv["line_items"]:
        assert pdf.has(item["description"])
        assert pdf.has(loc.quantity(Decimal(item["quantity"])))
        assert pdf.has(loc.unit_money(Decimal(item["unit_price"]), currency))
        assert pdf.has(money(item["amount"]))
        assert pdf.has(loc.percent(Decimal(item["tax_rate"])))
    # VAT per rate: the figures of the one totals function, adding up to the JSON's VAT.
    with app.app_context():
        invoice = invoices.get_invoice(tenant.account_id, uuid.UUID(inv["id"]))
        breakdown = invoices.tax_breakdown(invoice)
        db.session.remove()
    assert [r.rate for r in breakdown.by_rate] == [Decimal("0.07"), Decimal("0.19")]
    assert sum(r.vat_minor for r in breakdown.by_rate) == int(inv["tax_amount_cents"])
    for r in breakdown.by_rate:
        row = " ".join(
            [
                loc.percent(r.rate * 100),
                money(r.net_minor),
                money(r.vat_minor),
                money(r.gross_minor),
            ]
        )
        assert norm(row) in pdf.text, row
    for label, cents in [
        ("subtotal", inv["subtotal_cents"]),
        ("vat_amount", inv["tax_amount_cents"]),
        ("total", inv["total_cents"]),
        ("amount_due", inv["total_cents"]),
    ]:
        assert pdf.has(f"{TEXTS[loc.language][label]} {money(cents)}"), label
    for golden in GOLDEN[(locale, currency)]:
        assert pdf.has(golden), golden
    # Issuer, customer and payment terms as printed.
    assert pdf.has("Nordlicht Software GmbH")
    assert pdf.has("ACME Corporation") and pdf.has("US-99-1234567")
    assert pdf.has(loc.text("pay_reference", number=inv["invoice_number"]))
    meta = pdf.reader.metadata
    assert meta is not None
    assert meta.title == f"{loc.text('invoice')} {inv['invoice_number']}"
    assert meta.author == "Nordlicht Software GmbH"
    assert meta.creation_date == datetime.fromisoformat(inv["issued_at"]).replace(microsecond=0)
    assert pdf.reader.attachments == {}


@pytest.fixture
def cat(app, tenant):
    return Catalog(app, tenant.account_id)


def test_subscription_invoice_pdf_matches_dialect_b_json(client, app, tenant, cat):
    """Plan, add-on, additional cost, a discount and a credit; addresses, purchase order,
    cost center and service periods, all as dialect B returns them."""
    set_up_entity(app, tenant.account_id)
    customer = cat.customer("anna", document_locale="de", tax_id="DE999999999")
    plan = cat.plan("pro", amount=10000, vat="0.25")
    sub = cat.subscription(
        customer, plan, "sub-1", cost_center="CC-Marketing", purchase_order_number="PO-4711"
    )
    cat.add_on(sub, "support", 2500)
    cat.cost(sub, "setup", 5000)
    cat.discount(sub, "ten", percentage="10")
    cat.credit(sub, "goodwill", 1500)
    headers = {"Authorization": f"Bearer {tenant.api_key}"}
    body = {
        "handle": "inv-sub-1",
        "plan_manual": True,
        "plan_period_from": "2026-11-01",
        "plan_period_to": "2026-11-30",
        "billing_address": {
            "company": "Anna Schmidt GmbH",
            "attention": "Buchhaltung",
            "address": "Hauptstraße 5",
            "postal_code": "80331",
            "city": "München",
            "country": "DE",
            "vat": "DE111222333",
        },
        "shipping_address": {
            "first_name": "Anna",
            "last_name": "Schmidt",
            "address": "Lagerweg 9",
            "postal_code": "85748",
            "city": "Garching",
            "country": "DE",
        },
    }
    created = client.post("/v1/subscription/sub-1/invoice", json=body, headers=headers)
    assert created.status_code == 200, created.get_json()
    inv = client.get("/v1/invoice/inv-sub-1", headers=headers).get_json()
    assert {ln["origin"] for ln in inv["order_lines"]} >= {
        "plan",
        "add_on",
        "additional_cost",
        "discount",
        "credit",
    }
    resp = client.get("/v1/invoice/inv-sub-1/pdf", headers=headers)
    assert resp.status_code == 200, resp.get_json()
    pdf = read_pdf(resp.data)

    def money(amount: int) -> str:
        return format_money(amount, inv["currency"], "de")

    assert pdf.has(f"Rechnung INV-{inv['number']:06}")
    for ln in inv["order_lines"]:
        assert pdf.has(ln["ordertext"]), ln["ordertext"]
        # Every line of this invoice is priced incl. VAT: its printed amount is B's amount.
        assert ln["amount_defined_incl_vat"]
        assert pdf.has(money(ln["amount"])), (ln["ordertext"], ln["amount"])
    assert pdf.has("Leistungszeitraum 1. November 2026 – 30. November 2026")
    for text in [
        "Bestellnummer PO-4711",
        "Kostenstelle CC-Marketing",
        "Anna Schmidt GmbH",
        "Buchhaltung",
        "80331 München",
        "USt-IdNr. DE111222333",
        "Lieferadresse",
        "Lagerweg 9",
        "85748 Garching",
        "Deutschland",
    ]:
        assert pdf.has(text), text
    assert pdf.has(f"Rabatte −{money(inv['discount_amount'])}")
    assert pdf.has(f"Nettobetrag {money(inv['amount_ex_vat'])}")
    assert pdf.has(f"Umsatzsteuer {money(inv['amount_vat'])}")
    assert pdf.has(f"Gesamtbetrag {money(inv['amount'])}")
    assert pdf.has(f"Zahlbetrag {money(inv['amount'] - inv['prepaid_credit_amount'])}")
    assert pdf.has("25 %")


def test_print_page_is_the_same_document(client, app, tenant, api):
    """The browser's print page renders the same template and figures, plus a toolbar."""
    inv, _ = _issue(api, app, tenant, "de", "EUR")
    sign_in(client, tenant.email, tenant.password)
    page = client.get(f"/invoices/{inv['id']}/print")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f"Rechnung {inv['invoice_number']}" in html
    assert format_money(int(inv["total_cents"]), "EUR", "de") in html
    assert f'href="/invoices/{inv["id"]}/pdf"' in html
    assert "/static/print/invoice.css" in html
    # Its one inline <style> is allowed by hash; nothing else inline, no script at all.
    style = re.search(r"<style>(.*?)</style>", html, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    csp = page.headers["Content-Security-Policy"]
    assert f"style-src 'self' 'sha256-{digest}'" in csp and "script-src 'none'" in csp
    assert "Seite " in style and "size: A4" in style
    pdf = read_pdf(client.get(f"/invoices/{inv['id']}/pdf").data)
    for item in inv["line_items"]:
        assert item["description"] in html and pdf.has(item["description"])


def test_draft_print_page_carries_a_draft_mark(client, app, tenant, api):
    set_up_entity(app, tenant.account_id)
    customer_id = make_customer(app, tenant.account_id, "draft-c", document_locale="fr")
    inv = api.invoice(str(customer_id))
    sign_in(client, tenant.email, tenant.password)
    html = client.get(f"/invoices/{inv['id']}/print").get_data(as_text=True)
    assert 'class="draft-watermark"' in html and "BROUILLON" in html
    assert TEXTS["fr"]["draft_notice"] in html
    assert inv["invoice_number"].startswith("DRAFT-") and inv["invoice_number"] in html
    assert "Download PDF" not in html
