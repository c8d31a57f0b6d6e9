"""`flask billing ...` commands."""

from __future__ import annotations

import json

from billing_app.cli import DEMO_EMAIL, DEMO_PASSWORD


def test_create_account_prints_one_json_object_with_a_working_key(runner, client):
    result = runner.invoke(
        args=[
            "billing",
            "create-account",
            "--name",
            "Shop AB",
            "--email",
            "Owner@Shop.example",
            "--password",
            "s3cret-pass",
        ]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) == {"account_id", "email", "api_key"}
    assert data["email"] == "owner@shop.example"
    resp = client.get("/v1/customers/", headers={"Authorization": f"Bearer {data['api_key']}"})
    assert resp.status_code == 200
    # The same email cannot sign up twice.
    again = runner.invoke(
        args=[
            "billing",
            "create-account",
            "--name",
            "X",
            "--email",
            "owner@shop.example",
            "--password",
            "another-pass",
        ]
    )
    assert again.exit_code != 0
    assert "already exists" in again.output


def test_create_api_key(runner, client, tenant):
    result = runner.invoke(args=["billing", "create-api-key", "--account", str(tenant.account_id)])
    assert result.exit_code == 0, result.output
    key = json.loads(result.output)["api_key"]
    assert key != tenant.api_key
    assert client.get("/v1/taxes/", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    bad = runner.invoke(args=["billing", "create-api-key", "--account", "not-a-uuid"])
    assert bad.exit_code != 0


def test_demo_is_safe_to_run_twice(runner, client):
    first = runner.invoke(args=["billing", "demo"])
    assert first.exit_code == 0, first.output
    data = json.loads(first.output.strip().splitlines()[-1])
    assert data["email"] == DEMO_EMAIL
    assert data["password"] == DEMO_PASSWORD
    headers = {"Authorization": f"Bearer {data['api_key']}"}
    invoices = client.get("/v1/invoices/", headers=headers).get_json()
    assert sorted(i["status"] for i in invoices) == ["draft", "finalized", "paid"]
    assert len(client.get("/v1/customers/", headers=headers).get_json()) == 2
    second = runner.invoke(args=["billing", "demo"])
    assert second.exit_code == 0, second.output
    data2 = json.loads(second.output.strip().splitlines()[-1])
    assert data2["account_id"] == data["account_id"]
    headers2 = {"Authorization": f"Bearer {data2['api_key']}"}
    assert len(client.get("/v1/invoices/", headers=headers2).get_json()) == 3


def test_verify_audit(runner, tenant):
    result = runner.invoke(args=["billing", "verify-audit", "--account", str(tenant.account_id)])
    assert result.exit_code == 0
    assert "intact" in result.output
