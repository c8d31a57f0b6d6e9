"""GET /v1/invoice: filters, keyset paging, and a statement count that does not grow with
the number of invoices or lines on the page; Idempotency-Key on dialect B."""

from __future__ import annotations

import contextlib

import pytest
from b_setup import Catalog
from sqlalchemy import event

from billing_app.extensions import db


@pytest.fixture
def b_headers(tenant):
    return {"Authorization": f"Bearer {tenant.api_key}"}


@pytest.fixture
def subs(app, tenant):
    cat = Catalog(app, tenant.account_id)
    alice, bob = cat.customer("alice"), cat.customer("bob")
    card = cat.card(alice)
    plan = cat.plan("p")
    cat.subscription(alice, plan, "sub-a", card=card)
    cat.subscription(bob, plan, "sub-b")
    return cat


def _make(client, headers, sub, handle, lines=1, **kw):
    body = {
        "handle": handle,
        "order_lines": [{"ordertext": f"L{i}", "amount": 100 + i} for i in range(lines)],
        **kw,
    }
    resp = client.post(f"/v1/subscription/{sub}/invoice", json=body, headers=headers)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


@contextlib.contextmanager
def count_statements(app):
    counter = {"n": 0}
    with app.app_context():
        engine = db.engine

    def before(*_args, **_kw):
        counter["n"] += 1

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield counter
    finally:
        event.remove(engine, "before_cursor_execute", before)


def test_filters_and_paging(client, b_headers, subs):
    _make(client, b_headers, "sub-a", "a1")
    _make(client, b_headers, "sub-a", "a2", instant=True)
    _make(client, b_headers, "sub-b", "b1")
    cancelled = _make(client, b_headers, "sub-b", "b2")
    client.post(f"/v1/invoice/{cancelled['id']}/cancel", headers=b_headers)

    def handles(query):
        resp = client.get(f"/v1/invoice?{query}", headers=b_headers)
        assert resp.status_code == 200, resp.get_json()
        return [i["handle"] for i in resp.get_json()["content"]]

    assert handles("") == ["b2", "b1", "a2", "a1"]  # newest first
    assert handles("state=pending") == ["b1", "a1"]
    assert handles("state=settled") == ["a2"]
    assert handles("state=cancelled") == ["b2"]
    assert handles("customer=alice") == ["a2", "a1"]
    assert handles("subscription=sub-b") == ["b2", "b1"]
    assert handles("customer=nobody") == []
    first = client.get("/v1/invoice?size=3", headers=b_headers).get_json()
    assert (first["size"], first["count"]) == (3, 3)
    rest = client.get(
        f"/v1/invoice?size=3&next_page_token={first['next_page_token']}", headers=b_headers
    ).get_json()
    assert [i["handle"] for i in rest["content"]] == ["a1"]
    assert rest["next_page_token"] is None
    bad = client.get("/v1/invoice?size=0", headers=b_headers)
    assert bad.status_code == 400 and bad.get_json()["code"] == 1
    assert client.get("/v1/invoice?state=unknown", headers=b_headers).status_code == 400


def test_statements_per_page_do_not_grow_with_rows(app, client, b_headers, subs):
    _make(client, b_headers, "sub-a", "x0", lines=2, instant=True)
    with count_statements(app) as small:
        assert client.get("/v1/invoice", headers=b_headers).status_code == 200
    for i in range(1, 8):
        _make(client, b_headers, "sub-a", f"x{i}", lines=6, instant=True)
    with count_statements(app) as large:
        body = client.get("/v1/invoice", headers=b_headers).get_json()
    assert body["count"] == 8
    assert large["n"] == small["n"]


def test_idempotency_key_replays_and_validation_is_not_stored(client, b_headers, subs):
    headers = {**b_headers, "Idempotency-Key": "create-1"}
    bad = client.post("/v1/subscription/sub-a/invoice", json={"handle": "i1"}, headers=headers)
    assert bad.status_code == 400 and bad.get_json()["code"] == 54
    invalid = client.post(
        "/v1/subscription/sub-a/invoice",
        json={"handle": "i1", "order_lines": [{"ordertext": "x"}]},
        headers={**b_headers, "Idempotency-Key": "create-2"},
    )
    assert invalid.status_code == 400 and invalid.get_json()["code"] == 1
    body = {"handle": "i1", "order_lines": [{"ordertext": "x", "amount": 5}]}
    ok = client.post(
        "/v1/subscription/sub-a/invoice",
        json=body,
        headers={**b_headers, "Idempotency-Key": "create-2"},
    )
    assert ok.status_code == 200
    assert "Idempotent-Replayed" not in ok.headers
    again = client.post(
        "/v1/subscription/sub-a/invoice",
        json=body,
        headers={**b_headers, "Idempotency-Key": "create-2"},
    )
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.data == ok.data
    # The business error (54) was a completed answer: it is replayed for the same request.
    replay = client.post("/v1/subscription/sub-a/invoice", json={"handle": "i1"}, headers=headers)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json()["code"] == 54
