"""Dialect A resources: customers, billing entities and taxes (CRUD), the tax precedence as
invoices show it, and the invoice list's filters, paging and ordering."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

try:  # tests/ as a package (tests/__init__.py) or as a plain directory
    from .conftest import row_counts
except ImportError:
    from conftest import row_counts  # type: ignore[no-redef]


def line(amount: int = 10000, **extra: Any) -> dict[str, Any]:
    return {"description": "Item", "quantity": 1, "unit_price": amount, "amount": amount, **extra}


def create(api: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = api.post(path, body)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()  # type: ignore[no-any-return]


def ok(resp: Any, status: int = 200) -> Any:
    assert resp.status_code == status, resp.get_data(as_text=True)[:500]
    return resp.get_json()


# ================================================================ customers


def test_customer_create_returns_201_with_defaults(api):
    body = ok(api.post("/v1/customers/", {"external_id": "acme", "name": "Acme"}), 201)
    uuid.UUID(body["id"])
    assert body["external_id"] == "acme"
    assert body["name"] == "Acme"
    assert body["email"] is None
    assert body["currency"] == "USD"
    assert body["timezone"] == "UTC"
    assert body["billing_metadata"] == {}
    assert body["invoice_grace_period"] == 0
    assert body["net_payment_term"] == 30
    assert body["billing_entity_id"] is None
    assert body["created_at"].endswith("+00:00")
    assert body["updated_at"].endswith("+00:00")


def test_customer_create_with_all_fields(api):
    body = ok(
        api.post(
            "/v1/customers/",
            {
                "external_id": "full",
                "name": "Full Ltd",
                "email": "billing@full.example",
                "currency": "gbp",
                "timezone": "Europe/London",
                "billing_metadata": {"crm": 42},
                "invoice_grace_period": 3,
                "net_payment_term": 14,
            },
        ),
        201,
    )
    assert body["currency"] == "GBP"
    assert body["email"] == "billing@full.example"
    assert body["timezone"] == "Europe/London"
    assert body["billing_metadata"] == {"crm": 42}
    assert body["invoice_grace_period"] == 3
    assert body["net_payment_term"] == 14
    assert ok(api.get(f"/v1/customers/{body['id']}")) == body


def test_customer_duplicate_external_id_409(api, app):
    first = api.customer("dup")
    before = row_counts(app)
    resp = api.post("/v1/customers/", {"external_id": "dup", "name": "Second"})
    assert resp.status_code == 409
    assert resp.get_json() == {"detail": "Customer with this external_id already exists"}
    assert row_counts(app) == before
    assert [c["id"] for c in ok(api.get("/v1/customers/"))] == [first["id"]]
    assert ok(api.get(f"/v1/customers/{first['id']}"))["name"] == "Customer dup"


def test_customer_get_unknown_and_malformed_id_404(api):
    for cid in (uuid.uuid4(), "not-a-uuid"):
        resp = api.get(f"/v1/customers/{cid}")
        assert resp.status_code == 404
        assert resp.get_json() == {"detail": "Customer not found"}


def test_customer_update_changes_only_given_fields(api):
    created = ok(
        api.post(
            "/v1/customers/",
            {"external_id": "upd", "name": "Old", "email": "old@example.com", "currency": "EUR"},
        ),
        201,
    )
    updated = ok(
        api.put(
            f"/v1/customers/{created['id']}",
            {"name": "New", "net_payment_term": 7, "currency": "sek"},
        )
    )
    assert updated["name"] == "New"
    assert updated["net_payment_term"] == 7
    assert updated["currency"] == "SEK"
    assert updated["email"] == "old@example.com"
    assert updated["external_id"] == "upd"
    assert updated["id"] == created["id"]
    assert updated["created_at"] == created["created_at"]
    assert ok(api.get(f"/v1/customers/{created['id']}")) == updated


def test_customer_update_null_for_required_field_422(api, app):
    created = api.customer("nulls")
    before = row_counts(app)
    resp = api.put(f"/v1/customers/{created['id']}", {"name": None})
    assert resp.status_code == 422
    assert resp.get_json()["detail"][0]["loc"][-1] == "name"
    assert row_counts(app) == before
    assert ok(api.get(f"/v1/customers/{created['id']}"))["name"] == created["name"]


def test_customer_update_unknown_404(api):
    resp = api.put(f"/v1/customers/{uuid.uuid4()}", {"name": "X"})
    assert resp.status_code == 404
    assert resp.get_json() == {"detail": "Customer not found"}


def test_customer_delete_204_then_gone(api, app):
    keep = api.customer("keep")
    gone = api.customer("gone")
    resp = api.delete(f"/v1/customers/{gone['id']}")
    assert resp.status_code == 204
    assert resp.get_data() == b""
    assert api.get(f"/v1/customers/{gone['id']}").status_code == 404
    assert [c["id"] for c in ok(api.get("/v1/customers/"))] == [keep["id"]]
    again = api.delete(f"/v1/customers/{gone['id']}")
    assert again.status_code == 404
    assert again.get_json() == {"detail": "Customer not found"}
    # The handle is free again.
    api.customer("gone")


@pytest.mark.parametrize("state", ["draft", "finalized", "paid", "voided"])
def test_customer_with_invoices_cannot_be_deleted(api, app, state):
    customer = api.customer("busy")
    invoice = api.invoice(customer["id"])
    if state in ("finalized", "paid"):
        ok(api.post(f"/v1/invoices/{invoice['id']}/finalize"))
    if state == "paid":
        ok(api.post(f"/v1/invoices/{invoice['id']}/pay"))
    if state == "voided":
        ok(api.post(f"/v1/invoices/{invoice['id']}/void"))
    before = row_counts(app)
    invoice_before = ok(api.get(f"/v1/invoices/{invoice['id']}"))
    resp = api.delete(f"/v1/customers/{customer['id']}")
    assert resp.status_code == 400
    assert isinstance(resp.get_json()["detail"], str) and resp.get_json()["detail"]
    assert row_counts(app) == before
    assert ok(api.get(f"/v1/customers/{customer['id']}")) == customer
    assert ok(api.get(f"/v1/invoices/{invoice['id']}")) == invoice_before


def test_customer_deletable_after_its_draft_is_deleted(api):
    customer = api.customer("later")
    invoice = api.invoice(customer["id"])
    assert api.delete(f"/v1/customers/{customer['id']}").status_code == 400
    assert api.delete(f"/v1/invoices/{invoice['id']}").status_code == 204
    assert api.delete(f"/v1/customers/{customer['id']}").status_code == 204


@pytest.fixture
def five_customers(api) -> list[dict[str, Any]]:
    names = ["Delta", "alpha", "Charlie", "Echo", "Bravo"]
    return [
        ok(
            api.post(
                "/v1/customers/",
                {"external_id": f"c{i}", "name": n, "email": f"{n.lower()}@example.com"},
            ),
            201,
        )
        for i, n in enumerate(names)
    ]


@pytest.mark.parametrize(
    ("order_by", "key", "reverse"),
    [
        ("name", "name", False),
        ("-name", "name", True),
        ("name desc", "name", True),
        ("name:asc", "name", False),
        ("external_id", "external_id", False),
        ("-external_id", "external_id", True),
        ("email", "email", False),
    ],
)
def test_customer_list_ordering(api, five_customers, order_by, key, reverse):
    listed = ok(api.get("/v1/customers/", query_string={"order_by": order_by}))
    values = [c[key] for c in listed]
    assert len(values) == 5
    # Whatever the database's collation, the order must be consistent with one of the
    # usual ones: binary or case-insensitive.
    candidates = [sorted(values, reverse=reverse), sorted(values, key=str.lower, reverse=reverse)]
    assert values in candidates, values


def test_customer_list_default_order_is_creation(api, five_customers):
    listed = ok(api.get("/v1/customers/"))
    assert [c["id"] for c in listed] == [c["id"] for c in five_customers]


def test_customer_list_paging(api, five_customers):
    full = [c["id"] for c in ok(api.get("/v1/customers/?order_by=external_id"))]
    assert full == [c["id"] for c in five_customers]
    assert [c["id"] for c in ok(api.get("/v1/customers/?order_by=external_id&limit=2"))] == full[:2]
    assert [
        c["id"] for c in ok(api.get("/v1/customers/?order_by=external_id&skip=1&limit=2"))
    ] == full[1:3]
    assert [c["id"] for c in ok(api.get("/v1/customers/?order_by=external_id&skip=4"))] == full[4:]
    assert ok(api.get("/v1/customers/?skip=5")) == []
    assert ok(api.get("/v1/customers/?skip=1000&limit=1000")) == []


@pytest.mark.parametrize(
    "path", ["/v1/customers/", "/v1/billing_entities/", "/v1/taxes/", "/v1/invoices/"]
)
def test_bad_order_by_names_order_by(api, path):
    resp = api.get(path, query_string={"order_by": "no_such_column"})
    assert resp.status_code == 422
    detail = resp.get_json()["detail"]
    assert any(item["loc"] == ["query", "order_by"] for item in detail), detail


# ================================================================ billing entities


def test_account_starts_with_one_default_entity(api):
    listed = ok(api.get("/v1/billing_entities/"))
    assert [(e["code"], e["is_default"]) for e in listed] == [("default", True)]


def test_entity_create_get_update(api):
    created = ok(
        api.post(
            "/v1/billing_entities/",
            {
                "code": "eu",
                "name": "Acme EU",
                "legal_name": "Acme Europe GmbH",
                "country": "DE",
                "currency": "eur",
                "invoice_prefix": "EU",
                "net_payment_term": 14,
                "address_line1": "Hauptstr. 1",
                "city": "Berlin",
                "zip_code": "10115",
                "tax_id": "DE123456789",
                "email": "billing@acme.example",
            },
        ),
        201,
    )
    uuid.UUID(created["id"])
    assert created["code"] == "eu"
    assert created["currency"] == "EUR"
    assert created["is_default"] is False
    assert created["next_invoice_number"] == 1
    assert created["net_payment_term"] == 14
    assert created["invoice_prefix"] == "EU"
    assert ok(api.get("/v1/billing_entities/eu")) == created
    patched = ok(api.patch("/v1/billing_entities/eu", {"name": "Acme Europe", "city": "Hamburg"}))
    assert patched["name"] == "Acme Europe"
    assert patched["city"] == "Hamburg"
    assert patched["legal_name"] == "Acme Europe GmbH"  # untouched
    assert patched["code"] == "eu"
    assert ok(api.get("/v1/billing_entities/eu")) == patched


def test_entity_duplicate_code_409(api, app):
    before = row_counts(app)
    resp = api.post("/v1/billing_entities/", {"code": "default", "name": "Again"})
    assert resp.status_code == 409
    assert resp.get_json() == {"detail": "Billing entity with this code already exists"}
    assert row_counts(app) == before
    assert ok(api.get("/v1/billing_entities/default"))["name"] == "Tenant One GmbH"


def test_entity_unknown_code_404(api):
    for method in ("GET", "PATCH", "DELETE"):
        resp = api.client.open(
            "/v1/billing_entities/nope",
            method=method,
            json={"name": "x"} if method == "PATCH" else None,
            headers=api.tenant.headers,
        )
        assert resp.status_code == 404
        assert resp.get_json() == {"detail": "Billing entity not found"}


def test_entity_list_paging_and_ordering(api):
    for code in ("c-ent", "a-ent", "b-ent"):
        create(api, "/v1/billing_entities/", {"code": code, "name": code.upper()})
    by_code = [e["code"] for e in ok(api.get("/v1/billing_entities/?order_by=code"))]
    assert by_code == ["a-ent", "b-ent", "c-ent", "default"]
    desc = [e["code"] for e in ok(api.get("/v1/billing_entities/?order_by=-code"))]
    assert desc == by_code[::-1]
    page = [e["code"] for e in ok(api.get("/v1/billing_entities/?order_by=code&skip=1&limit=2"))]
    assert page == ["b-ent", "c-ent"]
    by_creation = [e["code"] for e in ok(api.get("/v1/billing_entities/"))]
    assert by_creation == ["default", "c-ent", "a-ent", "b-ent"]


def test_entity_delete_204(api, app):
    create(api, "/v1/billing_entities/", {"code": "tmp", "name": "Temp"})
    resp = api.delete("/v1/billing_entities/tmp")
    assert resp.status_code == 204
    assert resp.get_data() == b""
    assert api.get("/v1/billing_entities/tmp").status_code == 404
    assert [e["code"] for e in ok(api.get("/v1/billing_entities/"))] == ["default"]


def test_entity_with_invoices_cannot_be_deleted(api, app):
    entity = create(api, "/v1/billing_entities/", {"code": "busy", "name": "Busy"})
    customer = api.customer()
    invoice = api.invoice(customer["id"], billing_entity_id=entity["id"])
    assert invoice["billing_entity_id"] == entity["id"]
    before = row_counts(app)
    resp = api.delete("/v1/billing_entities/busy")
    assert resp.status_code == 400
    assert isinstance(resp.get_json()["detail"], str)
    assert row_counts(app) == before
    assert ok(api.get("/v1/billing_entities/busy")) == entity
    assert ok(api.get(f"/v1/invoices/{invoice['id']}"))["billing_entity_id"] == entity["id"]


def test_default_entity_cannot_be_deleted(api, app):
    before = row_counts(app)
    default = ok(api.get("/v1/billing_entities/default"))
    resp = api.delete("/v1/billing_entities/default")
    assert resp.status_code == 400
    assert isinstance(resp.get_json()["detail"], str)
    assert row_counts(app) == before
    assert ok(api.get("/v1/billing_entities/default")) == default


def test_making_another_entity_default_moves_the_flag(api):
    create(api, "/v1/billing_entities/", {"code": "new", "name": "New"})
    ok(api.patch("/v1/billing_entities/new", {"is_default": True}))
    flags = {e["code"]: e["is_default"] for e in ok(api.get("/v1/billing_entities/"))}
    assert flags == {"default": False, "new": True}
    # Now the old default can go, the new one cannot.
    assert api.delete("/v1/billing_entities/new").status_code == 400
    assert api.delete("/v1/billing_entities/default").status_code == 204
    # New invoices go to the new default.
    customer = api.customer()
    invoice = api.invoice(customer["id"])
    assert invoice["billing_entity_id"] == ok(api.get("/v1/billing_entities/new"))["id"]


def test_create_as_default_moves_the_flag(api):
    created = create(api, "/v1/billing_entities/", {"code": "hq", "name": "HQ", "is_default": True})
    assert created["is_default"] is True
    assert ok(api.get("/v1/billing_entities/default"))["is_default"] is False


def test_unsetting_the_only_default_is_refused(api, app):
    before = row_counts(app)
    resp = api.patch("/v1/billing_entities/default", {"is_default": False})
    assert resp.status_code == 422
    assert row_counts(app) == before
    assert ok(api.get("/v1/billing_entities/default"))["is_default"] is True


def test_deleting_entity_used_by_customer_clears_the_customer_link(api):
    create(api, "/v1/billing_entities/", {"code": "link", "name": "Link"})
    customer = ok(
        api.post(
            "/v1/customers/", {"external_id": "linked", "name": "L", "billing_entity_code": "link"}
        ),
        201,
    )
    assert customer["billing_entity_id"] is not None
    assert api.delete("/v1/billing_entities/link").status_code == 204
    assert ok(api.get(f"/v1/customers/{customer['id']}"))["billing_entity_id"] is None


# ================================================================ taxes


def test_tax_crud(api):
    created = ok(
        api.post(
            "/v1/taxes/",
            {
                "code": "VAT19",
                "name": "VAT 19%",
                "rate": "19.00",
                "description": "Standard",
                "category": "vat",
            },
        ),
        201,
    )
    uuid.UUID(created["id"])
    assert created["rate"] == "19"
    assert created["applied_to_organization"] is False
    assert created["description"] == "Standard"
    # Only the create's answer says which organisation default it replaced (none here).
    assert created.pop("replaced_organization_tax") is None
    assert ok(api.get("/v1/taxes/VAT19")) == created
    updated = ok(api.put("/v1/taxes/VAT19", {"rate": 19.5, "name": "VAT 19.5%"}))
    assert updated["rate"] == "19.5"
    assert updated["name"] == "VAT 19.5%"
    assert updated["description"] == "Standard"
    assert ok(api.get("/v1/taxes/VAT19")) == updated
    resp = api.delete("/v1/taxes/VAT19")
    assert resp.status_code == 204
    assert resp.get_data() == b""
    missing = api.get("/v1/taxes/VAT19")
    assert missing.status_code == 404
    assert missing.get_json() == {"detail": "Tax not found"}
    assert api.delete("/v1/taxes/VAT19").status_code == 404


def test_tax_rate_kept_exactly(api):
    created = ok(api.post("/v1/taxes/", {"code": "odd", "name": "Odd", "rate": "7.125"}), 201)
    assert created["rate"] == "7.125"


def test_tax_duplicate_code_409(api, app):
    create(api, "/v1/taxes/", {"code": "T", "name": "T", "rate": "5"})
    before = row_counts(app)
    resp = api.post("/v1/taxes/", {"code": "T", "name": "Other", "rate": "6"})
    assert resp.status_code == 409
    assert resp.get_json() == {"detail": "Tax with this code already exists"}
    assert row_counts(app) == before
    assert ok(api.get("/v1/taxes/T"))["rate"] == "5"


def test_tax_unknown_code_404(api):
    resp = api.put("/v1/taxes/none", {"rate": "1"})
    assert resp.status_code == 404
    assert resp.get_json() == {"detail": "Tax not found"}


def test_tax_list_order_and_paging(api):
    for code, rate in (("b", "20"), ("c", "5"), ("a", "10")):
        create(api, "/v1/taxes/", {"code": code, "name": code, "rate": rate})
    assert [t["code"] for t in ok(api.get("/v1/taxes/"))] == ["a", "b", "c"]
    assert [t["code"] for t in ok(api.get("/v1/taxes/?order_by=-code&limit=2"))] == ["c", "b"]
    assert [t["code"] for t in ok(api.get("/v1/taxes/?skip=2"))] == ["c"]


def test_tax_list_order_by_rate_is_numeric(api):
    for code, rate in (("ten", "10"), ("five", "5"), ("twenty", "20"), ("seven", "7.5")):
        create(api, "/v1/taxes/", {"code": code, "name": code, "rate": rate})
    rates = [t["rate"] for t in ok(api.get("/v1/taxes/?order_by=rate"))]
    assert rates == ["5", "7.5", "10", "20"]


def test_only_one_organization_tax(api):
    first = create(
        api,
        "/v1/taxes/",
        {"code": "org1", "name": "O1", "rate": "5", "applied_to_organization": True},
    )
    assert first["replaced_organization_tax"] is None
    second = create(
        api,
        "/v1/taxes/",
        {"code": "org2", "name": "O2", "rate": "6", "applied_to_organization": True},
    )
    # Creating an organisation-wide tax says which default it replaced.
    assert second["replaced_organization_tax"] == "org1"
    plain = create(api, "/v1/taxes/", {"code": "plain", "name": "P", "rate": "7"})
    assert plain["replaced_organization_tax"] is None
    flags = {t["code"]: t["applied_to_organization"] for t in ok(api.get("/v1/taxes/"))}
    assert flags == {"org1": False, "org2": True, "plain": False}
    ok(api.put("/v1/taxes/org1", {"applied_to_organization": True}))
    flags = {t["code"]: t["applied_to_organization"] for t in ok(api.get("/v1/taxes/"))}
    assert flags == {"org1": True, "org2": False, "plain": False}


# ---------------------------------------------------------------- tax precedence


@pytest.fixture
def taxes(api) -> None:
    """ORG 5 % (account-wide), ENT 10 % (entity `eu` default), CUST 19 % (customer)."""
    create(
        api,
        "/v1/taxes/",
        {"code": "ORG", "name": "Org", "rate": "5", "applied_to_organization": True},
    )
    create(api, "/v1/taxes/", {"code": "ENT", "name": "Entity", "rate": "10"})
    create(api, "/v1/taxes/", {"code": "CUST", "name": "Customer", "rate": "19"})
    create(api, "/v1/billing_entities/", {"code": "eu", "name": "EU", "tax_code": "ENT"})


def _tax_of(invoice: dict[str, Any]) -> tuple[str, list[str]]:
    return invoice["tax_amount_cents"], [li["tax_rate"] for li in invoice["line_items"]]


def test_precedence_line_rate_wins(api, taxes):
    customer = ok(
        api.post("/v1/customers/", {"external_id": "c", "name": "C", "tax_code": "CUST"}), 201
    )
    entity = ok(api.get("/v1/billing_entities/eu"))
    invoice = api.invoice(customer["id"], [line(tax_rate="7")], billing_entity_id=entity["id"])
    assert _tax_of(invoice) == ("700", ["7"])
    assert invoice["total_cents"] == "10700"


def test_precedence_customer_tax_over_entity_and_org(api, taxes):
    customer = ok(
        api.post("/v1/customers/", {"external_id": "c", "name": "C", "tax_code": "CUST"}), 201
    )
    entity = ok(api.get("/v1/billing_entities/eu"))
    invoice = api.invoice(customer["id"], [line()], billing_entity_id=entity["id"])
    assert _tax_of(invoice) == ("1900", ["19"])
    assert invoice["line_items"][0]["tax_amount_cents"] == "1900"
    assert invoice["total_cents"] == "11900"


def test_precedence_entity_default_over_org(api, taxes):
    customer = api.customer("plain")
    entity = ok(api.get("/v1/billing_entities/eu"))
    invoice = api.invoice(customer["id"], [line()], billing_entity_id=entity["id"])
    assert _tax_of(invoice) == ("1000", ["10"])


def test_precedence_entity_via_customer_default_entity(api, taxes):
    customer = ok(
        api.post(
            "/v1/customers/", {"external_id": "eu-cust", "name": "C", "billing_entity_code": "eu"}
        ),
        201,
    )
    invoice = api.invoice(customer["id"], [line()])
    assert invoice["billing_entity_id"] == ok(api.get("/v1/billing_entities/eu"))["id"]
    assert _tax_of(invoice) == ("1000", ["10"])


def test_precedence_org_tax_when_nothing_else(api, taxes):
    customer = api.customer("plain")
    invoice = api.invoice(customer["id"], [line()])  # default entity has no tax
    assert _tax_of(invoice) == ("500", ["5"])


def test_precedence_zero_without_any_tax(api):
    customer = api.customer("plain")
    invoice = api.invoice(customer["id"], [line()])
    assert _tax_of(invoice) == ("0", ["0"])
    assert invoice["total_cents"] == invoice["subtotal_cents"] == "10000"


def test_precedence_zero_line_rate_beats_customer_tax(api, taxes):
    """An explicit 0 on the line is a rate, not 'no rate'."""
    customer = ok(
        api.post("/v1/customers/", {"external_id": "c", "name": "C", "tax_code": "CUST"}), 201
    )
    invoice = api.invoice(customer["id"], [line(tax_rate="0")])
    assert _tax_of(invoice) == ("0", ["0"])


def test_precedence_mixed_lines_per_rate(api, taxes):
    customer = ok(
        api.post("/v1/customers/", {"external_id": "c", "name": "C", "tax_code": "CUST"}), 201
    )
    invoice = api.invoice(customer["id"], [line(1000), line(2000, tax_rate="7"), line(3000)])
    # 19 % of 4000 + 7 % of 2000
    assert _tax_of(invoice) == ("900", ["19", "7", "19"])
    assert invoice["subtotal_cents"] == "6000"
    assert invoice["total_cents"] == "6900"


def test_customer_tax_set_by_update(api, taxes):
    customer = api.customer("later")
    ok(api.put(f"/v1/customers/{customer['id']}", {"tax_code": "CUST"}))
    assert _tax_of(api.invoice(customer["id"], [line()])) == ("1900", ["19"])
    ok(api.put(f"/v1/customers/{customer['id']}", {"tax_code": None}))
    assert _tax_of(api.invoice(customer["id"], [line()])) == ("500", ["5"])


def test_unknown_tax_code_on_customer_422(api, app):
    before = row_counts(app)
    resp = api.post("/v1/customers/", {"external_id": "c", "name": "C", "tax_code": "NOPE"})
    assert resp.status_code == 422
    assert any(item["loc"][-1] == "tax_code" for item in resp.get_json()["detail"])
    assert row_counts(app) == before


def test_deleted_tax_leaves_existing_invoices_unchanged(api, taxes):
    customer = ok(
        api.post("/v1/customers/", {"external_id": "c", "name": "C", "tax_code": "CUST"}), 201
    )
    draft = api.invoice(customer["id"], [line(), line(2000)])
    finalized = api.invoice(customer["id"], [line(3000)])
    finalized = ok(api.post(f"/v1/invoices/{finalized['id']}/finalize"))
    assert _tax_of(draft) == ("2280", ["19", "19"])
    assert _tax_of(finalized) == ("570", ["19"])

    assert api.delete("/v1/taxes/CUST").status_code == 204

    for inv in (draft, finalized):
        again = ok(api.get(f"/v1/invoices/{inv['id']}"))
        assert _tax_of(again) == _tax_of(inv)
        assert again["total_cents"] == inv["total_cents"]
        assert again["line_items"] == inv["line_items"]
    # Finalizing the draft afterwards keeps the rate its lines copied.
    done = ok(api.post(f"/v1/invoices/{draft['id']}/finalize"))
    assert _tax_of(done) == ("2280", ["19", "19"])
    assert done["total_cents"] == "14280"
    # New invoices fall back to the next level (the organisation tax).
    assert _tax_of(api.invoice(customer["id"], [line()])) == ("500", ["5"])
    assert ok(api.get(f"/v1/customers/{customer['id']}"))["id"] == customer["id"]


def test_deleted_entity_tax_falls_back_for_new_invoices_only(api, taxes):
    customer = api.customer("plain")
    entity = ok(api.get("/v1/billing_entities/eu"))
    before = api.invoice(customer["id"], [line()], billing_entity_id=entity["id"])
    assert api.delete("/v1/taxes/ENT").status_code == 204
    assert _tax_of(ok(api.get(f"/v1/invoices/{before['id']}"))) == ("1000", ["10"])
    after = api.invoice(customer["id"], [line()], billing_entity_id=entity["id"])
    assert _tax_of(after) == ("500", ["5"])


def test_updated_tax_rate_leaves_existing_invoices_unchanged(api, taxes):
    customer = ok(
        api.post("/v1/customers/", {"external_id": "c", "name": "C", "tax_code": "CUST"}), 201
    )
    draft = api.invoice(customer["id"], [line()])
    ok(api.put("/v1/taxes/CUST", {"rate": "21"}))
    assert _tax_of(ok(api.get(f"/v1/invoices/{draft['id']}"))) == ("1900", ["19"])
    assert _tax_of(ok(api.post(f"/v1/invoices/{draft['id']}/finalize"))) == ("1900", ["19"])
    assert _tax_of(api.invoice(customer["id"], [line()])) == ("2100", ["21"])


def test_deleting_org_tax_falls_back_to_zero(api, taxes):
    customer = api.customer("plain")
    old = api.invoice(customer["id"], [line()])
    assert api.delete("/v1/taxes/ORG").status_code == 204
    assert _tax_of(api.invoice(customer["id"], [line()])) == ("0", ["0"])
    assert _tax_of(ok(api.get(f"/v1/invoices/{old['id']}"))) == ("500", ["5"])


# ================================================================ invoice list


@pytest.fixture
def invoices(api) -> dict[str, Any]:
    """Customer A: one invoice per status (distinct totals); customer B: one draft."""
    a = api.customer("a")
    b = api.customer("b")
    draft = api.invoice(a["id"], [line(1000)])
    finalized = api.invoice(a["id"], [line(2000)])
    ok(api.post(f"/v1/invoices/{finalized['id']}/finalize"))
    paid = api.invoice(a["id"], [line(3000)])
    ok(api.post(f"/v1/invoices/{paid['id']}/finalize"))
    ok(api.post(f"/v1/invoices/{paid['id']}/pay"))
    voided = api.invoice(a["id"], [line(4000)])
    ok(api.post(f"/v1/invoices/{voided['id']}/finalize"))
    ok(api.post(f"/v1/invoices/{voided['id']}/void"))
    other = api.invoice(b["id"], [line(5000)])
    return {
        "a": a["id"],
        "b": b["id"],
        "draft": draft["id"],
        "finalized": finalized["id"],
        "paid": paid["id"],
        "voided": voided["id"],
        "other": other["id"],
    }


def _ids(resp: Any) -> list[str]:
    return [i["id"] for i in ok(resp)]


@pytest.mark.parametrize("status", ["draft", "finalized", "paid", "voided"])
def test_invoice_list_status_filter(api, invoices, status):
    listed = ok(api.get(f"/v1/invoices/?status={status}"))
    assert {i["status"] for i in listed} == {status}
    expected = {invoices[status]} | ({invoices["other"]} if status == "draft" else set())
    assert {i["id"] for i in listed} == expected


def test_invoice_list_customer_filter(api, invoices):
    a_ids = set(_ids(api.get(f"/v1/invoices/?customer_id={invoices['a']}")))
    assert a_ids == {invoices[k] for k in ("draft", "finalized", "paid", "voided")}
    assert _ids(api.get(f"/v1/invoices/?customer_id={invoices['b']}")) == [invoices["other"]]
    assert _ids(api.get(f"/v1/invoices/?customer_id={uuid.uuid4()}")) == []


def test_invoice_list_combined_filters(api, invoices):
    assert _ids(api.get(f"/v1/invoices/?customer_id={invoices['b']}&status=draft")) == [
        invoices["other"]
    ]
    assert _ids(api.get(f"/v1/invoices/?customer_id={invoices['b']}&status=paid")) == []
    assert _ids(api.get(f"/v1/invoices/?customer_id={invoices['a']}&status=draft")) == [
        invoices["draft"]
    ]


def test_invoice_list_subscription_filter_matches_no_one_off(api, invoices):
    assert _ids(api.get(f"/v1/invoices/?subscription_id={uuid.uuid4()}")) == []


def test_invoice_list_without_filters_lists_all(api, invoices):
    listed = ok(api.get("/v1/invoices/"))
    assert len(listed) == 5
    assert {i["id"] for i in listed} == {v for k, v in invoices.items() if k not in ("a", "b")}


def test_invoice_list_ordering_by_total(api, invoices):
    order = ["draft", "finalized", "paid", "voided", "other"]
    expected = [invoices[k] for k in order]
    assert _ids(api.get("/v1/invoices/?order_by=total_cents")) == expected
    assert _ids(api.get("/v1/invoices/?order_by=-total_cents")) == expected[::-1]
    assert _ids(api.get("/v1/invoices/?order_by=total_cents%20desc")) == expected[::-1]


def test_invoice_list_default_order_newest_first(api, invoices):
    listed = ok(api.get("/v1/invoices/"))
    created = [i["created_at"] for i in listed]
    assert created == sorted(created, reverse=True)
    asc = ok(api.get("/v1/invoices/?order_by=created_at"))
    assert [i["id"] for i in asc] == [i["id"] for i in listed][::-1]


def test_invoice_list_ordering_by_number_puts_numbered_in_sequence(api, invoices):
    numbered = [i for i in ok(api.get("/v1/invoices/?order_by=number")) if i["status"] != "draft"]
    assert [i["id"] for i in numbered] == [invoices[k] for k in ("finalized", "paid", "voided")]


def test_invoice_list_paging(api, invoices):
    full = _ids(api.get("/v1/invoices/?order_by=total_cents"))
    assert _ids(api.get("/v1/invoices/?order_by=total_cents&limit=2")) == full[:2]
    assert _ids(api.get("/v1/invoices/?order_by=total_cents&skip=2&limit=2")) == full[2:4]
    assert _ids(api.get("/v1/invoices/?order_by=total_cents&skip=4&limit=2")) == full[4:]
    assert _ids(api.get("/v1/invoices/?order_by=total_cents&skip=5")) == []
    assert _ids(api.get("/v1/invoices/?limit=1000")) == _ids(api.get("/v1/invoices/"))


def test_invoice_list_default_limit_is_100(api):
    customer = api.customer()
    lines = [line(1)]
    for _ in range(101):
        resp = api.post(
            "/v1/invoices/one_off", {"customer_id": customer["id"], "line_items": lines}
        )
        assert resp.status_code == 200
    assert len(ok(api.get("/v1/invoices/"))) == 100
    assert len(ok(api.get("/v1/invoices/?limit=1000"))) == 101
    assert len(ok(api.get("/v1/invoices/?skip=100"))) == 1


def test_invoice_list_paged_by_status(api, invoices):
    assert len(_ids(api.get("/v1/invoices/?status=draft&limit=1"))) == 1
    assert _ids(api.get("/v1/invoices/?status=draft&order_by=total_cents&skip=1")) == [
        invoices["other"]
    ]


# ================================================================ invoice reads and deletes


def test_get_unknown_or_malformed_invoice_404(api):
    for iid in (uuid.uuid4(), "nope", "123"):
        resp = api.get(f"/v1/invoices/{iid}")
        assert resp.status_code == 404
        assert resp.get_json() == {"detail": "Invoice not found"}


def test_invoice_get_matches_create_response(api):
    customer = api.customer()
    created = api.invoice(
        customer["id"], [line(1234, tax_rate="19")], due_date="2030-05-01T00:00:00+00:00"
    )
    assert ok(api.get(f"/v1/invoices/{created['id']}")) == created


def test_invoice_delete_draft_204(api, app):
    customer = api.customer()
    invoice = api.invoice(customer["id"])
    resp = api.delete(f"/v1/invoices/{invoice['id']}")
    assert resp.status_code == 204
    assert resp.get_data() == b""
    assert api.get(f"/v1/invoices/{invoice['id']}").status_code == 404
    assert ok(api.get("/v1/invoices/")) == []


def test_invoice_delete_finalized_400(api, app):
    customer = api.customer()
    invoice = api.invoice(customer["id"])
    finalized = ok(api.post(f"/v1/invoices/{invoice['id']}/finalize"))
    before = row_counts(app)
    resp = api.delete(f"/v1/invoices/{invoice['id']}")
    assert resp.status_code == 400
    assert isinstance(resp.get_json()["detail"], str)
    assert row_counts(app) == before
    assert ok(api.get(f"/v1/invoices/{invoice['id']}")) == finalized


# ================================================================ codes in paths


@pytest.mark.parametrize(
    "code", ["eu/de", "a b", "ü-steuer", "50%", "x?y", "a#b", "VAT/19/reduced"]
)
def test_codes_with_url_special_characters_round_trip(api, code):
    """Whatever code a create accepts can be read, updated and deleted by its path."""
    from urllib.parse import quote

    path_code = quote(code, safe="")
    tax = create(api, "/v1/taxes/", {"code": code, "name": "T", "rate": "5"})
    assert tax.pop("replaced_organization_tax") is None
    assert ok(api.get(f"/v1/taxes/{path_code}")) == tax
    assert ok(api.put(f"/v1/taxes/{path_code}", {"rate": "6"}))["rate"] == "6"
    assert api.delete(f"/v1/taxes/{path_code}").status_code == 204
    assert api.get(f"/v1/taxes/{path_code}").status_code == 404

    entity = create(api, "/v1/billing_entities/", {"code": code, "name": "E"})
    assert ok(api.get(f"/v1/billing_entities/{path_code}")) == entity
    assert ok(api.patch(f"/v1/billing_entities/{path_code}", {"city": "Oslo"}))["city"] == "Oslo"
    assert api.delete(f"/v1/billing_entities/{path_code}").status_code == 204
    assert api.get(f"/v1/billing_entities/{path_code}").status_code == 404
