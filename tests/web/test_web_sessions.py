"""The browser door's sessions and tokens: the signed-in user comes from Flask-Login's
loader only (a gone user, a changed password, a foreign or tampered cookie are refused),
CSRF tokens belong to their session and expire, and pages escape what they show."""

from __future__ import annotations

import uuid

import pytest
from flask_login.utils import encode_cookie
from sqlalchemy import delete
from web_support import signed_in

from billing_app.accounts.models import User
from billing_app.extensions import db
from billing_app.web import signin


@pytest.fixture
def web(client, tenant):
    return signed_in(client, tenant)


# ---------------------------------------------------------------- the signed-in user


def test_a_session_whose_user_is_gone_is_refused(app, client, web, tenant):
    assert client.get("/invoices/").status_code == 200
    with app.app_context():
        db.session.execute(delete(User).where(User.email == tenant.email))
        db.session.commit()
        db.session.remove()
    resp = client.get("/invoices/")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/signin")
    htmx = client.get("/invoices/", headers={"HX-Request": "true"})
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"].startswith("/signin")


def test_a_session_signed_with_another_key_or_tampered_with_is_refused(app, client, web):
    cookie = client.get_cookie("session")
    assert cookie is not None
    other = app.test_client()
    # The same data signed with another secret: not this app's session.
    from flask.sessions import SecureCookieSessionInterface

    foreign_app = type(app)(app.import_name)
    foreign_app.secret_key = "another secret"
    serializer = SecureCookieSessionInterface().get_signing_serializer(foreign_app)
    assert serializer is not None
    with app.test_request_context():
        data = app.session_interface.get_signing_serializer(app).loads(cookie.value)
    other.set_cookie("session", serializer.dumps(data))
    assert other.get("/invoices/").status_code == 302
    # A user id edited into a validly shaped cookie: the signature no longer matches.
    edited = cookie.value.replace(cookie.value[5:9], "AAAA", 1)
    other.set_cookie("session", edited)
    assert other.get("/invoices/").status_code == 302


def test_a_session_naming_another_user_id_or_none_is_refused(app, client, web, tenant):
    with client.session_transaction() as sess:
        user_id = sess["_user_id"]
        sess["_user_id"] = f"{uuid.uuid4()}.{user_id.partition('.')[2]}"
    assert client.get("/invoices/").status_code == 302
    with client.session_transaction() as sess:
        sess["_user_id"] = "not an id"
    assert client.get("/invoices/").status_code == 302
    with client.session_transaction() as sess:
        sess["_user_id"] = user_id
    assert client.get("/invoices/").status_code == 200


def test_the_page_sees_the_user_flask_logins_loader_loads(app, client, tenant):
    seen = {}

    @app.get("/_probe")
    def probe() -> str:
        from flask_login import current_user

        seen["email"] = current_user.email
        seen["account"] = signin.account_id()
        return "ok"

    signed_in(client, tenant)
    assert client.get("/_probe").status_code == 200
    assert seen == {"email": tenant.email, "account": tenant.account_id}


def test_a_remember_cookie_still_goes_through_flask_login(app, client, web):
    # The app never sets one; Flask-Login accepts a valid one, and still does.
    with client.session_transaction() as sess:
        user_id = sess["_user_id"]
    other = app.test_client()
    with app.test_request_context():
        other.set_cookie("remember_token", encode_cookie(user_id))
    assert other.get("/invoices/").status_code == 200
    other = app.test_client()
    other.set_cookie("remember_token", f"{user_id}|forged")
    assert other.get("/invoices/").status_code == 302


# ---------------------------------------------------------------- the session cookie


def test_session_lasts_12_hours_and_is_not_reissued_by_pages(app, client, tenant):
    browser = signed_in(client, tenant)
    assert app.permanent_session_lifetime.total_seconds() == 12 * 3600
    assert app.config["SESSION_REFRESH_EACH_REQUEST"] is False
    browser.text("/settings/api-keys")  # the session now holds its CSRF token
    for path in ("/invoices/", "/customers/", "/static/css/app.css"):
        resp = client.get(path)
        resp.close()  # the static file's handle
        assert resp.status_code == 200
        assert "Set-Cookie" not in resp.headers, path


def test_session_cookies_expire_after_12_hours_and_need_their_signature(
    app, client, tenant, monkeypatch
):
    import time

    signed_in(client, tenant)
    assert client.get("/invoices/").status_code == 200
    cookie = client.get_cookie("session")
    assert cookie is not None
    client.set_cookie("session", cookie.value[:-2] + ("AA" if cookie.value[-2:] != "AA" else "BB"))
    assert client.get("/invoices/").status_code == 302
    client.set_cookie("session", cookie.value)
    assert client.get("/invoices/").status_code == 200
    # 12 hours and a second after signing, the cookie is expired.
    now = time.time()
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: now + 12 * 3600 + 1)
    assert client.get("/invoices/").status_code == 302


# ---------------------------------------------------------------- CSRF


def test_a_csrf_token_is_only_good_for_its_own_session(app, client, tenant, other_tenant):
    first = signed_in(client, tenant)
    token = first.token()
    assert first.post("/invoices/new", {"action": "recalc"}, htmx=True).status_code == 200
    assert first.post("/invoices/new", {"action": "recalc"}, htmx=True).status_code == 200
    tampered = token[:-3] + ("xyz" if token[-3:] != "xyz" else "abc")
    assert first.post("/invoices/new", {"csrf_token": tampered}).status_code == 400
    assert first.post("/invoices/new", {"csrf_token": ""}).status_code == 400
    # Another session with this token: its own raw token differs.
    second = signed_in(app.test_client(), other_tenant)
    resp = second.post("/invoices/new", {"csrf_token": token, "action": "recalc"}, htmx=True)
    assert resp.status_code == 400
    assert second.post("/invoices/new", {"action": "recalc"}, htmx=True).status_code == 200


def test_a_csrf_token_is_not_taken_over_https_without_the_referrer_check(app, client, tenant):
    browser = signed_in(client, tenant)
    assert browser.post("/invoices/new", {"action": "recalc"}, htmx=True).status_code == 200
    resp = browser.post("/invoices/new", {"action": "recalc"}, base_url="https://localhost")
    assert resp.status_code == 400  # no referrer: Flask-WTF's check ran
    assert "referrer" in resp.get_data(as_text=True).lower()


def test_a_csrf_token_expires_after_the_time_limit(app, client, tenant, monkeypatch):
    """Flask-WTF signs the token with a timestamp: after WTF_CSRF_TIME_LIMIT (8 hours)
    a page's forms are refused until it is reloaded."""
    assert app.config["WTF_CSRF_TIME_LIMIT"] == 8 * 3600
    browser = signed_in(client, tenant)
    token = browser.token()
    assert browser.post("/invoices/new", {"action": "recalc"}, htmx=True).status_code == 200
    import itsdangerous.timed

    later = itsdangerous.timed.TimestampSigner.get_timestamp(None) + 8 * 3600 + 60  # type: ignore[arg-type]
    monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp", lambda self: later)
    resp = browser.post("/invoices/new", {"csrf_token": token, "action": "recalc"})
    assert resp.status_code == 400
    assert "expired" in resp.get_data(as_text=True).lower()
