"""Issue 14's drift, through the API: a customer assigned to a non-default billing entity
with its own tax rate is invoiced at that entity's rate when the request names no entity
(request -> customer -> account default, `invoices.parties`), as the browser's preview
and save are (tests/web/test_web_invoices.py)."""

from __future__ import annotations

from typing import Any

from billing_app.entities.models import BillingEntity
from billing_app.entities.service import default_entity
from billing_app.extensions import db
from billing_app.taxes.service import tax_id_for_code


def _ok(resp: Any, status: int = 201) -> Any:
    assert resp.status_code == status, resp.get_json()
    return resp.get_json()


def test_dialect_a_invoices_the_customers_entity_rate(app, api, tenant):
    """The account's default entity prices at 25 %, the customer's own entity at 10 %."""
    _ok(api.post("/v1/taxes/", {"code": "STD", "name": "Standard", "rate": "25"}))
    _ok(api.post("/v1/taxes/", {"code": "RED", "name": "Reduced", "rate": "10"}))
    with app.app_context():
        default = db.session.get(BillingEntity, default_entity(tenant.account_id).id)
        default.default_tax_rate_id = tax_id_for_code(tenant.account_id, "STD", ("tax_code",))
        db.session.commit()
        db.session.remove()
    _ok(api.post("/v1/billing_entities/", {"code": "own", "name": "Own Ltd", "tax_code": "RED"}))
    customer = api.customer("assigned", billing_entity_code="own")
    line = {"description": "Work", "quantity": 1, "unit_price": 10000, "amount": 10000}
    invoice = api.invoice(customer["id"], [line])
    assert invoice["tax_amount_cents"] == "1000"
    assert invoice["total_cents"] == "11000"
    assert [li["tax_rate"] for li in invoice["line_items"]] == ["10"]
