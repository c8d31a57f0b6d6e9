"""Invoice lifecycle: only the transitions of DOMAIN.md, immutability once finalized,
audit records per state change with a verifiable hash chain."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from sqlalchemy import text

from billing_app.audit.service import history, verify_chain
from billing_app.extensions import db
from billing_app.invoices import service as invoices
from billing_app.invoices.guards import ImmutableInvoiceError
from billing_app.invoices.models import Invoice


@pytest.fixture
def customer(api):
    return api.customer()


def _state(api, invoice_id):
    return api.get(f"/v1/invoices/{invoice_id}").get_json()


def test_happy_path_draft_finalized_paid(api, customer):
    inv = api.invoice(customer["id"])
    fin = api.post(f"/v1/invoices/{inv['id']}/finalize")
    assert fin.status_code == 200
    body = fin.get_json()
    assert body["status"] == "finalized"
    assert body["issued_at"] is not None
    # Customer term unset -> the billing entity's 30 days.
    assert body["due_date"][:10] >= body["issued_at"][:10]
    paid = api.post(f"/v1/invoices/{inv['id']}/pay").get_json()
    assert paid["status"] == "paid"
    assert paid["paid_at"] is not None
    assert paid["invoice_number"] == body["invoice_number"]


@pytest.mark.parametrize(
    ("setup", "action", "expected"),
    [
        ([], "pay", 400),  # a draft cannot be paid
        ([], "void", 200),  # a draft can be voided
        (["finalize"], "finalize", 400),
        (["finalize"], "void", 200),
        (["finalize", "pay"], "void", 400),  # never void a paid invoice
        (["finalize", "pay"], "pay", 400),
        (["finalize", "pay"], "finalize", 400),
        (["finalize", "void"], "pay", 400),
        (["finalize", "void"], "finalize", 400),
        (["finalize", "void"], "void", 400),
    ],
)
def test_only_documented_transitions(api, customer, setup, action, expected):
    inv = api.invoice(customer["id"])
    for step in setup:
        assert api.post(f"/v1/invoices/{inv['id']}/{step}").status_code == 200
    before = _state(api, inv["id"])
    resp = api.post(f"/v1/invoices/{inv['id']}/{action}")
    assert resp.status_code == expected, resp.get_json()
    if expected == 400:
        assert isinstance(resp.get_json()["detail"], str)
        assert _state(api, inv["id"]) == before


def test_void_keeps_the_number(api, customer):
    inv = api.invoice(customer["id"])
    number = api.post(f"/v1/invoices/{inv['id']}/finalize").get_json()["invoice_number"]
    voided = api.post(f"/v1/invoices/{inv['id']}/void").get_json()
    assert voided["status"] == "voided"
    assert voided["invoice_number"] == number
    nxt = api.invoice(customer["id"])
    assert api.post(f"/v1/invoices/{nxt['id']}/finalize").get_json()["number"] == 2


def test_finalized_invoice_refuses_every_change(api, customer):
    inv = api.invoice(customer["id"])
    api.post(f"/v1/invoices/{inv['id']}/finalize")
    before = _state(api, inv["id"])
    attempts = [
        api.put(f"/v1/invoices/{inv['id']}", {"due_date": "2030-01-01T00:00:00+00:00"}),
        api.put(f"/v1/invoices/{inv['id']}", {"status": "draft"}),
        api.put(f"/v1/invoices/{inv['id']}", {"issued_at": "2020-01-01T00:00:00+00:00"}),
        api.delete(f"/v1/invoices/{inv['id']}"),
    ]
    assert [r.status_code for r in attempts] == [400, 400, 400, 400]
    assert _state(api, inv["id"]) == before


def test_draft_due_date_can_change_and_put_moves_the_lifecycle(api, customer):
    inv = api.invoice(customer["id"])
    resp = api.put(f"/v1/invoices/{inv['id']}", {"due_date": "2030-01-31T12:00:00+00:00"})
    assert resp.status_code == 200
    assert resp.get_json()["due_date"] == "2030-01-31T12:00:00+00:00"
    fin = api.put(f"/v1/invoices/{inv['id']}", {"status": "finalized"}).get_json()
    assert fin["status"] == "finalized"
    assert fin["due_date"] == "2030-01-31T12:00:00+00:00"  # an explicit due date is kept
    paid = api.put(
        f"/v1/invoices/{inv['id']}", {"status": "paid", "paid_at": "2026-01-02T03:04:05+00:00"}
    ).get_json()
    assert paid["paid_at"] == "2026-01-02T03:04:05+00:00"


def test_service_refuses_direct_edits(app, api, customer, tenant):
    inv = api.invoice(customer["id"])
    api.post(f"/v1/invoices/{inv['id']}/finalize")
    iid = uuid.UUID(inv["id"])
    with app.app_context():
        with pytest.raises(Exception, match="finalized invoice cannot be changed"):
            invoices.replace_lines(
                tenant.account_id, iid, [invoices.LineDraft("Sneaky", Decimal(1), Decimal(1))]
            )
        # Bypassing the services: the flush-time guard refuses too.
        stored = invoices.get_invoice(tenant.account_id, iid)
        stored.total_minor = 1
        with pytest.raises(ImmutableInvoiceError):
            db.session.commit()
        db.session.rollback()
        stored = invoices.get_invoice(tenant.account_id, iid)
        stored.lines[0].amount_minor = 1
        with pytest.raises(ImmutableInvoiceError):
            db.session.commit()
        db.session.rollback()
        stored = invoices.get_invoice(tenant.account_id, iid)
        db.session.delete(stored)
        with pytest.raises(ImmutableInvoiceError):
            db.session.commit()
        db.session.rollback()
        db.session.remove()
    assert _state(api, inv["id"])["total_cents"] == inv["total_cents"]


def test_zero_total_invoice_is_paid_at_finalization(api, customer):
    inv = api.invoice(
        customer["id"], lines=[{"description": "Free", "quantity": 1, "unit_price": 0, "amount": 0}]
    )
    fin = api.post(f"/v1/invoices/{inv['id']}/finalize").get_json()
    assert fin["status"] == "paid"
    assert fin["total_cents"] == "0"


def test_prepaid_wallet_credit_applied_at_finalization(app, api, customer, tenant):
    from billing_app.customers.service import credit_wallet

    with app.app_context():
        credit_wallet(tenant.account_id, uuid.UUID(customer["id"]), "EUR", 10000)
        db.session.remove()
    inv = api.invoice(
        customer["id"],
        lines=[
            {
                "description": "Work",
                "quantity": 1,
                "unit_price": 20000,
                "amount": 20000,
                "tax_rate": "19",
            }
        ],
    )
    assert inv["prepaid_credit_amount_cents"] == "0"
    fin = api.post(f"/v1/invoices/{inv['id']}/finalize").get_json()
    assert fin["tax_amount_cents"] == "3800"  # the VAT is untouched by prepaid credit
    assert fin["prepaid_credit_amount_cents"] == "10000"
    assert fin["total_cents"] == "13800"
    second = api.invoice(customer["id"])
    fin2 = api.post(f"/v1/invoices/{second['id']}/finalize").get_json()
    assert fin2["prepaid_credit_amount_cents"] == "0"  # the wallet is used up


def test_audit_record_per_state_change_and_chain_verifies(app, api, customer, tenant):
    inv = api.invoice(customer["id"])
    api.post(f"/v1/invoices/{inv['id']}/finalize")
    api.post(f"/v1/invoices/{inv['id']}/pay")
    with app.app_context():
        records = history(tenant.account_id, "invoice", inv["id"])
        assert [r.action for r in records] == [
            "invoice.created",
            "invoice.finalized",
            "invoice.paid",
        ]
        assert records[1].before["state"] == "draft"
        assert records[1].after["state"] == "open"
        assert records[2].after["state"] == "paid"
        assert all(r.actor_type == "api_key" for r in records)
        assert all(r.request_id for r in records)
        assert verify_chain(tenant.account_id) is None
        # Tampering with a past record is detected.
        db.session.execute(
            text("UPDATE audit_records SET after = :v WHERE id = :id"),
            {"v": '{"state": "void"}', "id": records[1].id},
        )
        db.session.commit()
        assert verify_chain(tenant.account_id) == records[1].seq
        db.session.remove()


def test_audit_chain_survives_parallel_writers(app, tenant, live_server):
    """Concurrent customer creations append one after the other: the chain stays valid."""
    import http.client
    import json
    from concurrent.futures import ThreadPoolExecutor
    from urllib.parse import urlparse

    url = urlparse(live_server)

    def create(i):
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        conn.request(
            "POST",
            "/v1/customers/",
            body=json.dumps({"external_id": f"p{i}", "name": f"P {i}"}),
            headers={
                "Authorization": f"Bearer {tenant.api_key}",
                "Content-Type": "application/json",
            },
        )
        status = conn.getresponse().status
        conn.close()
        return status

    with ThreadPoolExecutor(10) as pool:
        assert list(pool.map(create, range(20))) == [201] * 20
    with app.app_context():
        assert verify_chain(tenant.account_id) is None
        db.session.remove()


def test_deleted_draft_is_gone(api, customer, app):
    inv = api.invoice(customer["id"])
    assert api.delete(f"/v1/invoices/{inv['id']}").status_code == 204
    assert api.get(f"/v1/invoices/{inv['id']}").status_code == 404
    with app.app_context():
        assert db.session.get(Invoice, uuid.UUID(inv["id"])) is None
        db.session.remove()


def test_audit_hash_is_the_same_whoever_computes_it(app, tenant):
    """The chain hash stored with each record is the one verify_chain computes again from
    what the database gives back, non-ASCII text and JSON included."""
    from billing_app.audit import service as audit_service

    with app.app_context():
        for i in range(3):
            audit_service.record(
                tenant.account_id,
                "test.unicode",
                "thing",
                f"id-{i}",
                before={"name": "Jürgen Straße 東京", "n": i},
                after={"quote": 'a "b" \\ c', "emoji": "€ ✓", "nested": {"x": [1, None]}},
            )
        db.session.commit()
        assert verify_chain(tenant.account_id) is None
        db.session.remove()


def test_a_request_reads_what_its_write_stored(app, tenant, api):
    """A request that read through the ORM session, then created an invoice (its own write
    transaction), must see that invoice when it reads again: on SQLite a read transaction
    left open would otherwise keep its snapshot from before the write."""
    customer = api.customer("snap")
    with app.test_request_context():
        assert db.session.scalars(select_invoices(tenant.account_id)).all() == []
        assert db.session().in_transaction()
        created = invoices.create_one_off_invoice(
            tenant.account_id,
            invoices.OneOffInvoiceRequest(
                customer_id=uuid.UUID(customer["id"]),
                currency="EUR",
                lines=[invoices.LineDraft("Seen", Decimal(1), Decimal(500))],
            ),
        )
        found = db.session.scalars(select_invoices(tenant.account_id)).all()
        assert [inv.id for inv in found] == [created.id]
        db.session.remove()


def select_invoices(account_id):
    from sqlalchemy import select

    return select(Invoice).where(Invoice.account_id == account_id)


def test_a_new_invoice_is_issued_whole_and_a_preview_stores_nothing(app, tenant, customer):
    """`issue` on an invoice not stored yet (as subscription invoicing creates them) inserts
    it once, already open and numbered, with its lines and its PDF due; `build_one_off_invoice`
    (the preview) adds nothing to the session."""
    from sqlalchemy import func, select

    from billing_app.customers.models import Customer
    from billing_app.db import write_transaction
    from billing_app.documents.models import InvoiceDocument
    from billing_app.entities.models import BillingEntity
    from billing_app.invoices.models import InvoiceLine

    req = invoices.OneOffInvoiceRequest(
        customer_id=uuid.UUID(customer["id"]),
        currency="EUR",
        lines=[invoices.LineDraft("Work", Decimal(2), Decimal(1500))],
    )
    with app.app_context():
        preview = invoices.preview_one_off_invoice(tenant.account_id, req)
        assert (preview.state, preview.total_minor, len(preview.lines)) == ("draft", 3000, 1)
        assert preview not in db.session
        assert db.session.scalar(select(func.count()).select_from(Invoice)) == 0

        invoice = invoices.build_one_off_invoice(tenant.account_id, req)
        with write_transaction():
            entity = db.session.get(BillingEntity, invoice.billing_entity_id)
            buyer = db.session.get(Customer, invoice.customer_id)
            invoices.issue(invoice, entity=entity, customer=buyer)
        db.session.remove()
        stored = invoices.get_invoice(tenant.account_id, invoice.id)
        assert (stored.state, stored.number, stored.invoice_number) == ("open", 1, "INV-000001")
        assert stored.handle == "inv-INV-000001"
        assert [line.amount_minor for line in stored.lines] == [3000]
        assert db.session.scalar(select(func.count()).select_from(InvoiceLine)) == 1
        assert db.session.get(InvoiceDocument, invoice.id).state == "due"
        db.session.remove()


def test_preview_prices_with_the_customers_billing_entity_as_the_save_does(app, api, tenant):
    """Issue 14's drift: a customer of a non-default billing entity with its own tax rate,
    entity left to the customer's: the preview must show that entity's VAT (10.00 of
    100.00), as the saved invoice has, not the account default entity's (25.00)."""
    for code, rate, org in (("std", "25", True), ("low", "10", False)):
        body = {"code": code, "name": code, "rate": rate, "applied_to_organization": org}
        assert api.post("/v1/taxes/", body).status_code == 201
    entity = api.post("/v1/billing_entities/", {"code": "nd", "name": "ND", "tax_code": "low"})
    assert entity.status_code == 201, entity.get_json()
    customer = api.customer("nd-customer", billing_entity_code="nd")
    line = {"description": "Work", "quantity": 1, "unit_price": 10000, "amount": 10000}
    saved = api.invoice(customer["id"], [line])
    assert (saved["tax_amount_cents"], saved["total_cents"]) == ("1000", "11000")
    with app.app_context():
        preview = invoices.preview_one_off_invoice(
            tenant.account_id,
            invoices.OneOffInvoiceRequest(
                customer_id=uuid.UUID(customer["id"]),
                currency="EUR",
                lines=[invoices.LineDraft("Work", Decimal(1), Decimal(10000))],
            ),
        )
        assert (preview.vat_minor, preview.total_minor) == (1000, 11000)
        assert str(preview.billing_entity_id) == entity.get_json()["id"]
        db.session.remove()
