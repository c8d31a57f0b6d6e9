"""Tenancy on every dialect A route (API.md, "Common" > Tenancy).

An id or code of another account's object answers exactly like a missing one (404 with the
same body), and the other account's object is unchanged afterwards. Lists never show other
accounts' rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

try:  # tests/ as a package (tests/__init__.py) or as a plain directory
    from .conftest import row_counts
except ImportError:
    from conftest import row_counts  # type: ignore[no-redef]

LINE = {"description": "Consulting", "quantity": 2, "unit_price": 15000, "amount": 30000}


@dataclass
class World:
    """The other account's objects (`theirs`) and a few of our own (`ours`)."""

    theirs: dict[str, str]
    ours: dict[str, str]


@pytest.fixture
def world(api, other_api) -> World:
    customer = other_api.customer("their-customer")
    draft = other_api.invoice(customer["id"])
    finalized = other_api.invoice(customer["id"])
    resp = other_api.post(f"/v1/invoices/{finalized['id']}/finalize")
    assert resp.status_code == 200, resp.get_json()
    entity = other_api.post("/v1/billing_entities/", {"code": "their-be", "name": "Theirs"})
    assert entity.status_code == 201, entity.get_json()
    tax = other_api.post("/v1/taxes/", {"code": "THEIR-TAX", "name": "Theirs", "rate": "21"})
    assert tax.status_code == 201, tax.get_json()
    our_customer = api.customer("our-customer")
    return World(
        theirs={
            "customer": customer["id"],
            "draft": draft["id"],
            "finalized": finalized["id"],
            "entity_id": entity.get_json()["id"],
            "entity_code": "their-be",
            "tax_code": "THEIR-TAX",
        },
        ours={"customer": our_customer["id"]},
    )


def their_state(other_api: Any, world: World) -> dict[str, Any]:
    """Everything the other account can see of its objects, to compare before/after."""
    t = world.theirs
    paths = [
        f"/v1/customers/{t['customer']}",
        f"/v1/invoices/{t['draft']}",
        f"/v1/invoices/{t['finalized']}",
        f"/v1/billing_entities/{t['entity_code']}",
        "/v1/billing_entities/default",
        f"/v1/taxes/{t['tax_code']}",
        "/v1/invoices/",
        "/v1/customers/",
        "/v1/billing_entities/",
        "/v1/taxes/",
    ]
    state = {}
    for path in paths:
        resp = other_api.get(path)
        assert resp.status_code == 200, (path, resp.get_json())
        state[path] = resp.get_json()
    return state


@dataclass(frozen=True)
class Case:
    """One route: how to call it with a given target (theirs or a missing one)."""

    method: str
    path: Callable[[dict[str, str]], str]
    body: Callable[[dict[str, str], dict[str, str]], Any] | None
    detail: str


def _missing() -> dict[str, str]:
    return {
        "customer": str(uuid.uuid4()),
        "draft": str(uuid.uuid4()),
        "finalized": str(uuid.uuid4()),
        "entity_id": str(uuid.uuid4()),
        "entity_code": "no-such-entity",
        "tax_code": "NO-SUCH-TAX",
    }


