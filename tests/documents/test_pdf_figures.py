"""Issue 14's figure bugs on documents, each through every door that shows the figure:
the API JSON (both dialects), the PDF's text and the browser's print page.

1. The subtotal of an invoice priced incl. VAT with a credit (docs/money.md, "Subtotal").
2. A settled invoice says it is paid, how and when, and nothing is due - not "Please
   pay" (invoices/settlement.py; docs/pdf.md, "Paid and void").
3. A draft voided before it was issued has no PDF, and its print page asks for nothing.
"""

from __future__ import annotations

import re
import uuid
from datetime import date
from html import unescape

import pytest
from b_setup import Catalog
from pdf_support import make_customer, norm, read_pdf, set_up_entity, sign_in

from billing_app.documents import service as documents
from billing_app.documents.i18n import DocumentLocale
from billing_app.extensions import db

EN = DocumentLocale.for_tag("en")


@pytest.fixture
def cat(app, tenant):
    set_up_entity(app, tenant.account_id)
    return Catalog(app, tenant.account_id)


@pytest.fixture
def signed_in(client, tenant):
    sign_in(client, tenant.email, tenant.password)
    return client


def b_headers(tenant):
    return {"Authorization": f"Bearer {tenant.api_key}"}


def b_invoice(client, tenant, body, sub="sub-1"):
    resp = client.post(f"/v1/subscription/{sub}/invoice", json=body, headers=b_headers(tenant))
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def print_page(client, invoice_id) -> str:
    resp = client.get(f"/invoices/{uuid.UUID(invoice_id)}/print")
    assert resp.status_code == 200
    return resp.get_data(as_text=True)


def page_has(html: str, text: str) -> bool:
    """Whether the print page shows `text`, read as the PDF's text is (tags dropped,
    entities decoded, any run of spaces one space, ignoring case)."""
    shown = norm(unescape(re.sub(r"<[^>]+>", " ", html)))
    return norm(text).casefold() in shown.casefold()


def money(minor: int, currency: str = "EUR") -> str:
    return EN.money(minor, currency)


# ---------------------------------------------------------------- 1. the subtotal


@pytest.fixture
def dkk_credit_invoice(client, tenant, cat):
    """Issue 14's invoice: DKK 947.00 incl. 25 % VAT and a 100.00 credit (incl. VAT)."""
    customer = cat.customer("jens", document_locale="en")
    plan = cat.plan("dk", amount=10000, vat="0.25", currency="DKK")
    sub = cat.subscription(customer, plan, "sub-1")
    cat.credit(sub, "goodwill", 10000)
    return b_invoice(
        client,
        tenant,
        {
            "handle": "dk-1",
            "order_lines": [
                {"ordertext": "Consulting", "amount": 94700, "vat": 0.25, "amount_incl_vat": True}
            ],
        },
    )


def test_subtotal_with_gross_lines_and_a_credit_in_the_api(dkk_credit_invoice, api):
    inv = dkk_credit_invoice
    assert inv["currency"] == "DKK"
    # Dialect B shows no subtotal: its figures are the document's net, VAT and gross.
    assert (inv["amount"], inv["amount_vat"], inv["amount_ex_vat"]) == (84700, 16940, 67760)
    credit = [ln for ln in inv["order_lines"] if ln["origin"] == "credit"]
    assert [ln["amount"] for ln in credit] == [-10000]  # the line as entered, incl. VAT
    a = api.get(f"/v1/invoices/{uuid.UUID(inv['id'])}").get_json()
    # Net before the credit, not 77760 (677.60 net + 100.00 gross).
    assert a["subtotal_cents"] == "75760"
    assert a["coupons_amount_cents"] == "8000"  # the credit's net
    assert int(a["subtotal_cents"]) - int(a["coupons_amount_cents"]) == inv["amount_ex_vat"]
    assert (a["tax_amount_cents"], a["total_cents"]) == ("16940", "84700")


