"""Immutable documents: finalizing only records that a PDF is due; the first render is
stored with its SHA-256 and every download returns those bytes; any later render of the
same invoice gives the same bytes, whatever changed since (customer, issuer, state); the
worker claims due documents once, also with several workers at once."""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.request
from datetime import timedelta

import pytest
from pdf_support import document_row, line, make_customer, make_invoice, read_pdf, set_up_entity
from sqlalchemy import select, text, update

from billing_app.customers import service as customers
from billing_app.db import utcnow
from billing_app.documents import pdf as renderer
from billing_app.documents import service as documents
from billing_app.documents.models import InvoiceDocument
from billing_app.entities import service as entities
from billing_app.extensions import db
from billing_app.invoices import service as invoices


@pytest.fixture
def customer_id(app, tenant):
    set_up_entity(app, tenant.account_id)
    return make_customer(app, tenant.account_id)


@pytest.fixture
def invoice_id(app, tenant, customer_id):
    lines = [line("Consulting", "2", "15000"), line("Books", "3", "1250.5", "7")]
    return make_invoice(app, tenant.account_id, customer_id, lines)


def rerender(app, account_id, iid) -> bytes:
    with app.app_context():
        invoice = invoices.get_invoice(account_id, iid)
        result = documents.render_pdf(documents.load_source(invoice, as_issued=True))
        db.session.remove()
    return result.pdf


def test_finalize_records_a_due_document_and_renders_nothing(app, tenant, customer_id, monkeypatch):
    def no_render(*args, **kwargs):
        raise AssertionError("finalize must not render")

    monkeypatch.setattr(renderer, "html_to_pdf", no_render)
    iid = make_invoice(app, tenant.account_id, customer_id, [line("Service", "1", "1000")])
    row = document_row(app, iid)
    assert row is not None
    assert row["state"] == "due" and row["pdf"] is None and row["sha256"] is None
    snap = row["snapshot"]
    assert snap["issuer"]["name"] == "Nordlicht Software GmbH"
    assert snap["bill_to"]["name"] == "ACME Corporation"
    assert snap["locale"] == "en" and snap["paper_size"] == "A4"
    # Drafts have no document row.
    draft = make_invoice(app, tenant.account_id, customer_id, [line("S", "1", "1")], finalize=False)
    assert document_row(app, draft) is None


def test_first_download_stores_and_every_download_returns_those_bytes(api, app, tenant, invoice_id):
    first = api.post(f"/v1/invoices/{invoice_id}/download_pdf")
    row = document_row(app, invoice_id)
    assert row["state"] == "stored"
    assert row["pdf"] == first.data
    assert row["sha256"] == hashlib.sha256(first.data).hexdigest()
    assert row["size_bytes"] == len(first.data)
    assert row["renderer"] == f"WeasyPrint {renderer.weasyprint_module().__version__}"
    for _ in range(2):
        again = api.get(f"/v1/invoices/{invoice_id}/download_pdf")
        assert again.data == first.data
    # Rendering is deterministic: a fresh render equals the stored document, byte for byte.
    assert rerender(app, tenant.account_id, invoice_id) == first.data


def test_document_as_issued_survives_edits_payment_and_void(api, app, tenant, invoice_id):
    """The stored PDF never changes, and even a render made after the customer, the issuer
    and the invoice's state changed is the same file: it prints the snapshot. Once void,
    a download answers that document marked VOID, asking for nothing (docs/pdf.md)."""
    stored = api.get(f"/v1/invoices/{invoice_id}/download_pdf").data
    with app.app_context():
        cust = db.session.scalars(
            select(invoices.Invoice.customer_id).where(invoices.Invoice.id == invoice_id)
        ).one()
        customers.update_customer(
            tenant.account_id, cust, {"name": "Renamed", "address_line1": "9 Other Road"}
        )
        entity = entities.default_entity(tenant.account_id)
        entities.update_entity(tenant.account_id, entity.code, {"legal_name": "New Name AG"})
        invoices.void_invoice(tenant.account_id, invoice_id)
        db.session.remove()
    row = document_row(app, invoice_id)
    assert row is not None and row["pdf"] == stored
    assert row["sha256"] == hashlib.sha256(stored).hexdigest()
    assert rerender(app, tenant.account_id, invoice_id) == stored
    pdf = read_pdf(stored)
    assert pdf.has("Nordlicht Software GmbH") and not pdf.has("New Name AG")
    assert pdf.has("1 Main Street") and not pdf.has("9 Other Road")
    assert pdf.has("Please pay")  # as issued
    voided = api.get(f"/v1/invoices/{invoice_id}/download_pdf").data
    assert voided == api.get(f"/v1/invoices/{invoice_id}/download_pdf").data
    void_pdf = read_pdf(voided)
    assert void_pdf.has("Nordlicht Software GmbH") and not void_pdf.has("New Name AG")
    assert void_pdf.has("1 Main Street") and not void_pdf.has("9 Other Road")
    assert void_pdf.has("This invoice has been voided") and not void_pdf.has("Please pay")
    assert document_row(app, invoice_id)["pdf"] == stored  # the stored one is untouched


