"""The one-off create and finalize look the API key up with their first read
(`accounts.scope`, `key_in_first_read`): on PostgreSQL in the same statement. These tests
hold that route to what every other route does with a key looked up first: a refused key
answers 401 whatever else is wrong with the request (body, ids, another account's
objects), and changes nothing; an accepted key scopes the read to its own account, is
named in the audit record and has its last use noted. On SQLite the same routes go
through the same code with the key looked up on its own first."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from billing_app.accounts.models import ApiKey
from billing_app.audit.models import AuditRecord
from billing_app.db import utcnow
from billing_app.extensions import db

try:  # tests/ as a package (tests/__init__.py) or as a plain directory
    from .conftest import row_counts
    from .test_api_auth import _bad_headers, assert_401, revoke_all_keys
except ImportError:
    from conftest import row_counts  # type: ignore[no-redef]
    from test_api_auth import _bad_headers, assert_401, revoke_all_keys  # type: ignore[no-redef]

LINE = {"description": "Consulting", "quantity": 2, "unit_price": 15000, "amount": 30000}

# The cases that reach the route with a well-formed key (the rest fail before it).
WELL_FORMED = [
    "unknown-key",
    "known-prefix-wrong-secret",
    "basic-unknown-key",
    "basic-wrong-secret",
]


def _requests(own: dict[str, Any], foreign: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(what, path, body) for create and finalize: good ones and ones that would fail
    otherwise (422, 404) with a good key."""
    good_body = {"customer_id": own["customer"], "currency": "EUR", "line_items": [LINE]}
    return [
        ("create", "/v1/invoices/one_off", good_body),
        ("create, empty lines", "/v1/invoices/one_off", good_body | {"line_items": []}),
        ("create, not an object", "/v1/invoices/one_off", [1, 2]),
        (
            "create, another account's customer",
            "/v1/invoices/one_off",
            good_body | {"customer_id": foreign["customer"]},
        ),
        (
            "create, unknown customer",
            "/v1/invoices/one_off",
            good_body | {"customer_id": str(uuid.uuid4())},
        ),
        ("finalize", f"/v1/invoices/{own['draft']}/finalize", None),
        ("finalize another account's draft", f"/v1/invoices/{foreign['draft']}/finalize", None),
        ("finalize an unknown id", f"/v1/invoices/{uuid.uuid4()}/finalize", None),
        ("finalize a malformed id", "/v1/invoices/not-a-uuid/finalize", None),
    ]


