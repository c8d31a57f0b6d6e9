"""Dialect A responses against the seed's schema excerpt (`oneoff-api.openapi.json`), and
the app's own `/openapi.json` against the same excerpt.

Every 200/201 response of every dialect A route is validated (JSON Schema Draft 2020-12,
`$ref`s resolved into the excerpt's `components/schemas`) against the schema the excerpt
gives for that route and status.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

# A copy of the seed's excerpt (the shared spec's `oneoff-api.openapi.json`), kept in the
# repository so that the tests read nothing outside it.
SPEC_PATH = Path(__file__).resolve().parents[2] / "data" / "oneoff-api.openapi.json"
SPEC_URI = "urn:billing:oneoff-api.openapi.json"
LATER = {("post", "/v1/invoices/{invoice_id}/download_pdf")}  # a later issue
LINE = {
    "description": "Consulting",
    "quantity": "1.5",
    "unit_price": "333.333",
    "amount": 500,
    "tax_rate": "19",
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text())  # type: ignore[no-any-return]


def _format_checker() -> FormatChecker:
    checker = FormatChecker(["uuid"])

    @checker.checks("date-time", raises=ValueError)
    def _date_time(value: object) -> bool:
        """RFC 3339 with an explicit offset (API.md: "Times out")."""
        if not isinstance(value, str):
            return True
        if not re.fullmatch(
            r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)", value
        ):
            raise ValueError(f"not an RFC 3339 date-time with offset: {value!r}")
        parsed = datetime.fromisoformat(value)
        return parsed.tzinfo is not None

    return checker


@pytest.fixture(scope="module")
def validator_for(spec: dict[str, Any]) -> Callable[[str, str, int], Draft202012Validator]:
    registry: Registry[Any] = Registry().with_resource(
        SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT202012)
    )
    checker = _format_checker()

    def make(method: str, path: str, status: int) -> Draft202012Validator:
        responses = spec["paths"][path][method]["responses"]
        assert str(status) in responses, f"{method.upper()} {path} documents no {status}"
        schema = responses[str(status)]["content"]["application/json"]["schema"]
        pointer = "/".join(
            part.replace("~", "~0").replace("/", "~1")
            for part in (
                "paths",
                path,
                method,
                "responses",
                str(status),
                "content",
                "application/json",
                "schema",
            )
        )
        assert schema is not None
        return Draft202012Validator(
            {"$ref": f"{SPEC_URI}#/{pointer}"}, registry=registry, format_checker=checker
        )

    return make


def check(validator_for: Any, method: str, path: str, resp: Any) -> Any:
    """Validate one response against the excerpt; returns the parsed body."""
    assert resp.status_code in (200, 201), resp.get_data(as_text=True)[:500]
    assert resp.mimetype == "application/json"
    body = resp.get_json()
    errors = sorted(
        validator_for(method, path, resp.status_code).iter_errors(body),
        key=lambda e: list(e.absolute_path),
    )
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])
    return body


# ---------------------------------------------------------------- the validator itself


def test_validator_rejects_a_wrong_invoice(validator_for):
    """The schema check must be able to fail: a broken body is caught."""
    v = validator_for("get", "/v1/invoices/{invoice_id}", 200)
    assert list(v.iter_errors({"id": "x"}))
    v = validator_for("get", "/v1/taxes/{code}", 200)
    bad_tax = {
        "id": "00000000-0000-4000-8000-000000000000",
        "code": "T",
        "name": "T",
        "rate": 19,
        "applied_to_organization": False,
        "created_at": "2026-01-01T00:00:00",
        "updated_at": "2026-01-01T00:00:00+00:00",
    }
    messages = [e.message for e in v.iter_errors(bad_tax)]
    assert any("19" in m for m in messages), messages  # rate must be a string
    assert any("date-time" in m for m in messages), messages  # no offset


# ---------------------------------------------------------------- every route, every 2xx


@pytest.fixture
def objects(api) -> dict[str, Any]:
    tax = api.post(
        "/v1/taxes/",
        {"code": "VAT", "name": "VAT", "rate": "19", "description": "Standard", "category": "vat"},
    )
    assert tax.status_code == 201
    customer = api.customer(
        "schema-cust", email="billing@schema.example", billing_metadata={"k": "v"}, tax_code="VAT"
    )
    entity = api.post(
        "/v1/billing_entities/",
        {"code": "eu", "name": "EU", "country": "DE", "email": "be@schema.example"},
    )
    assert entity.status_code == 201
    return {"customer": customer, "entity": entity.get_json()}


def documented_2xx(spec: dict[str, Any], prefix: str) -> set[tuple[str, str, int]]:
    """Every 200/201 JSON response the excerpt documents under `prefix` (download_pdf aside)."""
    return {
        (method, path, int(status))
        for path, ops in spec["paths"].items()
        if path.startswith(prefix)
        for method, op in ops.items()
        for status, response in op["responses"].items()
        if status in ("200", "201") and "content" in response and (method, path) not in LATER
    }


class Checker:
    """`check` that remembers which (method, path, status) it validated."""

    def __init__(self, validator_for: Any):
        self.validator_for = validator_for
        self.seen: set[tuple[str, str, int]] = set()

    def __call__(self, method: str, path: str, resp: Any) -> Any:
        body = check(self.validator_for, method, path, resp)
        self.seen.add((method, path, resp.status_code))
        return body


def test_invoice_routes_match_the_excerpt(api, spec, objects, validator_for):
    cid = objects["customer"]["id"]
    c = Checker(validator_for)

    created = c(
        "post",
        "/v1/invoices/one_off",
        api.post(
            "/v1/invoices/one_off",
            {
                "customer_id": cid,
                "currency": "eur",
                "line_items": [
                    LINE,
                    {"description": "Discount", "quantity": 1, "unit_price": -100, "amount": -100},
                ],
                "due_date": "2030-01-31T12:00:00+01:00",
                "billing_entity_id": objects["entity"]["id"],
            },
        ),
    )
    assert created["status"] == "draft"
    assert created["invoice_type"] == "one_off"
    assert created["subscription_id"] is None
    assert created["issued_at"] is None and created["paid_at"] is None
    assert created["billing_period_start"] == created["billing_period_end"]
    assert created["invoice_number"].startswith("DRAFT-")
    iid = created["id"]

    # Minimal create: only the required fields.
    minimal = c(
        "post",
        "/v1/invoices/one_off",
        api.post(
            "/v1/invoices/one_off",
            {
                "customer_id": cid,
                "line_items": [{"description": "x", "quantity": 1, "unit_price": 1, "amount": 1}],
            },
        ),
    )
    assert minimal["due_date"] is None

    c("get", "/v1/invoices/{invoice_id}", api.get(f"/v1/invoices/{iid}"))

    c(
        "put",
        "/v1/invoices/{invoice_id}",
        api.put(f"/v1/invoices/{iid}", {"due_date": "2030-02-28T00:00:00+00:00"}),
    )
    c("put", "/v1/invoices/{invoice_id}", api.put(f"/v1/invoices/{iid}", {}))

    finalized = c(
        "post", "/v1/invoices/{invoice_id}/finalize", api.post(f"/v1/invoices/{iid}/finalize")
    )
    assert finalized["status"] == "finalized"
    assert finalized["issued_at"] is not None

    paid = c("post", "/v1/invoices/{invoice_id}/pay", api.post(f"/v1/invoices/{iid}/pay"))
    assert paid["status"] == "paid" and paid["paid_at"] is not None

    # Void a finalized one and a draft.
    other = c(
        "post",
        "/v1/invoices/one_off",
        api.post(
            "/v1/invoices/one_off",
            {
                "customer_id": cid,
                "currency": "JPY",
                "line_items": [
                    {"description": "Yen", "quantity": 3, "unit_price": 333, "amount": 999}
                ],
            },
        ),
    )
    c(
        "put",
        "/v1/invoices/{invoice_id}",
        api.put(f"/v1/invoices/{other['id']}", {"status": "finalized"}),
    )
    voided = c(
        "post", "/v1/invoices/{invoice_id}/void", api.post(f"/v1/invoices/{other['id']}/void")
    )
    assert voided["status"] == "voided"
    c("post", "/v1/invoices/{invoice_id}/void", api.post(f"/v1/invoices/{minimal['id']}/void"))

    # Lists: empty filter result, all, every status filter, paging, ordering.
    for query in (
        "",
        "?status=draft",
        "?status=finalized",
        "?status=paid",
        "?status=voided",
        f"?customer_id={cid}",
        "?limit=1&skip=1",
        "?order_by=-total_cents",
    ):
        body = c("get", "/v1/invoices/", api.get(f"/v1/invoices/{query}"))
        assert isinstance(body, list)
    assert len(api.get("/v1/invoices/").get_json()) == 3

    # Delete answers 204 without a body.
    draft = api.invoice(cid)
    resp = api.delete(f"/v1/invoices/{draft['id']}")
    assert resp.status_code == 204 and resp.get_data() == b""
    assert c.seen == documented_2xx(spec, "/v1/invoices/")


def test_customer_routes_match_the_excerpt(api, spec, validator_for):
    c = Checker(validator_for)
    created = c(
        "post",
        "/v1/customers/",
        api.post("/v1/customers/", {"external_id": "s1", "name": "Schema One"}),
    )
    full = c(
        "post",
        "/v1/customers/",
        api.post(
            "/v1/customers/",
            {
                "external_id": "s2",
                "name": "Schema Two",
                "email": "two@schema.example",
                "currency": "chf",
                "timezone": "Europe/Zurich",
                "billing_metadata": {"a": [1, 2]},
                "invoice_grace_period": 2,
                "net_payment_term": 10,
            },
        ),
    )
    c("get", "/v1/customers/{customer_id}", api.get(f"/v1/customers/{created['id']}"))
    c(
        "put",
        "/v1/customers/{customer_id}",
        api.put(
            f"/v1/customers/{full['id']}",
            {"name": "Renamed", "email": None, "billing_metadata": None},
        ),
    )
    c("put", "/v1/customers/{customer_id}", api.put(f"/v1/customers/{full['id']}", {}))
    for query in ("", "?order_by=name", "?skip=1&limit=1", "?skip=50"):
        c("get", "/v1/customers/", api.get(f"/v1/customers/{query}"))
    resp = api.delete(f"/v1/customers/{created['id']}")
    assert resp.status_code == 204 and resp.get_data() == b""
    assert c.seen == documented_2xx(spec, "/v1/customers/")


def test_billing_entity_routes_match_the_excerpt(api, spec, validator_for):
    c = Checker(validator_for)
    c("get", "/v1/billing_entities/{code}", api.get("/v1/billing_entities/default"))
    c(
        "post",
        "/v1/billing_entities/",
        api.post("/v1/billing_entities/", {"code": "min", "name": "Minimal"}),
    )
    c(
        "post",
        "/v1/billing_entities/",
        api.post(
            "/v1/billing_entities/",
            {
                "code": "full",
                "name": "Full",
                "legal_name": "Full GmbH",
                "address_line1": "A 1",
                "address_line2": "Floor 2",
                "city": "Berlin",
                "state": "BE",
                "country": "DE",
                "zip_code": "10115",
                "tax_id": "DE1",
                "email": "full@schema.example",
                "currency": "eur",
                "timezone": "Europe/Berlin",
                "document_locale": "de",
                "invoice_prefix": "FULL",
                "next_invoice_number": 100,
                "invoice_grace_period": 1,
                "net_payment_term": 7,
                "invoice_footer": "Thanks",
                "is_default": False,
            },
        ),
    )
    c(
        "patch",
        "/v1/billing_entities/{code}",
        api.patch("/v1/billing_entities/full", {"city": "Munich", "legal_name": None}),
    )
    c(
        "patch",
        "/v1/billing_entities/{code}",
        api.patch("/v1/billing_entities/min", {"is_default": True}),
    )
    for query in ("", "?order_by=code", "?skip=1&limit=1"):
        body = c("get", "/v1/billing_entities/", api.get(f"/v1/billing_entities/{query}"))
        assert body
    resp = api.delete("/v1/billing_entities/full")
    assert resp.status_code == 204 and resp.get_data() == b""
    assert c.seen == documented_2xx(spec, "/v1/billing_entities/")


def test_tax_routes_match_the_excerpt(api, spec, validator_for):
    c = Checker(validator_for)
    c("post", "/v1/taxes/", api.post("/v1/taxes/", {"code": "A", "name": "A", "rate": 7}))
    c(
        "post",
        "/v1/taxes/",
        api.post(
            "/v1/taxes/",
            {
                "code": "B",
                "name": "B",
                "rate": "19.25",
                "description": "d",
                "category": "vat",
                "applied_to_organization": True,
            },
        ),
    )
    body = c("get", "/v1/taxes/{code}", api.get("/v1/taxes/B"))
    assert body["rate"] == "19.25"
    c("put", "/v1/taxes/{code}", api.put("/v1/taxes/A", {"rate": "0", "description": None}))
    for query in ("", "?order_by=-code", "?limit=1"):
        c("get", "/v1/taxes/", api.get(f"/v1/taxes/{query}"))
    resp = api.delete("/v1/taxes/A")
    assert resp.status_code == 204 and resp.get_data() == b""
    assert c.seen == documented_2xx(spec, "/v1/taxes/")


def test_the_route_tests_cover_every_documented_2xx(spec):
    """The four route tests above each compare what they validated with their prefix's
    documented responses; together the prefixes cover the whole excerpt."""
    prefixes = ("/v1/invoices/", "/v1/customers/", "/v1/billing_entities/", "/v1/taxes/")
    union = set().union(*(documented_2xx(spec, p) for p in prefixes))
    assert union == documented_2xx(spec, "/")
    assert len(union) == 19


# ---------------------------------------------------------------- error bodies


def test_validation_error_body_matches_http_validation_error(api, spec, validator_for):
    registry: Registry[Any] = Registry().with_resource(
        SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT202012)
    )
    validator = Draft202012Validator(
        {"$ref": f"{SPEC_URI}#/components/schemas/HTTPValidationError"}, registry=registry
    )
    bad = [
        api.post("/v1/invoices/one_off", {"line_items": []}),
        api.post("/v1/invoices/one_off", data="nope", headers={"Content-Type": "application/json"}),
        api.get("/v1/invoices/?limit=0"),
        api.get("/v1/customers/?order_by=nope"),
        api.post("/v1/taxes/", {"code": "x", "name": "x", "rate": True}),
    ]
    for resp in bad:
        assert resp.status_code == 422
        body = resp.get_json()
        assert not list(validator.iter_errors(body)), body
        assert body["detail"] and all({"loc", "msg", "type"} <= set(i) for i in body["detail"])


# ---------------------------------------------------------------- /openapi.json


@pytest.fixture
def served(client) -> dict[str, Any]:
    resp = client.get("/openapi.json")
    assert resp.status_code == 200
    return resp.get_json()  # type: ignore[no-any-return]


def _resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        target: Any = doc
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def _excerpt_operations(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {(m, p) for p, ops in spec["paths"].items() for m in ops} - LATER


def test_openapi_lists_every_dialect_a_route_of_the_excerpt(spec, served):
    served_ops = {(m, p) for p, ops in served["paths"].items() for m in ops}
    missing = _excerpt_operations(spec) - served_ops
    assert not missing, sorted(missing)


def test_openapi_documents_the_excerpts_status_codes(spec, served):
    for method, path in _excerpt_operations(spec):
        ours = set(served["paths"][path][method]["responses"])
        theirs = set(spec["paths"][path][method]["responses"])
        assert theirs <= ours, (method, path, theirs - ours)


def test_openapi_success_status_matches_the_excerpt(spec, served):
    for method, path in _excerpt_operations(spec):
        theirs = {s for s in spec["paths"][path][method]["responses"] if s.startswith("2")}
        ours = {s for s in served["paths"][path][method]["responses"] if s.startswith("2")}
        assert ours == theirs, (method, path)


def _body_schema(doc: dict[str, Any], method: str, path: str) -> dict[str, Any] | None:
    body = doc["paths"][path][method].get("requestBody")
    if body is None:
        return None
    return _resolve(doc, body["content"]["application/json"]["schema"])


def test_openapi_one_off_create_has_the_excerpts_required_fields(spec, served):
    theirs = _body_schema(spec, "post", "/v1/invoices/one_off")
    ours = _body_schema(served, "post", "/v1/invoices/one_off")
    assert theirs is not None and ours is not None
    assert set(ours.get("required", [])) == set(theirs["required"]) == {"customer_id", "line_items"}
    assert set(theirs["properties"]) <= set(ours["properties"])
    their_line = _resolve(spec, theirs["properties"]["line_items"]["items"])
    our_line = _resolve(served, ours["properties"]["line_items"]["items"])
    assert set(our_line.get("required", [])) == set(their_line["required"])
    assert set(their_line["properties"]) <= set(our_line["properties"])


def test_openapi_request_bodies_have_the_excerpts_required_fields(spec, served):
    for method, path in sorted(_excerpt_operations(spec)):
        theirs = _body_schema(spec, method, path)
        if theirs is None:
            continue
        ours = _body_schema(served, method, path)
        assert ours is not None, (method, path)
        assert set(ours.get("required", [])) == set(theirs.get("required", [])), (method, path)
        assert set(theirs.get("properties", {})) <= set(ours.get("properties", {})), (method, path)


def test_openapi_response_schemas_require_what_the_excerpt_requires(spec, served):
    for method, path in sorted(_excerpt_operations(spec)):
        for status, response in spec["paths"][path][method]["responses"].items():
            if status not in ("200", "201") or "content" not in response:
                continue
            theirs = _resolve(spec, response["content"]["application/json"]["schema"])
            ours = _resolve(
                served,
                served["paths"][path][method]["responses"][status]["content"]["application/json"][
                    "schema"
                ],
            )
            if theirs.get("type") == "array":
                assert ours.get("type") == "array", (method, path)
                theirs = _resolve(spec, theirs["items"])
                ours = _resolve(served, ours["items"])
            assert set(theirs.get("required", [])) <= set(ours.get("required", [])), (
                method,
                path,
                set(theirs.get("required", [])) - set(ours.get("required", [])),
            )


def test_openapi_list_query_parameters(spec, served):
    for method, path in _excerpt_operations(spec):
        theirs = {
            p["name"]
            for p in spec["paths"][path][method].get("parameters", [])
            if p["in"] == "query"
        }
        ours = {
            p["name"]
            for p in served["paths"][path][method].get("parameters", [])
            if p["in"] == "query"
        }
        assert theirs <= ours, (method, path, theirs - ours)


def test_openapi_is_valid_json_schema_in_components(served):
    for name, schema in served["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)
        assert name


def test_exact_numbers_are_bare_and_lookalike_client_text_stays_text():
    """`dumps` writes `JsonNumber`s as bare JSON numbers; a client string shaped like the
    internal placeholder (16 hex digits, a colon, a number) is left a string."""
    from decimal import Decimal

    from billing_app.api.http import JsonNumber, dumps

    lookalike = "0123456789abcdef:1.5"
    body = {"vat": JsonNumber(Decimal("0.250")), "q": [JsonNumber(Decimal("-3"))], "t": lookalike}
    text = dumps(body).decode()
    assert text == '{"vat":0.25,"q":[-3],"t":"0123456789abcdef:1.5"}'
    assert json.loads(text)["t"] == lookalike


# ---------------------------------------------------------------- /docs


def test_docs_page_shows_each_dialect_apart_with_field_tables(client):
    """The reference is rendered on the server from the app's own OpenAPI document: both
    dialects apart, each schema a table of fields with their descriptions and an example."""
    resp = client.get("/docs")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert 'id="dialect-A"' in html and 'id="dialect-B"' in html
    assert html.index('id="dialect-A"') < html.index('id="dialect-B"')
    a_part, b_part = html.split('id="dialect-B"', 1)
    # Dialect A's one-off invoice and dialect B's subscription invoice, in their sections.
    assert 'id="schema-A-OneOffInvoiceCreate"' in a_part
    assert 'id="schema-B-SubscriptionInvoiceCreate"' in b_part
    assert "schema-B-" not in a_part and "schema-A-" not in b_part
    # A field row: name, type, required, description.
    assert "<code>customer_id</code>" in a_part
    assert "The invoiced customer&#39;s id." in a_part
    assert "Example" in a_part and "&#34;customer_id&#34;" in a_part
    # The tax create documents the organisation default it replaced.
    assert "<code>replaced_organization_tax</code>" in a_part


def test_docs_page_of_one_dialect(client):
    only_b = client.get("/docs/b").get_data(as_text=True)
    assert 'id="dialect-B"' in only_b and 'id="dialect-A"' not in only_b
    assert client.get("/docs/c").status_code == 404


def test_openapi_describes_fields_and_the_replaced_organization_tax(served):
    schemas = served["components"]["schemas"]
    created = served["paths"]["/v1/taxes/"]["post"]["responses"]["201"]
    ref = created["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    field = schemas[ref]["properties"]["replaced_organization_tax"]
    assert "replaced" in field["description"]
    assert schemas["OneOffInvoiceCreate"]["properties"]["line_items"]["description"]
    assert served["paths"]["/v1/taxes/"]["post"]["x-dialect"] == "A"
    assert served["paths"]["/v1/invoice"]["get"]["x-dialect"] == "B"
