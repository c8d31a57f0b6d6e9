"""PostgreSQL: the signed-in user is read in the same round trip as the page's first read
(`web.common.user_with_first_read`, docs/performance.md "Pages", fifth session), and a
session is refused, or its page shows, exactly what it did with the user read alone."""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import delete, event, select, update
from web_support import make_customer, make_invoice, signed_in

from billing_app.accounts.models import Account, User
from billing_app.accounts.service import _SESSION_USER
from billing_app.database import (
    ResultRefused,
    SentAhead,
    precompiled,
    send_with_next,
    take_unsent,
)
from billing_app.extensions import db
from billing_app.invoices.models import Invoice
from billing_app.reads import read_connection, read_engine
from billing_app.web import common


@contextmanager
def round_trips(app: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Statements sent while the block runs, and the round trips they took: a statement
    alone is one, a pipeline (however many statements it carries) one."""
    seen: dict[str, Any] = {"statements": [], "pipelines": 0}
    with app.app_context():
        engines = {db.engine, read_engine()}

    def before(_conn: Any, cursor: Any, sql: str, *_: Any) -> None:
        pgconn = getattr(cursor.connection, "pgconn", None)
        piped = pgconn is not None and bool(pgconn.pipeline_status)
        seen["statements"].append((piped, sql))

    if any(e.dialect.name == "postgresql" for e in engines):
        import psycopg

        real = psycopg.Connection.pipeline

        def counted(self: Any) -> Any:
            seen["pipelines"] += 1
            return real(self)

        monkeypatch.setattr(psycopg.Connection, "pipeline", counted)
    for engine in engines:
        event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", before)
        monkeypatch.undo()
    seen["round_trips"] = sum(1 for piped, _ in seen["statements"] if not piped)
    seen["round_trips"] += seen["pipelines"]


def _entry_post(customer_id: Any) -> dict[str, str]:
    return {
        "customer_id": str(customer_id),
        "action": "add_line",
        "lines-0-description": "Consulting",
        "lines-0-quantity": "2",
        "lines-0-unit_price": "150",
        "lines-0-vat": "",
    }


@pytest.fixture
def data(app, tenant):
    acme = make_customer(app, tenant, "acme", name="ACME Corp")
    invoice = make_invoice(app, tenant, acme.id, finalize=True)
    return {"customer": acme, "invoice": invoice}


def _pages(data: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any] | None, bool]]:
    """name: (method, path, form, htmx)."""
    return {
        "list": ("GET", "/invoices/", None, False),
        "list htmx": ("GET", "/invoices/?status=open", None, True),
        "detail": ("GET", f"/invoices/{data['invoice'].id}", None, False),
        "entry": ("GET", "/invoices/new", None, False),
        "add-line": ("POST", "/invoices/new", _entry_post(data["customer"].id), True),
    }


PAGES = ["list", "list htmx", "detail", "entry", "add-line"]


def _ask(web: Any, data: dict[str, Any], name: str) -> Any:
    method, path, form, htmx = _pages(data)[name]
    if method == "POST":
        return web.post(path, form, htmx=htmx)
    return web.get(path, htmx=htmx)


# ---------------------------------------------------------------- one round trip


def test_the_user_goes_with_the_pages_first_read(
    app, client, tenant, data, is_postgres, monkeypatch
):
    web = signed_in(client, tenant)
    common._SESSION_USERS.clear()
    expected = {"list": 1, "list htmx": 1, "detail": 1, "entry": None, "add-line": 2}
    # The first page of a session in this process reads the user alone.
    with round_trips(app, monkeypatch) as first:
        assert _ask(web, data, "list").status_code == 200
    alone = [s for s in first["statements"] if "FROM users JOIN accounts" in s[1]]
    assert len(alone) == 1 and not alone[0][0]
    for name in PAGES:
        _ask(web, data, name)  # the entry page's own reads, warm
        with round_trips(app, monkeypatch) as seen:
            resp = _ask(web, data, name)
        assert resp.status_code == 200, (name, resp.status_code)
        users = [s for s in seen["statements"] if "FROM users JOIN accounts" in s[1]]
        assert len(users) == 1, name  # the user is still read, once
        if not is_postgres:
            assert seen["pipelines"] == 0 and not any(p for p, _ in seen["statements"])
            continue
        # PostgreSQL: the user's statement is piped with the page's first read.
        assert users[0][0], name
        piped = [sql for p, sql in seen["statements"] if p]
        assert len(piped) == 2 and "FROM users JOIN accounts" in piped[0], name
        assert seen["pipelines"] == 1, name
        if expected[name] is not None:
            assert seen["round_trips"] == expected[name], (name, seen)
        assert seen["round_trips"] == first["round_trips"] - 1 or name != "list"


def test_the_statements_per_page_do_not_grow_with_the_rows(app, client, tenant, monkeypatch):
    web = signed_in(client, tenant)
    acme = make_customer(app, tenant, "acme")
    make_invoice(app, tenant, acme.id)
    web.get("/invoices/")
    with round_trips(app, monkeypatch) as one:
        assert web.get("/invoices/").status_code == 200
    for _ in range(12):
        make_invoice(app, tenant, acme.id)
    with round_trips(app, monkeypatch) as many:
        html = web.text("/invoices/")
    assert html.count("<tr") >= 13
    assert len(many["statements"]) == len(one["statements"])
    assert many["round_trips"] == one["round_trips"]


def test_a_save_reads_the_user_alone(app, client, tenant, data, is_postgres, monkeypatch):
    web = signed_in(client, tenant)
    web.get("/invoices/")
    form = dict(_entry_post(data["customer"].id), action="save")
    with round_trips(app, monkeypatch) as seen:
        assert web.post("/invoices/new", form).status_code == 302
    reads = [s for s in seen["statements"] if not s[1].startswith("BEGIN")]
    assert "FROM users JOIN accounts" in reads[0][1] and not reads[0][0]


# ---------------------------------------------------------------- refused as before


@pytest.mark.parametrize("name", PAGES)
def test_a_deleted_user_is_refused_by_every_such_page(app, client, tenant, data, name):
    web = signed_in(client, tenant)
    assert _ask(web, data, name).status_code == 200  # known in this process now
    with app.app_context():
        db.session.execute(delete(User).where(User.email == tenant.email))
        db.session.commit()
        db.session.remove()
    resp = _ask(web, data, name)
    htmx = _pages(data)[name][3]
    if htmx:
        assert resp.status_code == 401 and resp.headers["HX-Redirect"].startswith("/signin")
    else:
        assert resp.status_code == 302 and resp.headers["Location"].startswith("/signin")
    assert b"ACME" not in resp.data and b"Consulting" not in resp.data
    # Answered as for no user: the refused user's account is not the request's.
    assert resp.headers.get("Cache-Control") != "no-store"


@pytest.mark.parametrize("name", PAGES)
def test_a_changed_password_is_refused_by_every_such_page(app, client, tenant, data, name):
    web = signed_in(client, tenant)
    assert _ask(web, data, name).status_code == 200
    with app.app_context():
        db.session.execute(
            update(User).where(User.email == tenant.email).values(password_hash="changed")
        )
        db.session.commit()
        db.session.remove()
    resp = _ask(web, data, name)
    assert resp.status_code in (302, 401)
    location = resp.headers.get("Location") or resp.headers["HX-Redirect"]
    assert location.startswith("/signin")


def test_a_save_by_a_deleted_user_writes_nothing(app, client, tenant, data):
    web = signed_in(client, tenant)
    web.get("/invoices/new")
    web.token()
    with app.app_context():
        db.session.execute(delete(User).where(User.email == tenant.email))
        db.session.commit()
        before = db.session.scalar(select(db.func.count()).select_from(Invoice))
        db.session.remove()
    form = dict(_entry_post(data["customer"].id), action="save")
    resp = web.post("/invoices/new", form)
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/signin")
    with app.app_context():
        assert db.session.scalar(select(db.func.count()).select_from(Invoice)) == before
        db.session.remove()


def test_a_page_failing_before_its_first_read_still_refuses_a_deleted_user(
    app, client, tenant, data
):
    web = signed_in(client, tenant)
    web.get("/invoices/")
    # Refused before any read: a malformed customer id is a 404 for the signed-in user ...
    assert web.get("/invoices/?customer=not-an-id").status_code == 404
    assert web.get(f"/invoices/?customer={uuid.uuid4()}").status_code == 404
    with app.app_context():
        db.session.execute(delete(User).where(User.email == tenant.email))
        db.session.commit()
        db.session.remove()
    # ... and still the sign-in page for a session whose user is gone.
    for path in ("/invoices/?customer=not-an-id", f"/invoices/?customer={uuid.uuid4()}"):
        resp = web.get(path)
        assert resp.status_code == 302 and resp.headers["Location"].startswith("/signin")


def test_a_tampered_or_foreign_session_is_refused_with_the_user_known(
    app, client, tenant, data, is_postgres
):
    web = signed_in(client, tenant)
    assert web.get("/invoices/").status_code == 200
    assert bool(common._SESSION_USERS) == is_postgres
    cookie = client.get_cookie("session")
    assert cookie is not None
    other = app.test_client()
    other.set_cookie("session", cookie.value.replace(cookie.value[5:9], "AAAA", 1))
    assert other.get("/invoices/").status_code == 302
    with client.session_transaction() as sess:
        user_id = sess["_user_id"]
        sess["_user_id"] = f"{user_id.partition('.')[0]}.{'0' * 16}"  # another fingerprint
    assert client.get("/invoices/").status_code == 302
    with client.session_transaction() as sess:
        sess["_user_id"] = user_id
    assert client.get("/invoices/").status_code == 200


def test_another_accounts_ids_are_still_not_found(app, client, tenant, other_tenant, data):
    theirs = make_customer(app, other_tenant, "theirs", name="Theirs Ltd")
    their_invoice = make_invoice(app, other_tenant, theirs.id)
    web = signed_in(client, tenant)
    assert web.get("/invoices/").status_code == 200
    assert web.get(f"/invoices/{their_invoice.id}").status_code == 404
    assert web.get(f"/invoices/?customer={theirs.id}").status_code == 404
    resp = web.post("/invoices/new", _entry_post(theirs.id), htmx=True)
    assert b"Choose a customer from the list." in resp.data
    assert b"Theirs" not in resp.data
    assert "Theirs" not in web.text("/invoices/")


# ---------------------------------------------------------------- what changed shows


def test_a_page_shows_the_user_and_account_as_they_are_now(app, client, tenant, data):
    web = signed_in(client, tenant)
    assert "Tenant One GmbH" in web.text("/invoices/")
    with app.app_context():
        db.session.execute(
            update(Account).where(Account.id == tenant.account_id).values(name="Renamed AG")
        )
        db.session.execute(
            update(User).where(User.email == tenant.email).values(email="renamed@example.com")
        )
        db.session.commit()
        db.session.remove()
    for path in ("/invoices/", f"/invoices/{data['invoice'].id}", "/invoices/new"):
        html = web.text(path).partition("</header>")[0]
        assert "Renamed AG" in html and "renamed@example.com" in html, path
        assert "Tenant One GmbH" not in html and "one@example.com" not in html, path


def test_a_changed_time_zone_is_used_at_once(app, client, tenant, data):
    web = signed_in(client, tenant)
    utc_day = data["invoice"].created_at.date().isoformat()
    assert utc_day in web.text("/invoices/")
    # Fourteen hours east, the invoice's day is the next one late in the UTC day, the
    # same one early in it: compare with what the zone gives.
    from zoneinfo import ZoneInfo

    zone = "Pacific/Kiritimati"
    local_day = data["invoice"].created_at.astimezone(ZoneInfo(zone)).date().isoformat()
    with app.app_context():
        db.session.execute(
            update(Account).where(Account.id == tenant.account_id).values(timezone=zone)
        )
        db.session.commit()
        db.session.remove()
    html = web.text("/invoices/")
    assert local_day in html
    if local_day != utc_day:
        assert utc_day not in html


# ---------------------------------------------------------------- the pipeline itself


def test_a_statement_sent_ahead_decides_whether_the_next_answers(app, tenant, is_postgres):
    with app.test_request_context():
        conn = read_connection()
        user_id = db.session.scalar(select(User.id).where(User.email == tenant.email))
        if not is_postgres:
            with pytest.raises(ValueError):
                send_with_next(conn, SentAhead("SELECT 1", (), lambda c: c, lambda r: True))
            return
        seen: list[Any] = []

        def ahead(accept: bool) -> SentAhead:
            def check(rows: Any) -> bool:
                seen.append(rows.first().email)
                return accept

            return precompiled(_SESSION_USER).ahead(conn, {"user_id": user_id}, check)

        accounts = precompiled(select(Account.name).where(Account.id == tenant.account_id))
        send_with_next(conn, ahead(True))
        assert accounts.execute(conn, {}).scalar_one() == "Tenant One GmbH"
        assert seen == [tenant.email] and take_unsent(conn) is None
        send_with_next(conn, ahead(False))
        with pytest.raises(ResultRefused):
            accounts.execute(conn, {})
        assert seen == [tenant.email, tenant.email]
        # Nothing waits any more: the next statement goes alone and answers.
        assert accounts.execute(conn, {}).scalar_one() == "Tenant One GmbH"
        send_with_next(conn, ahead(True))
        assert take_unsent(conn) is not None and take_unsent(conn) is None
