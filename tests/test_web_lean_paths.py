"""The pages' lean paths (docs/performance.md, "Pages", fourth session) refuse and render
exactly what the general machinery would: the signed-in user read without Flask-Login's
per-request work, the remembered CSRF tokens, the layout's kept parts, the invoice list
written in Python, the kept URL patterns and PostgreSQL's read engine."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import pytest
from flask import flash, render_template, request, url_for
from flask_login.utils import encode_cookie
from jinja2 import ChoiceLoader, DictLoader
from sqlalchemy import delete
from sqlalchemy import text as sql_text
from web_support import make_customer, make_invoice, signed_in

from billing_app.accounts.models import User
from billing_app.extensions import db
from billing_app.invoices.models import Invoice
from billing_app.reads import read_connection, read_engine
from billing_app.web import common
from billing_app.web.layout import render_layout, render_page


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


def test_the_page_sees_the_user_flask_login_would_load(app, client, tenant):
    seen = {}

    @app.get("/_probe")
    def probe() -> str:
        from flask_login import current_user

        user = common.signed_in_user()
        seen["same"] = user is current_user._get_current_object()
        seen["account"] = common.account_id()
        return "ok"

    signed_in(client, tenant)
    assert client.get("/_probe").status_code == 200
    assert seen == {"same": True, "account": tenant.account_id}


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


# ---------------------------------------------------------------- CSRF


def test_a_remembered_csrf_token_is_only_good_for_its_own_session(
    app, client, tenant, other_tenant
):
    first = signed_in(client, tenant)
    token = first.token()
    assert first.post("/invoices/new", {"action": "recalc"}, htmx=True).status_code == 200
    # Verified and remembered now; a second post uses the remembered check.
    assert first.post("/invoices/new", {"action": "recalc"}, htmx=True).status_code == 200
    tampered = token[:-3] + ("xyz" if token[-3:] != "xyz" else "abc")
    assert first.post("/invoices/new", {"csrf_token": tampered}).status_code == 400
    assert first.post("/invoices/new", {"csrf_token": ""}).status_code == 400
    # Another session with this (verified) token: its own raw token differs.
    second = signed_in(app.test_client(), other_tenant)
    resp = second.post("/invoices/new", {"csrf_token": token, "action": "recalc"}, htmx=True)
    assert resp.status_code == 400
    assert second.post("/invoices/new", {"action": "recalc"}, htmx=True).status_code == 200


def test_a_remembered_csrf_token_is_not_taken_over_https_without_the_referrer_check(
    app, client, tenant
):
    browser = signed_in(client, tenant)
    assert browser.post("/invoices/new", {"action": "recalc"}, htmx=True).status_code == 200
    resp = browser.post("/invoices/new", {"action": "recalc"}, base_url="https://localhost")
    assert resp.status_code == 400  # no referrer: Flask-WTF's check ran
    assert "referrer" in resp.get_data(as_text=True).lower()


# ---------------------------------------------------------------- the layout


def test_render_page_and_render_layout_equal_the_whole_template(app, client, tenant):
    app.jinja_env.loader = ChoiceLoader(
        [
            DictLoader(
                {
                    "_probe.html": "{% extends page_layout %}{% block title %}T &amp; "
                    "{{ x }}{% endblock %}{% block content %}<p>{{ x }}</p>{% endblock %}"
                }
            ),
            app.jinja_env.loader,  # type: ignore[list-item]
        ]
    )
    results = {}

    @app.get("/invoices/_layout_probe")
    def layout_probe() -> str:
        with_flash = bool(request.args.get("flash"))
        if with_flash:
            flash("Saved <b>.", "success")  # each render shows it (the request keeps it)
        pages = [
            render_template("_probe.html", x="<x>"),
            render_page("_probe.html", x="<x>"),
            render_layout("T &amp; &lt;x&gt;", "<p>&lt;x&gt;</p>"),
        ]
        results[with_flash] = pages
        return "ok"

    signed_in(client, tenant)
    # Twice without flashed messages (the second from the kept parts), once with.
    for query in ("", "?flash=1", ""):
        assert client.get(f"/invoices/_layout_probe{query}").status_code == 200
        whole, fast, by_hand = results[bool(query)]
        assert fast == whole
        assert by_hand == whole
        assert ("Saved &lt;b&gt;." in whole) == bool(query)
        assert "<title>T &amp; &lt;x&gt;</title>" in whole


# ---------------------------------------------------------------- the list in Python


def test_the_list_escapes_what_it_shows(app, web, tenant):
    evil = make_customer(app, tenant, "evil", name='<b>"Evil" & Co</b>')
    make_invoice(app, tenant, evil.id)
    html = web.text(f"/invoices/?customer={evil.id}&q=%3Cscript%3E%22&date_from=%3Cx%3E")
    assert "&lt;b&gt;&#34;Evil&#34; &amp; Co&lt;/b&gt;" in html
    assert 'value="&lt;script&gt;&#34;"' in html
    assert 'value="&lt;x&gt;"' in html and "<x>" not in html
    assert "<script>" not in html.split("</head>", 1)[1]


# ---------------------------------------------------------------- URLs


def test_kept_url_patterns_build_what_url_for_builds(app):
    template_url_for = app.jinja_env.globals["url_for"]
    ids = [uuid.uuid4(), uuid.UUID(int=0), uuid.UUID(int=2**128 - 1)]
    with app.test_request_context("/", base_url="http://localhost/prefix"):
        for invoice_id in ids:
            for endpoint in ("invoices.invoice_detail", "invoices.finalize", "invoices.void"):
                for _ in range(2):
                    built = template_url_for(endpoint, invoice_id=invoice_id)
                    assert built == url_for(endpoint, invoice_id=invoice_id)
                    assert built.startswith("/prefix/invoices/")
        # Not a UUID, or more than one value: built by url_for every time.
        assert template_url_for("invoices.invoice_detail", invoice_id="a b") == url_for(
            "invoices.invoice_detail", invoice_id="a b"
        )


# ---------------------------------------------------------------- PostgreSQL's reads


def test_page_reads_use_an_autocommit_engine_on_postgresql(app, is_postgres):
    with app.test_request_context():
        conn = read_connection()
        if not is_postgres:
            assert read_engine() is db.engine
            return
        assert read_engine() is not db.engine
        assert conn.engine is read_engine()
        assert conn.connection.dbapi_connection.autocommit is True  # type: ignore[union-attr]
    reads = app.extensions["billing_read_engine"]
    with app.app_context():
        db.engine.dispose()
    assert reads.pool.checkedout() == 0 and reads.pool.checkedin() == 0


# ---------------------------------------------------------------- the kept read connection


def test_the_kept_read_connection_sees_each_request_afresh(app, web, tenant):
    acme = make_customer(app, tenant, "acme", name="ACME Corp")
    first = make_invoice(app, tenant, acme.id)
    assert first.invoice_number in web.text("/invoices/")
    # Written on another connection after that page: the next page sees it (the read
    # transaction, SQLite's snapshot, ended with the request).
    second = make_invoice(app, tenant, acme.id)
    html = web.text("/invoices/")
    assert first.invoice_number in html and second.invoice_number in html
    with app.test_request_context():
        conn = read_connection()
        assert not conn.closed
    with app.test_request_context():
        assert read_connection() is conn  # kept for the thread
        assert not conn.in_transaction()


def test_a_lost_read_connection_is_replaced_and_dispose_closes_them(app, web, tenant):
    web.text("/invoices/")
    with app.test_request_context():
        conn = read_connection()
    conn.invalidate()  # as a lost database connection leaves it
    assert web.get("/invoices/").status_code == 200
    with app.test_request_context():
        fresh = read_connection()
    assert fresh is not conn and not fresh.closed
    with app.app_context():
        db.engine.dispose()
    assert fresh.closed
    assert web.get("/invoices/").status_code == 200  # and a new one is made


def test_the_invoice_page_escapes_what_it_shows(app, web, tenant):
    evil = make_customer(
        app, tenant, "evil2", name="<i>Name</i>", email="a&b@example.com", city="<Town>"
    )
    invoice = make_invoice(app, tenant, evil.id, [("<script>x</script>", "1", "100")])
    html = web.text(f"/invoices/{invoice.id}")
    body = html.split("</head>", 1)[1]
    assert "<script>" not in body and "<i>" not in body and "<Town>" not in body
    assert "&lt;script&gt;x&lt;/script&gt;" in body
    assert "&lt;i&gt;Name&lt;/i&gt;" in body
    assert "a&amp;b@example.com" in body and "&lt;Town&gt;<br>" in body


def test_text_search_takes_quotes_and_like_characters_literally(app, web, tenant):
    acme = make_customer(app, tenant, "acme", name='The "100%_" Shop')
    made = make_invoice(app, tenant, acme.id, finalize=True)
    for text in ('"100%_"', "100%", "%_", '"'):
        assert made.invoice_number in web.text(f"/invoices/?q={quote(text)}"), text
    for text in ("%%%", "___", 'x"y', "0%1", '" OR "', '""""'):
        assert made.invoice_number not in web.text(f"/invoices/?q={quote(text)}"), text
    # The number itself, through the trigram index, in any case.
    assert made.invoice_number in web.text(f"/invoices/?q={made.invoice_number.lower()}")