def test_subtotal_with_gross_lines_and_a_credit_on_pdf_and_print_page(
    dkk_credit_invoice, client, tenant, signed_in
):
    inv = dkk_credit_invoice
    pdf = read_pdf(client.get("/v1/invoice/dk-1/pdf", headers=b_headers(tenant)).data)
    html = print_page(signed_in, inv["id"])
    for shown in (pdf.has, lambda text: page_has(html, text)):
        assert shown(f"Subtotal {money(75760, 'DKK')}")
        assert shown(f"Credits {EN.negative_money(8000, 'DKK')}")
        assert shown(f"Net amount {money(67760, 'DKK')}")
        assert shown(f"Total {money(84700, 'DKK')}")
        assert not shown(money(77760, "DKK"))


# ---------------------------------------------------------------- 2. settled invoices


@pytest.fixture
def world(cat):
    customer = cat.customer("anna", document_locale="en")
    card = cat.card(customer)
    plan = cat.plan("basic", amount=10000, vat="0.25")
    sub = cat.subscription(customer, plan, "sub-1", card=card)
    return {"customer": customer, "card": card, "sub": sub}


def assert_paid_document(text_of, how: str, amount: int):
    """The document of a paid invoice, whatever the door: PAID, how and when, the amount
    paid taken off, nothing due, no payment request."""
    assert text_of("PAID")
    assert text_of(how)
    assert text_of(f"Paid {EN.negative_money(amount, 'EUR')}")
    assert text_of(f"Amount due {money(0)}")
    assert not text_of("Please pay")
    assert not text_of(f"Amount due {money(amount)}")


def test_instant_settle_by_card(app, client, tenant, world, api, signed_in):
    """The issue's case: settled by card when it was created."""
    inv = b_invoice(
        client,
        tenant,
        {"handle": "i1", "instant": True, "order_lines": [{"ordertext": "Item", "amount": 2500}]},
    )
    assert inv["state"] == "settled" and inv["settled_amount"] == 2500
    # The worker stores the document as issued, whenever it runs: downloads of the paid
    # invoice answer it with its payment all the same.
    with app.app_context():
        documents.render_due()
        db.session.remove()
    a = api.get(f"/v1/invoices/{uuid.UUID(inv['id'])}").get_json()
    assert a["status"] == "paid"
    how = f"Paid by card on {EN.long_date(date.fromisoformat(inv['settled'][:10]))}"
    b_pdf = client.get("/v1/invoice/i1/pdf", headers=b_headers(tenant)).data
    a_pdf = api.get(f"/v1/invoices/{uuid.UUID(inv['id'])}/download_pdf").data
    web_pdf = signed_in.get(f"/invoices/{uuid.UUID(inv['id'])}/pdf").data
    assert a_pdf == b_pdf == web_pdf
    assert_paid_document(read_pdf(b_pdf).has, how, 2500)
    html = print_page(signed_in, inv["id"])
    assert_paid_document(lambda text: page_has(html, text), how, 2500)
    # The invoice page says the same: paid, how and when, nothing due.
    page = signed_in.get(f"/invoices/{uuid.UUID(inv['id'])}").get_data(as_text=True)
    assert page_has(page, f"Paid by card on {inv['settled'][:10]}. Nothing is due.")
    assert page_has(page, f"Paid \u2212{money(2500)}")
    assert page_has(page, f"Amount due {money(0)}")
    assert not page_has(page, f"Amount due {money(2500)}")


def test_settled_later_by_card(client, tenant, world, signed_in):
    inv = b_invoice(
        client, tenant, {"handle": "s1", "order_lines": [{"ordertext": "Item", "amount": 4000}]}
    )
    unpaid = read_pdf(client.get("/v1/invoice/s1/pdf", headers=b_headers(tenant)).data)
    assert unpaid.has("Please pay") and unpaid.has(f"Amount due {money(4000)}")
    settled = client.post(
        "/v1/invoice/s1/settle", json={"payment_method": world["card"]}, headers=b_headers(tenant)
    ).get_json()
    assert settled["state"] == "settled"
    how = f"Paid by card on {EN.long_date(date.fromisoformat(settled['settled'][:10]))}"
    pdf = read_pdf(client.get("/v1/invoice/s1/pdf", headers=b_headers(tenant)).data)
    assert_paid_document(pdf.has, how, 4000)
    html = print_page(signed_in, inv["id"])
    assert_paid_document(lambda text: page_has(html, text), how, 4000)