CASES = {
    # invoices
    "invoice-get": Case("GET", lambda t: f"/v1/invoices/{t['draft']}", None, "Invoice not found"),
    "invoice-get-finalized": Case(
        "GET", lambda t: f"/v1/invoices/{t['finalized']}", None, "Invoice not found"
    ),
    "invoice-put-due-date": Case(
        "PUT",
        lambda t: f"/v1/invoices/{t['draft']}",
        lambda t, o: {"due_date": "2031-01-01T00:00:00+00:00"},
        "Invoice not found",
    ),
    "invoice-put-status": Case(
        "PUT",
        lambda t: f"/v1/invoices/{t['draft']}",
        lambda t, o: {"status": "finalized"},
        "Invoice not found",
    ),
    "invoice-put-void": Case(
        "PUT",
        lambda t: f"/v1/invoices/{t['finalized']}",
        lambda t, o: {"status": "voided"},
        "Invoice not found",
    ),
    "invoice-delete": Case(
        "DELETE", lambda t: f"/v1/invoices/{t['draft']}", None, "Invoice not found"
    ),
    "invoice-finalize": Case(
        "POST", lambda t: f"/v1/invoices/{t['draft']}/finalize", None, "Invoice not found"
    ),
    "invoice-pay": Case(
        "POST", lambda t: f"/v1/invoices/{t['finalized']}/pay", None, "Invoice not found"
    ),
    "invoice-void-draft": Case(
        "POST", lambda t: f"/v1/invoices/{t['draft']}/void", None, "Invoice not found"
    ),
    "invoice-void-finalized": Case(
        "POST", lambda t: f"/v1/invoices/{t['finalized']}/void", None, "Invoice not found"
    ),
    # PDF downloads (API.md: "on every route, PDF downloads included")
    "invoice-pdf-post": Case(
        "POST",
        lambda t: f"/v1/invoices/{t['finalized']}/download_pdf",
        None,
        "Invoice not found",
    ),
    "invoice-pdf-get": Case(
        "GET",
        lambda t: f"/v1/invoices/{t['finalized']}/download_pdf",
        None,
        "Invoice not found",
    ),
    # customers
    "customer-get": Case(
        "GET", lambda t: f"/v1/customers/{t['customer']}", None, "Customer not found"
    ),
    "customer-put": Case(
        "PUT",
        lambda t: f"/v1/customers/{t['customer']}",
        lambda t, o: {"name": "Hijacked", "email": "evil@example.com"},
        "Customer not found",
    ),
    "customer-delete": Case(
        "DELETE", lambda t: f"/v1/customers/{t['customer']}", None, "Customer not found"
    ),
    # billing entities (by code)
    "entity-get": Case(
        "GET",
        lambda t: f"/v1/billing_entities/{t['entity_code']}",
        None,
        "Billing entity not found",
    ),
    "entity-patch": Case(
        "PATCH",
        lambda t: f"/v1/billing_entities/{t['entity_code']}",
        lambda t, o: {"name": "Hijacked", "invoice_prefix": "EVIL"},
        "Billing entity not found",
    ),
    "entity-patch-make-default": Case(
        "PATCH",
        lambda t: f"/v1/billing_entities/{t['entity_code']}",
        lambda t, o: {"is_default": True},
        "Billing entity not found",
    ),
    "entity-delete": Case(
        "DELETE",
        lambda t: f"/v1/billing_entities/{t['entity_code']}",
        None,
        "Billing entity not found",
    ),
    # taxes (by code)
    "tax-get": Case("GET", lambda t: f"/v1/taxes/{t['tax_code']}", None, "Tax not found"),
    "tax-put": Case(
        "PUT",
        lambda t: f"/v1/taxes/{t['tax_code']}",
        lambda t, o: {"rate": "99", "applied_to_organization": True},
        "Tax not found",
    ),
    "tax-delete": Case("DELETE", lambda t: f"/v1/taxes/{t['tax_code']}", None, "Tax not found"),
    # one-off create referring to their objects
    "one-off-their-customer": Case(
        "POST",
        lambda t: "/v1/invoices/one_off",
        lambda t, o: {"customer_id": t["customer"], "currency": "EUR", "line_items": [LINE]},
        "Customer not found",
    ),
    "one-off-their-billing-entity": Case(
        "POST",
        lambda t: "/v1/invoices/one_off",
        lambda t, o: {
            "customer_id": o["customer"],
            "currency": "EUR",
            "line_items": [LINE],
            "billing_entity_id": t["entity_id"],
        },
        "Billing entity not found",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_their_object_answers_exactly_like_a_missing_one(name, api, other_api, world, app):
    case = CASES[name]
    missing = _missing()

    def call(target: dict[str, str]) -> Any:
        body = case.body(target, world.ours) if case.body else None
        return api.client.open(
            case.path(target), method=case.method, json=body, headers=api.tenant.headers
        )

    before_state = their_state(other_api, world)
    before_rows = row_counts(app)

    foreign = call(world.theirs)
    absent = call(missing)

    assert foreign.status_code == 404, foreign.get_data(as_text=True)
    assert foreign.get_json() == {"detail": case.detail}
    assert absent.status_code == foreign.status_code
    assert absent.get_json() == foreign.get_json()
    assert foreign.headers.get("Content-Type") == absent.headers.get("Content-Type")

    assert row_counts(app) == before_rows
    assert their_state(other_api, world) == before_state


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.method == "POST"])
def test_their_object_with_idempotency_key_stores_nothing_visible(name, api, other_api, world, app):
    """Even with an Idempotency-Key, a 404 for their object changes none of their rows."""
    case = CASES[name]
    before_state = their_state(other_api, world)
    body = case.body(world.theirs, world.ours) if case.body else None
    resp = api.post(case.path(world.theirs), body, headers={"Idempotency-Key": f"t-{name}"})
    assert resp.status_code == 404
    assert resp.get_json() == {"detail": case.detail}
    assert their_state(other_api, world) == before_state


