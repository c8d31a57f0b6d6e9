"""Dialect A input validation (API.md, "Common" > JSON in, and `POST /v1/invoices/one_off`).

Validation errors are 422 `{"detail": [{"loc": [...], "msg": ..., "type": ...}]}` naming the
field; a failing request changes nothing in the database.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

try:  # tests/ as a package (tests/__init__.py) or as a plain directory
    from .conftest import row_counts
except ImportError:
    from conftest import row_counts  # type: ignore[no-redef]

URL = "/v1/invoices/one_off"


def line(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "description": "Consulting",
        "quantity": 2,
        "unit_price": 15000,
        "amount": 30000,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not _DROP}


_DROP = object()


@pytest.fixture
def customer(api) -> dict[str, Any]:
    return api.customer("validation-customer")


def post_raw(api: Any, text: str | bytes, content_type: str = "application/json") -> Any:
    return api.post(URL, data=text, headers={"Content-Type": content_type})


def assert_422(resp: Any, loc: list[Any], msg_contains: str | None = None) -> dict[str, Any]:
    """A FastAPI-style validation error that names `loc`; returns that error item."""
    assert resp.status_code == 422, resp.get_data(as_text=True)[:500]
    body = resp.get_json()
    assert isinstance(body, dict) and isinstance(body.get("detail"), list), body
    assert body["detail"], body
    for item in body["detail"]:
        assert isinstance(item["loc"], list)
        assert isinstance(item["msg"], str) and item["msg"]
        assert isinstance(item["type"], str) and item["type"]
    matching = [item for item in body["detail"] if item["loc"] == loc]
    assert matching, f"no error at {loc}: {body['detail']}"
    if msg_contains is not None:
        assert any(msg_contains in item["msg"] for item in matching), matching
    return matching[0]


class Unchanged:
    """Context manager: the database row counts are the same after the block."""

    def __init__(self, app: Any):
        self.app = app

    def __enter__(self) -> Unchanged:
        self.before = row_counts(self.app)
        return self

    def __exit__(self, *exc: Any) -> None:
        if exc[0] is None:
            assert row_counts(self.app) == self.before


# ---------------------------------------------------------------- line_items count


def test_empty_line_items(api, app, customer):
    with Unchanged(app):
        resp = api.post(URL, {"customer_id": customer["id"], "line_items": []})
        assert_422(resp, ["body", "line_items"])


def test_501_lines_rejected(api, app, customer):
    with Unchanged(app):
        resp = api.post(
            URL,
            {
                "customer_id": customer["id"],
                "line_items": [line(quantity=1, unit_price=1, amount=1)] * 501,
            },
        )
        assert_422(resp, ["body", "line_items"])


def test_500_lines_accepted(api, customer):
    resp = api.post(
        URL,
        {
            "customer_id": customer["id"],
            "currency": "EUR",
            "line_items": [line(quantity=1, unit_price=1, amount=1)] * 500,
        },
    )
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert len(body["line_items"]) == 500
    assert body["subtotal_cents"] == "500"


def test_line_items_not_a_list(api, app, customer):
    with Unchanged(app):
        resp = api.post(URL, {"customer_id": customer["id"], "line_items": line()})
        assert_422(resp, ["body", "line_items"])


# ---------------------------------------------------------------- currency


@pytest.mark.parametrize(
    "currency", ["ZZZ", "XAU", "XXX", "XTS", "EU", "EURO", "", "12€", "E1R", 978, None, True]
)
def test_unknown_or_unusable_currency(api, app, customer, currency):
    with Unchanged(app):
        resp = api.post(
            URL, {"customer_id": customer["id"], "currency": currency, "line_items": [line()]}
        )
        assert_422(resp, ["body", "currency"])


def test_zzz_message_names_the_code(api, customer):
    resp = api.post(URL, {"customer_id": customer["id"], "currency": "ZZZ", "line_items": [line()]})
    assert_422(resp, ["body", "currency"], "ZZZ")


def test_xau_message_says_no_minor_unit(api, customer):
    resp = api.post(URL, {"customer_id": customer["id"], "currency": "XAU", "line_items": [line()]})
    item = assert_422(resp, ["body", "currency"])
    assert "minor unit" in item["msg"]


@pytest.mark.parametrize(
    ("sent", "stored"),
    [("eur", "EUR"), ("Eur", "EUR"), ("jpy", "JPY"), ("kwd", "KWD"), ("USD", "USD")],
)
def test_currency_normalised_to_upper_case(api, customer, sent, stored):
    resp = api.post(URL, {"customer_id": customer["id"], "currency": sent, "line_items": [line()]})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["currency"] == stored
    assert api.get(f"/v1/invoices/{resp.get_json()['id']}").get_json()["currency"] == stored


def test_currency_defaults_to_usd(api, customer):
    resp = api.post(URL, {"customer_id": customer["id"], "line_items": [line()]})
    assert resp.status_code == 200
    assert resp.get_json()["currency"] == "USD"


# ---------------------------------------------------------------- amount = quantity x price


@pytest.mark.parametrize(
    ("quantity", "unit_price", "wrong", "expected"),
    [
        (3, "0.125", 1, 0),  # 0.375 -> 0
        (1, "0.5", 0, 1),  # a tie rounds up, not to even
        ("2.5", 1, 2, 3),  # half-even would say 2
        ("0.5", 5, 2, 3),  # 2.5 -> 3
        (2, 15000, 29999, 30000),
        (2, 15000, 15000, 30000),  # the unit price is not the amount
        ("1.5", "0.333333", 1, 0),  # 0.4999995 -> 0
        ("1.5", "0.333334", 0, 1),  # 0.500001 -> 1
        ("0.000001", 500000, 0, 1),  # 0.5 -> 1
    ],
)
def test_amount_must_equal_quantity_times_unit_price(
    api, app, customer, quantity, unit_price, wrong, expected
):
    with Unchanged(app):
        resp = api.post(
            URL,
            {
                "customer_id": customer["id"],
                "currency": "EUR",
                "line_items": [line(quantity=quantity, unit_price=unit_price, amount=wrong)],
            },
        )
        item = assert_422(resp, ["body", "line_items", 0, "amount"])
        assert f"expected {expected}" in item["msg"], item
    # And the expected amount is accepted.
    ok = api.post(
        URL,
        {
            "customer_id": customer["id"],
            "currency": "EUR",
            "line_items": [line(quantity=quantity, unit_price=unit_price, amount=expected)],
        },
    )
    assert ok.status_code == 200, ok.get_json()
    assert ok.get_json()["line_items"][0]["amount"] == str(expected)
    assert ok.get_json()["subtotal_cents"] == str(expected)


def test_mismatch_on_a_later_line_names_that_line(api, app, customer):
    with Unchanged(app):
        resp = api.post(
            URL,
            {
                "customer_id": customer["id"],
                "line_items": [line(), line(), line(quantity=1, unit_price="0.5", amount=0)],
            },
        )
        item = assert_422(resp, ["body", "line_items", 2, "amount"])
        assert "expected 1" in item["msg"]


def test_negative_tie_rounds_away_from_zero(api, app, customer):
    """Half-up is 'commercial': -0.5 -> -1 (ties away from zero)."""
    lines = [
        line(quantity=1, unit_price=100, amount=100),
        line(quantity=1, unit_price="-0.5", amount=0),
    ]
    with Unchanged(app):
        resp = api.post(URL, {"customer_id": customer["id"], "line_items": lines})
        item = assert_422(resp, ["body", "line_items", 1, "amount"])
        assert "expected -1" in item["msg"]
    lines[1]["amount"] = -1
    ok = api.post(URL, {"customer_id": customer["id"], "line_items": lines})
    assert ok.status_code == 200, ok.get_json()
    assert ok.get_json()["subtotal_cents"] == "99"


def test_json_number_decimals_are_parsed_exactly(api, app, customer):
    """1.005 x 100 is exactly 100.5 -> 101. Parsed as a binary float it would be
    100.49999999999999 -> 100."""
    template = (
        '{"customer_id": "%s", "currency": "EUR", "line_items": [{"description": "x", '
        '"quantity": 1.005, "unit_price": 100, "amount": %d}]}'
    )
    with Unchanged(app):
        item = assert_422(
            post_raw(api, template % (customer["id"], 100)), ["body", "line_items", 0, "amount"]
        )
        assert "expected 101" in item["msg"]
    resp = post_raw(api, template % (customer["id"], 101))
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["line_items"][0]["quantity"] == "1.005"
    assert resp.get_json()["subtotal_cents"] == "101"


@pytest.mark.parametrize("field", ["amount", "quantity", "unit_price"])
def test_non_numeric_string(api, app, customer, field):
    with Unchanged(app):
        resp = api.post(
            URL, {"customer_id": customer["id"], "line_items": [line(**{field: "twelve"})]}
        )
        assert_422(resp, ["body", "line_items", 0, field])


def test_fractional_amount_rejected(api, app, customer):
    with Unchanged(app):
        resp = api.post(
            URL,
            {
                "customer_id": customer["id"],
                "line_items": [line(quantity=1, unit_price="10.5", amount="10.5")],
            },
        )
        assert_422(resp, ["body", "line_items", 0, "amount"])


# ---------------------------------------------------------------- NaN, Infinity, booleans


@pytest.mark.parametrize("field", ["quantity", "unit_price", "amount"])
@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_rejected(api, app, customer, field, token):
    body = {"customer_id": customer["id"], "line_items": [line(**{field: "@@"})]}
    raw = json.dumps(body).replace('"@@"', token)
    assert token in raw
    with Unchanged(app):
        resp = post_raw(api, raw)
        assert_422(resp, ["body", "line_items", 0, field])


@pytest.mark.parametrize("token", ["NaN", "Infinity"])
def test_non_finite_numbers_as_strings_rejected(api, app, customer, token):
    with Unchanged(app):
        resp = api.post(URL, {"customer_id": customer["id"], "line_items": [line(quantity=token)]})
        assert_422(resp, ["body", "line_items", 0, "quantity"])


def test_non_finite_tax_rate_rejected(api, app, customer):
    raw = json.dumps({"customer_id": customer["id"], "line_items": [line(tax_rate="@@")]}).replace(
        '"@@"', "NaN"
    )
    with Unchanged(app):
        assert_422(post_raw(api, raw), ["body", "line_items", 0, "tax_rate"])


@pytest.mark.parametrize("field", ["quantity", "unit_price", "amount"])
@pytest.mark.parametrize("value", [True, False])
def test_boolean_numbers_rejected(api, app, customer, field, value):
    with Unchanged(app):
        resp = api.post(
            URL, {"customer_id": customer["id"], "line_items": [line(**{field: value})]}
        )
        assert_422(resp, ["body", "line_items", 0, field])


@pytest.mark.parametrize("field", ["quantity", "unit_price", "amount"])
@pytest.mark.parametrize("value", [None, [], {}])
def test_non_scalar_numbers_rejected(api, app, customer, field, value):
    with Unchanged(app):
        resp = api.post(
            URL, {"customer_id": customer["id"], "line_items": [line(**{field: value})]}
        )
        assert_422(resp, ["body", "line_items", 0, field])


# ---------------------------------------------------------------- signs and decimals


def test_negative_invoice_total_rejected(api, app, customer):
    lines = [
        line(quantity=1, unit_price=1000, amount=1000),
        line(description="Discount", quantity=1, unit_price=-2000, amount=-2000),
    ]
    with Unchanged(app):
        resp = api.post(URL, {"customer_id": customer["id"], "line_items": lines})
        item = assert_422(resp, ["body", "line_items"])
        assert "negative" in item["msg"]


def test_discount_line_allowed_while_total_stays_non_negative(api, customer):
    lines = [
        line(quantity=1, unit_price=1000, amount=1000),
        line(description="Discount", quantity=1, unit_price=-1000, amount=-1000),
    ]
    resp = api.post(URL, {"customer_id": customer["id"], "line_items": lines})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["total_cents"] == "0"


def test_only_negative_lines_rejected(api, app, customer):
    with Unchanged(app):
        resp = api.post(
            URL,
            {
                "customer_id": customer["id"],
                "line_items": [line(quantity=1, unit_price=-1, amount=-1)],
            },
        )
        assert_422(resp, ["body", "line_items"])


@pytest.mark.parametrize("quantity", [0, "0", "0.0", -1, "-0.5", "-0.000001"])
def test_quantity_must_be_positive(api, app, customer, quantity):
    with Unchanged(app):
        resp = api.post(
            URL,
            {
                "customer_id": customer["id"],
                "line_items": [line(quantity=quantity, unit_price=100, amount=0)],
            },
        )
        assert_422(resp, ["body", "line_items", 0, "quantity"])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("quantity", "1.0000001"),
        ("quantity", "0.0000001"),
        ("unit_price", "100.0000001"),
        ("unit_price", "-0.0000001"),
    ],
)
def test_more_than_six_decimals_rejected(api, app, customer, field, value):
    with Unchanged(app):
        resp = api.post(
            URL, {"customer_id": customer["id"], "line_items": [line(**{field: value})]}
        )
        assert_422(resp, ["body", "line_items", 0, field])


def test_more_than_six_decimals_as_json_number_rejected(api, app, customer):
    raw = json.dumps({"customer_id": customer["id"], "line_items": [line(quantity="@@")]}).replace(
        '"@@"', "1.0000001"
    )
    with Unchanged(app):
        assert_422(post_raw(api, raw), ["body", "line_items", 0, "quantity"])


def test_six_decimals_accepted(api, customer):
    resp = api.post(
        URL,
        {
            "customer_id": customer["id"],
            "line_items": [line(quantity="1.000001", unit_price="0.000001", amount=0)],
        },
    )
    assert resp.status_code == 200, resp.get_json()
    item = resp.get_json()["line_items"][0]
    assert item["quantity"] == "1.000001"
    assert item["unit_price"] == "0.000001"


@pytest.mark.parametrize("rate", ["-1", "100.5", "1000"])
def test_line_tax_rate_out_of_range(api, app, customer, rate):
    with Unchanged(app):
        resp = api.post(URL, {"customer_id": customer["id"], "line_items": [line(tax_rate=rate)]})
        assert_422(resp, ["body", "line_items", 0, "tax_rate"])


# ---------------------------------------------------------------- required fields


@pytest.mark.parametrize("field", ["customer_id", "line_items"])
def test_missing_top_level_field(api, app, customer, field):
    body = {"customer_id": customer["id"], "line_items": [line()]}
    del body[field]
    with Unchanged(app):
        item = assert_422(api.post(URL, body), ["body", field])
        assert item["type"] == "missing"


@pytest.mark.parametrize("field", ["description", "quantity", "unit_price", "amount"])
def test_missing_line_field(api, app, customer, field):
    with Unchanged(app):
        resp = api.post(
            URL, {"customer_id": customer["id"], "line_items": [line(), line(**{field: _DROP})]}
        )
        item = assert_422(resp, ["body", "line_items", 1, field])
        assert item["type"] == "missing"


def test_all_missing_fields_are_reported(api, app):
    with Unchanged(app):
        resp = api.post(URL, {})
        assert_422(resp, ["body", "customer_id"])
        assert_422(resp, ["body", "line_items"])


@pytest.mark.parametrize("description", ["", "x" * 1001, None, 5])
def test_bad_description(api, app, customer, description):
    with Unchanged(app):
        resp = api.post(
            URL, {"customer_id": customer["id"], "line_items": [line(description=description)]}
        )
        assert_422(resp, ["body", "line_items", 0, "description"])


@pytest.mark.parametrize("customer_id", ["not-a-uuid", "", 42, None])
def test_customer_id_must_be_a_uuid(api, app, customer_id):
    with Unchanged(app):
        resp = api.post(URL, {"customer_id": customer_id, "line_items": [line()]})
        assert_422(resp, ["body", "customer_id"])


def test_billing_entity_id_must_be_a_uuid(api, app, customer):
    with Unchanged(app):
        resp = api.post(
            URL,
            {"customer_id": customer["id"], "billing_entity_id": "default", "line_items": [line()]},
        )
        assert_422(resp, ["body", "billing_entity_id"])


@pytest.mark.parametrize("due", ["2030-01-01T00:00:00", "tomorrow", "2030-13-01T00:00:00Z"])
def test_due_date_needs_a_valid_aware_datetime(api, app, customer, due):
    with Unchanged(app):
        resp = api.post(
            URL, {"customer_id": customer["id"], "due_date": due, "line_items": [line()]}
        )
        assert_422(resp, ["body", "due_date"])


def test_due_date_with_offset_accepted_and_returned_with_offset(api, customer):
    resp = api.post(
        URL,
        {
            "customer_id": customer["id"],
            "due_date": "2030-01-01T12:00:00+02:00",
            "line_items": [line()],
        },
    )
    assert resp.status_code == 200, resp.get_json()
    due = resp.get_json()["due_date"]
    assert due.startswith("2030-01-01T10:00:00") and due.endswith("+00:00"), due


def test_unknown_charge_id_and_metric_code(api, app, customer):
    with Unchanged(app):
        resp = api.post(
            URL, {"customer_id": customer["id"], "line_items": [line(charge_id=str(uuid.uuid4()))]}
        )
        assert_422(resp, ["body", "line_items", 0, "charge_id"])
        resp = api.post(
            URL, {"customer_id": customer["id"], "line_items": [line(metric_code="no-such-metric")]}
        )
        assert_422(resp, ["body", "line_items", 0, "metric_code"])


# ---------------------------------------------------------------- body shape


@pytest.mark.parametrize(
    "raw", ["not json", "{", '{"customer_id": }', "{'a': 1}", "", "   ", b"\xff\xfe\x00garbage"]
)
def test_body_that_is_not_json(api, app, raw):
    with Unchanged(app):
        assert_422(post_raw(api, raw), ["body"])


@pytest.mark.parametrize("raw", ["[]", '[{"customer_id": "x"}]', '"a string"', "5", "null", "true"])
def test_body_that_is_json_but_not_an_object(api, app, raw):
    with Unchanged(app):
        assert_422(post_raw(api, raw), ["body"])


def test_json_array_of_a_valid_invoice_rejected(api, app, customer):
    with Unchanged(app):
        resp = api.post(URL, [{"customer_id": customer["id"], "line_items": [line()]}])
        assert_422(resp, ["body"])


def test_body_over_one_mib_answers_413(api, app, customer):
    filler = "x" * (1024 * 1024)
    body = {"customer_id": customer["id"], "line_items": [line()], "padding": filler}
    with Unchanged(app):
        resp = api.post(URL, body)
        assert resp.status_code == 413, resp.get_data(as_text=True)[:300]
        assert isinstance(resp.get_json()["detail"], str)


def test_body_just_under_one_mib_is_read(api, customer):
    """The limit is the body size, not something smaller: ~1000 KiB of ignored padding."""
    body = {"customer_id": customer["id"], "line_items": [line()], "padding": "x" * 1_000_000}
    resp = api.post(URL, body)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]


def test_413_on_other_routes_too(api, app):
    with Unchanged(app):
        resp = api.post("/v1/customers/", {"external_id": "big", "name": "x" * (1024 * 1024 + 1)})
        assert resp.status_code == 413


def test_unknown_top_level_fields_ignored(api, customer):
    resp = api.post(
        URL,
        {
            "customer_id": customer["id"],
            "currency": "EUR",
            "line_items": [line()],
            "unknown_field": {"nested": [1, 2]},
            "status": "paid",
            "total_cents": "1",
            "id": str(uuid.uuid4()),
        },
    )
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    # Fields the server computes are not taken from the client.
    assert body["status"] == "draft"
    assert body["total_cents"] == "30000"
    assert "unknown_field" not in body


def test_content_type_form_is_not_a_json_object(api, app, customer):
    with Unchanged(app):
        resp = api.post(URL, data={"customer_id": customer["id"]})
        assert_422(resp, ["body"])


# ---------------------------------------------------------------- unknown references


def test_unknown_customer_404(api, app):
    with Unchanged(app):
        resp = api.post(URL, {"customer_id": str(uuid.uuid4()), "line_items": [line()]})
        assert resp.status_code == 404
        assert resp.get_json() == {"detail": "Customer not found"}


def test_unknown_billing_entity_404(api, app, customer):
    with Unchanged(app):
        resp = api.post(
            URL,
            {
                "customer_id": customer["id"],
                "billing_entity_id": str(uuid.uuid4()),
                "line_items": [line()],
            },
        )
        assert resp.status_code == 404
        assert resp.get_json() == {"detail": "Billing entity not found"}


def test_validation_errors_are_reported_before_lookups(api, app):
    """A malformed body with an unknown customer is a 422 (shape first), not a 404."""
    with Unchanged(app):
        resp = api.post(URL, {"customer_id": str(uuid.uuid4()), "line_items": []})
        assert_422(resp, ["body", "line_items"])


# ---------------------------------------------------------------- other routes' inputs


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        ("/v1/customers/", {"name": "No id"}, ["body", "external_id"]),
        (
            "/v1/customers/",
            {"external_id": "c", "name": "C", "currency": "ZZZ"},
            ["body", "currency"],
        ),
        (
            "/v1/customers/",
            {"external_id": "c", "name": "C", "email": "not-an-email"},
            ["body", "email"],
        ),
        (
            "/v1/customers/",
            {"external_id": "c", "name": "C", "net_payment_term": -1},
            ["body", "net_payment_term"],
        ),
        (
            "/v1/customers/",
            {"external_id": "c", "name": "C", "net_payment_term": True},
            ["body", "net_payment_term"],
        ),
        (
            "/v1/customers/",
            {"external_id": "c", "name": "C", "timezone": "Mars/Olympus"},
            ["body", "timezone"],
        ),
        ("/v1/customers/", {"external_id": "", "name": "C"}, ["body", "external_id"]),
        ("/v1/taxes/", {"code": "T", "name": "T"}, ["body", "rate"]),
        ("/v1/taxes/", {"code": "T", "name": "T", "rate": True}, ["body", "rate"]),
        ("/v1/taxes/", {"code": "T", "name": "T", "rate": "abc"}, ["body", "rate"]),
        ("/v1/taxes/", {"code": "T", "name": "T", "rate": "101"}, ["body", "rate"]),
        ("/v1/taxes/", {"code": "T", "name": "T", "rate": "-1"}, ["body", "rate"]),
        (
            "/v1/taxes/",
            {"code": "T", "name": "T", "rate": "5", "applied_to_organization": "yes"},
            ["body", "applied_to_organization"],
        ),
        ("/v1/billing_entities/", {"name": "No code"}, ["body", "code"]),
        (
            "/v1/billing_entities/",
            {"code": "b", "name": "B", "currency": "XAU"},
            ["body", "currency"],
        ),
        (
            "/v1/billing_entities/",
            {"code": "b", "name": "B", "country": "DEU"},
            ["body", "country"],
        ),
        (
            "/v1/billing_entities/",
            {"code": "b", "name": "B", "next_invoice_number": 0},
            ["body", "next_invoice_number"],
        ),
        (
            "/v1/billing_entities/",
            {"code": "b", "name": "B", "is_default": "true"},
            ["body", "is_default"],
        ),
    ],
)
def test_resource_create_validation(api, app, path, body, loc):
    with Unchanged(app):
        assert_422(api.post(path, body), loc)


def test_tax_rate_nan_rejected(api, app):
    with Unchanged(app):
        resp = api.post(
            "/v1/taxes/",
            data='{"code": "T", "name": "T", "rate": NaN}',
            headers={"Content-Type": "application/json"},
        )
        assert_422(resp, ["body", "rate"])


@pytest.mark.parametrize(
    ("query", "loc"),
    [
        ("limit=0", ["query", "limit"]),
        ("limit=1001", ["query", "limit"]),
        ("limit=abc", ["query", "limit"]),
        ("skip=-1", ["query", "skip"]),
        ("skip=1.5", ["query", "skip"]),
        ("status=open", ["query", "status"]),
        ("status=DRAFT", ["query", "status"]),
        ("customer_id=not-a-uuid", ["query", "customer_id"]),
        ("subscription_id=123", ["query", "subscription_id"]),
        ("order_by=password_hash", ["query", "order_by"]),
        ("order_by=created_at%20sideways", ["query", "order_by"]),
    ],
)
def test_invoice_list_query_validation(api, query, loc):
    assert_422(api.get(f"/v1/invoices/?{query}"), loc)


@pytest.mark.parametrize("path", ["/v1/customers/", "/v1/billing_entities/", "/v1/taxes/"])
@pytest.mark.parametrize(
    ("query", "loc"),
    [
        ("limit=0", ["query", "limit"]),
        ("limit=1001", ["query", "limit"]),
        ("skip=-5", ["query", "skip"]),
        ("order_by=nope", ["query", "order_by"]),
    ],
)
def test_resource_list_query_validation(api, path, query, loc):
    assert_422(api.get(f"{path}?{query}"), loc)


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"status": "open"}, ["body", "status"]),
        ({"due_date": "2030-01-01T00:00:00"}, ["body", "due_date"]),
        ({"due_date": "soon"}, ["body", "due_date"]),
    ],
)
def test_invoice_update_validation(api, app, customer, body, loc):
    invoice = api.invoice(customer["id"])
    before = api.get(f"/v1/invoices/{invoice['id']}").get_json()
    with Unchanged(app):
        assert_422(api.put(f"/v1/invoices/{invoice['id']}", body), loc)
    assert api.get(f"/v1/invoices/{invoice['id']}").get_json() == before


# ---------------------------------------------------------------- values no database holds


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        (
            URL,
            {"line_items": [line(description="a\u0000b")]},
            ["body", "line_items", 0, "description"],
        ),
        (
            URL,
            {"line_items": [line(metric_code="m\u0000")]},
            ["body", "line_items", 0, "metric_code"],
        ),
        ("/v1/customers/", {"external_id": "nul", "name": "a\u0000b"}, ["body", "name"]),
        ("/v1/customers/", {"external_id": "n\u0000l", "name": "n"}, ["body", "external_id"]),
        (
            "/v1/customers/",
            {"external_id": "nul", "name": "n", "billing_metadata": {"k": ["ok", "a\u0000b"]}},
            ["body", "billing_metadata"],
        ),
        ("/v1/taxes/", {"code": "T\u0000", "name": "T", "rate": "5"}, ["body", "code"]),
        (
            "/v1/billing_entities/",
            {"code": "b", "name": "B", "invoice_footer": "\u0000"},
            ["body", "invoice_footer"],
        ),
    ],
)
def test_nul_characters_rejected_on_every_database(api, app, customer, path, body, loc):
    """PostgreSQL text cannot hold NUL: a 422 naming the field, on SQLite as well, never a
    500 on one database only."""
    if path == URL:
        body = {"customer_id": customer["id"], **body}
    with Unchanged(app):
        item = assert_422(api.post(path, body), loc)
        assert "NUL" in item["msg"]


@pytest.mark.parametrize("path", ["/v1/taxes/a%00b", "/v1/billing_entities/a%00b"])
def test_nul_in_a_path_code_is_simply_not_found(api, app, path):
    missing = api.get(path.replace("a%00b", "missing"))
    with Unchanged(app):
        for method in ("GET", "DELETE"):
            resp = api.client.open(path, method=method, headers=api.tenant.headers)
            assert resp.status_code == 404
            assert resp.get_json() == missing.get_json()


@pytest.mark.parametrize(
    ("path", "query", "loc"),
    [
        ("/v1/invoices/", "skip=100000000000000000000", ["query", "skip"]),
        ("/v1/invoices/", "skip=9223372036854775808", ["query", "skip"]),
        ("/v1/customers/", "skip=9223372036854775807", ["query", "skip"]),
        ("/v1/taxes/", "limit=100000000000000000000", ["query", "limit"]),
    ],
)
def test_huge_paging_values_are_422_not_500(api, path, query, loc):
    assert_422(api.get(f"{path}?{query}"), loc)


def test_large_but_safe_skip_is_an_empty_page(api, customer):
    api.invoice(customer["id"])
    resp = api.get(f"/v1/invoices/?skip={2**53 - 1}")
    assert resp.status_code == 200
    assert resp.get_json() == []


@pytest.mark.parametrize(
    ("method", "path", "body", "loc"),
    [
        (
            "POST",
            "/v1/customers/",
            {"external_id": "c", "name": "C", "net_payment_term": 10**20},
            ["body", "net_payment_term"],
        ),
        (
            "POST",
            "/v1/customers/",
            {"external_id": "c", "name": "C", "invoice_grace_period": 10**20},
            ["body", "invoice_grace_period"],
        ),
        ("PUT", "/v1/customers/{cid}", {"net_payment_term": 10**7}, ["body", "net_payment_term"]),
        (
            "POST",
            "/v1/billing_entities/",
            {"code": "b", "name": "B", "next_invoice_number": 10**20},
            ["body", "next_invoice_number"],
        ),
        (
            "POST",
            "/v1/billing_entities/",
            {"code": "b", "name": "B", "net_payment_term": 2**63},
            ["body", "net_payment_term"],
        ),
        (
            "PATCH",
            "/v1/billing_entities/default",
            {"next_invoice_number": 2**64},
            ["body", "next_invoice_number"],
        ),
        (
            "PATCH",
            "/v1/billing_entities/default",
            {"invoice_grace_period": 10**30},
            ["body", "invoice_grace_period"],
        ),
    ],
)
def test_out_of_range_integers_are_422_not_500(api, app, customer, method, path, body, loc):
    with Unchanged(app):
        resp = api.client.open(
            path.format(cid=customer["id"]), method=method, json=body, headers=api.tenant.headers
        )
        assert_422(resp, loc)


def test_longest_payment_term_still_finalizes(api):
    """The largest accepted term gives a due date the calendar can hold (no 500)."""
    resp = api.post(
        "/v1/customers/", {"external_id": "slow", "name": "Slow payer", "net_payment_term": 36500}
    )
    assert resp.status_code == 201, resp.get_json()
    invoice = api.invoice(resp.get_json()["id"])
    done = api.post(f"/v1/invoices/{invoice['id']}/finalize")
    assert done.status_code == 200, done.get_json()
    assert int(done.get_json()["due_date"][:4]) >= 2100


def test_deeply_nested_json_is_422_not_500(api, app):
    with Unchanged(app):
        assert_422(post_raw(api, "[" * 100_000 + "]" * 100_000), ["body"])
