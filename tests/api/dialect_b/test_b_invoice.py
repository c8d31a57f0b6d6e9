"""POST /v1/subscription/{handle}/invoice: one test per request field proving its effect
and its default, golden VAT figures, errors, and reads in both dialects."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from b_setup import APPROVE, DECLINE, Catalog
from conftest import row_counts

from billing_app.extensions import db
from billing_app.subscriptions.models import (
    AdditionalCost,
    Credit,
    SubscriptionDiscount,
    UsageEvent,
)


@pytest.fixture
def cat(app, tenant):
    return Catalog(app, tenant.account_id)


@pytest.fixture
def world(cat):
    """A customer with an approving card, a 100.00 EUR plan (25 % VAT, incl.) and an
    active subscription paying with that card."""
    customer = cat.customer("anna")
    card = cat.card(customer)
    plan = cat.plan("basic", amount=10000, vat="0.25")
    sub = cat.subscription(
        customer, plan, "sub-1", card=card, cost_center="CC-1", purchase_order_number="PO-1"
    )
    return {"customer": customer, "card": card, "plan": plan, "sub": sub}


class B:
    def __init__(self, client, tenant):
        self.client = client
        self.headers = {"Authorization": f"Bearer {tenant.api_key}"}

    def invoice(self, body, sub="sub-1"):
        return self.client.post(f"/v1/subscription/{sub}/invoice", json=body, headers=self.headers)

    def ok(self, body, sub="sub-1"):
        resp = self.invoice(body, sub)
        assert resp.status_code == 200, resp.get_json()
        return resp.get_json()

    def get(self, path):
        return self.client.get(path, headers=self.headers)

    def post(self, path, body=None):
        return self.client.post(path, json=body, headers=self.headers)


@pytest.fixture
def b(client, tenant):
    return B(client, tenant)


def line(text="Item", amount=1000, **kw):
    return {"ordertext": text, "amount": amount, **kw}


def by_origin(inv, origin):
    return [ln for ln in inv["order_lines"] if ln["origin"] == origin]


def assert_error(resp, status, code):
    body = resp.get_json()
    assert resp.status_code == status, body
    assert body["code"] == code, body
    assert body["http_status"] == status
    assert body["path"] == resp.request.path
    assert body["request_id"] and body["timestamp"] and body["error"] and body["http_reason"]


# ---------------------------------------------------------------- handle


def test_handle_is_the_invoice_handle_and_reuse_is_code_11(b, world, app):
    first = b.ok({"handle": "inv-001", "order_lines": [line()]})
    assert first["handle"] == "inv-001"
    assert len(first["id"]) == 32
    counts = row_counts(app)
    again = b.invoice({"handle": "inv-001", "order_lines": [line(amount=5)]})
    assert_error(again, 400, 11)
    assert row_counts(app) == counts
    assert b.get("/v1/invoice/inv-001").get_json()["amount"] == first["amount"]


@pytest.mark.parametrize("handle", ["", "has space", "x" * 256, "semi;colon"])
def test_invalid_handles_are_code_1(b, world, handle):
    assert_error(b.invoice({"handle": handle, "order_lines": [line()]}), 400, 1)


def test_only_handle_is_required(b, world):
    assert_error(b.invoice({"order_lines": [line()]}), 400, 1)
    assert "handle" in b.invoice({"order_lines": [line()]}).get_json()["message"]


# ---------------------------------------------------------------- due


@pytest.mark.parametrize(
    ("due", "expected"),
    [
        ("2030-01-15", "2030-01-14T23:00:00+00:00"),
        ("20300115", "2030-01-14T23:00:00+00:00"),
        ("2030-07-15T10:30", "2030-07-15T08:30:00+00:00"),
        ("2030-07-15T10:30:45", "2030-07-15T08:30:45+00:00"),
    ],
)
def test_due_formats_in_the_account_time_zone(b, world, app, tenant, due, expected):
    from billing_app.accounts.models import Account

    with app.app_context():
        db.session.get(Account, tenant.account_id).timezone = "Europe/Copenhagen"
        db.session.commit()
        db.session.remove()
    inv = b.ok({"handle": "d", "due": due, "order_lines": [line()]})
    assert inv["due"] == expected
    assert inv["state"] == "pending"


def test_due_defaults_to_now_and_bad_formats_are_refused(b, world):
    inv = b.ok({"handle": "d1", "order_lines": [line()]})
    assert inv["due"] == inv["created"]
    for bad in ["2030/01/15", "15-01-2030", "2030-02-30", "2030-01-15T25:00"]:
        assert_error(b.invoice({"handle": "d2", "due": bad, "order_lines": [line()]}), 400, 1)


def test_due_with_instant_is_code_1(b, world, app):
    counts = row_counts(app)
    resp = b.invoice(
        {"handle": "d3", "due": "2030-01-01", "instant": True, "order_lines": [line()]}
    )
    assert_error(resp, 400, 1)
    assert "due" in resp.get_json()["message"]
    assert row_counts(app) == counts


# ---------------------------------------------------------------- metadata


def test_metadata_is_stored_and_read_back(b, world):
    b.ok({"handle": "m1", "metadata": {"order": 42, "tags": ["a", "b"]}, "order_lines": [line()]})
    assert b.get("/v1/invoice/m1/metadata").get_json() == {"order": 42, "tags": ["a", "b"]}
    b.ok({"handle": "m2", "order_lines": [line()]})
    assert b.get("/v1/invoice/m2/metadata").get_json() == {}


# ---------------------------------------------------------------- instant / settle


def test_instant_settles_with_the_subscription_card(b, world):
    inv = b.ok({"handle": "i1", "instant": True, "order_lines": [line(amount=2500)]})
    assert inv["state"] == "settled"
    assert inv["type"] == "soi"
    assert inv["settled_amount"] == 2500
    assert [t["state"] for t in inv["transactions"]] == ["settled"]
    assert inv["transactions"][0]["payment_method"] == world["card"]


def test_default_is_pending_for_automatic_collection(b, world):
    inv = b.ok({"handle": "i2", "order_lines": [line()]})
    assert inv["state"] == "pending"
    assert inv["type"] == "so"
    assert inv["transactions"] == []
    assert inv["number"] == 1


def test_declined_instant_is_not_a_failed_request(b, world, cat):
    declining = cat.card(world["customer"], DECLINE)
    cat.subscription(world["customer"], world["plan"], "sub-decl", card=declining)
    inv = b.ok({"handle": "i3", "instant": True, "order_lines": [line()]}, sub="sub-decl")
    assert inv["state"] == "failed"
    assert inv["failed"] is not None
    assert inv["transactions"][0]["state"] == "failed"
    assert inv["transactions"][0]["error"] == "card_declined"


def test_instant_without_any_payment_method_is_code_76(b, cat, app):
    customer = cat.customer("nocard")
    plan = cat.plan("p2")
    cat.subscription(customer, plan, "sub-nocard")
    counts = row_counts(app)
    assert_error(
        b.invoice({"handle": "i4", "instant": True, "order_lines": [line()]}, sub="sub-nocard"),
        400,
        76,
    )
    assert row_counts(app) == counts


def test_settle_with_a_given_method_and_auto(b, world, cat):
    other_card = cat.card(world["customer"], APPROVE)
    inv = b.ok({"handle": "s1", "settle": {"payment_method": other_card}, "order_lines": [line()]})
    assert inv["state"] == "settled"
    assert inv["transactions"][0]["payment_method"] == other_card
    auto = b.ok({"handle": "s2", "settle": {"payment_method": "auto"}, "order_lines": [line()]})
    assert auto["transactions"][0]["payment_method"] == other_card  # the newest active


def test_settle_declined_not_instant_leaves_it_pending(b, world, cat):
    declining = cat.card(world["customer"], DECLINE)
    inv = b.ok({"handle": "s3", "settle": {"payment_method": declining}, "order_lines": [line()]})
    assert inv["state"] == "pending"
    assert inv["transactions"][0]["state"] == "failed"
    inst = b.ok(
        {
            "handle": "s4",
            "instant": True,
            "settle": {"payment_method": declining},
            "order_lines": [line()],
        }
    )
    assert inst["state"] == "failed"


def test_settle_errors_leave_every_table_unchanged(b, world, app, other_api):
    counts = row_counts(app)
    assert_error(
        b.invoice(
            {"handle": "s5", "settle": {"payment_method": "ca_nope"}, "order_lines": [line()]}
        ),
        404,
        40,
    )
    assert_error(b.invoice({"handle": "s6", "settle": {}, "order_lines": [line()]}), 400, 76)
    assert row_counts(app) == counts


# ---------------------------------------------------------------- plan_manual and periods


def test_plan_manual_adds_plan_and_add_on_lines_with_periods(b, world, cat):
    cat.add_on(world["sub"], "support", 2500)
    cat.add_on(world["sub"], "seats", 1000, type_="quantity", quantity=3)
    inv = b.ok(
        {
            "handle": "p1",
            "plan_manual": True,
            "plan_period_from": "2026-12-01",
            "plan_period_to": "2026-12-31T23:59:59",
            "add_on_service_periods": {"support": {"from": "2026-12-01", "to": "2026-12-15"}},
        }
    )
    plan_line = by_origin(inv, "plan")[0]
    assert plan_line["origin_handle"] == "basic"
    assert plan_line["amount"] == 10000
    assert plan_line["period_from"] == "2026-12-01T00:00:00+00:00"
    assert plan_line["period_to"] == "2026-12-31T23:59:59+00:00"
    add_ons = {ln["origin_handle"]: ln for ln in by_origin(inv, "add_on")}
    assert add_ons["support"]["amount"] == 2500
    assert add_ons["support"]["period_to"] == "2026-12-15T00:00:00+00:00"
    assert add_ons["seats"]["quantity"] == 3
    assert add_ons["seats"]["amount"] == 3000
    assert add_ons["seats"]["period_from"] is None
    assert inv["plan"] == "basic"
    assert inv["period_from"] == "2026-12-01T00:00:00+00:00"
    assert inv["amount"] == 15500


def test_plan_manual_defaults_to_false(b, world):
    inv = b.ok({"handle": "p2", "order_lines": [line()]})
    assert by_origin(inv, "plan") == []
    assert inv["plan"] is None


def test_subscription_price_override_and_quantity(b, cat):
    customer = cat.customer("q")
    plan = cat.plan("p3", amount=10000)
    cat.subscription(customer, plan, "sub-q", amount=8000, quantity=2)
    inv = b.ok({"handle": "p3", "plan_manual": True}, sub="sub-q")
    assert by_origin(inv, "plan")[0]["amount"] == 16000


# ---------------------------------------------------------------- additional costs


def test_pending_costs_are_collected_once_with_service_periods(b, world, cat, app):
    cat.cost(world["sub"], "setup", 5000)
    cat.cost(world["sub"], "shipping", 1000, quantity=2)
    inv = b.ok(
        {
            "handle": "c1",
            "additional_cost_service_periods": {
                "setup": {"from": "2026-11-01", "to": "2026-11-30"}
            },
        }
    )
    assert sorted(inv["additional_costs"]) == ["setup", "shipping"]
    costs = {ln["origin_handle"]: ln for ln in by_origin(inv, "additional_cost")}
    assert costs["setup"]["period_from"] == "2026-11-01T00:00:00+00:00"
    assert costs["shipping"]["amount"] == 2000
    with app.app_context():
        states = {c.handle: (c.state, c.invoice_id) for c in db.session.query(AdditionalCost)}
        db.session.remove()
    assert {s for s, _ in states.values()} == {"transferred"}
    assert {i.hex for _, i in states.values()} == {inv["id"]}
    # Nothing pending any more: a second invoice has no cost lines (and no lines at all).
    assert_error(b.invoice({"handle": "c2"}), 400, 54)


def test_collect_additional_costs_false_leaves_them_pending(b, world, cat, app):
    cat.cost(world["sub"], "setup", 5000)
    inv = b.ok({"handle": "c3", "collect_additional_costs": False, "order_lines": [line()]})
    assert inv["additional_costs"] == []
    with app.app_context():
        assert db.session.query(AdditionalCost).one().state == "pending"
        db.session.remove()


# ---------------------------------------------------------------- credits


def test_credit_is_collected_partly_and_capped_at_the_amount(b, world, cat, app):
    cat.credit(world["sub"], "goodwill", 3000)
    inv = b.ok({"handle": "cr1", "order_lines": [line(amount=2000)]})
    assert inv["amount"] == 0  # capped: never below zero
    assert inv["state"] == "settled"  # nothing to pay
    assert inv["credits"] == [
        {"credit": "goodwill", "amount": 2000, "created": inv["created"], "text": "Credit goodwill"}
    ]
    assert sum(ln["amount"] for ln in by_origin(inv, "credit")) == -2000
    with app.app_context():
        credit = db.session.query(Credit).one()
        assert (credit.state, credit.pending_amount) == ("pending", 1000)
        db.session.remove()
    second = b.ok({"handle": "cr2", "order_lines": [line(amount=5000)]})
    assert second["amount"] == 4000
    with app.app_context():
        credit = db.session.query(Credit).one()
        assert (credit.state, credit.pending_amount) == ("transferred", 0)
        db.session.remove()


def test_collect_credit_false_and_future_credits_are_left(b, world, cat):
    cat.credit(world["sub"], "later", 500, valid_from=date.today() + timedelta(days=10))
    cat.credit(world["sub"], "now", 500)
    off = b.ok({"handle": "cr3", "collect_credit": False, "order_lines": [line()]})
    assert off["credits"] == []
    on = b.ok({"handle": "cr4", "order_lines": [line()]})
    assert [c["credit"] for c in on["credits"]] == ["now"]


def test_credit_reduces_vat_per_rate(b, world, cat):
    cat.credit(world["sub"], "c", 1250)
    inv = b.ok({"handle": "cr5", "order_lines": [line(amount=2500, vat="0.25")]})
    # 2500 gross - 1250 credit = 1250 gross at 25 %: VAT 250, net 1000
    assert (inv["amount"], inv["amount_vat"], inv["amount_ex_vat"]) == (1250, 250, 1000)


# ---------------------------------------------------------------- discounts


def test_percentage_discount_applies_before_vat_and_counts(b, world, cat, app):
    cat.discount(world["sub"], "ten", percentage="10", apply_to=["ondemand"], fixed_count=1)
    inv = b.ok(
        {
            "handle": "ds1",
            "order_lines": [
                line("A", 10000, amount_incl_vat=False, vat="0.25"),
                line("B", 5000, vat="0.25"),
            ],
        }
    )
    discounts = by_origin(inv, "discount")
    assert [d["amount"] for d in discounts] == [-1250, -500]  # incl. VAT figures
    # Net, as the totals table (docs/money.md): 1000 net + 400 (500 incl. 25 % VAT).
    assert inv["discount_amount"] == 1400
    # net line 10000 - 1000 = 9000 net (+2250 VAT); gross 5000 - 500 = 4500 gross (900 VAT)
    assert inv["amount_vat"] == 2250 + 900
    assert inv["amount"] == 9000 + 2250 + 4500
    assert inv["amount"] == inv["amount_ex_vat"] + inv["amount_vat"]
    assert by_origin(inv, "ondemand")[0]["discounted_amount"] == 1000
    with app.app_context():
        assert db.session.query(SubscriptionDiscount).one().invoice_count == 1
        db.session.remove()
    # fixed_count=1 is used up: the next invoice is not discounted.
    nxt = b.ok({"handle": "ds2", "order_lines": [line()]})
    assert by_origin(nxt, "discount") == []


def test_fixed_discount_and_apply_to_and_the_switch(b, world, cat):
    cat.discount(world["sub"], "fix", amount=1500, apply_to=["plan"])
    off = b.ok({"handle": "ds3", "plan_manual": True, "apply_discounts": False})
    assert by_origin(off, "discount") == []
    on = b.ok({"handle": "ds4", "plan_manual": True, "order_lines": [line()]})
    assert [d["amount"] for d in by_origin(on, "discount")] == [-1500]
    assert by_origin(on, "ondemand")[0]["discounted_amount"] is None  # not in apply_to


# ---------------------------------------------------------------- usage


def test_unbilled_usage_is_included_only_when_asked(b, world, cat, app):
    charge = cat.metric_charge(world["plan"], "api_calls", "0.5")
    cat.usage(world["sub"], charge, "t1", "100")
    cat.usage(world["sub"], charge, "t2", "51")
    plain = b.ok({"handle": "u1", "order_lines": [line()]})
    assert by_origin(plain, "metered_billing_product") == []
    inv = b.ok({"handle": "u2", "include_unbilled_usage": True})
    usage = by_origin(inv, "metered_billing_product")[0]
    assert usage["quantity"] == 151
    assert usage["amount_ex_vat"] == 76  # 151 x 0.5 = 75.5 -> 76 half-up
    with app.app_context():
        assert {e.invoice_id.hex for e in db.session.query(UsageEvent)} == {inv["id"]}
        db.session.remove()
    assert_error(b.invoice({"handle": "u3", "include_unbilled_usage": True}), 400, 54)


def test_tiered_usage(b, world, cat):
    charge = cat.metric_charge(
        world["plan"],
        "gb",
        "0",
        tiers=[{"up_to": 10, "unit_amount": "100"}, {"up_to": None, "unit_amount": "50"}],
    )
    cat.usage(world["sub"], charge, "t1", "25")
    inv = b.ok({"handle": "u4", "include_unbilled_usage": True})
    usage = by_origin(inv, "metered_billing_product")
    assert [(u["quantity"], u["amount_ex_vat"]) for u in usage] == [(10, 1000), (15, 750)]


# ---------------------------------------------------------------- accounting fields, addresses


def test_cost_center_and_po_default_from_subscription_and_override(b, world, app):
    b.ok({"handle": "a1", "order_lines": [line()]})
    b.ok(
        {
            "handle": "a2",
            "cost_center": "CC-9",
            "purchase_order_number": "PO-9",
            "order_lines": [line()],
        }
    )
    one = b.get("/v1/invoice/a1").get_json()
    two = b.get("/v1/invoice/a2").get_json()
    assert (one["cost_center"], one["purchase_order_number"]) == ("CC-1", "PO-1")
    assert (two["cost_center"], two["purchase_order_number"]) == ("CC-9", "PO-9")


def test_addresses_are_stored(b, world):
    address = {
        "company": "ACME A/S",
        "vat": "DK12345678",
        "address": "Vej 1",
        "city": "Aarhus",
        "country": "DK",
        "postal_code": "8000",
        "email": "ap@acme.example",
    }
    inv = b.ok(
        {
            "handle": "ad",
            "billing_address": address,
            "shipping_address": {"attention": "Dock 4", "country": "DK"},
            "order_lines": [line()],
        }
    )
    assert inv["billing_address"] == address
    assert inv["shipping_address"] == {"attention": "Dock 4", "country": "DK"}
    plain = b.ok({"handle": "ad2", "order_lines": [line()]})
    assert plain["billing_address"] is None


# ---------------------------------------------------------------- order lines and VAT


def test_order_line_defaults_incl_vat_quantity_and_account_vat(b, world, app, tenant):
    from decimal import Decimal

    from billing_app.accounts.models import Account

    with app.app_context():
        db.session.get(Account, tenant.account_id).default_vat_percent = Decimal(20)
        db.session.commit()
        db.session.remove()
    inv = b.ok({"handle": "o1", "order_lines": [{"ordertext": "Box", "amount": 1200}]})
    ln = inv["order_lines"][0]
    assert ln["origin"] == "ondemand"
    assert ln["quantity"] == 1
    assert ln["amount_defined_incl_vat"] is True
    assert ln["vat"] == 0.2
    assert (ln["amount"], ln["amount_vat"], ln["amount_ex_vat"]) == (1200, 200, 1000)


def test_golden_vat_two_rates_gross_and_net(b, world):
    inv = b.ok(
        {
            "handle": "g1",
            "order_lines": [
                line("Gross 25", 12500, vat="0.25"),  # keeps 12500 gross: 2500 VAT
                line("Net 25", 1000, vat="0.25", amount_incl_vat=False, quantity=3),  # 3000 + 750
                line("Gross 7", 1070, vat="0.07"),  # 70 VAT
                line("Net 7", 333, vat="0.07", amount_incl_vat=False),  # 333 x 0.07 = 23.31
            ],
        }
    )
    # VAT per rate, rounded once: 25 %: 2500 + 750 = 3250; 7 %: 70 + 23.31 = 93.31 -> 93
    assert inv["amount_vat"] == 3250 + 93
    # Gross kept, net priced lines' VAT added: 12500 + 3750 + 1070 + 356
    assert inv["amount"] == 12500 + 3750 + 1070 + 356
    assert inv["amount"] == inv["amount_ex_vat"] + inv["amount_vat"]
    figures = {ln["ordertext"]: ln for ln in inv["order_lines"]}
    assert figures["Net 25"]["unit_amount"] == 1250
    assert figures["Net 25"]["unit_amount_ex_vat"] == 1000
    assert figures["Gross 25"]["amount_ex_vat"] == 10000


def test_order_line_validation(b, world):
    bad = [
        [{"amount": 100}],
        [{"ordertext": "", "amount": 100}],
        [{"ordertext": "x", "amount": 1.5}],
        [{"ordertext": "x", "amount": True}],
        [{"ordertext": "x", "amount": 100, "quantity": 0}],
        [{"ordertext": "x", "amount": 100, "vat": 25}],
        [{"ordertext": "x", "amount": 100, "amount_incl_vat": "yes"}],
        [line()] * 101,
    ]
    for lines in bad:
        assert_error(b.invoice({"handle": "v", "order_lines": lines}), 400, 1)
    assert_error(b.invoice({"handle": "v", "order_lines": [line(amount=-500)]}), 400, 1)


def test_no_order_lines_is_code_54(b, world, app):
    counts = row_counts(app)
    assert_error(b.invoice({"handle": "e1"}), 400, 54)
    assert_error(b.invoice({"handle": "e2", "order_lines": []}), 400, 54)
    assert row_counts(app) == counts


# ---------------------------------------------------------------- manual transfer


def test_manual_transfer_settles_offline(b, world):
    inv = b.ok(
        {
            "handle": "mt",
            "order_lines": [line(amount=4200)],
            "manual_transfer": {
                "method": "bank_transfer",
                "payment_date": "2026-11-20",
                "reference": "BANK-77",
                "comment": "paid early",
            },
        }
    )
    assert inv["state"] == "settled"
    tx = inv["transactions"][0]
    assert (tx["payment_type"], tx["state"], tx["amount"]) == ("manual", "settled", 4200)
    assert tx["manual_transaction"]["method"] == "bank_transfer"
    assert tx["manual_transaction"]["reference"] == "BANK-77"
    assert tx["manual_transaction"]["payment_date"].startswith("2026-11-20")
    assert_error(
        b.invoice(
            {
                "handle": "mt2",
                "order_lines": [line()],
                "manual_transfer": {"method": "barter", "payment_date": "2026-11-20"},
            }
        ),
        400,
        1,
    )


# ---------------------------------------------------------------- subscription states


@pytest.mark.parametrize(
    ("change", "code"),
    [({"state": "expired"}, 13), ({"state": "on_hold"}, 95), ({"is_cancelled": True}, 22)],
)
def test_subscription_state_errors(b, world, app, change, code):
    from billing_app.subscriptions.models import Subscription

    with app.app_context():
        sub = db.session.get(Subscription, world["sub"].id)
        for key, value in change.items():
            setattr(sub, key, value)
        db.session.commit()
        db.session.remove()
    counts = row_counts(app)
    assert_error(b.invoice({"handle": "x", "order_lines": [line()]}), 400, code)
    assert row_counts(app) == counts


def test_unknown_subscription_is_code_12(b, world):
    assert_error(b.invoice({"handle": "x", "order_lines": [line()]}, sub="nope"), 404, 12)


# ---------------------------------------------------------------- reads, actions, dialects


def test_reads_in_both_dialects(b, world, api):
    inv = b.ok({"handle": "r1", "order_lines": [line(amount=5000)]})
    by_id = b.get(f"/v1/invoice/{inv['id']}").get_json()
    by_handle = b.get("/v1/invoice/r1").get_json()
    assert by_id == by_handle
    a = api.get(f"/v1/invoices/{uuid.UUID(inv['id'])}").get_json()
    assert a["status"] == "finalized"
    assert a["invoice_type"] == "subscription"
    assert a["total_cents"] == str(inv["amount"])
    assert a["tax_amount_cents"] == str(inv["amount_vat"])
    assert a["invoice_number"] == "INV-000001"
    assert_error(b.get("/v1/invoice/unknown"), 404, 31)


def test_settle_cancel_and_their_errors(b, world, cat):
    inv = b.ok({"handle": "sa", "order_lines": [line()]})
    assert_error(b.post("/v1/invoice/sa/settle", {}), 400, 76)
    declining = cat.card(world["customer"], DECLINE)
    assert_error(b.post("/v1/invoice/sa/settle", {"payment_method": declining}), 400, 77)
    assert b.get("/v1/invoice/sa").get_json()["state"] == "pending"
    assert_error(b.post("/v1/invoice/sa/settle", {"payment_method": "ca_missing"}), 404, 40)
    settled = b.post("/v1/invoice/sa/settle", {"payment_method": world["card"]}).get_json()
    assert settled["state"] == "settled"
    assert [t["state"] for t in settled["transactions"]] == ["failed", "settled"]
    assert_error(b.post("/v1/invoice/sa/settle", {"payment_method": world["card"]}), 400, 79)
    assert_error(b.post("/v1/invoice/sa/cancel"), 400, 79)
    other = b.ok({"handle": "sb", "order_lines": [line()]})
    cancelled = b.post(f"/v1/invoice/{other['id']}/cancel").get_json()
    assert cancelled["state"] == "cancelled"
    assert cancelled["number"] == other["number"]
    assert_error(b.post("/v1/invoice/sb/cancel"), 400, 29)
    assert inv["number"] == 1


def test_settle_refused_while_a_transaction_is_processing(b, world, app, api):
    from billing_app.invoices.models import Invoice
    from billing_app.payments.models import Transaction

    inv = b.ok({"handle": "pr", "order_lines": [line()]})
    with app.app_context():
        invoice = db.session.query(Invoice).filter_by(handle="pr").one()
        db.session.add(
            Transaction(
                account_id=invoice.account_id,
                invoice_id=invoice.id,
                state="processing",
                amount=invoice.total_minor,
                currency="EUR",
            )
        )
        db.session.commit()
        db.session.remove()
    assert_error(b.post("/v1/invoice/pr/settle", {"payment_method": world["card"]}), 400, 80)
    assert_error(b.post("/v1/invoice/pr/cancel"), 400, 80)
    # Marking it paid or voiding it by hand waits for the charge's result too (dialect A).
    invoice_id = uuid.UUID(inv["id"])
    for action in ("pay", "void"):
        refused = api.post(f"/v1/invoices/{invoice_id}/{action}")
        assert refused.status_code == 400, refused.get_json()
        assert refused.get_json()["detail"] == "Invoice has processing transactions"
    assert b.get("/v1/invoice/pr").get_json()["processing"] is True
    assert b.get("/v1/invoice/pr").get_json()["state"] == "pending"
    assert inv["state"] == "pending"


def test_every_refusal_reason_has_a_dialect_b_code():
    """Domain errors carry a reason (billing_app.errors); dialect B's door maps each one to
    a Reepay code, so none falls back to code 1 unnoticed."""
    from billing_app import errors
    from billing_app.api.dialect_b.blueprint import REASON_CODES

    reasons = {v for k, v in vars(errors).items() if k.isupper() and isinstance(v, str)}
    assert reasons == set(REASON_CODES)
    assert len(set(REASON_CODES.values())) == len(REASON_CODES)


# ---------------------------------------------------------------- preview (the web form's)


def test_preview_matches_the_created_invoice_and_stores_nothing(b, world, cat, app, tenant):
    from billing_app.subscriptions.invoicing import (
        OnDemandRequest,
        OrderLineInput,
        preview_subscription_invoice,
    )

    cat.cost(world["sub"], "c1", 2000)
    cat.credit(world["sub"], "cr1", 1500)
    cat.discount(world["sub"], "d1", percentage="10")
    charge = cat.metric_charge(world["plan"], "api_calls", "0.5")
    cat.usage(world["sub"], charge, "t1", "151")
    req = OnDemandRequest(
        handle="prev-1",
        plan_manual=True,
        include_unbilled_usage=True,
        order_lines=(OrderLineInput("Setup", 999, quantity=2),),
    )
    before = row_counts(app)
    with app.test_request_context():
        preview = preview_subscription_invoice(tenant.account_id, "sub-1", req)
        db.session.remove()
    assert row_counts(app) == before
    with app.app_context():
        assert db.session.query(Credit).one().pending_amount == 1500
        assert db.session.query(AdditionalCost).one().state == "pending"
        assert db.session.query(SubscriptionDiscount).one().invoice_count == 0
        db.session.remove()

    inv = b.ok(
        {
            "handle": "prev-1",
            "plan_manual": True,
            "include_unbilled_usage": True,
            "order_lines": [{"ordertext": "Setup", "amount": 999, "quantity": 2}],
        }
    )
    assert preview.currency == inv["currency"]
    assert preview.totals.total_minor == inv["amount"]
    assert preview.totals.vat_minor == inv["amount_vat"]
    # Dialect B's line `amount` includes VAT; a net-priced preview line adds its VAT.
    assert [
        (ln.description, ln.amount_minor + (0 if ln.amount_incl_vat else ln.vat_minor))
        for ln in preview.lines
    ] == [(ln["ordertext"], ln["amount"]) for ln in inv["order_lines"]]
    assert {ln.origin for ln in preview.lines} >= {"plan", "additional_cost", "discount", "credit"}


def test_create_answer_equals_reading_it_back(b, world, cat):
    """The create answer is built from what the service stored, not read back: it must be
    what GET answers, field for field."""
    cat.cost(world["sub"], "c1", 2000)
    cat.credit(world["sub"], "cr1", 1500)
    cat.discount(world["sub"], "d1", percentage="10")
    created = b.ok(
        {
            "handle": "same-1",
            "plan_manual": True,
            "metadata": {"k": "v"},
            "billing_address": {"address": "Street 1", "city": "Town", "country": "DE"},
            "order_lines": [line(amount=999, quantity=3, vat=0.07, amount_incl_vat=False)],
        }
    )
    read = b.get(f"/v1/invoice/{created['id']}")
    assert read.status_code == 200
    assert created == read.get_json()
    assert created["additional_costs"] == ["c1"]
    assert [c["credit"] for c in created["credits"]] == ["cr1"]