def test_every_dialect_a_route_with_an_object_is_covered():
    """Guard: the table above names every route that takes an id or code, plus the one-off
    create."""
    placeholders = {
        "customer": "{customer}",
        "draft": "{invoice}",
        "finalized": "{invoice}",
        "entity_code": "{entity}",
        "tax_code": "{tax}",
    }
    missing = _missing()
    covered = set()
    for case in CASES.values():
        path = case.path(missing)
        for key, placeholder in placeholders.items():
            path = path.replace(missing[key], placeholder)
        covered.add((case.method, path))
    assert covered == {
        ("GET", "/v1/invoices/{invoice}"),
        ("PUT", "/v1/invoices/{invoice}"),
        ("DELETE", "/v1/invoices/{invoice}"),
        ("POST", "/v1/invoices/{invoice}/finalize"),
        ("POST", "/v1/invoices/{invoice}/pay"),
        ("POST", "/v1/invoices/{invoice}/void"),
        ("POST", "/v1/invoices/{invoice}/download_pdf"),
        ("GET", "/v1/invoices/{invoice}/download_pdf"),
        ("GET", "/v1/customers/{customer}"),
        ("PUT", "/v1/customers/{customer}"),
        ("DELETE", "/v1/customers/{customer}"),
        ("GET", "/v1/billing_entities/{entity}"),
        ("PATCH", "/v1/billing_entities/{entity}"),
        ("DELETE", "/v1/billing_entities/{entity}"),
        ("GET", "/v1/taxes/{tax}"),
        ("PUT", "/v1/taxes/{tax}"),
        ("DELETE", "/v1/taxes/{tax}"),
        ("POST", "/v1/invoices/one_off"),
    }


# ---------------------------------------------------------------- codes in bodies


def test_their_tax_code_is_unknown_to_us(api, other_api, app):
    """`tax_code` of another account's tax answers like a code nobody has, everywhere it is
    accepted (customer create/update, billing entity create/update)."""
    calls = [
        ("POST", "/v1/customers/", {"external_id": "c-tax", "name": "C", "tax_code": "SHARED"}),
        ("PUT", "/v1/customers/{cid}", {"tax_code": "SHARED"}),
        ("POST", "/v1/billing_entities/", {"code": "be-tax", "name": "B", "tax_code": "SHARED"}),
        ("PATCH", "/v1/billing_entities/default", {"tax_code": "SHARED"}),
    ]
    cid = api.customer("ours")["id"]

    def run() -> list[tuple[int, Any]]:
        out = []
        for method, path, body in calls:
            resp = api.client.open(
                path.format(cid=cid), method=method, json=body, headers=api.tenant.headers
            )
            out.append((resp.status_code, resp.get_json()))
        return out

    before_rows = row_counts(app)
    while_missing = run()
    assert all(status == 422 for status, _ in while_missing), while_missing
    assert row_counts(app) == before_rows

    assert (
        other_api.post("/v1/taxes/", {"code": "SHARED", "name": "T", "rate": "25"}).status_code
        == 201
    )
    before_rows = row_counts(app)
    while_theirs = run()
    assert while_theirs == while_missing
    assert row_counts(app) == before_rows
    # Our customer did not pick up their rate.
    inv = api.invoice(cid)
    assert inv["tax_amount_cents"] == "0"


def test_their_billing_entity_code_is_unknown_to_us(api, other_api, app):
    calls = [
        (
            "POST",
            "/v1/customers/",
            {"external_id": "c-be", "name": "C", "billing_entity_code": "shared-be"},
        ),
        ("PUT", "/v1/customers/{cid}", {"billing_entity_code": "shared-be"}),
    ]
    cid = api.customer("ours")["id"]

    def run() -> list[tuple[int, Any]]:
        out = []
        for method, path, body in calls:
            resp = api.client.open(
                path.format(cid=cid), method=method, json=body, headers=api.tenant.headers
            )
            out.append((resp.status_code, resp.get_json()))
        return out

    while_missing = run()
    assert all(status == 422 for status, _ in while_missing), while_missing
    assert (
        other_api.post("/v1/billing_entities/", {"code": "shared-be", "name": "Theirs"}).status_code
        == 201
    )
    before_rows = row_counts(app)
    assert run() == while_missing
    assert row_counts(app) == before_rows
    assert api.get(f"/v1/customers/{cid}").get_json()["billing_entity_id"] is None


def test_same_codes_and_external_ids_live_side_by_side(api, other_api):
    """Codes and handles are unique per account, not globally; each sees its own."""
    for client_api, rate in ((api, "10"), (other_api, "20")):
        assert (
            client_api.post("/v1/taxes/", {"code": "VAT", "name": "VAT", "rate": rate}).status_code
            == 201
        )
        assert (
            client_api.post(
                "/v1/billing_entities/", {"code": "eu", "name": "EU " + rate}
            ).status_code
            == 201
        )
        client_api.customer("same-handle")
    assert api.get("/v1/taxes/VAT").get_json()["rate"] == "10"
    assert other_api.get("/v1/taxes/VAT").get_json()["rate"] == "20"
    assert api.get("/v1/billing_entities/eu").get_json()["name"] == "EU 10"
    assert other_api.get("/v1/billing_entities/eu").get_json()["name"] == "EU 20"
    # Deleting ours leaves theirs.
    assert api.delete("/v1/taxes/VAT").status_code == 204
    assert other_api.get("/v1/taxes/VAT").status_code == 200
    assert api.delete("/v1/billing_entities/eu").status_code == 204
    assert other_api.get("/v1/billing_entities/eu").status_code == 200


