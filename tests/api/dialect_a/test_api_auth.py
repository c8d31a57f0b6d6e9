"""Dialect A authentication (API.md, "Common" > Auth).

Every `/v1/...` route needs an API key of the calling account: `Authorization: Bearer <key>`
or HTTP Basic with the key as user name and an empty password. A missing, malformed,
unknown or revoked key answers 401 with `WWW-Authenticate` and a `{"detail": ...}` body.
Never a default account, never a session cookie.
"""

from __future__ import annotations

import base64
import secrets
import string
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from billing_app.accounts.models import ApiKey, User
from billing_app.accounts.service import create_api_key, revoke_api_key
from billing_app.extensions import db

try:  # tests/ as a package (tests/__init__.py) or as a plain directory
    from .conftest import row_counts
except ImportError:
    from conftest import row_counts  # type: ignore[no-redef]

LINE = {"description": "Consulting", "quantity": 2, "unit_price": 15000, "amount": 30000}
_ALPHABET = string.ascii_letters + string.digits


def basic(user: str, password: str = "") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def random_key() -> str:
    """Well-formed (right prefix and lengths) but issued to nobody."""
    prefix = "".join(secrets.choice(_ALPHABET) for _ in range(10))
    secret = "".join(secrets.choice(_ALPHABET) for _ in range(40))
    return f"bk_{prefix}_{secret}"


def assert_401(resp: Any) -> None:
    assert resp.status_code == 401, resp.get_data(as_text=True)
    challenge = resp.headers.get("WWW-Authenticate", "")
    assert "bearer" in challenge.lower(), challenge
    assert "basic" in challenge.lower(), challenge
    body = resp.get_json()
    assert isinstance(body, dict) and set(body) == {"detail"}, body
    assert isinstance(body["detail"], str) and body["detail"]


def key_rows(app: Any, account_id: Any) -> list[ApiKey]:
    with app.app_context():
        rows = list(db.session.scalars(select(ApiKey).where(ApiKey.account_id == account_id)))
        db.session.expunge_all()
        db.session.remove()
        return rows


def revoke_all_keys(app: Any, account_id: Any) -> None:
    with app.app_context():
        for key in db.session.scalars(select(ApiKey).where(ApiKey.account_id == account_id)):
            revoke_api_key(account_id, key.id)
        db.session.remove()


# ---------------------------------------------------------------- bad credentials


def _bad_headers(tenant_key: str) -> dict[str, dict[str, str]]:
    prefix, _, secret = tenant_key.rpartition("_")
    wrong_secret = prefix + "_" + ("A" if secret[0] != "A" else "B") + secret[1:]
    return {
        "missing": {},
        "empty-authorization": {"Authorization": ""},
        "bearer-without-key": {"Authorization": "Bearer "},
        "bearer-garbage": {"Authorization": "Bearer not-a-key"},
        "bearer-truncated": {"Authorization": f"Bearer {tenant_key[:-1]}"},
        "bearer-too-long": {"Authorization": f"Bearer {tenant_key}x"},
        "bearer-key-twice": {"Authorization": f"Bearer {tenant_key} {tenant_key}"},
        "unknown-scheme": {"Authorization": f"Token {tenant_key}"},
        "key-without-scheme": {"Authorization": tenant_key},
        "x-api-key-header-only": {"X-API-Key": tenant_key},
        "unknown-key": {"Authorization": f"Bearer {random_key()}"},
        "known-prefix-wrong-secret": {"Authorization": f"Bearer {wrong_secret}"},
        "basic-not-base64": {"Authorization": "Basic !!!not base64!!!"},
        "basic-without-colon": {
            "Authorization": "Basic " + base64.b64encode(tenant_key.encode()).decode()
        },
        "basic-with-password": {"Authorization": basic(tenant_key, "secret")},
        "basic-key-as-password": {"Authorization": basic("", tenant_key)},
        "basic-unknown-key": {"Authorization": basic(random_key())},
        "basic-wrong-secret": {"Authorization": basic(wrong_secret)},
        "basic-empty": {"Authorization": basic("")},
    }


