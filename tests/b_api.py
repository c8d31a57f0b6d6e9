"""A tiny dialect B client for the resource tests: real HTTP requests through the Flask
test client, `Authorization: Bearer <key>` of one tenant, and helpers that create the
usual objects through the routes themselves."""

from __future__ import annotations

from datetime import date
from typing import Any

APPROVE = "4111111111111111"
DECLINE = "4000000000000002"
NEXT_YEAR = date.today().year + 1


class BApi:
    def __init__(self, client: Any, tenant: Any):
        self.client = client
        self.tenant = tenant
        self.headers = {"Authorization": f"Bearer {tenant.api_key}"}

    def get(self, path: str, **query: Any) -> Any:
        return self.client.get(path, query_string=query or None, headers=self.headers)

    def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        return self.client.post(path, json=body, headers={**self.headers, **(headers or {})})

    def ok(self, path: str, body: Any = None) -> dict[str, Any]:
        """POST that must answer 200; returns the JSON."""
        resp = self.post(path, body)
        assert resp.status_code == 200, (path, resp.get_json())
        return resp.get_json()  # type: ignore[no-any-return]

    def got(self, path: str, **query: Any) -> dict[str, Any]:
        resp = self.get(path, **query)
        assert resp.status_code == 200, (path, resp.get_json())
        return resp.get_json()  # type: ignore[no-any-return]

    # Shortcuts: the usual objects, made through the routes.
    def customer(self, handle: str = "cust-1", **extra: Any) -> dict[str, Any]:
        return self.ok(
            "/v1/customer", {"handle": handle, "email": f"{handle}@example.com", **extra}
        )

    def card(self, customer: str = "cust-1", number: str = APPROVE) -> str:
        body = {"card_number": number, "exp_month": 12, "exp_year": NEXT_YEAR, "cvv": "123"}
        return self.ok(f"/v1/customer/{customer}/payment_method", body)["id"]  # type: ignore[no-any-return]

    def plan(self, handle: str = "basic", **extra: Any) -> dict[str, Any]:
        return self.ok(
            "/v1/plan",
            {"handle": handle, "name": f"Plan {handle}", "amount": 10000, "vat": 0.25, **extra},
        )

    def add_on(self, handle: str = "extra", **extra: Any) -> dict[str, Any]:
        return self.ok(
            "/v1/add_on", {"handle": handle, "name": f"Add-on {handle}", "amount": 2500, **extra}
        )

    def subscription(
        self, handle: str = "sub-1", customer: str = "cust-1", plan: str = "basic", **extra: Any
    ) -> dict[str, Any]:
        return self.ok(
            "/v1/subscription", {"handle": handle, "customer": customer, "plan": plan, **extra}
        )

    def discount(self, handle: str = "ten-off", **extra: Any) -> dict[str, Any]:
        body = {"handle": handle, "name": f"Discount {handle}", **extra}
        if "amount" not in extra and "percentage" not in extra:
            body["percentage"] = 10
        return self.ok("/v1/discount", body)

    def coupon(
        self,
        handle: str = "welcome",
        code: str = "WELCOME",
        discount: str = "ten-off",
        **extra: Any,
    ) -> dict[str, Any]:
        return self.ok(
            "/v1/coupon",
            {"handle": handle, "code": code, "name": "Welcome", "discount": discount, **extra},
        )

    def metric(self, code: str = "api_calls", **extra: Any) -> dict[str, Any]:
        return self.ok("/v1/metric", {"code": code, "name": f"Metric {code}", **extra})


def error(resp: Any, status: int, code: int) -> dict[str, Any]:
    """Assert a dialect B error answer; returns its body."""
    body = resp.get_json()
    assert resp.status_code == status, body
    assert body["code"] == code, body
    assert body["http_status"] == status
    assert set(body) >= {
        "code",
        "error",
        "path",
        "timestamp",
        "http_status",
        "http_reason",
        "request_id",
    }
    return body  # type: ignore[no-any-return]