def _setup(api: Any, other_api: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    own_customer = api.customer("own")
    foreign_customer = other_api.customer("foreign")
    own = {"customer": own_customer["id"], "draft": api.invoice(own_customer["id"])["id"]}
    foreign = {
        "customer": foreign_customer["id"],
        "draft": other_api.invoice(foreign_customer["id"])["id"],
    }
    return own, foreign


def _post(client: Any, path: str, body: Any, headers: dict[str, str]) -> Any:
    if body is None:
        return client.post(path, headers=headers)
    return client.post(path, json=body, headers=headers)


@pytest.mark.parametrize("case", [*WELL_FORMED, "missing", "bearer-garbage"])
def test_a_refused_key_answers_401_before_anything_else_and_changes_nothing(
    client, app, tenant, api, other_api, case
):
    own, foreign = _setup(api, other_api)
    headers = _bad_headers(tenant.api_key)[case]
    before = row_counts(app)
    for what, path, body in _requests(own, foreign):
        resp = _post(client, path, body, headers)
        assert resp.status_code == 401, (what, resp.get_data(as_text=True))
        assert_401(resp)
    assert row_counts(app) == before
    assert api.get(f"/v1/invoices/{own['draft']}").get_json()["status"] == "draft"
    assert other_api.get(f"/v1/invoices/{foreign['draft']}").get_json()["status"] == "draft"


def test_a_revoked_key_answers_401_and_changes_nothing(client, app, tenant, api, other_api):
    own, foreign = _setup(api, other_api)
    revoke_all_keys(app, tenant.account_id)
    before = row_counts(app)
    for what, path, body in _requests(own, foreign):
        resp = _post(client, path, body, tenant.headers)
        assert resp.status_code == 401, (what, resp.get_data(as_text=True))
        assert_401(resp)
    assert row_counts(app) == before


def test_a_good_key_reads_only_its_own_account(client, app, tenant, api, other_api):
    own, foreign = _setup(api, other_api)
    answers = {
        what: _post(client, path, body, tenant.headers)
        for what, path, body in _requests(own, foreign)
    }
    codes = {what: resp.status_code for what, resp in answers.items()}
    assert codes == {
        "create": 200,
        "create, empty lines": 422,
        "create, not an object": 422,
        "create, another account's customer": 404,
        "create, unknown customer": 404,
        "finalize": 200,
        "finalize another account's draft": 404,
        "finalize an unknown id": 404,
        "finalize a malformed id": 404,
    }
    assert answers["create"].get_json()["customer_id"] == own["customer"]
    assert answers["finalize"].get_json()["number"] == 1
    # The other account's draft is still a draft, and its numbers untouched.
    foreign_draft = other_api.get(f"/v1/invoices/{foreign['draft']}").get_json()
    assert foreign_draft["status"] == "draft" and foreign_draft["number"] is None
    other_customer = other_api.customer("foreign-2")
    other_draft = other_api.invoice(other_customer["id"])
    assert other_api.post(f"/v1/invoices/{other_draft['id']}/finalize").get_json()["number"] == 1


def test_the_audit_records_name_the_key_and_the_request(client, app, tenant, api):
    customer = api.customer()
    created = client.post(
        "/v1/invoices/one_off",
        json={"customer_id": customer["id"], "currency": "EUR", "line_items": [LINE]},
        headers=tenant.headers | {"X-Request-Id": "req-create"},
    )
    invoice_id = created.get_json()["id"]
    finalized = client.post(
        f"/v1/invoices/{invoice_id}/finalize", headers=tenant.headers | {"X-Request-Id": "req-fin"}
    )
    assert finalized.status_code == 200
    with app.app_context():
        key_id = db.session.scalars(
            select(ApiKey.id).where(ApiKey.account_id == tenant.account_id)
        ).one()
        records = db.session.scalars(
            select(AuditRecord).where(AuditRecord.object_id == invoice_id).order_by(AuditRecord.seq)
        ).all()
        assert [(r.action, r.actor_type, r.actor_id, r.request_id) for r in records] == [
            ("invoice.created", "api_key", str(key_id), "req-create"),
            ("invoice.finalized", "api_key", str(key_id), "req-fin"),
        ]
        assert {r.account_id for r in records} == {tenant.account_id}
        db.session.remove()


@pytest.mark.parametrize("route", ["create", "finalize"])
def test_the_keys_last_use_is_noted(client, app, tenant, api, route):
    customer = api.customer()
    draft = api.invoice(customer["id"])
    long_ago = utcnow() - timedelta(hours=2)
    with app.app_context():
        db.session.execute(
            update(ApiKey)
            .where(ApiKey.account_id == tenant.account_id)
            .values(last_used_at=long_ago)
        )
        db.session.commit()
    started = utcnow()
    if route == "create":
        body = {"customer_id": customer["id"], "currency": "EUR", "line_items": [LINE]}
        resp = client.post("/v1/invoices/one_off", json=body, headers=tenant.headers)
    else:
        resp = client.post(f"/v1/invoices/{draft['id']}/finalize", headers=tenant.headers)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    with app.app_context():
        noted = db.session.scalars(
            select(ApiKey.last_used_at).where(ApiKey.account_id == tenant.account_id)
        ).one()
        db.session.remove()
    assert noted is not None and noted >= started - timedelta(seconds=1)


def test_with_an_idempotency_key_the_routes_answer_and_replay_as_before(client, tenant, api):
    customer = api.customer()
    body = {"customer_id": customer["id"], "currency": "EUR", "line_items": [LINE]}
    headers = tenant.headers | {"Idempotency-Key": "create-1"}
    first = client.post("/v1/invoices/one_off", json=body, headers=headers)
    again = client.post("/v1/invoices/one_off", json=body, headers=headers)
    assert first.status_code == 200
    assert again.get_data() == first.get_data()
    path = f"/v1/invoices/{first.get_json()['id']}/finalize"
    headers = tenant.headers | {"Idempotency-Key": "finalize-1"}
    done = client.post(path, headers=headers)
    assert done.status_code == 200 and done.get_json()["number"] == 1
    assert client.post(path, headers=headers).get_data() == done.get_data()
    # A refused key with an Idempotency-Key is refused the same way.
    refused = client.post(
        path,
        headers=_bad_headers(tenant.api_key)["known-prefix-wrong-secret"]
        | {"Idempotency-Key": "finalize-2"},
    )
    assert_401(refused)
