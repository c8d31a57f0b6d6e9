"""Another account's subscription, invoice or payment method answers exactly like a
missing one (404 with the dialect B code) on every invoice route, and stays unchanged."""

from __future__ import annotations

import pytest
from b_setup import Catalog
from conftest import row_counts


@pytest.fixture
def theirs(app, other_tenant, client):
    """The other account's subscription with a pending invoice and a card."""
    cat = Catalog(app, other_tenant.account_id)
    customer = cat.customer("shared-handle")
    card = cat.card(customer)
    plan = cat.plan("plan")
    cat.subscription(customer, plan, "sub-theirs", card=card)
    resp = client.post(
        "/v1/subscription/sub-theirs/invoice",
        json={
            "handle": "inv-theirs",
            "metadata": {"secret": 1},
            "order_lines": [{"ordertext": "x", "amount": 100}],
        },
        headers={"Authorization": f"Bearer {other_tenant.api_key}"},
    )
    assert resp.status_code == 200
    return {"card": card, "invoice": resp.get_json()}


@pytest.fixture
def mine(app, tenant):
    cat = Catalog(app, tenant.account_id)
    customer = cat.customer("shared-handle")
    plan = cat.plan("plan")
    cat.subscription(customer, plan, "sub-mine")
    return cat


def _routes(theirs):
    inv = theirs["invoice"]
    return [
        (
            "POST",
            "/v1/subscription/sub-theirs/invoice",
            {"handle": "x", "order_lines": [{"ordertext": "x", "amount": 1}]},
            12,
        ),
        ("GET", f"/v1/invoice/{inv['id']}", None, 31),
        ("GET", "/v1/invoice/inv-theirs", None, 31),
        ("GET", "/v1/invoice/inv-theirs/metadata", None, 31),
        ("POST", "/v1/invoice/inv-theirs/settle", {"payment_method": theirs["card"]}, 31),
        ("POST", "/v1/invoice/inv-theirs/cancel", None, 31),
    ]


def test_every_invoice_route_hides_other_accounts(client, tenant, other_tenant, theirs, mine, app):
    counts = row_counts(app)
    headers = {"Authorization": f"Bearer {tenant.api_key}"}
    for method, path, body, code in _routes(theirs):
        resp = client.open(path, method=method, json=body, headers=headers)
        assert resp.status_code == 404, (path, resp.get_json())
        assert resp.get_json()["code"] == code, path
    assert row_counts(app) == counts
    # Their invoice is untouched and still theirs.
    resp = client.get(
        "/v1/invoice/inv-theirs", headers={"Authorization": f"Bearer {other_tenant.api_key}"}
    )
    assert resp.get_json()["state"] == "pending"
    assert resp.get_json()["transactions"] == []


def test_another_accounts_card_cannot_settle_my_invoice(client, tenant, theirs, mine):
    headers = {"Authorization": f"Bearer {tenant.api_key}"}
    created = client.post(
        "/v1/subscription/sub-mine/invoice",
        json={
            "handle": "inv-mine",
            "settle": {"payment_method": theirs["card"]},
            "order_lines": [{"ordertext": "x", "amount": 100}],
        },
        headers=headers,
    )
    assert created.status_code == 404
    assert created.get_json()["code"] == 40
    ok = client.post(
        "/v1/subscription/sub-mine/invoice",
        json={"handle": "inv-mine", "order_lines": [{"ordertext": "x", "amount": 1}]},
        headers=headers,
    )
    assert ok.status_code == 200
    settle = client.post(
        "/v1/invoice/inv-mine/settle", json={"payment_method": theirs["card"]}, headers=headers
    )
    assert settle.status_code == 404
    assert settle.get_json()["code"] == 40


def test_same_invoice_handle_in_two_accounts_is_fine(client, tenant, theirs, mine):
    resp = client.post(
        "/v1/subscription/sub-mine/invoice",
        json={"handle": "inv-theirs", "order_lines": [{"ordertext": "x", "amount": 1}]},
        headers={"Authorization": f"Bearer {tenant.api_key}"},
    )
    assert resp.status_code == 200
    assert resp.get_json()["id"] != theirs["invoice"]["id"]


def test_dialect_b_needs_a_key(client, theirs):
    resp = client.get("/v1/invoice/inv-theirs")
    assert resp.status_code == 401
    body = resp.get_json()
    assert body["code"] == 6
    assert resp.headers["WWW-Authenticate"]
