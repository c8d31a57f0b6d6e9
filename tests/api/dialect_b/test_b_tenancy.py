"""Tenancy on every dialect B resource route (API.md "Common" > Tenancy).

A handle, code or id of another account's object answers exactly like a missing one (404
with the resource's code), whether it is in the path or referenced from a body, and the
other account's objects are unchanged afterwards. Lists never show other accounts' rows.
Handles are unique per account: the same handle in two accounts is fine.
"""

from __future__ import annotations

from typing import Any

import pytest
from b_api import BApi, error
from conftest import row_counts


@pytest.fixture
def ours(client, tenant) -> BApi:
    return BApi(client, tenant)


@pytest.fixture
def theirs(client, other_tenant) -> BApi:
    return BApi(client, other_tenant)


@pytest.fixture
def world(ours: BApi, theirs: BApi) -> dict[str, str]:
    """The other account owns one of everything; we own a customer, plan and subscription
    under different handles (so a 404 can only come from tenancy)."""
    t = theirs
    t.customer("their-cust")
    card = t.card("their-cust")
    t.plan("their-plan")
    t.add_on("their-addon")
    t.subscription("their-sub", customer="their-cust", plan="their-plan", source=card)
    t.discount("their-disc")
    t.coupon("their-coupon", "THEIRCODE", "their-disc")
    t.metric("their-metric")
    charge = t.ok("/v1/plan/their-plan/charge", {"metric": "their-metric", "unit_amount": 1})
    t.ok(
        "/v1/additional_cost",
        {"handle": "their-cost", "subscription": "their-sub", "ordertext": "x", "amount": 100},
    )
    t.ok("/v1/credit", {"handle": "their-credit", "subscription": "their-sub", "amount": 100})
    t.ok(
        "/v1/usage",
        {
            "transaction_id": "their-tx",
            "subscription": "their-sub",
            "metric": "their-metric",
            "value": 1,
        },
    )
    ours.customer("our-cust")
    ours.plan("our-plan")
    ours.subscription("our-sub", customer="our-cust", plan="our-plan")
    ours.metric("our-metric")
    return {"card": card, "charge": charge["id"]}


def their_state(t: BApi, world: dict[str, str]) -> list[Any]:
    """Everything the other account can see of its objects."""
    paths = [
        "/v1/customer/their-cust",
        "/v1/customer/their-cust/payment_method",
        f"/v1/payment_method/{world['card']}",
        "/v1/plan/their-plan",
        "/v1/plan/their-plan/charge",
        "/v1/add_on/their-addon",
        "/v1/subscription/their-sub",
        "/v1/discount/their-disc",
        "/v1/coupon/their-coupon",
        "/v1/metric/their-metric",
        "/v1/additional_cost/their-cost",
        "/v1/credit/their-credit",
        "/v1/usage",
    ]
    return [t.got(p) for p in paths]