def test_manual_transfer_says_how_and_when_the_customer_paid(client, tenant, world, signed_in):
    inv = b_invoice(
        client,
        tenant,
        {
            "handle": "mt",
            "order_lines": [{"ordertext": "Item", "amount": 4200}],
            "manual_transfer": {"method": "bank_transfer", "payment_date": "2026-11-20"},
        },
    )
    assert inv["state"] == "settled"
    how = "Paid by bank transfer on November 20, 2026"
    pdf = read_pdf(client.get("/v1/invoice/mt/pdf", headers=b_headers(tenant)).data)
    assert_paid_document(pdf.has, how, 4200)
    html = print_page(signed_in, inv["id"])
    assert_paid_document(lambda text: page_has(html, text), how, 4200)


def test_marked_paid_in_dialect_a(app, tenant, api, signed_in):
    customer_id = make_customer(app, tenant.account_id, "mp")
    inv = api.invoice(str(customer_id))
    api.post(f"/v1/invoices/{inv['id']}/finalize")
    before = read_pdf(api.get(f"/v1/invoices/{inv['id']}/download_pdf").data)
    assert before.has("Please pay")
    paid = api.post(f"/v1/invoices/{inv['id']}/pay").get_json()
    assert paid["status"] == "paid"
    total = int(paid["total_cents"])
    how = f"Marked as paid on {EN.long_date(date.fromisoformat(paid['paid_at'][:10]))}"
    pdf = read_pdf(api.get(f"/v1/invoices/{inv['id']}/download_pdf").data)
    assert_paid_document(pdf.has, how, total)
    html = print_page(signed_in, inv["id"])
    assert_paid_document(lambda text: page_has(html, text), how, total)
    # The stored document is the invoice as issued, unchanged.
    assert documents_row_pdf(app, inv["id"]) == before.data


def documents_row_pdf(app, invoice_id) -> bytes | None:
    from pdf_support import document_row

    row = document_row(app, uuid.UUID(invoice_id))
    return None if row is None else row["pdf"]


# ---------------------------------------------------------------- 3. void before issue


@pytest.fixture
def voided_draft(app, tenant, api):
    set_up_entity(app, tenant.account_id)
    customer_id = make_customer(app, tenant.account_id, "vd")
    inv = api.invoice(str(customer_id))
    voided = api.post(f"/v1/invoices/{inv['id']}/void").get_json()
    assert voided["status"] == "voided" and voided["invoice_number"].startswith("DRAFT-")
    return voided


def test_void_draft_has_no_pdf_in_either_dialect(voided_draft, api, client, tenant):
    for resp in (
        api.post(f"/v1/invoices/{voided_draft['id']}/download_pdf"),
        api.get(f"/v1/invoices/{voided_draft['id']}/download_pdf"),
    ):
        assert resp.status_code == 400
        assert resp.get_json() == {"detail": documents.DRAFT_MESSAGE}
    b = client.get(
        f"/v1/invoice/{uuid.UUID(voided_draft['id']).hex}/pdf", headers=b_headers(tenant)
    )
    assert b.status_code == 400 and b.get_json()["code"] == 82


def test_void_draft_in_the_browser(voided_draft, signed_in):
    invoice_id = uuid.UUID(voided_draft["id"])
    assert signed_in.get(f"/invoices/{invoice_id}/pdf").status_code == 400
    html = print_page(signed_in, voided_draft["id"])
    assert page_has(html, "VOID \u2013 not an invoice")
    assert page_has(html, "this is not an invoice, it has no number and nothing is due")
    assert voided_draft["invoice_number"] not in html
    assert "Please pay" not in html and "Please quote" not in html
    assert page_has(html, f"Amount due {money(0)}")
    assert "Download PDF" not in html
    assert 'class="draft-watermark"' in html
    # Its invoice page offers no PDF either.
    page = signed_in.get(f"/invoices/{invoice_id}").get_data(as_text=True)
    assert "Download PDF" not in page
    assert page_has(page, f"Amount due {money(0)}")


def test_export_skips_a_void_draft(voided_draft, runner, tmp_path):
    import json

    result = runner.invoke(args=["billing", "export-pdfs", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["written"] == 0
    assert report["skipped"] == {
        "voided before it was issued: never an invoice, so there is no document": 1
    }