def test_two_renders_in_one_process_are_identical(app, tenant, invoice_id):
    assert rerender(app, tenant.account_id, invoice_id) == rerender(
        app, tenant.account_id, invoice_id
    )


def test_concurrent_first_downloads_store_one_document(live_server, app, tenant, invoice_id):
    """Several first downloads at once: each renders, the first to store wins, and all
    answer the same bytes (the losers return the stored document, not their own)."""
    results: list[bytes] = []
    errors: list[BaseException] = []

    def download() -> None:
        try:
            req = urllib.request.Request(
                f"{live_server}/v1/invoices/{invoice_id}/download_pdf",
                headers=tenant.headers,
                method="POST",
            )
            with urllib.request.urlopen(req, timeout=120) as resp:
                assert resp.status == 200
                results.append(resp.read())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=download) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 3 and len(set(results)) == 1
    assert document_row(app, invoice_id)["pdf"] == results[0]


def test_invoice_issued_before_documents_existed(api, app, tenant, invoice_id):
    """An invoice with no document row (issued before migration 0004 backfilled one, or
    the row was lost) gets one, with a snapshot, on its first download."""
    with app.app_context():
        db.session.execute(
            InvoiceDocument.__table__.delete().where(InvoiceDocument.invoice_id == invoice_id)
        )
        db.session.commit()
        db.session.remove()
    data = api.get(f"/v1/invoices/{invoice_id}/download_pdf").data
    row = document_row(app, invoice_id)
    assert row["state"] == "stored" and row["pdf"] == data and row["snapshot"]


def test_render_documents_worker(app, tenant, customer_id, runner):
    ids = [
        make_invoice(app, tenant.account_id, customer_id, [line(f"Line {i}", "1", "100")])
        for i in range(3)
    ]
    result = runner.invoke(args=["billing", "render-documents", "--batch", "2"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1]) == {
        "rendered": 3,
        "already_stored": 0,
        "failed": 0,
        "given_up": 0,
    }
    for iid in ids:
        row = document_row(app, iid)
        assert row["state"] == "stored"
        assert row["sha256"] == hashlib.sha256(row["pdf"]).hexdigest()
    again = runner.invoke(args=["billing", "render-documents"])
    assert json.loads(again.output)["rendered"] == 0


def test_claims_are_leases_and_never_shared(app, tenant, customer_id):
    ids = {
        make_invoice(app, tenant.account_id, customer_id, [line(f"L{i}", "1", "100")])
        for i in range(3)
    }
    with app.app_context():
        first = documents.claim_due(2, timedelta(minutes=5))
        second = documents.claim_due(2, timedelta(minutes=5))
        third = documents.claim_due(2, timedelta(minutes=5))
        assert len(first) == 2 and len(second) == 1 and third == []
        assert set(first) | set(second) == ids
        # A lease that ran out (a crashed worker) makes the row claimable again.
        db.session.execute(
            update(InvoiceDocument)
            .where(InvoiceDocument.invoice_id == second[0])
            .values(claimed_until=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
        assert documents.claim_due(5, timedelta(minutes=5)) == second
        db.session.remove()


@pytest.mark.postgres_only
def test_claims_skip_rows_another_worker_has_locked(app, tenant, customer_id, is_postgres):
    if not is_postgres:
        pytest.skip("FOR UPDATE SKIP LOCKED is PostgreSQL's")
    ids = [
        make_invoice(app, tenant.account_id, customer_id, [line(f"L{i}", "1", "100")])
        for i in range(2)
    ]
    with app.app_context():
        other = db.engine.connect()
        tx = other.begin()
        # Another worker holds the oldest due row in its claim transaction.
        other.execute(
            text("SELECT 1 FROM invoice_documents WHERE invoice_id = :id FOR UPDATE"),
            {"id": ids[0]},
        )
        claimed = documents.claim_due(5, timedelta(minutes=5))
        assert claimed == [ids[1]]
        tx.rollback()
        other.close()
        db.session.remove()


def test_a_failed_render_is_recorded_and_retried(app, tenant, customer_id, runner, monkeypatch):
    iid = make_invoice(app, tenant.account_id, customer_id, [line("Service", "1", "1000")])

    def broken(*args, **kwargs):
        raise RuntimeError("renderer down")

    monkeypatch.setattr(renderer, "html_to_pdf", broken)
    result = runner.invoke(args=["billing", "render-documents"])
    assert json.loads(result.output)["failed"] == 1
    row = document_row(app, iid)
    assert row["state"] == "due" and row["attempts"] == 1
    assert row["last_error"] == "RuntimeError: renderer down"
    # Not again while the claim's lease runs …
    assert json.loads(runner.invoke(args=["billing", "render-documents"]).output)["failed"] == 0
    monkeypatch.undo()
    # … and again once it ran out.
    with app.app_context():
        db.session.execute(
            update(InvoiceDocument)
            .where(InvoiceDocument.invoice_id == iid)
            .values(claimed_until=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
        db.session.remove()
    result = runner.invoke(args=["billing", "render-documents"])
    assert json.loads(result.output)["rendered"] == 1
    assert document_row(app, iid)["last_error"] is None
