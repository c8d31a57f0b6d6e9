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


@pytest.mark.parametrize("where", ["transaction", "statement"])
def test_a_finalize_that_fails_after_taking_its_number_leaves_no_gap(
    api, monkeypatch, is_postgres, where
):
    """`transaction`: the write of several statements (SQLite; PostgreSQL when the entity's
    numbers are formatted in Python) fails after the number's statement. `statement`:
    PostgreSQL's one-statement finalize fails in the audit record's INSERT, after the
    parts of the statement that took the number and updated the invoice."""
    if where == "statement" and not is_postgres:
        pytest.skip("the one-statement finalize is PostgreSQL's")
    customer = api.customer()
    first = api.invoice(customer["id"])
    second = api.invoice(customer["id"])

    with monkeypatch.context() as patch:
        if where == "transaction":
            fail_audit_record(
                patch, "invoice.finalized", "injected failure after the number was taken"
            )
            patch.setattr(invoices, "number_template", lambda pattern, prefix: None)
        else:
            real_template = audit_service.template

            def too_long_action(*args, **kwargs):
                made = real_template(*args, **kwargs)
                # audit_records.action is 64 characters at most: the INSERT fails.
                made.params["r_action"] = "x" * 65
                return made

            patch.setattr(audit_service, "template", too_long_action)
        failed = api.post(f"/v1/invoices/{first['id']}/finalize")
        assert failed.status_code == 500
        assert failed.get_json() == {"detail": "Internal server error"}

    assert api.get(f"/v1/invoices/{first['id']}").get_json()["status"] == "draft"
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


def test_a_draft_changed_between_read_and_write_is_refused_and_leaves_nothing(
    api, app, tenant, monkeypatch
):
    """Finalize reads the draft, then writes only if it is still that draft. The invoice's
    UPDATE goes with the audit record (on PostgreSQL in one statement), so when another
    writer edited the draft in between, the answer is 400 and nothing stays: no number
    taken, no audit record, no PDF due, the draft as the other writer left it."""
    from datetime import UTC

    from sqlalchemy import func, update

    from billing_app.documents.models import InvoiceDocument

    customer = api.customer()
    draft, later = api.invoice(customer["id"]), api.invoice(customer["id"])
    edited_at = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
    real_snapshot = invoices._snapshot
    edits = []

    def snapshot_then_edit(invoice):
        if not edits:  # the first call, before the write transaction
            with db.engine.begin() as other:
                other.execute(
                    update(Invoice)
                    .where(Invoice.id == uuid.UUID(draft["id"]))
                    .values(updated_at=edited_at)
                )
            edits.append(invoice.id)
        return real_snapshot(invoice)

    with app.app_context():
        records_before = db.session.scalar(
            select(func.count()).select_from(audit_service.AuditRecord)
        )
        db.session.remove()
    monkeypatch.setattr(invoices, "_snapshot", snapshot_then_edit)
    refused = api.post(f"/v1/invoices/{draft['id']}/finalize")
    monkeypatch.setattr(invoices, "_snapshot", real_snapshot)
    assert edits == [uuid.UUID(draft["id"])]
    assert refused.status_code == 400
    assert "changed meanwhile" in refused.get_json()["detail"]

    with app.app_context():
        stored = db.session.get(Invoice, uuid.UUID(draft["id"]))
        assert (stored.state, stored.number, stored.updated_at) == ("draft", None, edited_at)
        records = db.session.scalar(select(func.count()).select_from(audit_service.AuditRecord))
        assert records == records_before
        assert db.session.scalar(select(func.count()).select_from(InvoiceDocument)) == 0
        assert audit_service.verify_chain(tenant.account_id) is None
        db.session.remove()
    # The number was given back: the next finalize takes 1, and the edited draft 2.
    assert api.post(f"/v1/invoices/{later['id']}/finalize").get_json()["number"] == 1
    assert api.post(f"/v1/invoices/{draft['id']}/finalize").get_json()["number"] == 2
    with app.app_context():
        assert audit_service.verify_chain(tenant.account_id) is None


# Every {number} spec validate_number_pattern admits, and literal text JSON and handles
# must escape or replace.
_SPECS = ["", ":0", ":1", ":4", ":6", ":12", ":00", ":04", ":06", ":012", ":0d", ":6d", ":06d"]
_PATTERNS = [
    "{prefix}-{number%s}",
    "{prefix}/{YYYY}/{MM}/{number%s}",
    'Nº "{number%s}" \\ {YYYY}{MM} {prefix}',
    "{number%s}-{prefix}-{number%s}",
]


