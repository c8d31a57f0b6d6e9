"""Dialect B resources (API.md "The resources it draws on") through real HTTP requests:
create/get/list with their defaults, every error code, duplicates, state changes,
discounts and coupons, usage, and Reepay-style paging."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from b_api import APPROVE, NEXT_YEAR, BApi, error
from conftest import row_counts
from sqlalchemy import select, update

from billing_app.audit.models import AuditRecord
from billing_app.extensions import db
from billing_app.subscriptions.models import Credit


@pytest.fixture
def b(client, tenant) -> BApi:
    return BApi(client, tenant)


@pytest.fixture
def setup(b: BApi) -> BApi:
    """A customer with a card, a plan, and an active subscription paying with the card."""
    b.customer("cust-1")
    b.card("cust-1")
    b.plan("basic")
    b.subscription("sub-1")
    return b


def audit_actions(app, tenant) -> list[str]:
    with app.app_context():
        actions = list(
            db.session.scalars(
                select(AuditRecord.action)
                .where(AuditRecord.account_id == tenant.account_id)
                .order_by(AuditRecord.seq)
            )
        )
        db.session.remove()
    return actions


# ---------------------------------------------------------------- customers


def test_customer_create_get_list_with_defaults(b: BApi, api):
    created = b.ok(
        "/v1/customer",
        {
            "handle": "cust-1",
            "email": "anna@example.com",
            "first_name": "Anna",
            "last_name": "Berg",
            "address": "Main St 1",
            "address2": "2nd floor",
            "city": "Aarhus",
            "postal_code": "8000",
            "country": "dk",
            "vat": "DK12345678",
            "phone": "+45 1234",
            "locale": "da_DK",
            "unknown_field": "ignored",
        },
    )
    assert created["handle"] == "cust-1"
    assert created["name"] == "Anna Berg"
    assert created["country"] == "DK"
    assert created["currency"] == "EUR"  # the account's default currency
    assert created["locale"] == "da_DK"
    assert created["postal_code"] == "8000" and created["vat"] == "DK12345678"
    assert datetime.fromisoformat(created["created"]).utcoffset() is not None
    assert b.got("/v1/customer/cust-1") == created
    page = b.got("/v1/customer")
    assert page["count"] == 1 and page["content"] == [created]
    assert page["size"] == 20 and page["next_page_token"] is None

    # The same customer in dialect A, with external_id = handle.
    a = api.get(f"/v1/customers/{created['id']}")
    assert a.status_code == 200
    assert a.get_json()["external_id"] == "cust-1"
    assert a.get_json()["name"] == "Anna Berg"


@pytest.mark.parametrize(
    ("extra", "name"),
    [
        ({"company": "Acme A/S", "first_name": "Anna"}, "Acme A/S"),
        ({"first_name": "Anna"}, "Anna"),
        ({}, "cust-x"),
    ],
)
def test_customer_name_derivation(b: BApi, extra, name):
    assert b.ok("/v1/customer", {"handle": "cust-x", **extra})["name"] == name


def test_customer_defaults_and_generated_handle(b: BApi):
    minimal = b.ok("/v1/customer", {"handle": "min", "currency": "dkk"})
    assert minimal["currency"] == "DKK"
    assert minimal["locale"] == "en" and minimal["email"] is None
    generated = b.ok("/v1/customer", {"generate_handle": True})
    assert generated["handle"].startswith("cust-")


def test_customer_errors(b: BApi):
    b.customer("cust-1")
    body = error(b.post("/v1/customer", {"handle": "cust-1"}), 400, 11)
    assert body["path"] == "/v1/customer"
    assert "handle" in error(b.post("/v1/customer", {"email": "x@example.com"}), 400, 1)["message"]
    assert (
        "email"
        in error(b.post("/v1/customer", {"handle": "c2", "email": "nope"}), 400, 1)["message"]
    )
    assert "handle" in error(b.post("/v1/customer", {"handle": "a b"}), 400, 1)["message"]
    assert (
        "currency"
        in error(b.post("/v1/customer", {"handle": "c3", "currency": "XYZ"}), 400, 1)["message"]
    )
    error(b.get("/v1/customer/nobody"), 404, 9)


# ---------------------------------------------------------------- payment methods


def test_payment_method_add_get_list(b: BApi):
    b.customer("cust-1")
    pm = b.ok(
        "/v1/customer/cust-1/payment_method",
        {"card_number": "4111 1111 1111 1111", "exp_month": 3, "exp_year": NEXT_YEAR, "cvv": "123"},
    )
    assert pm["id"].startswith("ca_")
    assert pm["state"] == "active" and pm["card_type"] == "visa"
    assert pm["masked_card"] == "411111XXXXXX1111"
    assert pm["exp_date"] == f"03-{NEXT_YEAR % 100:02d}"
    assert pm["customer"] == "cust-1"
    assert b.got(f"/v1/payment_method/{pm['id']}") == pm
    page = b.got("/v1/customer/cust-1/payment_method")
    assert page["content"] == [pm]


@pytest.mark.parametrize(
    ("card", "field"),
    [
        ({"card_number": "4111111111111112"}, "card_number"),
        ({"card_number": "abc"}, "card_number"),
        ({"exp_month": 13}, "exp_month"),
        ({"exp_year": 2001}, "exp_year"),
        ({"cvv": "12"}, "cvv"),
        ({"exp_month": True}, "exp_month"),
    ],
)
def test_payment_method_invalid_card_names_the_field(b: BApi, app, card, field):
    b.customer("cust-1")
    before = row_counts(app)
    body = {"card_number": APPROVE, "exp_month": 12, "exp_year": NEXT_YEAR, "cvv": "123", **card}
    resp = b.post("/v1/customer/cust-1/payment_method", body)
    assert field in error(resp, 400, 1)["message"]
    assert row_counts(app) == before


def test_payment_method_not_found(b: BApi):
    error(
        b.post(
            "/v1/customer/nobody/payment_method",
            {"card_number": APPROVE, "exp_month": 1, "exp_year": NEXT_YEAR},
        ),
        404,
        9,
    )
    error(b.get("/v1/customer/nobody/payment_method"), 404, 9)
    error(b.get("/v1/payment_method/ca_doesnotexist"), 404, 40)


# ---------------------------------------------------------------- plans and add-ons


def test_plan_defaults_and_exact_vat(b: BApi):
    plan = b.ok("/v1/plan", {"handle": "basic", "name": "Basic", "amount": 9900, "vat": 0.25})
    assert plan["amount_incl_vat"] is True
    assert plan["quantity"] == 1 and plan["schedule_type"] == "manual"
    assert plan["interval_length"] == 1 and plan["currency"] == "EUR"
    assert plan["state"] == "active"
    raw = b.get("/v1/plan/basic").get_data(as_text=True)
    assert '"vat":0.25' in raw  # a JSON number, written exactly
    bare = b.ok("/v1/plan", {"handle": "bare", "name": "Bare", "amount": 0})
    assert bare["vat"] is None
    page = b.got("/v1/plan")
    assert [p["handle"] for p in page["content"]] == ["bare", "basic"]


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"vat": 1.5}, "vat"),
        ({"vat": "abc"}, "vat"),
        ({"amount": -1}, "amount"),
        ({"amount": 10.5}, "amount"),
        ({"amount": True}, "amount"),
        ({"schedule_type": "yearly"}, "schedule_type"),
        ({"quantity": 0}, "quantity"),
        ({"currency": "ABC"}, "currency"),
        ({"name": ""}, "name"),
    ],
)
def test_plan_validation_names_the_field(b: BApi, patch, field):
    body = {"handle": "p", "name": "P", "amount": 100, **patch}
    assert field in error(b.post("/v1/plan", body), 400, 1)["message"]


def test_plan_duplicate_and_not_found(b: BApi):
    b.plan("basic")
    error(b.post("/v1/plan", {"handle": "basic", "name": "Again", "amount": 1}), 400, 11)
    error(b.get("/v1/plan/none"), 404, 10)


def test_add_on_defaults_eligibility_and_errors(b: BApi):
    b.plan("basic")
    everywhere = b.add_on("extra")
    assert everywhere["type"] == "on_off" and everywhere["all_plans"] is True
    assert everywhere["amount_incl_vat"] is True and everywhere["eligible_plans"] == []
    only = b.add_on("seats", type="quantity", eligible_plans=["basic"])
    assert only["all_plans"] is False and only["eligible_plans"] == ["basic"]
    assert b.got("/v1/add_on/seats") == only
    assert [a["handle"] for a in b.got("/v1/add_on")["content"]] == ["seats", "extra"]
    error(
        b.post("/v1/add_on", {"handle": "x", "name": "X", "amount": 1, "eligible_plans": ["nope"]}),
        404,
        10,
    )
    error(b.post("/v1/add_on", {"handle": "extra", "name": "X", "amount": 1}), 400, 11)
    assert (
        "type"
        in error(
            b.post("/v1/add_on", {"handle": "y", "name": "Y", "amount": 1, "type": "bulk"}), 400, 1
        )["message"]
    )
    error(b.get("/v1/add_on/none"), 404, 113)


# ---------------------------------------------------------------- subscriptions


def test_subscription_create_with_add_ons_and_card(b: BApi, app, tenant):
    b.customer("cust-1")
    card = b.card("cust-1")
    b.plan("basic", quantity=2)
    b.add_on("extra")
    b.add_on("seats", type="quantity", eligible_plans=["basic"])
    sub = b.subscription(
        "sub-1",
        source=card,
        add_ons=[
            {"add_on": "extra"},
            {"add_on": "seats", "handle": "seats-1", "quantity": 5, "amount": 1200},
        ],
        cost_center="CC-7",
        purchase_order_number="PO-7",
    )
    assert sub["state"] == "active" and sub["is_cancelled"] is False
    assert sub["customer"] == "cust-1" and sub["plan"] == "basic"
    assert sub["quantity"] == 2  # the plan's default quantity
    assert sub["amount"] is None
    assert sub["payment_method"] == card and sub["payment_method_added"] is True
    assert sub["subscription_add_ons"] == ["extra", "seats-1"]
    assert sub["subscription_discounts"] == []
    assert sub["current_period_end"] is None  # a manual plan has no periods
    assert sub["cost_center"] == "CC-7" and sub["purchase_order_number"] == "PO-7"
    assert b.got("/v1/subscription/sub-1") == sub
    assert "subscription.created" in audit_actions(app, tenant)


def test_subscription_defaults_and_periods(b: BApi):
    b.customer("cust-1")
    b.plan("monthly", schedule_type="month_startdate")
    sub = b.subscription("sub-m", plan="monthly", start_date="2026-01-31", amount=5000, quantity=3)
    assert sub["amount"] == 5000 and sub["quantity"] == 3
    assert sub["payment_method"] is None and sub["active_payment_methods"] == []
    # Account time zone UTC: local midnight; one month later clamps to February's end.
    assert sub["start_date"] == "2026-01-31T00:00:00+00:00"
    assert sub["current_period_start"] == "2026-01-31T00:00:00+00:00"
    assert sub["current_period_end"] == "2026-02-28T00:00:00+00:00"
    b.plan("daily", schedule_type="daily", interval_length=3)
    daily = b.subscription("sub-d", plan="daily", start_date="2026-03-01T10:30")
    assert daily["current_period_end"] == "2026-03-04T10:30:00+00:00"
    now = datetime.now(UTC)
    plain = b.subscription("sub-now", plan="daily")
    started = datetime.fromisoformat(plain["start_date"])
    assert abs(started - now) < timedelta(minutes=1)


def test_subscription_errors(b: BApi, app):
    b.customer("cust-1")
    b.customer("cust-2")
    other_card = b.card("cust-2")
    b.plan("basic")
    b.plan("other")
    b.add_on("extra")
    b.add_on("only-other", eligible_plans=["other"])
    b.add_on("seats", type="quantity")
    base = {"handle": "s", "customer": "cust-1", "plan": "basic"}
    before = row_counts(app)
    error(b.post("/v1/subscription", {**base, "customer": "nobody"}), 404, 9)
    error(b.post("/v1/subscription", {**base, "plan": "none"}), 404, 10)
    error(b.post("/v1/subscription", {**base, "add_ons": [{"add_on": "none"}]}), 404, 113)
    # A payment method of another customer is unknown to this one.
    error(b.post("/v1/subscription", {**base, "source": other_card}), 404, 40)
    error(b.post("/v1/subscription", {**base, "source": "ca_missing"}), 404, 40)
    error(b.post("/v1/subscription", {**base, "add_ons": [{"add_on": "only-other"}]}), 400, 116)
    error(
        b.post("/v1/subscription", {**base, "add_ons": [{"add_on": "extra", "quantity": 2}]}),
        400,
        115,
    )
    error(
        b.post("/v1/subscription", {**base, "add_ons": [{"add_on": "extra"}, {"add_on": "extra"}]}),
        400,
        114,
    )
    msg = error(b.post("/v1/subscription", {**base, "start_date": "01/02/2026"}), 400, 1)
    assert "start_date" in msg["message"]
    msg = error(
        b.post("/v1/subscription", {**base, "add_ons": [{"add_on": "seats", "quantity": 0}]}),
        400,
        1,
    )
    assert "add_ons[0].quantity" in msg["message"]
    assert row_counts(app) == before
    b.subscription("s")
    error(b.post("/v1/subscription", base), 400, 11)
    error(b.get("/v1/subscription/none"), 404, 12)


def test_subscription_list_filters(b: BApi):
    b.customer("cust-1")
    b.customer("cust-2")
    b.plan("basic")
    b.subscription("a", customer="cust-1")
    b.subscription("b", customer="cust-2")
    b.subscription("c", customer="cust-1")
    b.ok("/v1/subscription/c/expire")
    assert [s["handle"] for s in b.got("/v1/subscription")["content"]] == ["c", "b", "a"]
    by_customer = b.got("/v1/subscription", customer="cust-1")["content"]
    assert [s["handle"] for s in by_customer] == ["c", "a"]
    assert [s["handle"] for s in b.got("/v1/subscription", state="active")["content"]] == [
        "b",
        "a",
    ]
    assert b.got("/v1/subscription", customer="nobody")["content"] == []
    assert "state" in error(b.get("/v1/subscription", state="paused"), 400, 1)["message"]


def test_subscription_state_changes(setup: BApi, app, tenant):
    b = setup
    held = b.ok("/v1/subscription/sub-1/on_hold")
    assert held["state"] == "on_hold" and held["on_hold_reason"] == "ondemand"
    assert held["on_hold_date"] is not None
    error(b.post("/v1/subscription/sub-1/on_hold"), 400, 95)
    active = b.ok("/v1/subscription/sub-1/reactivate")
    assert active["state"] == "active" and active["reactivated"] is not None
    assert active["on_hold_date"] is None
    error(b.post("/v1/subscription/sub-1/reactivate"), 400, 97)
    cancelled = b.ok("/v1/subscription/sub-1/cancel")
    assert cancelled["is_cancelled"] is True and cancelled["state"] == "active"
    assert cancelled["cancelled_date"] is not None and cancelled["renewing"] is False
    error(b.post("/v1/subscription/sub-1/cancel"), 400, 22)
    expired = b.ok("/v1/subscription/sub-1/expire")
    assert expired["state"] == "expired" and expired["expired_date"] is not None
    for action in ("on_hold", "cancel", "expire"):
        error(b.post(f"/v1/subscription/sub-1/{action}"), 400, 13)
    error(b.post("/v1/subscription/sub-1/reactivate"), 400, 97)
    actions = audit_actions(app, tenant)
    for action in ("on_hold", "reactivated", "cancelled", "expired"):
        assert f"subscription.{action}" in actions
    for action in ("on_hold", "reactivate", "cancel", "expire"):
        error(b.post(f"/v1/subscription/none/{action}"), 404, 12)


def test_expired_subscription_takes_nothing_new(setup: BApi, app):
    b = setup
    b.metric("calls")
    b.discount("ten-off")
    b.ok("/v1/subscription/sub-1/expire")
    before = row_counts(app)
    error(
        b.post(
            "/v1/additional_cost",
            {"handle": "c", "subscription": "sub-1", "ordertext": "x", "amount": 1},
        ),
        400,
        13,
    )
    error(b.post("/v1/credit", {"handle": "c", "subscription": "sub-1", "amount": 1}), 400, 13)
    error(b.post("/v1/subscription/sub-1/discount", {"discount": "ten-off"}), 400, 13)
    error(
        b.post(
            "/v1/usage",
            {"transaction_id": "t", "subscription": "sub-1", "metric": "calls", "value": 1},
        ),
        400,
        13,
    )
    error(b.post("/v1/subscription/sub-1/pm", {"source": "auto"}), 400, 13)
    assert row_counts(app) == before


def test_change_payment_method(setup: BApi, app, tenant):
    b = setup
    second = b.card("cust-1")
    changed = b.ok("/v1/subscription/sub-1/pm", {"source": second})
    assert changed["payment_method"] == second
    b.customer("cust-2")
    foreign = b.card("cust-2")
    error(b.post("/v1/subscription/sub-1/pm", {"source": foreign}), 404, 40)
    assert b.got("/v1/subscription/sub-1")["payment_method"] == second
    error(b.post("/v1/subscription/none/pm", {"source": second}), 404, 12)
    assert "source" in error(b.post("/v1/subscription/sub-1/pm", {}), 400, 1)["message"]
    assert "subscription.payment_method_changed" in audit_actions(app, tenant)


# ---------------------------------------------------------------- discounts and coupons


def test_discount_create_get_list_and_defaults(b: BApi):
    fixed = b.ok("/v1/discount", {"handle": "five", "name": "Five off", "amount": 500})
    assert fixed["apply_to"] == ["all"] and fixed["percentage"] is None
    assert fixed["fixed_count"] is None and fixed["state"] == "active"
    pct = b.ok(
        "/v1/discount",
        {
            "handle": "pct",
            "name": "12.5 %",
            "percentage": "12.5",
            "apply_to": ["plan", "add_on"],
            "fixed_count": 3,
            "fixed_period": 2,
            "fixed_period_unit": "months",
        },
    )
    assert pct["apply_to"] == ["plan", "add_on"] and pct["fixed_period_unit"] == "months"
    assert '"percentage":12.5' in b.get("/v1/discount/pct").get_data(as_text=True)
    assert b.got("/v1/discount/five") == fixed
    assert [d["handle"] for d in b.got("/v1/discount")["content"]] == ["pct", "five"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "amount"),
        ({"amount": 100, "percentage": 10}, "amount"),
        ({"percentage": 0}, "percentage"),
        ({"percentage": 100.5}, "percentage"),
        ({"amount": 0}, "amount"),
        ({"percentage": 10, "apply_to": ["everything"]}, "apply_to"),
        ({"percentage": 10, "apply_to": []}, "apply_to"),
        ({"percentage": 10, "fixed_period": 2}, "fixed_period_unit"),
        ({"percentage": 10, "fixed_period_unit": "weeks", "fixed_period": 1}, "fixed_period_unit"),
    ],
)
def test_discount_validation(b: BApi, body, field):
    resp = b.post("/v1/discount", {"handle": "d", "name": "D", **body})
    assert field in error(resp, 400, 1)["message"]


def test_discount_duplicate_and_not_found(b: BApi):
    b.discount("ten-off")
    error(b.post("/v1/discount", {"handle": "ten-off", "name": "X", "amount": 1}), 400, 11)
    error(b.get("/v1/discount/none"), 404, 83)


def test_attach_discount_to_subscription(setup: BApi, app, tenant):
    b = setup
    b.discount("ten-off")
    sd = b.ok("/v1/subscription/sub-1/discount", {"handle": "sd-1", "discount": "ten-off"})
    assert sd["handle"] == "sd-1" and sd["discount"] == "ten-off"
    assert sd["subscription"] == "sub-1" and sd["coupon"] is None
    assert sd["state"] == "active" and sd["count"] == 0 and sd["percentage"] == 10
    default_handle = b.ok("/v1/subscription/sub-1/discount", {"discount": "ten-off"})
    assert default_handle["handle"] == "ten-off"
    assert b.got("/v1/subscription/sub-1")["subscription_discounts"] == ["sd-1", "ten-off"]
    error(
        b.post("/v1/subscription/sub-1/discount", {"handle": "sd-1", "discount": "ten-off"}),
        400,
        11,
    )
    error(b.post("/v1/subscription/sub-1/discount", {"discount": "none"}), 404, 83)
    error(b.post("/v1/subscription/none/discount", {"discount": "ten-off"}), 404, 12)
    assert "discount" in error(b.post("/v1/subscription/sub-1/discount", {}), 400, 1)["message"]
    assert (
        "discount"
        in error(
            b.post("/v1/subscription/sub-1/discount", {"discount": "ten-off", "coupon": "X"}),
            400,
            1,
        )["message"]
    )
    assert "subscription.discount_added" in audit_actions(app, tenant)


def test_coupon_create_and_errors(b: BApi):
    b.discount("ten-off")
    coupon = b.coupon("welcome", "WELCOME", max_redemptions=2)
    assert coupon == {
        **coupon,
        "code": "WELCOME",
        "discount": "ten-off",
        "redemptions": 0,
        "max_redemptions": 2,
        "state": "active",
    }
    assert b.got("/v1/coupon/welcome") == coupon
    assert b.got("/v1/coupon")["content"] == [coupon]
    error(
        b.post(
            "/v1/coupon", {"handle": "welcome", "code": "OTHER", "name": "x", "discount": "ten-off"}
        ),
        400,
        11,
    )
    error(
        b.post(
            "/v1/coupon", {"handle": "other", "code": "WELCOME", "name": "x", "discount": "ten-off"}
        ),
        400,
        88,
    )
    error(
        b.post("/v1/coupon", {"handle": "c2", "code": "C2", "name": "x", "discount": "none"}),
        404,
        83,
    )
    error(b.get("/v1/coupon/none"), 404, 86)


def test_coupon_redemption_counts_and_limits(setup: BApi, app):
    b = setup
    b.discount("ten-off")
    b.coupon("welcome", "WELCOME", max_redemptions=1)
    sd = b.ok("/v1/subscription/sub-1/discount", {"coupon": "WELCOME"})
    assert sd["coupon"] == "WELCOME" and sd["discount"] == "ten-off"
    assert sd["handle"] == "ten-off"
    assert b.got("/v1/coupon/welcome")["redemptions"] == 1
    # The limit is reached: another customer's subscription is refused, nothing changes.
    b.customer("cust-2")
    b.subscription("sub-2", customer="cust-2")
    before = row_counts(app)
    error(b.post("/v1/subscription/sub-2/discount", {"coupon": "WELCOME"}), 404, 86)
    assert row_counts(app) == before
    assert b.got("/v1/coupon/welcome")["redemptions"] == 1
    error(b.post("/v1/subscription/sub-2/discount", {"coupon": "NOPE"}), 404, 86)


def test_coupon_once_per_customer(setup: BApi):
    b = setup
    b.discount("ten-off")
    b.coupon("welcome", "WELCOME")
    b.ok("/v1/subscription/sub-1/discount", {"coupon": "WELCOME"})
    b.subscription("sub-1b")
    error(b.post("/v1/subscription/sub-1b/discount", {"coupon": "WELCOME"}), 400, 87)
    assert b.got("/v1/coupon/welcome")["redemptions"] == 1


# ---------------------------------------------------------------- additional costs


def test_additional_cost_create_get_list_cancel(setup: BApi, app, tenant):
    b = setup
    cost = b.ok(
        "/v1/additional_cost",
        {"handle": "ac-1", "subscription": "sub-1", "ordertext": "Setup", "amount": 4900},
    )
    assert cost["state"] == "pending" and cost["quantity"] == 1
    assert cost["amount_incl_vat"] is True and cost["vat"] is None
    assert cost["invoice"] is None and cost["subscription"] == "sub-1"
    b.subscription("sub-2")
    other = b.ok(
        "/v1/additional_cost",
        {
            "handle": "ac-2",
            "subscription": "sub-2",
            "ordertext": "Other",
            "amount": 100,
            "quantity": 3,
            "vat": "0.25",
            "amount_incl_vat": False,
        },
    )
    assert other["quantity"] == 3 and other["vat"] == 0.25
    assert b.got("/v1/additional_cost/ac-1") == cost
    assert [c["handle"] for c in b.got("/v1/additional_cost")["content"]] == ["ac-2", "ac-1"]
    assert [c["handle"] for c in b.got("/v1/additional_cost/subscription/sub-1")["content"]] == [
        "ac-1"
    ]
    assert [c["handle"] for c in b.got("/v1/additional_cost", subscription="sub-2")["content"]] == [
        "ac-2"
    ]
    cancelled = b.ok("/v1/additional_cost/ac-1/cancel")
    assert cancelled["state"] == "cancelled"
    error(b.post("/v1/additional_cost/ac-1/cancel"), 400, 25)
    assert "additional_cost.cancelled" in audit_actions(app, tenant)


def test_additional_cost_transferred_cannot_be_cancelled(setup: BApi):
    b = setup
    b.ok(
        "/v1/additional_cost",
        {"handle": "ac-1", "subscription": "sub-1", "ordertext": "Setup", "amount": 4900},
    )
    invoice = b.ok("/v1/subscription/sub-1/invoice", {"handle": "inv-1"})
    cost = b.got("/v1/additional_cost/ac-1")
    assert cost["state"] == "transferred" and cost["invoice"] == invoice["id"]
    error(b.post("/v1/additional_cost/ac-1/cancel"), 400, 25)


def test_additional_cost_errors(setup: BApi):
    b = setup
    body = {"handle": "ac-1", "subscription": "sub-1", "ordertext": "Setup", "amount": 1}
    b.ok("/v1/additional_cost", body)
    error(b.post("/v1/additional_cost", body), 400, 11)
    error(
        b.post("/v1/additional_cost", {**body, "handle": "ac-2", "subscription": "none"}), 404, 12
    )
    for patch, field in (
        ({"ordertext": ""}, "ordertext"),
        ({"amount": "x"}, "amount"),
        ({"quantity": 0}, "quantity"),
        ({"vat": 2}, "vat"),
    ):
        resp = b.post("/v1/additional_cost", {**body, "handle": "ac-3", **patch})
        assert field in error(resp, 400, 1)["message"]
    error(b.get("/v1/additional_cost/none"), 404, 26)
    error(b.post("/v1/additional_cost/none/cancel"), 404, 26)
    error(b.get("/v1/additional_cost/subscription/none"), 404, 12)


# ---------------------------------------------------------------- credits


def test_credit_create_get_list_cancel(setup: BApi, app, tenant):
    b = setup
    credit = b.ok(
        "/v1/credit",
        {
            "handle": "cr-1",
            "subscription": "sub-1",
            "amount": 1500,
            "text": "Goodwill",
            "valid_from": "2026-05-01",
        },
    )
    assert credit["state"] == "pending" and credit["pending_amount"] == 1500
    assert credit["valid_from"] == "2026-05-01" and credit["credit_invoices"] == []
    plain = b.ok("/v1/credit", {"handle": "cr-2", "subscription": "sub-1", "amount": 10})
    assert plain["valid_from"] is None and plain["text"] is None
    assert b.got("/v1/credit/cr-1") == credit
    assert [c["handle"] for c in b.got("/v1/credit")["content"]] == ["cr-2", "cr-1"]
    assert len(b.got("/v1/credit", subscription="sub-1")["content"]) == 2
    assert b.ok("/v1/credit/cr-1/cancel")["state"] == "cancelled"
    error(b.post("/v1/credit/cr-1/cancel"), 400, 28)
    assert "credit.cancelled" in audit_actions(app, tenant)


def test_credit_partly_consumed_cannot_be_cancelled(setup: BApi, app):
    b = setup
    b.ok(
        "/v1/additional_cost",
        {"handle": "ac-1", "subscription": "sub-1", "ordertext": "Setup", "amount": 1000},
    )
    b.ok("/v1/credit", {"handle": "cr-1", "subscription": "sub-1", "amount": 2500})
    invoice = b.ok("/v1/subscription/sub-1/invoice", {"handle": "inv-1"})
    credit = b.got("/v1/credit/cr-1")
    assert credit["state"] == "pending" and credit["pending_amount"] == 1500
    assert credit["credit_invoices"][0]["invoice"] == invoice["id"]
    assert credit["credit_invoices"][0]["amount"] == 1000
    error(b.post("/v1/credit/cr-1/cancel"), 400, 28)
    # Also when consumed by any other way (a direct change to the stored row).
    b.ok("/v1/credit", {"handle": "cr-2", "subscription": "sub-1", "amount": 100})
    with app.app_context():
        db.session.execute(update(Credit).where(Credit.handle == "cr-2").values(pending_amount=50))
        db.session.commit()
        db.session.remove()
    error(b.post("/v1/credit/cr-2/cancel"), 400, 28)


def test_credit_errors(setup: BApi):
    b = setup
    body = {"handle": "cr-1", "subscription": "sub-1", "amount": 100}
    b.ok("/v1/credit", body)
    error(b.post("/v1/credit", body), 400, 11)
    error(b.post("/v1/credit", {**body, "handle": "cr-2", "subscription": "none"}), 404, 12)
    for patch, field in (
        ({"amount": 0}, "amount"),
        ({"amount": -5}, "amount"),
        ({"valid_from": "2026-13-01"}, "valid_from"),
        ({"valid_from": "20260101"}, "valid_from"),
    ):
        assert (
            field
            in error(b.post("/v1/credit", {**body, "handle": "cr-3", **patch}), 400, 1)["message"]
        )
    error(b.get("/v1/credit/none"), 404, 27)
    error(b.post("/v1/credit/none/cancel"), 404, 27)


# ---------------------------------------------------------------- metrics, charges, usage


def test_metric_and_charge(setup: BApi, api):
    b = setup
    metric = b.metric("api_calls")
    assert metric["aggregation"] == "sum" and metric["code"] == "api_calls"
    assert b.got("/v1/metric/api_calls") == metric
    b.metric("seats", aggregation="max")
    assert [m["code"] for m in b.got("/v1/metric")["content"]] == ["seats", "api_calls"]
    error(b.post("/v1/metric", {"code": "api_calls", "name": "again"}), 400, 11)
    error(b.get("/v1/metric/none"), 404, 8)
    assert (
        "aggregation"
        in error(b.post("/v1/metric", {"code": "x", "name": "x", "aggregation": "avg"}), 400, 1)[
            "message"
        ]
    )

    charge = b.ok("/v1/plan/basic/charge", {"metric": "api_calls", "unit_amount": "0.125"})
    assert uuid.UUID(charge["id"])
    assert charge["plan"] == "basic" and charge["metric"] == "api_calls"
    assert charge["name"] == "Metric api_calls" and charge["tiers"] is None
    assert charge["amount_incl_vat"] is True and charge["vat"] is None
    raw = b.get("/v1/plan/basic/charge").get_data(as_text=True)
    assert '"unit_amount":0.125' in raw
    tiered = b.ok(
        "/v1/plan/basic/charge",
        {
            "metric": "seats",
            "tiers": [{"up_to": 10, "unit_amount": 100}, {"up_to": None, "unit_amount": "50.5"}],
            "vat": 0.25,
            "amount_incl_vat": False,
        },
    )
    assert tiered["tiers"] == [
        {"up_to": 10, "unit_amount": 100},
        {"up_to": None, "unit_amount": 50.5},
    ]
    assert tiered["unit_amount"] == 0
    assert [c["id"] for c in b.got("/v1/plan/basic/charge")["content"]] == [
        tiered["id"],
        charge["id"],
    ]

    # Dialect A lines may reference the charge by id.
    customer_id = b.got("/v1/customer/cust-1")["id"]
    line = {
        "description": "Calls",
        "quantity": 8,
        "unit_price": "0.125",
        "amount": 1,
        "charge_id": charge["id"],
        "metric_code": "api_calls",
    }
    resp = api.post(
        "/v1/invoices/one_off",
        {"customer_id": customer_id, "currency": "EUR", "line_items": [line]},
    )
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["line_items"][0]["charge_id"] == charge["id"]


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"metric": "api_calls"}, 400, 1, "unit_amount"),
        ({"metric": "api_calls", "unit_amount": -1}, 400, 1, "unit_amount"),
        ({"metric": "api_calls", "unit_amount": "0.1234567"}, 400, 1, "unit_amount"),
        ({"metric": "api_calls", "unit_amount": "NaN"}, 400, 1, "unit_amount"),
        (
            {
                "metric": "api_calls",
                "tiers": [{"up_to": 10, "unit_amount": 1}, {"up_to": 5, "unit_amount": 1}],
            },
            400,
            1,
            "tiers[1].up_to",
        ),
        (
            {
                "metric": "api_calls",
                "tiers": [{"up_to": None, "unit_amount": 1}, {"up_to": 5, "unit_amount": 1}],
            },
            400,
            1,
            "tiers[0].up_to",
        ),
        (
            {"metric": "api_calls", "tiers": [{"up_to": 5, "unit_amount": -2}]},
            400,
            1,
            "tiers[0].unit_amount",
        ),
        ({"metric": "none", "unit_amount": 1}, 404, 8, None),
    ],
)
def test_charge_errors(setup: BApi, app, body, status, code, field):
    b = setup
    b.metric("api_calls")
    before = row_counts(app)
    resp = b.post("/v1/plan/basic/charge", body)
    err = error(resp, status, code)
    if field:
        assert field in err["message"]
    assert row_counts(app) == before


def test_charge_unknown_plan(setup: BApi):
    b = setup
    b.metric("api_calls")
    error(b.post("/v1/plan/none/charge", {"metric": "api_calls", "unit_amount": 1}), 404, 10)
    error(b.get("/v1/plan/none/charge"), 404, 10)


def test_usage_record_list_and_duplicates(setup: BApi, app, tenant):
    b = setup
    b.metric("api_calls")
    event = b.ok(
        "/v1/usage",
        {
            "transaction_id": "tx-1",
            "subscription": "sub-1",
            "metric": "api_calls",
            "value": "2.5",
            "timestamp": "2026-05-01T10:00:00+02:00",
            "properties": {"region": "eu"},
        },
    )
    assert event["timestamp"] == "2026-05-01T08:00:00+00:00"
    assert event["value"] == 2.5 and event["properties"] == {"region": "eu"}
    assert event["subscription"] == "sub-1" and event["metric"] == "api_calls"
    assert event["invoice"] is None
    now_event = b.ok(
        "/v1/usage",
        {"transaction_id": "tx-2", "subscription": "sub-1", "metric": "api_calls", "value": 1},
    )
    assert abs(datetime.fromisoformat(now_event["timestamp"]) - datetime.now(UTC)) < timedelta(
        minutes=1
    )
    before = row_counts(app)
    audit_before = audit_actions(app, tenant)
    retry = b.post(
        "/v1/usage",
        {"transaction_id": "tx-1", "subscription": "sub-1", "metric": "api_calls", "value": 99},
    )
    error(retry, 400, 11)
    assert row_counts(app) == before
    assert audit_actions(app, tenant) == audit_before
    listed = b.got("/v1/usage", subscription="sub-1")
    assert [e["transaction_id"] for e in listed["content"]] == ["tx-2", "tx-1"]
    assert listed["content"][1]["value"] == 2.5
    b.subscription("sub-2")
    assert b.got("/v1/usage", subscription="sub-2")["content"] == []
    assert len(b.got("/v1/usage", metric="api_calls")["content"]) == 2
    error(b.get("/v1/usage", subscription="none"), 404, 12)
    error(b.get("/v1/usage", metric="none"), 404, 8)


@pytest.mark.parametrize(
    ("patch", "status", "code", "field"),
    [
        ({"subscription": "none"}, 404, 12, None),
        ({"metric": "none"}, 404, 8, None),
        ({"value": -1}, 400, 1, "value"),
        ({"value": "1e400"}, 400, 1, "value"),
        ({"value": True}, 400, 1, "value"),
        ({"value": "0.0000001"}, 400, 1, "value"),
        ({"timestamp": "2026-05-01T10:00:00"}, 400, 1, "timestamp"),
        ({"transaction_id": ""}, 400, 1, "transaction_id"),
    ],
)
def test_usage_errors(setup: BApi, app, patch, status, code, field):
    b = setup
    b.metric("api_calls")
    before = row_counts(app)
    body = {"transaction_id": "tx", "subscription": "sub-1", "metric": "api_calls", "value": 1}
    err = error(b.post("/v1/usage", {**body, **patch}), status, code)
    if field:
        assert field in err["message"]
    assert row_counts(app) == before


# ---------------------------------------------------------------- paging


def test_paging_walks_every_row_once_newest_first(b: BApi):
    for i in range(7):
        b.plan(f"p{i}")
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        query = {"size": 3}
        if token:
            query["next_page_token"] = token
        page = b.got("/v1/plan", **query)
        pages += 1
        assert page["size"] == 3 and page["count"] == len(page["content"])
        seen += [p["handle"] for p in page["content"]]
        token = page["next_page_token"]
        if token is None:
            break
    assert pages == 3
    assert seen == [f"p{i}" for i in reversed(range(7))]
    # Exactly one page: no token.
    assert b.got("/v1/plan", size=7)["next_page_token"] is None
    # A row created while paging does not shift the next page.
    first = b.got("/v1/plan", size=2)
    b.plan("late")
    second = b.got("/v1/plan", size=2, next_page_token=first["next_page_token"])
    assert [p["handle"] for p in second["content"]] == ["p4", "p3"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"size": 0}, "size"),
        ({"size": 101}, "size"),
        ({"size": "ten"}, "size"),
        ({"next_page_token": "garbage!"}, "next_page_token"),
        ({"next_page_token": "W10"}, "next_page_token"),
    ],
)
def test_paging_errors(b: BApi, query, field):
    assert field in error(b.get("/v1/plan", **query), 400, 1)["message"]


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
        "/v1/customer/cust-1/payment_method",
        "/v1/additional_cost/subscription/sub-1",
        "/v1/plan/basic/charge",
    ],
)
def test_every_list_pages(setup: BApi, path):
    b = setup
    b.card("cust-1")
    b.customer("cust-2")
    b.plan("gold")
    b.add_on("a1")
    b.add_on("a2")
    b.subscription("sub-2")
    b.metric("m1")
    b.metric("m2")
    b.discount("d1")
    b.discount("d2")
    b.coupon("c1", "C1", "d1")
    b.coupon("c2", "C2", "d2")
    for i in range(2):
        b.ok(
            "/v1/additional_cost",
            {"handle": f"ac{i}", "subscription": "sub-1", "ordertext": "x", "amount": 1},
        )
        b.ok("/v1/credit", {"handle": f"cr{i}", "subscription": "sub-1", "amount": 1})
        b.ok(
            "/v1/usage",
            {"transaction_id": f"t{i}", "subscription": "sub-1", "metric": "m1", "value": 1},
        )
        b.ok("/v1/plan/basic/charge", {"metric": f"m{i + 1}", "unit_amount": 1})
    first = b.got(path, size=1)
    assert first["count"] == 1 and first["next_page_token"]
    second = b.got(path, size=1, next_page_token=first["next_page_token"])
    assert second["count"] == 1
    assert json.dumps(second["content"]) != json.dumps(first["content"])


# ---------------------------------------------------------------- idempotency and audit


def test_idempotency_key_replays_a_create(b: BApi, app):
    body = {"handle": "basic", "name": "Basic", "amount": 100}
    first = b.post("/v1/plan", body, headers={"Idempotency-Key": "k1"})
    again = b.post("/v1/plan", body, headers={"Idempotency-Key": "k1"})
    assert first.status_code == again.status_code == 200
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.get_data() == first.get_data()


def test_every_create_is_audited(setup: BApi, app, tenant):
    b = setup
    b.add_on("extra")
    b.discount("ten-off")
    b.coupon()
    b.metric("calls")
    b.ok("/v1/plan/basic/charge", {"metric": "calls", "unit_amount": 1})
    b.ok(
        "/v1/additional_cost",
        {"handle": "ac", "subscription": "sub-1", "ordertext": "x", "amount": 1},
    )
    b.ok("/v1/credit", {"handle": "cr", "subscription": "sub-1", "amount": 1})
    b.ok(
        "/v1/usage", {"transaction_id": "t", "subscription": "sub-1", "metric": "calls", "value": 1}
    )
    b.ok("/v1/subscription/sub-1/discount", {"coupon": "WELCOME"})
    actions = set(audit_actions(app, tenant))
    assert actions >= {
        "customer.created",
        "payment_method.added",
        "plan.created",
        "add_on.created",
        "subscription.created",
        "discount.created",
        "coupon.created",
        "metric.created",
        "charge.created",
        "additional_cost.created",
        "credit.created",
        "usage.recorded",
        "subscription.discount_added",
    }


def test_start_date_in_account_time_zone(client, app):
    from billing_app.accounts.service import create_account

    with app.app_context():
        new = create_account(
            "Copenhagen ApS",
            "cph@example.com",
            "correct horse battery",
            timezone="Europe/Copenhagen",
            currency="DKK",
        )
        key = new.api_key
        db.session.remove()

    class T:
        api_key = key

    b = BApi(client, T())
    b.customer("c")
    plan = b.plan("p", schedule_type="month_lastday")
    assert plan["currency"] == "DKK"
    sub = b.subscription("s", customer="c", plan="p", start_date="2026-03-15")
    # Midnight in Copenhagen (UTC+1 in March before the DST change).
    assert sub["start_date"] == "2026-03-14T23:00:00+00:00"
    assert sub["timezone"] == "Europe/Copenhagen"
    # The period ends with the last day of March: midnight of 1 April, now UTC+2.
    assert sub["current_period_end"] == "2026-03-31T22:00:00+00:00"
    assert date.fromisoformat(sub["start_date"][:10]) == date(2026, 3, 14)
