"""Every door to a PDF: dialect A (POST and GET download_pdf), dialect B (GET
/v1/invoice/{ref}/pdf) and the browser (print page, PDF, logo). Each is scoped to the
caller's account: another account's invoice answers exactly like a missing one."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from pdf_support import line, make_customer, make_invoice, read_pdf, set_up_entity, sign_in

from billing_app.documents.service import DRAFT_MESSAGE

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
    b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff"
    b"\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)


@pytest.fixture
def issued(app, tenant):
    """One finalized invoice and one draft of the tenant."""
    set_up_entity(app, tenant.account_id)
    customer_id = make_customer(app, tenant.account_id)

    lines = [line("Consulting", "2", "15000")]
    return {
        "open": make_invoice(app, tenant.account_id, customer_id, lines),
        "draft": make_invoice(app, tenant.account_id, customer_id, lines, finalize=False),
    }


def test_dialect_a_post_and_get_answer_the_same_pdf(api, issued):
    iid = issued["open"]
    post = api.post(f"/v1/invoices/{iid}/download_pdf")
    get = api.get(f"/v1/invoices/{iid}/download_pdf")
    assert post.status_code == get.status_code == 200
    assert post.mimetype == get.mimetype == "application/pdf"
    assert post.data == get.data
    assert post.headers["Content-Disposition"] == 'attachment; filename="INV-000001.pdf"'
    assert post.headers["ETag"] == f'"{hashlib.sha256(post.data).hexdigest()}"'
    assert "private" in post.headers["Cache-Control"]
    assert read_pdf(post.data).has("INV-000001")


def test_dialect_a_refuses_drafts_with_the_documented_message(api, issued):
    for method in (api.post, api.get):
        resp = method(f"/v1/invoices/{issued['draft']}/download_pdf")
        assert resp.status_code == 400
        assert resp.get_json() == {"detail": "Invoice must be finalized or paid to generate PDF"}
    assert DRAFT_MESSAGE == "Invoice must be finalized or paid to generate PDF"


def test_dialect_a_tenancy_unknown_and_unauthenticated(api, other_api, client, issued):
    iid = issued["open"]
    for method in (other_api.post, other_api.get):
        resp = method(f"/v1/invoices/{iid}/download_pdf")
        assert resp.status_code == 404
        assert resp.get_json() == {"detail": "Invoice not found"}
        # The draft too: another account's draft is not "a draft", it is not there.
        resp = method(f"/v1/invoices/{issued['draft']}/download_pdf")
        assert resp.status_code == 404
    for bad in (uuid.uuid4(), "not-a-uuid"):
        assert api.post(f"/v1/invoices/{bad}/download_pdf").status_code == 404
    resp = client.post(f"/v1/invoices/{iid}/download_pdf")
    assert resp.status_code == 401
    assert resp.headers.get("WWW-Authenticate")
    assert client.get(f"/v1/invoices/{iid}/download_pdf").status_code == 401


def test_dialect_b_by_id_and_handle_with_tenancy(client, tenant, other_tenant, issued, api):
    iid = issued["open"]
    inv = api.get(f"/v1/invoices/{iid}").get_json()
    headers = tenant.headers
    by_hex = client.get(f"/v1/invoice/{uuid.UUID(inv['id']).hex}/pdf", headers=headers)
    by_handle = client.get("/v1/invoice/inv-INV-000001/pdf", headers=headers)
    assert by_hex.status_code == by_handle.status_code == 200, by_handle.get_json()
    assert by_hex.mimetype == "application/pdf"
    assert by_hex.data == by_handle.data == api.get(f"/v1/invoices/{iid}/download_pdf").data
    foreign = client.get("/v1/invoice/inv-INV-000001/pdf", headers=other_tenant.headers)
    assert foreign.status_code == 404
    assert (
        foreign.get_json()["code"]
        == client.get("/v1/invoice/no-such-invoice/pdf", headers=headers).get_json()["code"]
    )
    draft = client.get(f"/v1/invoice/{issued['draft'].hex}/pdf", headers=headers)
    assert draft.status_code == 400
    assert draft.get_json()["code"] == 82
    assert client.get("/v1/invoice/inv-INV-000001/pdf").status_code == 401


def test_browser_routes_need_sign_in_and_are_scoped(client, app, tenant, other_tenant, issued):
    iid = issued["open"]
    for path in (f"/invoices/{iid}/print", f"/invoices/{iid}/pdf", f"/invoices/{iid}/print/logo"):
        resp = client.get(path)
        assert resp.status_code == 302
        assert "/signin" in resp.headers["Location"]
    sign_in(client, other_tenant.email, other_tenant.password)
    for path in (f"/invoices/{iid}/print", f"/invoices/{iid}/pdf"):
        assert client.get(path).status_code == 404
    fresh = app.test_client()
    sign_in(fresh, tenant.email, tenant.password)
    page = fresh.get(f"/invoices/{iid}/print")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "Download PDF" in page.get_data(as_text=True)
    pdf = fresh.get(f"/invoices/{iid}/pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    draft = fresh.get(f"/invoices/{issued['draft']}/pdf")
    assert draft.status_code == 400
    assert DRAFT_MESSAGE in draft.get_data(as_text=True)
    assert fresh.get(f"/invoices/{uuid.uuid4()}/print").status_code == 404


def test_logo_on_page_and_in_pdf(client, app, tenant, issued, api):
    from billing_app.entities import service as entities

    sign_in(client, tenant.email, tenant.password)
    # No logo: nothing to fetch, and the page shows none.
    assert client.get(f"/invoices/{issued['open']}/print/logo").status_code == 404
    assert "/print/logo" not in client.get(f"/invoices/{issued['open']}/print").text
    with app.app_context():
        entity = entities.default_entity(tenant.account_id)
        entities.set_logo(tenant.account_id, entity.id, PNG)
    customer_id = make_customer(app, tenant.account_id, "logo-c")

    iid = make_invoice(app, tenant.account_id, customer_id, [line("Logo line", "1", "100")])
    html = client.get(f"/invoices/{iid}/print").get_data(as_text=True)
    digest = hashlib.sha256(PNG).hexdigest()
    assert f"/invoices/{iid}/print/logo?v={digest}" in html
    logo = client.get(f"/invoices/{iid}/print/logo?v={digest}")
    assert logo.status_code == 200 and logo.data == PNG and logo.mimetype == "image/png"
    pdf = read_pdf(api.get(f"/v1/invoices/{iid}/download_pdf").data)
    images = [img for page in pdf.reader.pages for img in page.images]
    assert len(images) == 1


def test_openapi_documents_the_pdf_routes(client):
    spec = client.get("/openapi.json").get_json()
    for path, methods in [
        ("/v1/invoices/{invoice_id}/download_pdf", ("post", "get")),
        ("/v1/invoice/{ref}/pdf", ("get",)),
    ]:
        for method in methods:
            op = spec["paths"][path][method]
            assert "application/pdf" in op["responses"]["200"]["content"]
            assert "404" in op["responses"] and "400" in op["responses"]


def test_invoice_page_links_to_print_view_and_pdf(client, tenant, issued):
    sign_in(client, tenant.email, tenant.password)
    page = client.get(f"/invoices/{issued['open']}").text
    assert f'href="/invoices/{issued["open"]}/print"' in page
    assert f'href="/invoices/{issued["open"]}/pdf"' in page
    draft = client.get(f"/invoices/{issued['draft']}").text
    assert f'href="/invoices/{issued["draft"]}/print"' in draft
    assert "/pdf" not in draft
