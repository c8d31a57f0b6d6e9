"""Settings pages: the account, billing entities with their logo, tax rates, API keys."""

from __future__ import annotations

import io
import re
import struct
import zlib
from decimal import Decimal

import pytest
from conftest import row_counts
from sqlalchemy import select
from web_support import make_customer, make_invoice, make_tax, signed_in

from billing_app.accounts.models import Account
from billing_app.entities.models import BillingEntity
from billing_app.extensions import db
from billing_app.taxes.models import TaxRate


@pytest.fixture
def web(client, tenant):
    return signed_in(client, tenant)


def png(width: int = 2, height: int = 2, padding: int = 0) -> bytes:
    """A real PNG (grey pixels); `padding` adds an ancillary chunk to make it bigger."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    body = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    if padding:
        body += chunk(b"tEXt", b"Comment\x00" + b"x" * padding)
    body += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>'


def _entity(app, tenant, code="default"):
    with app.app_context():
        e = db.session.scalars(
            select(BillingEntity).where(
                BillingEntity.account_id == tenant.account_id, BillingEntity.code == code
            )
        ).one()
        db.session.expunge_all()
        db.session.remove()
    return e


def _entity_form(entity, **changes):
    data = {
        "name": entity.name,
        "legal_name": entity.legal_name or "",
        "currency": entity.currency,
        "timezone": entity.timezone,
        "document_locale": entity.document_locale,
        "invoice_prefix": entity.invoice_prefix or "",
        "number_pattern": entity.number_pattern,
        "next_invoice_number": str(entity.next_invoice_number),
        "net_payment_term": str(entity.net_payment_term),
        "tax_code": "",
    }
    data.update(changes)
    return data


# ---------------------------------------------------------------- account


def test_overview_lists_entities_and_taxes(app, web, tenant):
    make_tax(app, tenant, "vat19", "19")
    html = web.text("/settings/")
    assert "Tenant One GmbH" in html and "{prefix}-{number:06}" in html
    assert "VAT 19" in html and "19 %" in html


def test_empty_tax_list_explains_the_fallback(web):
    assert "No tax rates yet." in web.text("/settings/")


def test_account_time_zone_changes_the_dates_on_pages(app, web, tenant):
    resp = web.post(
        "/settings/",
        {
            "name": "Renamed",
            "timezone": "Pacific/Kiritimati",
            "default_currency": "EUR",
            "default_vat_percent": "19",
        },
    )
    assert resp.status_code == 302
    with app.app_context():
        acct = db.session.get(Account, tenant.account_id)
        assert (acct.name, acct.timezone, acct.default_vat_percent) == (
            "Renamed",
            "Pacific/Kiritimati",
            Decimal(19),
        )
        db.session.remove()
    bad = web.post(
        "/settings/", {"name": "X", "timezone": "Nowhere/Else", "default_currency": "EUR"}
    )
    assert bad.status_code == 422
    assert 'id="timezone-error">Use a time zone name' in bad.get_data(as_text=True)
    vat = web.post(
        "/settings/",
        {"name": "X", "timezone": "UTC", "default_currency": "EUR", "default_vat_percent": "120"},
    )
    # The rule lives in the service; its error lands on the field.
    assert vat.status_code == 422
    assert 'id="default_vat_percent-error">A VAT rate is a percent' in vat.get_data(as_text=True)


# ---------------------------------------------------------------- billing entities


def test_create_and_edit_a_billing_entity(app, web, tenant):
    make_tax(app, tenant, "vat7", "7")
    resp = web.post(
        "/settings/entities/new",
        {
            "code": "uk",
            "name": "Tenant UK Ltd",
            "currency": "GBP",
            "timezone": "Europe/London",
            "document_locale": "en_GB",
            "invoice_prefix": "UK",
            "number_pattern": "{prefix}-{YYYY}-{number:04}",
            "next_invoice_number": "100",
            "net_payment_term": "14",
            "tax_code": "vat7",
        },
    )
    assert resp.status_code == 302
    uk = _entity(app, tenant, "uk")
    assert (uk.number_pattern, uk.next_invoice_number, uk.net_payment_term) == (
        "{prefix}-{YYYY}-{number:04}",
        100,
        14,
    )
    assert uk.default_tax_rate_id is not None and not uk.is_default
    page = web.text(f"/settings/entities/{uk.id}")
    assert 'value="Tenant UK Ltd"' in page and '<option selected value="vat7">' in page
    resp = web.post(
        f"/settings/entities/{uk.id}", _entity_form(uk, net_payment_term="45", is_default="y")
    )
    assert resp.status_code == 302
    after = _entity(app, tenant, "uk")
    assert after.net_payment_term == 45 and after.is_default
    assert not _entity(app, tenant, "default").is_default


def test_invalid_number_pattern_is_refused_by_the_service_on_its_field(app, web, tenant):
    entity = _entity(app, tenant)
    before = row_counts(app)
    resp = web.post(
        f"/settings/entities/{entity.id}", _entity_form(entity, number_pattern="INV-{oops}")
    )
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert re.search(r'id="number_pattern-error">The pattern must contain \{number\}', html)
    assert row_counts(app) == before


def test_next_number_cannot_move_once_the_series_is_used(app, web, tenant):
    customer = make_customer(app, tenant)
    make_invoice(app, tenant, customer.id, finalize=True)
    entity = _entity(app, tenant)
    resp = web.post(
        f"/settings/entities/{entity.id}", _entity_form(entity, next_invoice_number="1")
    )
    assert resp.status_code == 422
    assert "number series is in use" in resp.get_data(as_text=True)
    assert _entity(app, tenant).next_invoice_number == 2


def test_duplicate_entity_code_is_shown_on_the_code(app, web, tenant):
    resp = web.post(
        "/settings/entities/new",
        {
            "code": "default",
            "name": "Again",
            "currency": "EUR",
            "timezone": "UTC",
            "document_locale": "en",
            "number_pattern": "{prefix}-{number:06}",
            "next_invoice_number": "1",
            "net_payment_term": "30",
            "tax_code": "",
        },
    )
    assert resp.status_code == 422
    assert 'id="code-error">Billing entity with this code already exists' in resp.get_data(
        as_text=True
    )


def _upload(web, entity_id, data: bytes, filename: str = "logo.png"):
    return web.post(
        f"/settings/entities/{entity_id}/logo",
        {"logo": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
        follow_redirects=True,
    )


def test_logo_upload_is_checked_by_content_and_served_safely(app, web, tenant):
    entity = _entity(app, tenant)
    image = png()
    resp = _upload(web, entity.id, image)
    assert "The logo is saved." in resp.get_data(as_text=True)
    logo = web.get(f"/settings/entities/{entity.id}/logo")
    assert logo.status_code == 200 and logo.data == image
    assert logo.mimetype == "image/png"
    assert logo.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in logo.headers["Content-Security-Policy"]
    # A JPEG called .png is stored as what it is.
    _upload(web, entity.id, JPEG, "photo.png")
    assert web.get(f"/settings/entities/{entity.id}/logo").mimetype == "image/jpeg"
    page = web.text(f"/settings/entities/{entity.id}")
    assert "Remove logo" in page and f"/settings/entities/{entity.id}/logo?v=" in page


@pytest.mark.parametrize(
    "data, filename, message",
    [
        (SVG, "logo.svg", "must be a PNG or JPEG image"),
        (b"GIF89a....", "logo.gif", "must be a PNG or JPEG image"),
        (b"<html>not an image</html>", "logo.png", "must be a PNG or JPEG image"),
        (png(padding=600 * 1024), "big.png", "at most 512 KB"),
    ],
)
def test_bad_logos_are_refused(app, web, tenant, data, filename, message):
    entity = _entity(app, tenant)
    before = row_counts(app)
    resp = _upload(web, entity.id, data, filename)
    assert message in resp.get_data(as_text=True)
    assert row_counts(app) == before
    assert web.get(f"/settings/entities/{entity.id}/logo").status_code == 404


def test_uploads_over_the_request_limit_answer_413_before_parsing(app, web, tenant):
    entity = _entity(app, tenant)
    before = row_counts(app)
    # A raw body (werkzeug's test client would spool a multipart one to a temporary file).
    body = b"--b\r\nContent-Disposition: form-data; name=logo; filename=x.png\r\n\r\n"
    body += png(padding=1100 * 1024) + b"\r\n--b--\r\n"
    resp = web.client.post(
        f"/settings/entities/{entity.id}/logo",
        data=body,
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert resp.status_code == 413
    assert "a logo at most 512 KB" in resp.get_data(as_text=True)
    assert row_counts(app) == before


def test_remove_logo(app, web, tenant):
    entity = _entity(app, tenant)
    _upload(web, entity.id, png())
    resp = web.post(f"/settings/entities/{entity.id}/logo/delete", follow_redirects=True)
    assert "The logo is removed." in resp.get_data(as_text=True)
    assert web.get(f"/settings/entities/{entity.id}/logo").status_code == 404


def test_another_accounts_entity_and_logo_are_not_found(app, client, web, tenant, other_tenant):
    theirs = _entity(app, other_tenant)
    other = signed_in(app.test_client(), other_tenant)
    _upload(other, theirs.id, png())
    assert web.get(f"/settings/entities/{theirs.id}").status_code == 404
    assert web.get(f"/settings/entities/{theirs.id}/logo").status_code == 404
    before = row_counts(app)
    assert web.post(f"/settings/entities/{theirs.id}", _entity_form(theirs)).status_code == 404
    assert _upload(web, theirs.id, png()).status_code == 404
    assert web.post(f"/settings/entities/{theirs.id}/logo/delete").status_code == 404
    assert row_counts(app) == before


# ---------------------------------------------------------------- tax rates


def test_create_edit_and_delete_a_tax_rate(app, web, tenant):
    resp = web.post("/settings/taxes/new", {"code": "vat19", "name": "VAT 19", "rate": "19,5"})
    assert resp.status_code == 302
    with app.app_context():
        tax = db.session.scalars(select(TaxRate).where(TaxRate.code == "vat19")).one()
        tax_id, rate = tax.id, tax.rate
        db.session.remove()
    assert rate == Decimal("19.5")
    assert web.post(f"/settings/taxes/{tax_id}", {"name": "VAT", "rate": "19"}).status_code == 302
    assert "VAT" in web.text("/settings/")
    assert web.post(f"/settings/taxes/{tax_id}/delete").status_code == 302
    assert web.get(f"/settings/taxes/{tax_id}").status_code == 404


@pytest.mark.parametrize(
    "data, field, message",
    [
        ({"code": "t", "name": "T", "rate": "150"}, "rate", "A tax rate is a percent"),
        ({"code": "t", "name": "T", "rate": "abc"}, "rate", "Use digits"),
        ({"code": "t", "name": "T", "rate": ""}, "rate", "Enter a rate."),
        ({"code": "vat7", "name": "T", "rate": "7"}, "code", "already exists"),
    ],
)
def test_tax_rate_errors(app, web, tenant, data, field, message):
    make_tax(app, tenant, "vat7", "7")
    before = row_counts(app)
    resp = web.post("/settings/taxes/new", data)
    assert resp.status_code == 422
    assert re.search(rf'id="{field}-error">[^<]*{message}', resp.get_data(as_text=True))
    assert row_counts(app) == before


def test_another_accounts_tax_is_not_found(app, web, other_tenant):
    theirs = make_tax(app, other_tenant, "vat5", "5")
    assert web.get(f"/settings/taxes/{theirs.id}").status_code == 404
    assert web.post(f"/settings/taxes/{theirs.id}/delete").status_code == 404
    assert web.post(f"/settings/taxes/{theirs.id}", {"name": "x", "rate": "1"}).status_code == 404


# ---------------------------------------------------------------- API keys


def test_api_key_is_shown_once_and_works_until_revoked(app, client, web, tenant):
    resp = web.post("/settings/api-keys", {"name": "Shop backend"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 201 and resp.headers["Cache-Control"] == "no-store"
    key = re.search(r'value="(bk_[A-Za-z0-9]+_[A-Za-z0-9]+)"', html).group(1)
    assert "shown only this once" in html
    listing = web.text("/settings/api-keys")
    assert key not in listing and key.rsplit("_", 1)[0] in listing and "Shop backend" in listing
    auth = {"Authorization": f"Bearer {key}"}
    assert client.get("/v1/customers/", headers=auth).status_code == 200
    with app.app_context():
        from billing_app.accounts.models import ApiKey

        key_id = db.session.scalars(select(ApiKey.id).where(ApiKey.name == "Shop backend")).one()
        db.session.remove()
    assert web.post(f"/settings/api-keys/{key_id}/revoke").status_code == 302
    assert client.get("/v1/customers/", headers=auth).status_code == 401
    assert "Revoked" in web.text("/settings/api-keys")


def test_api_key_needs_a_name_and_the_csrf_token(app, web):
    before = row_counts(app)
    assert web.post("/settings/api-keys", {"name": ""}).status_code == 422
    assert web.post("/settings/api-keys", {"name": "x"}, csrf=False).status_code == 400
    assert row_counts(app) == before


def test_another_accounts_key_cannot_be_revoked(app, web, other_tenant):
    from billing_app.accounts.models import ApiKey

    with app.app_context():
        theirs = db.session.scalars(
            select(ApiKey.id).where(ApiKey.account_id == other_tenant.account_id)
        ).first()
        db.session.remove()
    assert web.post(f"/settings/api-keys/{theirs}/revoke").status_code == 404