# (method, path, body, code): every route, naming the other account's objects.
ROUTES: list[tuple[str, str, dict[str, Any] | None, int]] = [
    ("GET", "/v1/customer/their-cust", None, 9),
    ("GET", "/v1/customer/their-cust/payment_method", None, 9),
    (
        "POST",
        "/v1/customer/their-cust/payment_method",
        {"card_number": "4111111111111111", "exp_month": 12, "exp_year": 2099},
        9,
    ),
    ("GET", "/v1/payment_method/{card}", None, 40),
    ("GET", "/v1/plan/their-plan", None, 10),
    ("GET", "/v1/plan/their-plan/charge", None, 10),
    ("POST", "/v1/plan/their-plan/charge", {"metric": "our-metric", "unit_amount": 1}, 10),
    ("GET", "/v1/add_on/their-addon", None, 113),
    ("GET", "/v1/subscription/their-sub", None, 12),
    ("POST", "/v1/subscription/their-sub/on_hold", None, 12),
    ("POST", "/v1/subscription/their-sub/reactivate", None, 12),
    ("POST", "/v1/subscription/their-sub/cancel", None, 12),
    ("POST", "/v1/subscription/their-sub/expire", None, 12),
    ("POST", "/v1/subscription/their-sub/pm", {"source": "{card}"}, 12),
    ("POST", "/v1/subscription/their-sub/discount", {"discount": "their-disc"}, 12),
    ("GET", "/v1/discount/their-disc", None, 83),
    ("GET", "/v1/coupon/their-coupon", None, 86),
    ("GET", "/v1/metric/their-metric", None, 8),
    ("GET", "/v1/additional_cost/their-cost", None, 26),
    ("POST", "/v1/additional_cost/their-cost/cancel", None, 26),
    ("GET", "/v1/additional_cost/subscription/their-sub", None, 12),
    ("GET", "/v1/additional_cost?subscription=their-sub", None, 12),
    ("GET", "/v1/credit/their-credit", None, 27),
    ("POST", "/v1/credit/their-credit/cancel", None, 27),
    ("GET", "/v1/credit?subscription=their-sub", None, 12),
    ("GET", "/v1/usage?subscription=their-sub", None, 12),
    ("GET", "/v1/usage?metric=their-metric", None, 8),
    # References from request bodies.
    ("POST", "/v1/subscription", {"handle": "s", "customer": "their-cust", "plan": "our-plan"}, 9),
    ("POST", "/v1/subscription", {"handle": "s", "customer": "our-cust", "plan": "their-plan"}, 10),
    (
        "POST",
        "/v1/subscription",
        {
            "handle": "s",
            "customer": "our-cust",
            "plan": "our-plan",
            "add_ons": [{"add_on": "their-addon"}],
        },
        113,
    ),
    (
        "POST",
        "/v1/subscription",
        {"handle": "s", "customer": "our-cust", "plan": "our-plan", "source": "{card}"},
        40,
    ),
    ("POST", "/v1/subscription/our-sub/pm", {"source": "{card}"}, 40),
    ("POST", "/v1/subscription/our-sub/discount", {"discount": "their-disc"}, 83),
    ("POST", "/v1/subscription/our-sub/discount", {"coupon": "THEIRCODE"}, 86),
    (
        "POST",
        "/v1/add_on",
        {"handle": "a", "name": "A", "amount": 1, "eligible_plans": ["their-plan"]},
        10,
    ),
    ("POST", "/v1/coupon", {"handle": "c", "code": "C", "name": "C", "discount": "their-disc"}, 83),
    ("POST", "/v1/plan/our-plan/charge", {"metric": "their-metric", "unit_amount": 1}, 8),
    (
        "POST",
        "/v1/additional_cost",
        {"handle": "ac", "subscription": "their-sub", "ordertext": "x", "amount": 1},
        12,
    ),
    ("POST", "/v1/credit", {"handle": "cr", "subscription": "their-sub", "amount": 1}, 12),
    (
        "POST",
        "/v1/usage",
        {"transaction_id": "t", "subscription": "their-sub", "metric": "our-metric", "value": 1},
        12,
    ),
    (
        "POST",
        "/v1/usage",
        {"transaction_id": "t", "subscription": "our-sub", "metric": "their-metric", "value": 1},
        8,
    ),
]


def _fill(value: Any, world: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.replace("{card}", world["card"])
    if isinstance(value, dict):
        return {k: _fill(v, world) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, world) for v in value]
    return value


