"""Idempotency-Key on POST (API.md): replay byte for byte, 422 for another request with
the same key, 409 while the first still runs, nothing created twice."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

from conftest import row_counts

from billing_app.db import utcnow
from billing_app.extensions import db
from billing_app.idempotency.models import IdempotencyKey


def _post_raw(api, path, body: bytes, key: str | None):
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return api.client.post(path, data=body, headers={**api.tenant.headers, **headers})


def _invoice_body(customer_id: str) -> bytes:
    return json.dumps(
        {
            "customer_id": customer_id,
            "currency": "EUR",
            "line_items": [
                {"description": "Retainer", "quantity": 1, "unit_price": 50000, "amount": 50000}
            ],
        }
    ).encode()


def test_retry_replays_byte_for_byte_and_creates_nothing_twice(api, app):
    customer = api.customer()
    body = _invoice_body(customer["id"])
    first = _post_raw(api, "/v1/invoices/one_off", body, "order-42")
    assert first.status_code == 200
    assert "Idempotent-Replayed" not in first.headers
    counts = row_counts(app)
    again = _post_raw(api, "/v1/invoices/one_off", body, "order-42")
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.data == first.data
    assert row_counts(app) == counts
    listed = api.get("/v1/invoices/").get_json()
    assert [i["id"] for i in listed] == [first.get_json()["id"]]


def test_replay_of_an_action_and_of_a_201(api):
    customer = api.customer()
    inv = api.invoice(customer["id"])
    path = f"/v1/invoices/{inv['id']}/finalize"
    a = _post_raw(api, path, b"", "fin-1")
    b = _post_raw(api, path, b"", "fin-1")
    assert a.status_code == b.status_code == 200
    assert a.data == b.data
    c = _post_raw(api, "/v1/taxes/", b'{"code":"v","name":"V","rate":"5"}', "tax-1")
    d = _post_raw(api, "/v1/taxes/", b'{"code":"v","name":"V","rate":"5"}', "tax-1")
    assert c.status_code == d.status_code == 201
    assert c.data == d.data


def test_same_key_with_a_different_request_is_422(api, app):
    customer = api.customer()
    assert (
        _post_raw(api, "/v1/invoices/one_off", _invoice_body(customer["id"]), "k").status_code
        == 200
    )
    counts = row_counts(app)
    other = json.loads(_invoice_body(customer["id"]))
    other["line_items"][0]["description"] = "Something else"
    resp = _post_raw(api, "/v1/invoices/one_off", json.dumps(other).encode(), "k")
    assert resp.status_code == 422
    assert "different request" in resp.get_json()["detail"]
    # Another path with the same key is another request too.
    assert (
        _post_raw(api, "/v1/taxes/", b'{"code":"x","name":"X","rate":"1"}', "k").status_code == 422
    )
    assert row_counts(app) == counts


def test_same_key_while_the_first_is_running_is_409(api, app):
    customer = api.customer()
    body = _invoice_body(customer["id"])
    digest = hashlib.sha256(b"POST\0/v1/invoices/one_off\0" + body).hexdigest()
    with app.app_context():
        db.session.add(
            IdempotencyKey(
                account_id=api.tenant.account_id,
                key="busy",
                fingerprint=digest,
                state="running",
                created_at=utcnow(),
                expires_at=utcnow() + timedelta(hours=24),
            )
        )
        db.session.commit()
        db.session.remove()
    resp = _post_raw(api, "/v1/invoices/one_off", body, "busy")
    assert resp.status_code == 409
    assert api.get("/v1/invoices/").get_json() == []


def test_failed_validation_is_not_stored(api):
    customer = api.customer()
    bad = json.dumps({"customer_id": customer["id"], "line_items": []}).encode()
    assert _post_raw(api, "/v1/invoices/one_off", bad, "fix-me").status_code == 422
    good = _post_raw(api, "/v1/invoices/one_off", _invoice_body(customer["id"]), "fix-me")
    assert good.status_code == 200
    assert "Idempotent-Replayed" not in good.headers


def test_keys_are_scoped_per_account(api, other_api):
    mine = api.customer("same")
    theirs = other_api.customer("same")
    a = _post_raw(api, "/v1/invoices/one_off", _invoice_body(mine["id"]), "shared-key")
    b = _post_raw(other_api, "/v1/invoices/one_off", _invoice_body(theirs["id"]), "shared-key")
    assert a.status_code == b.status_code == 200
    assert a.get_json()["id"] != b.get_json()["id"]
    assert "Idempotent-Replayed" not in b.headers


def test_key_longer_than_255_is_refused(api):
    customer = api.customer()
    resp = _post_raw(api, "/v1/invoices/one_off", _invoice_body(customer["id"]), "k" * 256)
    assert resp.status_code == 422
    assert api.get("/v1/invoices/").get_json() == []


def test_expired_keys_are_purged(app, api, runner):
    customer = api.customer()
    _post_raw(api, "/v1/invoices/one_off", _invoice_body(customer["id"]), "old")
    with app.app_context():
        rec = db.session.query(IdempotencyKey).one()
        rec.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
        db.session.remove()
    result = runner.invoke(args=["billing", "purge-idempotency-keys"])
    assert result.exit_code == 0
    assert "deleted 1" in result.output
    # After expiry the key starts afresh: a new invoice, not a replay.
    again = _post_raw(api, "/v1/invoices/one_off", _invoice_body(customer["id"]), "old")
    assert "Idempotent-Replayed" not in again.headers
    assert len(api.get("/v1/invoices/").get_json()) == 2
