"""Sign-in, sessions, sign-out, CSRF, the sign-in rate limit and what every page shares."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import url_for
from sqlalchemy import func, select, update
from web_support import Browser, is_whole_page, signed_in

from billing_app import create_app
from billing_app.accounts.models import SignInThrottle, User
from billing_app.extensions import db


def test_pages_ask_anonymous_visitors_to_sign_in(client):
    resp = client.get("/invoices/?status=paid")
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith("/signin?next=")
    assert "status%3Dpaid" in resp.headers["Location"] or "status=paid" in resp.headers["Location"]
    assert client.get("/").headers["Location"] == "/invoices/"


def test_every_page_needs_a_signed_in_user(app, client):
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] not in ("invoices", "customers", "settings"):
            continue
        args = {name: "00000000-0000-0000-0000-000000000000" for name in rule.arguments}
        with app.test_request_context():
            path = url_for(rule.endpoint, **args)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            resp = client.open(path, method=method)
            # GETs go to the sign-in page; POSTs without a token never get that far.
            assert resp.status_code in (302, 400), (method, path, resp.status_code)
            if resp.status_code == 302:
                assert resp.headers["Location"].startswith("/signin")
            checked += 1
    assert checked > 20


def test_htmx_request_without_session_is_sent_to_sign_in(client):
    resp = client.get("/invoices/", headers={"HX-Request": "true"})
    assert resp.status_code == 401
    assert resp.headers["HX-Redirect"].startswith("/signin?next=")


def test_sign_in_sets_a_safe_session_cookie_and_opens_the_pages(client, tenant):
    browser = Browser(client)
    resp = browser.sign_in(tenant.email.upper(), tenant.password)
    assert resp.status_code == 302 and resp.headers["Location"] == "/invoices/"
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = client.get("/invoices/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert tenant.email in html and "Sign out" in html


def test_sign_in_page_and_wrong_password(client, tenant):
    page = client.get("/signin")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'for="email"' in html and 'for="password"' in html
    resp = Browser(client).sign_in(tenant.email, "wrong password")
    assert resp.status_code == 401
    assert "The email or the password is not right." in resp.get_data(as_text=True)
    assert client.get("/invoices/").status_code == 302


def test_sign_in_form_errors_are_linked_to_their_fields(client):
    browser = Browser(client)
    resp = client.post("/signin", data={"email": "", "password": "", "csrf_token": browser.token()})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert 'id="email-error">Enter your email address.' in html
    assert 'aria-describedby="email-error"' in html and 'aria-invalid="true"' in html


@pytest.mark.parametrize(
    "next_url, expected",
    [
        ("/customers/", "/customers/"),
        ("https://evil.example/", "/invoices/"),
        ("//evil.example/x", "/invoices/"),
        ("/\\evil.example", "/invoices/"),
    ],
)
def test_sign_in_goes_back_to_next_only_on_this_site(client, tenant, next_url, expected):
    browser = Browser(client)
    resp = client.post(
        "/signin",
        query_string={"next": next_url},
        data={"email": tenant.email, "password": tenant.password, "csrf_token": browser.token()},
    )
    assert resp.status_code == 302
    assert resp.headers["Location"] == expected


def test_sign_in_without_csrf_token_is_rejected(client, tenant):
    resp = client.post("/signin", data={"email": tenant.email, "password": tenant.password})
    assert resp.status_code == 400
    assert "CSRF" in resp.get_data(as_text=True)
    assert client.get("/invoices/").status_code == 302


def test_sign_out_needs_the_token_and_ends_the_session(client, tenant):
    browser = signed_in(client, tenant)
    assert client.post("/signout").status_code == 400
    assert client.get("/invoices/").status_code == 200
    resp = browser.post("/signout")
    assert resp.status_code == 302 and resp.headers["Location"] == "/signin"
    assert client.get("/invoices/").status_code == 302


def test_changing_the_password_ends_other_sessions(app, client, tenant):
    signed_in(client, tenant)
    assert client.get("/invoices/").status_code == 200
    from werkzeug.security import generate_password_hash

    with app.app_context():
        db.session.execute(
            update(User)
            .where(User.email == tenant.email)
            .values(password_hash=generate_password_hash("another password"))
        )
        db.session.commit()
        db.session.remove()
    assert client.get("/invoices/").status_code == 302


def test_pages_answer_with_security_headers(client, tenant):
    signed_in(client, tenant)
    resp = client.get("/invoices/")
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Cache-Control"] == "no-store"
    assert "HX-Request" in resp.headers["Vary"]


def test_json_api_needs_no_csrf_token_and_keeps_its_own_errors(client, api):
    # API keys in a header, never cookies: the /v1 blueprints are exempt from CSRF.
    assert api.post("/v1/customers/", {"external_id": "c1", "name": "C"}).status_code == 201
    unknown = client.post("/v1/no-such-thing", json={})
    assert unknown.status_code == 404 and unknown.is_json


def test_every_v1_blueprint_is_exempt_from_csrf(app):
    from billing_app.extensions import csrf

    exempt = {bp.name for bp in csrf._exempt_blueprints}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/v1/") and "." in rule.endpoint:
            assert rule.endpoint.rpartition(".")[0] in exempt, rule.rule


# ---------------------------------------------------------------- rate limit


def _fail(client, tenant, n, email=None):
    browser = Browser(client)
    for _ in range(n):
        resp = browser.sign_in(email or tenant.email, "wrong password")
        assert resp.status_code == 401
    return browser


def test_failed_sign_ins_are_limited_per_email(app, client, tenant):
    browser = _fail(client, tenant, 5)
    blocked = browser.sign_in(tenant.email, tenant.password)
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0
    assert "Too many failed sign-ins" in blocked.get_data(as_text=True)
    assert client.get("/invoices/").status_code == 302
    # Another email from the same address is not blocked by this email's count.
    other = browser.sign_in("someone@example.com", "whatever")
    assert other.status_code == 401


def test_the_limit_lives_in_the_database_not_in_a_process(app, client, tenant, database_url):
    _fail(client, tenant, 5)
    # A second app process on the same database refuses the sign-in too.
    second = create_app({"DATABASE_URL": database_url, "SECRET_KEY": "test-secret"})
    other_client = second.test_client()
    assert Browser(other_client).sign_in(tenant.email, tenant.password).status_code == 429
    with second.app_context():
        assert db.session.scalar(select(func.count()).select_from(SignInThrottle)) == 2
        # Stored as hashes, never the email itself.
        keys = db.session.scalars(select(SignInThrottle.key)).all()
        assert all(tenant.email not in k for k in keys)
        db.session.remove()
        db.engine.dispose()


def test_the_window_passes_and_a_success_clears_the_count(app, client, tenant):
    _fail(client, tenant, 5)
    with app.app_context():
        for counter in db.session.scalars(select(SignInThrottle)):
            counter.window_start -= timedelta(minutes=16)
        db.session.commit()
        db.session.remove()
    browser = Browser(client)
    assert browser.sign_in(tenant.email, tenant.password).status_code == 302
    with app.app_context():
        # The email's counter is gone; the address's stays until its window ends.
        assert db.session.scalar(select(func.count()).select_from(SignInThrottle)) == 1
        db.session.remove()


def test_failed_sign_ins_are_limited_per_address(app, client, tenant):
    app.config["SIGNIN_MAX_FAILURES_PER_ADDRESS"] = 3
    for i in range(3):
        assert Browser(client).sign_in(f"user{i}@example.com", "nope").status_code == 401
    assert Browser(client).sign_in(tenant.email, tenant.password).status_code == 429


def test_friendly_404_page(client, tenant):
    signed_in(client, tenant)
    resp = client.get("/no/such/page")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 404 and is_whole_page(html)
    assert "Page not found" in html and "Back to the start page" in html


def test_friendly_500_page(app, client, tenant, monkeypatch):
    signed_in(client, tenant)
    from billing_app.invoices import queries

    def boom(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(queries, "search_invoices", boom)
    resp = client.get("/invoices/")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 500
    assert "Something went wrong" in html and "boom" not in html