BAD_CASES = list(_bad_headers("bk_" + "a" * 10 + "_" + "b" * 40))


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_credentials_answer_401_on_reads(client, tenant, api, case):
    api.customer("visible-only-with-a-key")
    headers = _bad_headers(tenant.api_key)[case]
    resp = client.get("/v1/customers/", headers=headers)
    assert_401(resp)
    assert "visible-only-with-a-key" not in resp.get_data(as_text=True)


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_credentials_answer_401_on_writes_and_change_nothing(client, app, tenant, case):
    headers = _bad_headers(tenant.api_key)[case]
    before = row_counts(app)
    resp = client.post("/v1/customers/", json={"external_id": "x", "name": "X"}, headers=headers)
    assert_401(resp)
    assert row_counts(app) == before


def test_missing_key_message(client):
    resp = client.get("/v1/invoices/")
    assert_401(resp)
    assert "key" in resp.get_json()["detail"].lower()


def test_auth_is_checked_before_the_body_is_validated(client, app):
    """An anonymous caller learns nothing about the body: 401, not 422."""
    before = row_counts(app)
    resp = client.post(
        "/v1/invoices/one_off", data="not json at all", headers={"Content-Type": "application/json"}
    )
    assert_401(resp)
    resp = client.post("/v1/invoices/one_off", json={"customer_id": "nope", "line_items": []})
    assert_401(resp)
    assert row_counts(app) == before


def test_auth_is_checked_before_lookups(client, api):
    """Without a key, an existing and a missing invoice answer the same 401."""
    customer = api.customer()
    invoice = api.invoice(customer["id"])
    existing = client.get(f"/v1/invoices/{invoice['id']}")
    missing = client.get(f"/v1/invoices/{uuid.uuid4()}")
    assert_401(existing)
    assert_401(missing)
    assert existing.get_json() == missing.get_json()


# ---------------------------------------------------------------- every route


def _objects(api: Any) -> dict[str, str]:
    customer = api.customer("auth-cust")
    invoice = api.invoice(customer["id"])
    finalized = api.invoice(customer["id"])
    assert api.post(f"/v1/invoices/{finalized['id']}/finalize").status_code == 200
    entity = api.post("/v1/billing_entities/", {"code": "auth-be", "name": "Auth BE"})
    assert entity.status_code == 201
    tax = api.post("/v1/taxes/", {"code": "AUTH", "name": "Auth tax", "rate": "19"})
    assert tax.status_code == 201
    return {"customer": customer["id"], "invoice": invoice["id"], "finalized": finalized["id"]}


ALL_ROUTES = [
    ("GET", "/v1/invoices/", None),
    ("POST", "/v1/invoices/one_off", "one_off"),
    ("GET", "/v1/invoices/{invoice}", None),
    ("PUT", "/v1/invoices/{invoice}", {"due_date": "2030-01-01T00:00:00+00:00"}),
    ("DELETE", "/v1/invoices/{invoice}", None),
    ("POST", "/v1/invoices/{invoice}/finalize", None),
    ("POST", "/v1/invoices/{finalized}/pay", None),
    ("POST", "/v1/invoices/{invoice}/void", None),
    ("GET", "/v1/customers/", None),
    ("POST", "/v1/customers/", {"external_id": "new", "name": "New"}),
    ("GET", "/v1/customers/{customer}", None),
    ("PUT", "/v1/customers/{customer}", {"name": "Renamed"}),
    ("DELETE", "/v1/customers/{customer}", None),
    ("GET", "/v1/billing_entities/", None),
    ("POST", "/v1/billing_entities/", {"code": "new-be", "name": "New BE"}),
    ("GET", "/v1/billing_entities/auth-be", None),
    ("PATCH", "/v1/billing_entities/auth-be", {"name": "Renamed"}),
    ("DELETE", "/v1/billing_entities/auth-be", None),
    ("GET", "/v1/taxes/", None),
    ("POST", "/v1/taxes/", {"code": "NEW", "name": "New", "rate": "7"}),
    ("GET", "/v1/taxes/AUTH", None),
    ("PUT", "/v1/taxes/AUTH", {"rate": "20"}),
    ("DELETE", "/v1/taxes/AUTH", None),
]