def test_idempotency_keys_are_scoped_per_account(api, other_api):
    """The same Idempotency-Key in two accounts is two requests, never a replay of the
    other account's response."""
    headers = {"Idempotency-Key": "shared-key"}
    body = {"external_id": "idem", "name": "Idem"}
    first = api.post("/v1/customers/", body, headers=headers)
    second = other_api.post("/v1/customers/", body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.headers.get("Idempotent-Replayed") is None
    assert first.get_json()["id"] != second.get_json()["id"]
    assert [c["id"] for c in other_api.get("/v1/customers/").get_json()] == [
        second.get_json()["id"]
    ]


# ---------------------------------------------------------------- lists


def _populate(api: Any, tag: str) -> dict[str, set[str]]:
    customer = api.customer(f"{tag}-customer")
    api.customer(f"{tag}-customer-2")
    drafts = [api.invoice(customer["id"]) for _ in range(2)]
    fin = api.invoice(customer["id"])
    assert api.post(f"/v1/invoices/{fin['id']}/finalize").status_code == 200
    paid = api.invoice(customer["id"])
    assert api.post(f"/v1/invoices/{paid['id']}/finalize").status_code == 200
    assert api.post(f"/v1/invoices/{paid['id']}/pay").status_code == 200
    void = api.invoice(customer["id"])
    assert api.post(f"/v1/invoices/{void['id']}/void").status_code == 200
    assert api.post("/v1/billing_entities/", {"code": f"{tag}-be", "name": tag}).status_code == 201
    assert (
        api.post("/v1/taxes/", {"code": f"{tag}-tax", "name": tag, "rate": "5"}).status_code == 201
    )
    return {
        "/v1/invoices/": {i["id"] for i in api.get("/v1/invoices/").get_json()},
        "/v1/customers/": {c["id"] for c in api.get("/v1/customers/").get_json()},
        "/v1/billing_entities/": {e["id"] for e in api.get("/v1/billing_entities/").get_json()},
        "/v1/taxes/": {t["id"] for t in api.get("/v1/taxes/").get_json()},
        "customer": {customer["id"]},
        "drafts": {d["id"] for d in drafts},
    }


LIST_QUERIES = [
    "/v1/invoices/",
    "/v1/invoices/?status=draft",
    "/v1/invoices/?status=finalized",
    "/v1/invoices/?status=paid",
    "/v1/invoices/?status=voided",
    "/v1/invoices/?limit=1000",
    "/v1/invoices/?order_by=-total_cents",
    "/v1/customers/",
    "/v1/customers/?limit=1000&order_by=name",
    "/v1/billing_entities/",
    "/v1/billing_entities/?order_by=code",
    "/v1/taxes/",
    "/v1/taxes/?order_by=-rate",
]


@pytest.mark.parametrize("query", LIST_QUERIES)
def test_lists_never_show_other_accounts_rows(api, other_api, query):
    ours = _populate(api, "ours")
    theirs = _populate(other_api, "theirs")
    base = query.split("?")[0]
    assert ours[base] and theirs[base]
    assert not ours[base] & theirs[base]
    for who, mine, other in ((api, ours, theirs), (other_api, theirs, ours)):
        resp = who.get(query)
        assert resp.status_code == 200
        ids = [row["id"] for row in resp.get_json()]
        assert ids, query
        assert set(ids) <= mine[base]
        assert not set(ids) & other[base]
        if "status" not in query:
            assert set(ids) == mine[base]


def test_invoice_list_filtered_by_their_customer_is_empty(api, other_api):
    _populate(api, "ours")
    theirs = _populate(other_api, "theirs")
    (their_customer,) = theirs["customer"]
    resp = api.get(f"/v1/invoices/?customer_id={their_customer}")
    assert resp.status_code == 200
    assert resp.get_json() == []
    missing = api.get(f"/v1/invoices/?customer_id={uuid.uuid4()}")
    assert missing.status_code == 200 and missing.get_json() == []
    # Their own filter still works for them.
    assert len(other_api.get(f"/v1/invoices/?customer_id={their_customer}").get_json()) == 5


def test_invoice_created_by_one_account_is_listed_only_there(api, other_api):
    ours = api.customer("c")
    theirs = other_api.customer("c")
    inv = api.invoice(ours["id"])
    assert [i["id"] for i in api.get("/v1/invoices/").get_json()] == [inv["id"]]
    assert other_api.get("/v1/invoices/").get_json() == []
    assert other_api.get(f"/v1/invoices/?customer_id={theirs['id']}").get_json() == []
