def test_health_and_openapi(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    spec = client.get("/openapi.json").get_json()
    assert "/v1/invoices/one_off" in spec["paths"]


def test_create_customer_and_invoice(api):
    customer = api.customer()
    invoice = api.invoice(customer["id"])
    assert invoice["status"] == "draft"
    assert invoice["subtotal_cents"] == "30000"