def _snapshot(api: Any) -> Any:
    return {
        path: api.get(path).get_json()
        for path in ("/v1/invoices/", "/v1/customers/", "/v1/billing_entities/", "/v1/taxes/")
    }


@pytest.mark.parametrize(
    ("method", "path", "body"), ALL_ROUTES, ids=[f"{m} {p}" for m, p, _ in ALL_ROUTES]
)
def test_every_route_requires_a_key(client, app, api, method, path, body):
    ids = _objects(api)
    if body == "one_off":
        body = {"customer_id": ids["customer"], "currency": "EUR", "line_items": [LINE]}
    before_rows = row_counts(app)
    before = _snapshot(api)
    for headers in ({}, {"Authorization": f"Bearer {random_key()}"}):
        resp = client.open(path.format(**ids), method=method, json=body, headers=headers)
        assert_401(resp)
    assert row_counts(app) == before_rows
    assert _snapshot(api) == before


def test_unauthenticated_post_with_idempotency_key_is_not_stored(client, tenant):
    """Failed auth is not stored: the same key works afterwards for the real request."""
    body = {"external_id": "idem-cust", "name": "Idem"}
    headers = {"Idempotency-Key": "auth-then-real"}
    assert_401(
        client.post(
            "/v1/customers/",
            json=body,
            headers={**headers, "Authorization": f"Bearer {random_key()}"},
        )
    )
    resp = client.post("/v1/customers/", json=body, headers={**headers, **tenant.headers})
    assert resp.status_code == 201, resp.get_json()
    assert resp.headers.get("Idempotent-Replayed") is None


# ---------------------------------------------------------------- revoked keys


def test_revoked_key_answers_401(client, app, tenant):
    assert client.get("/v1/customers/", headers=tenant.headers).status_code == 200
    assert (
        client.get("/v1/customers/", headers={"Authorization": basic(tenant.api_key)}).status_code
        == 200
    )
    revoke_all_keys(app, tenant.account_id)
    assert_401(client.get("/v1/customers/", headers=tenant.headers))
    assert_401(client.get("/v1/customers/", headers={"Authorization": basic(tenant.api_key)}))
    before = row_counts(app)
    assert_401(
        client.post(
            "/v1/customers/", json={"external_id": "late", "name": "Late"}, headers=tenant.headers
        )
    )
    assert row_counts(app) == before
    # Revoked, never deleted (DOMAIN.md).
    rows = key_rows(app, tenant.account_id)
    assert len(rows) == 1 and rows[0].revoked_at is not None


def test_revoking_one_key_leaves_the_accounts_other_keys_working(client, app, tenant):
    with app.app_context():
        _, second = create_api_key(tenant.account_id, "second")
        db.session.remove()
    first_id = next(k.id for k in key_rows(app, tenant.account_id) if k.name != "second")
    with app.app_context():
        revoke_api_key(tenant.account_id, first_id)
        db.session.remove()
    assert_401(client.get("/v1/customers/", headers=tenant.headers))
    second_headers = {"Authorization": f"Bearer {second}"}
    resp = client.post(
        "/v1/customers/", json={"external_id": "k2", "name": "By key two"}, headers=second_headers
    )
    assert resp.status_code == 201
    # Still the same account: the customer is visible with the second key only.
    listed = client.get("/v1/customers/", headers=second_headers).get_json()
    assert [c["external_id"] for c in listed] == ["k2"]


def test_other_accounts_revocation_does_not_affect_this_account(client, app, tenant, other_tenant):
    revoke_all_keys(app, other_tenant.account_id)
    assert_401(client.get("/v1/customers/", headers=other_tenant.headers))
    assert client.get("/v1/customers/", headers=tenant.headers).status_code == 200


# ---------------------------------------------------------------- success


