"""The statement budget of the hot requests: how many SQL statements each may send, counted
through the real app on the suite's database (SQLite or PostgreSQL).

A budget is a ceiling, not a target: a change that needs more statements for one of these
requests must say why here. Each request is also sent with many more lines or rows, and must
cost the same: no statement per line or per row (no N+1).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

from b_api import BApi
from sqlalchemy import event
from web_support import make_customer, make_invoice, signed_in

from billing_app.extensions import db

# request: (SQLite, PostgreSQL), at most. Every request also reads its key or session user.
BUDGET: dict[str, tuple[int, int]] = {
    # PostgreSQL: the key with its account, the customer, the issuing entity, the tax rates,
    # the invoice, its lines (one batch), the audit head locked, moved, the record. SQLite
    # adds its BEGIN statements.
    "create one-off invoice": (11, 9),
    # the key, the draft locked, its lines, the issuer, the wallet, the counter, the account
    # locked and the handle looked up, the document due, the invoice, the audit record (3)
    "finalize": (15, 13),
    # session user, invoice with customer and issuer, lines, history, settlement (paid only)
    "invoice page": (5, 4),
    # session user, the page of rows (SQLite: BEGIN too)
    "invoice list page": (3, 2),
    "on-demand subscription invoice": (27, 24),
}


@contextmanager
def counted(app: Any) -> Any:
    seen: list[str] = []
    with app.app_context():
        engine = db.engine

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def _budget(name: str, is_postgres: bool) -> int:
    return BUDGET[name][1 if is_postgres else 0]


def _lines(n: int) -> list[dict[str, Any]]:
    return [
        {"description": f"Line {i}", "quantity": 1, "unit_price": 1000 + i, "amount": 1000 + i}
        for i in range(n)
    ]


def test_one_off_create_and_finalize(app, api, is_postgres):
    customer = api.customer("budget")
    counts = {}
    for n in (1, 40):
        with counted(app) as create:
            invoice = api.invoice(customer["id"], _lines(n))
        with counted(app) as finalize:
            resp = api.post(f"/v1/invoices/{invoice['id']}/finalize")
        assert resp.status_code == 200, resp.get_json()
        counts[n] = (len(create), len(finalize))
    print("one-off create/finalize statements:", counts)
    assert counts[1] == counts[40], "a statement per line"
    assert counts[1][0] <= _budget("create one-off invoice", is_postgres), counts
    assert counts[1][1] <= _budget("finalize", is_postgres), counts


def test_invoice_page_and_list_page(app, client, tenant, is_postgres):
    customer = make_customer(app, tenant, "pages")
    few = make_invoice(app, tenant, customer.id, [("A", "1", "100")], finalize=True)
    many = make_invoice(
        app, tenant, customer.id, [(f"L{i}", "1", "100") for i in range(40)], finalize=True
    )
    browser = signed_in(client, tenant)
    pages = {}
    for inv in (few, many):
        with counted(app) as seen:
            browser.text(f"/invoices/{inv.id}")
        pages[inv.id] = len(seen)
    assert pages[few.id] == pages[many.id], "a statement per line"
    assert pages[few.id] <= _budget("invoice page", is_postgres), pages

    lists = []
    for _ in range(2):
        with counted(app) as seen:
            browser.text("/invoices/")
        lists.append(len(seen))
        for _ in range(15):
            make_invoice(app, tenant, customer.id)
    print("invoice page:", pages, "list page:", lists)
    assert lists[0] == lists[1], "a statement per row"
    assert lists[0] <= _budget("invoice list page", is_postgres), lists


def test_on_demand_subscription_invoice(app, client, tenant, is_postgres):
    b = BApi(client, tenant)
    b.customer()
    b.plan(amount=10000)
    counts = []
    for i, n in enumerate((1, 20)):
        b.subscription(handle=f"sub-{i}")
        body = {
            "handle": f"inv-budget-{i}",
            "order_lines": [
                {"ordertext": f"Line {k}", "amount": 500 + k, "quantity": 1} for k in range(n)
            ],
        }
        with counted(app) as seen:
            b.ok(f"/v1/subscription/sub-{i}/invoice", body)
        counts.append(len(seen))
    print("on-demand subscription invoice:", counts)
    assert counts[0] == counts[1], "a statement per order line"
    assert counts[0] <= _budget("on-demand subscription invoice", is_postgres), counts
