"""The number series: continuous, no duplicates, no gaps, under parallel finalizes over
separate connections, on SQLite and PostgreSQL."""

from __future__ import annotations

import http.client
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import urlparse

import pytest
from conftest import fail_audit_record
from sqlalchemy import select

from billing_app.audit import service as audit_service
from billing_app.entities.models import BillingEntity
from billing_app.extensions import db
from billing_app.invoices import service as invoices
from billing_app.invoices.models import Invoice


def _make_drafts(app, tenant, count: int) -> list[str]:
    from billing_app.customers.service import create_customer

    with app.app_context():
        customer = create_customer(tenant.account_id, {"external_id": "par", "name": "Parallel"})
        ids = []
        for i in range(count):
            inv = invoices.create_one_off_invoice(
                tenant.account_id,
                invoices.OneOffInvoiceRequest(
                    customer_id=customer.id,
                    currency="EUR",
                    lines=[invoices.LineDraft(f"Item {i}", Decimal(1), Decimal(100 + i))],
                ),
            )
            ids.append(str(inv.id))
        db.session.remove()
    return ids


def _finalize_over_http(base: str, key: str, invoice_id: str) -> tuple[int, dict]:
    url = urlparse(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
    try:
        conn.request(
            "POST",
            f"/v1/invoices/{invoice_id}/finalize",
            headers={"Authorization": f"Bearer {key}", "Content-Length": "0"},
        )
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


def _parallel_finalize(app, tenant, live_server, count: int) -> None:
    ids = _make_drafts(app, tenant, count)
    with ThreadPoolExecutor(max_workers=count) as pool:
        results = list(pool.map(lambda i: _finalize_over_http(live_server, tenant.api_key, i), ids))
    statuses = [status for status, _ in results]
    assert statuses == [200] * count, [r for r in results if r[0] != 200][:3]
    numbers = sorted(body["number"] for _, body in results)
    assert numbers == list(range(1, count + 1))
    printed = {body["invoice_number"] for _, body in results}
    assert printed == {f"INV-{n:06d}" for n in range(1, count + 1)}
    # The issue time is taken after the number: in number order, issue times never fall.
    in_order = sorted((body for _, body in results), key=_number)
    issued = [datetime.fromisoformat(body["issued_at"]) for body in in_order]
    assert issued == sorted(issued), "a higher number was issued earlier"
    with app.app_context():
        entity = db.session.scalars(
            select(BillingEntity).where(BillingEntity.account_id == tenant.account_id)
        ).one()
        assert entity.next_invoice_number == count + 1
        db.session.remove()


def _number(body: dict) -> int:
    return int(body["number"])


@pytest.mark.slow
def test_parallel_finalizes_give_exactly_1_to_n(app, tenant, live_server, is_postgres):
    """100 parallel finalizes on PostgreSQL, 20 on SQLite (without 'database is locked')."""
    _parallel_finalize(app, tenant, live_server, 100 if is_postgres else 20)


@pytest.mark.slow
def test_parallel_finalizes_of_one_draft_issue_it_once(app, tenant, live_server):
    """Ten clients finalize the same draft at once: one gets it, numbered 1; the others
    get 400 and take no number (the next draft is numbered 2)."""
    first, later = _make_drafts(app, tenant, 2)
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(
            pool.map(lambda _: _finalize_over_http(live_server, tenant.api_key, first), range(10))
        )
    assert sorted(status for status, _ in results) == [200] + [400] * 9, results
    [issued] = [body for status, body in results if status == 200]
    assert issued["number"] == 1
    status, body = _finalize_over_http(live_server, tenant.api_key, later)
    assert (status, body["number"]) == (200, 2)
    with app.app_context():
        assert audit_service.verify_chain(tenant.account_id) is None
        db.session.remove()


def test_drafts_take_no_number(api):
    customer = api.customer()
    drafts = [api.invoice(customer["id"]) for _ in range(3)]
    assert all(d["invoice_number"].startswith("DRAFT-") for d in drafts)
    assert all(d["number"] is None for d in drafts)
    # Deleting a draft returns nothing to the series because it never took anything.
    assert api.delete(f"/v1/invoices/{drafts[0]['id']}").status_code == 204
    done = api.post(f"/v1/invoices/{drafts[2]['id']}/finalize").get_json()
    assert done["invoice_number"] == "INV-000001"


def test_a_finalize_that_fails_after_taking_its_number_leaves_no_gap(api, app, tenant, monkeypatch):
    """The finalize fails at its last write (the audit record), after it took the number,
    updated the invoice and noted its PDF: the whole transaction rolls back, so nothing
    stays (no number taken, no audit record, no PDF due) and the series has no gap."""
    from sqlalchemy import func

    from billing_app.documents.models import InvoiceDocument

    customer = api.customer()
    first = api.invoice(customer["id"])
    second = api.invoice(customer["id"])
    with app.app_context():
        records_before = db.session.scalar(
            select(func.count()).select_from(audit_service.AuditRecord)
        )
        db.session.remove()

    with monkeypatch.context() as patch:
        fail_audit_record(patch, "invoice.finalized", "injected failure after the number was taken")
        failed = api.post(f"/v1/invoices/{first['id']}/finalize")
        assert failed.status_code == 500
        assert failed.get_json() == {"detail": "Internal server error"}

    assert api.get(f"/v1/invoices/{first['id']}").get_json()["status"] == "draft"
    with app.app_context():
        stored = db.session.get(Invoice, uuid.UUID(first["id"]))
        assert (stored.state, stored.number, stored.handle) == ("draft", None, None)
        records = db.session.scalar(select(func.count()).select_from(audit_service.AuditRecord))
        assert records == records_before
        assert db.session.scalar(select(func.count()).select_from(InvoiceDocument)) == 0
        assert audit_service.verify_chain(tenant.account_id) is None
        db.session.remove()
    again = api.post(f"/v1/invoices/{second['id']}/finalize").get_json()
    assert again["number"] == 1
    assert api.post(f"/v1/invoices/{first['id']}/finalize").get_json()["number"] == 2


def test_series_are_per_billing_entity_and_follow_the_pattern(api):
    customer = api.customer()
    resp = api.post(
        "/v1/billing_entities/",
        {
            "code": "uk",
            "name": "Example UK Ltd",
            "invoice_prefix": "UK",
            "number_pattern": "{prefix}/{YYYY}/{number:04}",
            "currency": "GBP",
        },
    )
    assert resp.status_code == 201, resp.get_json()
    uk_id = resp.get_json()["id"]
    a = api.invoice(customer["id"])
    b = api.invoice(customer["id"], billing_entity_id=uk_id)
    fa = api.post(f"/v1/invoices/{a['id']}/finalize").get_json()
    fb = api.post(f"/v1/invoices/{b['id']}/finalize").get_json()
    assert fa["invoice_number"] == "INV-000001"
    year = fb["issued_at"][:4]
    assert fb["invoice_number"] == f"UK/{year}/0001"


def test_unique_constraint_stands_behind_the_counter(app, tenant):
    """Even code that bypasses the counter cannot store a duplicate number."""
    from sqlalchemy.exc import IntegrityError

    ids = _make_drafts(app, tenant, 2)
    with app.app_context():
        invoices.finalize_invoice(tenant.account_id, uuid.UUID(ids[0]))
        entity_id = db.session.get(Invoice, uuid.UUID(ids[0])).billing_entity_id
        db.session.remove()
        dup = db.session.get(Invoice, uuid.UUID(ids[1]))
        dup.number = 1  # a draft may still change; the database refuses the duplicate
        assert dup.billing_entity_id == entity_id
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()
        db.session.remove()


def test_refused_finalizes_take_no_number(api, other_api):
    """A finalize that is refused at the read (already finalized, unknown, another
    account's draft) takes no number."""
    customer = api.customer()
    first, second = api.invoice(customer["id"]), api.invoice(customer["id"])
    theirs = other_api.invoice(other_api.customer()["id"])
    assert api.post(f"/v1/invoices/{first['id']}/finalize").get_json()["number"] == 1
    assert api.post(f"/v1/invoices/{first['id']}/finalize").status_code == 400
    assert api.post(f"/v1/invoices/{uuid.uuid4()}/finalize").status_code == 404
    assert api.post(f"/v1/invoices/{theirs['id']}/finalize").status_code == 404
    assert api.post(f"/v1/invoices/{second['id']}/finalize").get_json()["number"] == 2
    assert other_api.post(f"/v1/invoices/{theirs['id']}/finalize").get_json()["number"] == 1


@pytest.mark.parametrize(
    ("pattern", "prefix", "number", "printed", "handle"),
    [
        ("{prefix}-{number:06}", None, 42, "INV-000042", "inv-INV-000042"),
        ("{prefix}/{YYYY}/{MM}/{number:04}", "UK", 7, "UK/2026/03/0007", "inv-UK-2026-03-0007"),
        ("{prefix} #{number:5}", 'Q"\\', 12, 'Q"\\ #   12', "inv-Q-------12"),
        ("{number}-{prefix}-{number:3}", "Ünï", 1234, "1234-Ünï-1234", "inv-1234--n--1234"),
    ],
)
def test_printed_numbers_and_handles(pattern, prefix, number, printed, handle):
    from billing_app.entities.models import BillingEntity
    from billing_app.invoices.numbering import (
        format_number,
        handle_candidates,
        validate_number_pattern,
    )

    entity = BillingEntity(number_pattern=validate_number_pattern(pattern), invoice_prefix=prefix)
    assert format_number(entity, number, datetime(2026, 3, 7, 12, 0)) == printed
    invoice_id = uuid.uuid4()
    assert handle_candidates(printed, invoice_id) == (handle, f"{handle}-{invoice_id.hex[-8:]}")


@pytest.mark.parametrize(
    "pattern", ["{prefix}", "{number}{day}", "{number:x}", "x" * 101 + "{number}"]
)
def test_patterns_other_than_the_tokens_are_refused(pattern):
    from billing_app.errors import InvalidInput
    from billing_app.invoices.numbering import validate_number_pattern

    with pytest.raises(InvalidInput):
        validate_number_pattern(pattern)


@pytest.mark.parametrize(
    ("prefix", "pattern", "timezone", "term", "price"),
    [
        (None, None, "UTC", 30, 100),
        ('Q"\\', "{prefix} {YYYY}-{MM} #{number:5}", "Pacific/Kiritimati", 0, 250),
        ("Ünï", "{prefix}/{MM}/{number}", "America/Adak", 14, 0),
    ],
)
def test_finalize_writes_number_handle_dates_pdf_snapshot_and_audit_record(
    app, api, prefix, pattern, timezone, term, price
):
    """What a finalize stores: the printed number in the entity's time zone, the handle,
    due and paid dates, the PDF's snapshot and the audit record."""
    from zoneinfo import ZoneInfo

    from billing_app.audit.service import history, verify_chain
    from billing_app.customers.models import Customer
    from billing_app.documents.models import InvoiceDocument
    from billing_app.documents.snapshot import take_snapshot
    from billing_app.invoices.numbering import format_number, handle_candidates

    body = {"code": "e", "name": "E", "timezone": timezone, "net_payment_term": term}
    if prefix is not None:
        body["invoice_prefix"] = prefix
    if pattern is not None:
        body["number_pattern"] = pattern
    entity_id = api.post("/v1/billing_entities/", body).get_json()["id"]
    customer = api.customer()
    answers = []
    for _ in range(2):
        line = {"description": "Work", "quantity": 1, "unit_price": price, "amount": price}
        draft = api.invoice(customer["id"], [line], billing_entity_id=entity_id)
        done = api.post(f"/v1/invoices/{draft['id']}/finalize")
        assert done.status_code == 200, done.get_json()
        answers.append(done.get_json())
    with app.app_context():
        entity = db.session.get(BillingEntity, uuid.UUID(entity_id))
        for number, answer in enumerate(answers, start=1):
            invoice = db.session.get(Invoice, uuid.UUID(answer["id"]))
            assert invoice.number == number
            local = invoice.issued_at.astimezone(ZoneInfo(timezone))
            assert invoice.invoice_number == format_number(entity, number, local)
            assert answer["invoice_number"] == invoice.invoice_number
            assert invoice.handle == handle_candidates(invoice.invoice_number, invoice.id)[0]
            assert invoice.due_at == invoice.issued_at + timedelta(days=term)
            assert invoice.updated_at == invoice.issued_at
            assert invoice.state == ("paid" if price == 0 else "open")
            assert invoice.paid_at == (invoice.issued_at if price == 0 else None)
            document = db.session.get(InvoiceDocument, invoice.id)
            assert document.state == "due" and document.created_at == invoice.issued_at
            customer_row = db.session.get(Customer, invoice.customer_id)
            assert document.snapshot == take_snapshot(invoice, entity, customer_row)
            [_created, finalized] = history(api.tenant.account_id, "invoice", invoice.id)
            assert finalized.action == "invoice.finalized"
            assert finalized.before["state"] == "draft" and finalized.before["number"] is None
            assert finalized.after == {
                "state": invoice.state,
                "number": number,
                "invoice_number": invoice.invoice_number,
                "total_minor": invoice.total_minor,
                "vat_minor": invoice.vat_minor,
                "currency": invoice.currency,
            }
        assert answers[0]["issued_at"] < answers[1]["issued_at"]
        assert verify_chain(api.tenant.account_id) is None


def test_issuers_printing_the_same_number_get_distinct_handles(api, app):
    """Three billing entities of one account with the same prefix all print INV-000001,
    their invoices made within the same second: the second and third invoices' handles
    take the random end of the invoice's id as a suffix. (The id's start
    is its creation time, the same for all three.)"""
    customer = api.customer()
    entities = [None] + [
        api.post("/v1/billing_entities/", {"code": code, "name": code}).get_json()["id"]
        for code in ("twin", "triplet")
    ]
    drafts = [
        api.invoice(customer["id"], **({"billing_entity_id": e} if e else {})) for e in entities
    ]
    for draft in drafts:
        done = api.post(f"/v1/invoices/{draft['id']}/finalize")
        assert done.status_code == 200, done.get_json()
        assert done.get_json()["invoice_number"] == "INV-000001"
    ids = [uuid.UUID(draft["id"]) for draft in drafts]
    with app.app_context():
        handles = [db.session.get(Invoice, i).handle for i in ids]
        db.session.remove()
    assert handles == ["inv-INV-000001"] + [f"inv-INV-000001-{i.hex[-8:]}" for i in ids[1:]]


@pytest.mark.slow
def test_parallel_issuers_printing_the_same_number_get_distinct_handles(app, tenant, live_server):
    """Four billing entities of one account print INV-000001 at the same moment: every
    finalize succeeds and the handles differ (the account row orders the handle choice)."""
    from billing_app.customers.service import create_customer
    from billing_app.entities.service import create_entity

    with app.app_context():
        customer = create_customer(tenant.account_id, {"external_id": "tw", "name": "Twins"})
        entity_ids = [
            create_entity(tenant.account_id, {"code": f"e{i}", "name": f"E{i}"}).id
            for i in range(4)
        ]
        ids = [
            str(
                invoices.create_one_off_invoice(
                    tenant.account_id,
                    invoices.OneOffInvoiceRequest(
                        customer_id=customer.id,
                        currency="EUR",
                        lines=[invoices.LineDraft("Item", Decimal(1), Decimal(100))],
                        billing_entity_id=entity_id,
                    ),
                ).id
            )
            for entity_id in entity_ids
        ]
        db.session.remove()
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda i: _finalize_over_http(live_server, tenant.api_key, i), ids))
    assert [status for status, _ in results] == [200] * 4, results
    assert {body["invoice_number"] for _, body in results} == {"INV-000001"}
    with app.app_context():
        handles = {db.session.get(Invoice, uuid.UUID(i)).handle for i in ids}
        db.session.remove()
    assert len(handles) == 4 and "inv-INV-000001" in handles