# ---------------------------------------------------------------- PostgreSQL's plans


def test_the_list_keeps_one_plan_on_postgresql(app, web, tenant, is_postgres):
    """The list's statements carry their LIMIT in the text, so PostgreSQL settles on a
    generic plan after its five custom ones instead of planning every page (a bound
    LIMIT, which it plans for a tenth of the rows, kept it planning every time)."""
    if not is_postgres:
        pytest.skip("PostgreSQL's plan cache")
    acme = make_customer(app, tenant, "acme", name="ACME Corp")
    first = make_invoice(app, tenant, acme.id)
    # A list long enough for the plan to matter: 3 000 copies of the draft, analysed.
    copied = [c.name for c in Invoice.__table__.columns if c.name not in ("id", "handle")]
    names = ", ".join(copied)
    with app.app_context():
        db.session.execute(
            sql_text(
                f"INSERT INTO invoices (id, handle, {names}) SELECT gen_random_uuid(),"
                f" handle || '-' || g, {names} FROM invoices, generate_series(1, 3000) AS g"
                " WHERE id = :id"
            ),
            {"id": first.id},
        )
        db.session.commit()
        db.session.execute(sql_text("ANALYZE invoices"))
        db.session.commit()
    pages = ["/invoices/", "/invoices/?status=draft", "/invoices/?sort=total&dir=asc"]
    for _ in range(12):
        for page in pages:
            assert web.get(page).status_code == 200
    with app.test_request_context():
        rows = (
            read_connection()
            .exec_driver_sql(
                "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements"
                " WHERE statement LIKE '%%SELECT invoices.id, %%ORDER BY%%'"
            )
            .all()
        )
    assert len(rows) >= len(pages), rows
    for statement, generic, custom in rows:
        # psycopg prepares a statement on its sixth run: 7 runs here, 5 of them custom.
        assert custom <= 5 and generic >= 2, (generic, custom, statement)