def _finish(template: str, number: str, year: str, month: str) -> str:
    """What the finalize statement does with a template (see finalize_pg)."""
    return template.replace("\x01", number).replace("\x02", year).replace("\x03", month)


@pytest.mark.parametrize("spec", _SPECS)
@pytest.mark.parametrize("pattern", _PATTERNS)
@pytest.mark.parametrize("prefix", [None, "UK", 'A"\\b', "Ünïcode €"])
def test_number_templates_give_what_format_number_gives(spec, pattern, prefix):
    from types import SimpleNamespace

    from billing_app.entities.service import (
        HANDLE_UNSAFE,
        format_number,
        number_template,
        validate_number_pattern,
    )

    pattern = validate_number_pattern(pattern.replace("%s", spec))
    template = number_template(pattern, prefix)
    assert template is not None
    entity = SimpleNamespace(number_pattern=pattern, invoice_prefix=prefix)
    issued = datetime(2026, 3, 7, 12, 0)
    for number in (1, 42, 123456, 1234567, 10**12):
        expected = format_number(entity, number, issued)  # type: ignore[arg-type]
        digits = str(number)
        width = max(template.width, len(digits))
        printed = _finish(template.printed, digits.rjust(width, template.fill), "2026", "03")
        handle = _finish(template.handle, digits.rjust(width, template.handle_fill), "2026", "03")
        as_json = _finish(template.json, digits.rjust(width, template.fill), "2026", "03")
        assert printed == expected
        assert handle == "inv-" + HANDLE_UNSAFE.sub("-", expected)
        assert as_json == json.dumps(expected, ensure_ascii=False)
        assert template.dated == ("{YYYY}" in pattern or "{MM}" in pattern)


def test_numbers_no_template_can_hold_are_formatted_in_python():
    from billing_app.entities.service import number_template

    assert number_template("{prefix}-{number:04}-{number:06}", None) is None
    assert number_template("{prefix}-{number}", "A\x01") is None
    assert number_template("{number:4}-{number:4}", None) is not None


@pytest.mark.parametrize(
    ("prefix", "pattern", "timezone", "term", "price"),
    [
        (None, None, "UTC", 30, 100),
        ('Q"\\', "{prefix} {YYYY}-{MM} #{number:5}", "Pacific/Kiritimati", 0, 250),
        ("Ünï", "{prefix}/{MM}/{number}", "America/Adak", 14, 0),
    ],
)
def test_one_statement_finalize_writes_what_the_python_path_writes(
    app, api, is_postgres, monkeypatch, prefix, pattern, timezone, term, price
):
    """PostgreSQL finishes the printed number, handle, dates and audit record in its
    finalize statement: they must be what the several-statement path (SQLite's, and
    PostgreSQL's when prepaid credit applies) writes for the same invoice."""
    from zoneinfo import ZoneInfo

    from billing_app.audit.service import history, verify_chain
    from billing_app.customers.models import Customer
    from billing_app.documents.models import InvoiceDocument
    from billing_app.documents.snapshot import take_snapshot
    from billing_app.entities.service import format_number

    if not is_postgres:
        pytest.skip("the one-statement finalize is PostgreSQL's")
    body = {"code": "e", "name": "E", "timezone": timezone, "net_payment_term": term}
    if prefix is not None:
        body["invoice_prefix"] = prefix
    if pattern is not None:
        body["number_pattern"] = pattern
    entity_id = api.post("/v1/billing_entities/", body).get_json()["id"]
    customer = api.customer()
    answers = []
    for path in ("python", "statement"):
        line = {"description": "Work", "quantity": 1, "unit_price": price, "amount": price}
        draft = api.invoice(customer["id"], [line], billing_entity_id=entity_id)
        with monkeypatch.context() as patch:
            if path == "python":
                patch.setattr(invoices, "number_template", lambda pattern, prefix: None)
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
            assert (
                invoice.handle == invoices._handle_candidates(invoice.invoice_number, invoice.id)[0]
            )
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
    take the random end of the invoice's id as a suffix, on either path. (The id's start
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