@pytest.mark.parametrize(
    ("method", "path", "body", "code"), ROUTES, ids=[f"{m} {p} {c}" for m, p, _, c in ROUTES]
)
def test_foreign_object_is_not_found_and_unchanged(
    app, ours: BApi, theirs: BApi, world, method, path, body, code
):
    before_state = their_state(theirs, world)
    before_rows = row_counts(app)
    path = _fill(path, world)
    if method == "GET":
        base, _, qs = path.partition("?")
        resp = ours.client.get(base, query_string=qs or None, headers=ours.headers)
    else:
        resp = ours.post(path, _fill(body, world))
    got = error(resp, 404, code)
    # Exactly the answer a missing object gets (apart from request id and time).
    missing = _fill(path, world).replace("their-", "nobody-").replace(world["card"], "ca_nobody")
    if method == "GET":
        base, _, qs = missing.partition("?")
        other = ours.client.get(base, query_string=qs or None, headers=ours.headers)
    else:
        missing_body = _fill(body, world)
        if missing_body is not None:
            missing_body = {
                k: v.replace("their-", "nobody-")
                .replace(world["card"], "ca_nobody")
                .replace("THEIRCODE", "NOBODYCODE")
                if isinstance(v, str)
                else v
                for k, v in missing_body.items()
            }
            if "add_ons" in missing_body:
                missing_body["add_ons"] = [{"add_on": "nobody-addon"}]
            if "eligible_plans" in missing_body:
                missing_body["eligible_plans"] = ["nobody-plan"]
        other = ours.post(missing, missing_body)
    expected = other.get_json()
    for volatile in ("timestamp", "request_id"):
        got.pop(volatile)
        expected.pop(volatile)
    for key in ("path", "message"):
        if key in expected:
            expected[key] = (
                expected[key]
                .replace("nobody-", "their-")
                .replace("ca_nobody", world["card"])
                .replace("NOBODYCODE", "THEIRCODE")
            )
    assert got == expected
    assert row_counts(app) == before_rows
    assert their_state(theirs, world) == before_state


@pytest.mark.parametrize(
    "path",
    [
        "/v1/customer",
        "/v1/plan",
        "/v1/add_on",
        "/v1/subscription",
        "/v1/additional_cost",
        "/v1/credit",
        "/v1/discount",
        "/v1/coupon",
        "/v1/metric",
        "/v1/usage",
    ],
)
def test_lists_show_only_own_rows(ours: BApi, world, path):
    content = ours.got(path)["content"]
    text = repr(content)
    assert "their-" not in text and "THEIRCODE" not in text


def test_subscription_filter_by_foreign_customer_is_empty(ours: BApi, world):
    assert ours.got("/v1/subscription", customer="their-cust")["content"] == []


def test_same_handles_in_two_accounts(ours: BApi, theirs: BApi, world):
    ours.customer("their-cust")
    ours.plan("their-plan")
    ours.add_on("their-addon")
    ours.subscription("their-sub", customer="their-cust", plan="their-plan")
    ours.discount("their-disc")
    ours.coupon("their-coupon", "THEIRCODE", "their-disc")
    ours.metric("their-metric")
    ours.ok(
        "/v1/additional_cost",
        {"handle": "their-cost", "subscription": "their-sub", "ordertext": "x", "amount": 1},
    )
    ours.ok("/v1/credit", {"handle": "their-credit", "subscription": "their-sub", "amount": 1})
    ours.ok(
        "/v1/usage",
        {
            "transaction_id": "their-tx",
            "subscription": "their-sub",
            "metric": "their-metric",
            "value": 1,
        },
    )
    # Each account still sees only its own object under the shared handle.
    assert ours.got("/v1/subscription/their-sub")["plan"] == "their-plan"
    assert ours.got("/v1/credit/their-credit")["amount"] == 1
    assert theirs.got("/v1/credit/their-credit")["amount"] == 100


def test_customer_handle_is_dialect_a_external_id_per_account(ours: BApi, theirs: BApi, api, world):
    ours.customer("their-cust")
    their_id = theirs.got("/v1/customer/their-cust")["id"]
    assert api.get(f"/v1/customers/{their_id}").status_code == 404
    mine = ours.got("/v1/customer/their-cust")
    assert api.get(f"/v1/customers/{mine['id']}").get_json()["external_id"] == "their-cust"