def test_bearer_key_authenticates_as_its_account(client, tenant, other_tenant):
    resp = client.post(
        "/v1/customers/", json={"external_id": "bearer", "name": "B"}, headers=tenant.headers
    )
    assert resp.status_code == 201
    mine = client.get("/v1/customers/", headers=tenant.headers).get_json()
    theirs = client.get("/v1/customers/", headers=other_tenant.headers).get_json()
    assert [c["external_id"] for c in mine] == ["bearer"]
    assert theirs == []


def test_bearer_scheme_is_case_insensitive(client, tenant):
    resp = client.get("/v1/customers/", headers={"Authorization": f"bearer {tenant.api_key}"})
    assert resp.status_code == 200


def test_basic_auth_with_key_as_user_and_empty_password(client, tenant, other_tenant):
    headers = {"Authorization": basic(tenant.api_key)}
    resp = client.post(
        "/v1/customers/", json={"external_id": "basic", "name": "Basic"}, headers=headers
    )
    assert resp.status_code == 201, resp.get_json()
    assert client.get(f"/v1/customers/{resp.get_json()['id']}", headers=headers).status_code == 200
    # The same account as the Bearer form of the key, not another one.
    mine = client.get("/v1/customers/", headers=tenant.headers).get_json()
    assert [c["external_id"] for c in mine] == ["basic"]
    assert client.get("/v1/customers/", headers=other_tenant.headers).get_json() == []


def test_basic_auth_via_test_client_auth_tuple(client, tenant):
    resp = client.get("/v1/invoices/", auth=(tenant.api_key, ""))
    assert resp.status_code == 200
    assert resp.get_json() == []


def test_successful_response_carries_no_challenge(client, tenant):
    resp = client.get("/v1/taxes/", headers=tenant.headers)
    assert resp.status_code == 200
    assert "WWW-Authenticate" not in resp.headers


# ---------------------------------------------------------------- no session cookies


def _log_in_by_session(client: Any, app: Any, tenant: Any) -> None:
    """Plant what a signed-in browser session holds (Flask-Login's keys), whether or not
    the browser pages exist yet: the API must ignore it."""
    with app.app_context():
        user = db.session.scalars(select(User).where(User.email == tenant.email)).one()
        user_id = str(user.id)
        db.session.remove()
    with client.session_transaction() as sess:
        sess["_user_id"] = user_id
        sess["_fresh"] = True
        sess["account_id"] = str(tenant.account_id)


def test_session_cookie_never_authenticates_api(client, app, tenant, api):
    api.customer("secret-customer")
    _log_in_by_session(client, app, tenant)
    assert client.get_cookie("session") is not None
    resp = client.get("/v1/customers/")
    assert_401(resp)
    assert "secret-customer" not in resp.get_data(as_text=True)
    before = row_counts(app)
    assert_401(client.post("/v1/customers/", json={"external_id": "s", "name": "S"}))
    assert row_counts(app) == before


def test_session_cookie_does_not_rescue_a_bad_key(client, app, tenant):
    _log_in_by_session(client, app, tenant)
    assert_401(client.get("/v1/customers/", headers={"Authorization": f"Bearer {random_key()}"}))


def test_real_browser_sign_in_does_not_authenticate_api(client, app, tenant, api):
    """Sign in through the browser form (a real session cookie that opens the pages), then
    call the API with that cookie and no key: 401."""
    import re

    page = client.get("/signin")
    if page.status_code == 404:
        pytest.skip("no browser sign-in page in this build")
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.get_data(as_text=True))
    assert match, "sign-in form without a CSRF token"
    signed_in = client.post(
        "/signin",
        data={"email": tenant.email, "password": tenant.password, "csrf_token": match[1]},
    )
    assert signed_in.status_code in (302, 303), signed_in.status_code
    # The session is real: the sign-in page now sends a signed-in user on.
    again = client.get("/signin")
    assert again.status_code in (302, 303), again.status_code
    api.customer("seen-by-key-only")
    resp = client.get("/v1/customers/")
    assert_401(resp)
    assert "seen-by-key-only" not in resp.get_data(as_text=True)
    before = row_counts(app)
    assert_401(client.post("/v1/customers/", json={"external_id": "cookie", "name": "C"}))
    assert row_counts(app) == before
