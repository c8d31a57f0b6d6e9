"""Dialect B under concurrency and failure: one invoice per handle, one settlement per
invoice, each due invoice charged once by parallel collectors, atomic creation, dunning."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import pytest
from b_setup import DECLINE, Catalog
from conftest import fail_audit_record, row_counts
from sqlalchemy import func, select

from billing_app.db import utcnow
from billing_app.extensions import db
from billing_app.invoices.models import Invoice
from billing_app.payments.models import Transaction
from billing_app.payments.service import collect_due
from billing_app.subscriptions import invoicing
from billing_app.subscriptions.models import AdditionalCost, Credit, Subscription


def _post(base: str, key: str, path: str, body: dict) -> tuple[int, dict]:
    url = urlparse(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
    try:
        conn.request(
            "POST",
            path,
            body=json.dumps(body),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


@pytest.fixture
def setup(app, tenant):
    cat = Catalog(app, tenant.account_id)
    customer = cat.customer("c")
    card = cat.card(customer)
    plan = cat.plan("p")
    sub = cat.subscription(customer, plan, "sub", card=card)
    return cat, customer, card, plan, sub


@pytest.mark.slow
def test_parallel_requests_with_one_handle_make_one_invoice(
    app, tenant, live_server, setup, is_postgres
):
    cat, _, _, _, sub = setup
    for i in range(3):
        cat.cost(sub, f"cost-{i}", 1000)
    cat.credit(sub, "credit", 500)
    n = 50 if is_postgres else 20
    body = {"handle": "same-handle", "order_lines": [{"ordertext": "x", "amount": 2000}]}
    with ThreadPoolExecutor(n) as pool:
        results = list(
            pool.map(
                lambda _: _post(live_server, tenant.api_key, "/v1/subscription/sub/invoice", body),
                range(n),
            )
        )
    ok = [r for s, r in results if s == 200]
    refused = [r for s, r in results if s != 200]
    assert len(ok) == 1, [r for s, r in results if s not in (200, 400)][:3]
    assert len(refused) == n - 1
    assert all(r["code"] == 11 and r["http_status"] == 400 for r in refused)
    assert sorted(ok[0]["additional_costs"]) == ["cost-0", "cost-1", "cost-2"]
    assert ok[0]["credits"][0]["amount"] == 500
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Invoice)) == 1
        costs = db.session.scalars(select(AdditionalCost)).all()
        assert {c.state for c in costs} == {"transferred"}
        credit = db.session.scalars(select(Credit)).one()
        assert (credit.pending_amount, credit.state) == (0, "transferred")
        db.session.remove()


@pytest.mark.slow
def test_one_handle_on_two_subscriptions_in_parallel(app, tenant, live_server, setup):
    """The handle is unique per account: two subscriptions racing for it get one invoice
    and one code 11, never a 500 (the unique constraint decides, not the pre-check)."""
    cat, customer, card, plan, _ = setup
    for i in range(8):
        cat.subscription(customer, plan, f"race-{i}", card=card)
    body = {"handle": "raced", "order_lines": [{"ordertext": "x", "amount": 100}]}
    for round_ in range(4):
        body["handle"] = f"raced-{round_}"
        pair = [f"race-{2 * round_}", f"race-{2 * round_ + 1}"]
        with ThreadPoolExecutor(2) as pool:
            results = list(
                pool.map(
                    lambda sub: _post(
                        live_server, tenant.api_key, f"/v1/subscription/{sub}/invoice", dict(body)
                    ),
                    pair,
                )
            )
        statuses = sorted(status for status, _ in results)
        assert statuses == [200, 400], results
        assert [r["code"] for s_, r in results if s_ == 400] == [11]


@pytest.mark.slow
def test_parallel_settles_make_one_settlement(app, tenant, live_server, setup):
    _, _, card, _, _ = setup
    status, inv = _post(
        live_server,
        tenant.api_key,
        "/v1/subscription/sub/invoice",
        {"handle": "to-settle", "order_lines": [{"ordertext": "x", "amount": 999}]},
    )
    assert status == 200 and inv["state"] == "pending"
    with ThreadPoolExecutor(20) as pool:
        results = list(
            pool.map(
                lambda _: _post(
                    live_server,
                    tenant.api_key,
                    "/v1/invoice/to-settle/settle",
                    {"payment_method": card},
                ),
                range(20),
            )
        )
    statuses = [s for s, _ in results]
    assert statuses.count(200) == 1
    assert all(r["code"] in (79, 80) for s, r in results if s != 200)
    with app.app_context():
        txs = db.session.scalars(select(Transaction)).all()
        assert [t.state for t in txs] == ["settled"]
        db.session.remove()


def _due_invoices(app, tenant, sub_handle: str, count: int) -> None:
    with app.app_context():
        for i in range(count):
            invoicing.create_subscription_invoice(
                tenant.account_id,
                sub_handle,
                invoicing.OnDemandRequest(
                    handle=f"due-{i}",
                    order_lines=(invoicing.OrderLineInput("Monthly", 1000 + i),),
                ),
            )
        db.session.remove()


@pytest.mark.slow
def test_two_collect_processes_charge_each_invoice_once(app, tenant, setup, database_url, tmp_path):
    _due_invoices(app, tenant, "sub", 200)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test",
        "FLASK_APP": "billing_app",
    }
    flask = str(Path(sys.executable).with_name("flask"))
    procs = [
        subprocess.Popen(
            [flask, "billing", "collect"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    reports = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert sum(r["attempted"] for r in reports) == 200
    assert sum(r["settled"] for r in reports) == 200
    with app.app_context():
        per_invoice = db.session.execute(
            select(Transaction.invoice_id, func.count()).group_by(Transaction.invoice_id)
        ).all()
        assert len(per_invoice) == 200
        assert {n for _, n in per_invoice} == {1}
        assert (
            db.session.scalar(
                select(func.count()).select_from(Invoice).where(Invoice.state == "paid")
            )
            == 200
        )
        db.session.remove()


def test_collect_waits_for_due_and_runs_dunning_then_holds(app, tenant, setup):
    cat, customer, _, plan, _ = setup
    declining = cat.card(customer, DECLINE)
    cat.subscription(customer, plan, "sub-d", card=declining)
    with app.app_context():
        future = invoicing.create_subscription_invoice(
            tenant.account_id,
            "sub",
            invoicing.OnDemandRequest(
                handle="later",
                due=utcnow() + timedelta(days=3),
                order_lines=(invoicing.OrderLineInput("x", 100),),
            ),
        )
        invoicing.create_subscription_invoice(
            tenant.account_id,
            "sub-d",
            invoicing.OnDemandRequest(
                handle="dun", order_lines=(invoicing.OrderLineInput("x", 100),)
            ),
        )
        report = collect_due()
        assert (report.attempted, report.declined, report.settled) == (1, 1, 0)
        inv = db.session.scalars(select(Invoice).where(Invoice.handle == "dun")).one()
        assert inv.state == "open" and inv.dunning and inv.collect_attempts == 1
        now = utcnow()
        for days, attempts in ((1.1, 2), (4.2, 3), (11.3, 4)):
            report = collect_due(now=now + timedelta(days=days))
            db.session.expire_all()
            inv = db.session.get(Invoice, inv.id)
            assert inv.collect_attempts == attempts
        assert inv.state == "failed"
        assert not inv.dunning
        sub = db.session.scalars(select(Subscription).where(Subscription.handle == "sub-d")).one()
        assert (sub.state, sub.on_hold_reason) == ("on_hold", "dunning")
        # The invoice due in three days was charged (and settled) only once it was due.
        later = db.session.get(Invoice, future.invoice_id)
        assert later.state == "paid"
        assert (
            db.session.scalar(
                select(func.count())
                .select_from(Transaction)
                .where(Transaction.invoice_id == later.id)
            )
            == 1
        )
        db.session.remove()


def test_database_error_after_lines_were_built_changes_nothing(
    app, tenant, setup, monkeypatch, client
):
    cat, _, _, _, sub = setup
    cat.cost(sub, "cost", 1000)
    cat.credit(sub, "credit", 300)
    cat.discount(sub, "d", percentage="10", fixed_count=5)
    counts = row_counts(app)
    fail_audit_record(
        monkeypatch, "invoice.created", "injected database failure after the lines were built"
    )
    resp = client.post(
        "/v1/subscription/sub/invoice",
        json={
            "handle": "boom",
            "plan_manual": True,
            "order_lines": [{"ordertext": "x", "amount": 100}],
        },
        headers={"Authorization": f"Bearer {tenant.api_key}"},
    )
    assert resp.status_code == 500
    assert row_counts(app) == counts
    with app.app_context():
        assert db.session.scalars(select(AdditionalCost)).one().state == "pending"
        credit = db.session.scalars(select(Credit)).one()
        assert credit.pending_amount == 300
        db.session.remove()
