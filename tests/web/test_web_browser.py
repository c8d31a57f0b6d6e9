"""End to end in a real headless Chromium (Debian's, driven by Playwright): sign in, create
a customer, enter a 3-line invoice, watch the server's totals change, finalize, see the
number; the same with JavaScript off; and screenshots of the main pages.

Screenshots go to a temporary folder, or to docs/screenshots/ with SAVE_SCREENSHOTS=1.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web_support import make_customer, make_invoice, make_tax

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM),
        reason=f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)",
    ),
]


@pytest.fixture
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _page(chromium: Any, *, js: bool = True, width: int = 1280, height: int = 900) -> Any:
    context = chromium.new_context(
        java_script_enabled=js, viewport={"width": width, "height": height}, locale="en-GB"
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.js_errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda exc: page.js_errors.append(str(exc)))
    return page


def _sign_in(page: Any, base: str, tenant: Any) -> None:
    page.goto(f"{base}/invoices/")
    assert "/signin" in page.url
    page.get_by_label("Email").fill(tenant.email)
    page.get_by_label("Password").fill(tenant.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/invoices/")


def _create_customer(page: Any, base: str) -> None:
    page.goto(f"{base}/customers/")
    page.get_by_role("link", name="New customer").click()
    page.get_by_label("Handle").fill("globex")
    page.get_by_label("Name", exact=True).fill("Globex <Europe> GmbH")
    page.get_by_label("Email").fill("ap@globex.example")
    page.get_by_label("Currency").select_option("EUR")
    page.get_by_label("Document language").fill("de")
    page.get_by_role("button", name="Create customer").click()
    page.wait_for_url(re.compile(r".*/customers/[0-9a-f-]{36}$"))
    assert page.get_by_role("heading", name="Globex <Europe> GmbH").is_visible()


def _total(page: Any) -> str:
    return page.locator('[data-total="total"]').inner_text()


def _fill_line(page: Any, index: int, description: str, qty: str, price: str) -> None:
    page.fill(f"#lines-{index}-description", description)
    page.fill(f"#lines-{index}-quantity", qty)
    page.fill(f"#lines-{index}-unit_price", price)


def test_enter_a_three_line_invoice_with_htmx(app, live_server, chromium, tenant):
    make_tax(app, tenant, "vat19", "19", applied_to_organization=True)
    make_tax(app, tenant, "vat7", "7")
    page = _page(chromium)
    _sign_in(page, live_server, tenant)
    _create_customer(page, live_server)
    page.get_by_role("link", name="New invoice").first.click()

    # The searchable customer picker: typing narrows the options (htmx), then pick one.
    page.get_by_label("Find a customer").fill("glob")
    page.wait_for_function("document.querySelectorAll('#customer_id option').length === 2")
    page.get_by_label("Customer", exact=True).select_option(label="Globex <Europe> GmbH (globex)")
    page.wait_for_selector("#currency-hint:has-text('invoiced in EUR')")

    _fill_line(page, 0, "Consulting", "2", "150")
    page.press("#lines-0-unit_price", "Tab")
    page.wait_for_selector('[data-total="total"]:has-text("357,00")')
    assert page.inner_text("#lines-0-amount") == "300,00\xa0€"

    page.get_by_role("button", name="+ Add line").click()
    page.wait_for_selector("#lines-1-description:focus")
    _fill_line(page, 1, "Books", "3", "12,505")
    page.select_option("#lines-1-vat", "7")
    page.wait_for_selector('[data-total="total"]:has-text("397,15")')
    assert "VAT 7 %" in page.inner_text("#totals")

    page.get_by_role("button", name="+ Add line").click()
    page.wait_for_selector("#lines-2-description")
    _fill_line(page, 2, "Oops", "x", "1")
    page.press("#lines-2-unit_price", "Tab")
    # The error comes back on the field; the totals leave the broken line out.
    page.wait_for_selector("#lines-2-quantity-error:has-text('Not a number')")
    assert "Lines with errors are not counted" in page.inner_text("#totals")
    page.fill("#lines-2-description", "Travel")
    page.fill("#lines-2-quantity", "1")
    page.fill("#lines-2-unit_price", "42.50")
    page.press("#lines-2-unit_price", "Tab")
    page.wait_for_selector('[data-total="total"]:has-text("447,73")')
    assert page.inner_text("#lines-2-quantity-error") == ""

    # Remove a row and add it back: the totals follow.
    page.locator("#lines-1-row button[name=remove_line]").click()
    page.wait_for_selector('[data-total="total"]:has-text("407,58")')
    assert page.locator("#line-rows tr").count() == 2

    page.get_by_role("button", name="Save and finalize").click()
    page.wait_for_url(re.compile(r".*/invoices/[0-9a-f-]{36}$"))
    assert "Invoice INV-000001 is finalized." in page.inner_text(".flashes")
    assert page.inner_text(".invoice-number") == "INV-000001"
    assert "407,58\xa0€" in page.inner_text("dl.totals .grand")
    # A finalized invoice offers no editing, and its description is text, not markup.
    assert page.get_by_role("link", name="Edit draft").count() == 0
    assert page.js_errors == []


def test_the_same_with_javascript_off(app, live_server, chromium, tenant):
    make_tax(app, tenant, "vat19", "19", applied_to_organization=True)
    page = _page(chromium, js=False)
    _sign_in(page, live_server, tenant)
    _create_customer(page, live_server)
    page.goto(f"{live_server}/invoices/new")

    page.get_by_label("Find a customer").fill("glob")
    with page.expect_navigation():
        page.get_by_role("button", name="Search").click()
    page.get_by_label("Customer", exact=True).select_option(label="Globex <Europe> GmbH (globex)")
    _fill_line(page, 0, "Consulting", "2", "150")
    with page.expect_navigation():
        page.get_by_role("button", name="Update totals").last.click()
    assert "357,00" in _total(page)

    with page.expect_navigation():
        page.get_by_role("button", name="+ Add line").click()
    _fill_line(page, 1, "Books", "3", "10")
    with page.expect_navigation():
        page.get_by_role("button", name="+ Add line").click()
    _fill_line(page, 2, "Travel", "1", "42.50")
    with page.expect_navigation():
        page.get_by_role("button", name="Update totals").last.click()
    # 300 + 30 + 42.50 = 372.50 net, 19 % VAT 70.78 -> 443.28
    assert "443,28" in _total(page)
    assert page.inner_text("#lines-2-amount") == "42,50\xa0€"

    with page.expect_navigation():
        page.locator("#lines-1-row button[name=remove_line]").click()
    assert page.locator("#line-rows tr").count() == 2
    assert "407,58" in _total(page)  # 342.50 + 65.08 VAT

    with page.expect_navigation():
        page.get_by_role("button", name="Save and finalize").click()
    assert re.search(r"/invoices/[0-9a-f-]{36}$", page.url)
    assert page.inner_text(".invoice-number") == "INV-000001"

    # Lifecycle actions without JavaScript: the confirmations are disclosures.
    page.get_by_text("Mark paid…").click()
    with page.expect_navigation():
        page.get_by_role("button", name="Mark as paid").click()
    assert "is marked paid" in page.inner_text(".flashes")


def _shoot(page: Any, folder: Path, name: str) -> None:
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def test_screenshots_of_the_main_pages(app, live_server, chromium, tenant, tmp_path):
    folder = tmp_path
    if os.environ.get("SAVE_SCREENSHOTS") == "1":
        folder = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
    make_tax(app, tenant, "vat19", "19", applied_to_organization=True)
    make_tax(app, tenant, "vat7", "7")
    acme = make_customer(
        app,
        tenant,
        "acme",
        name="ACME Corporation",
        email="billing@acme.example",
        document_locale="de",
        city="Berlin",
        country="DE",
        address_line1="Hauptstraße 1",
        zip_code="10115",
    )
    shop = make_customer(app, tenant, "bookshop", name="The Bookshop", document_locale="en_GB")
    usd = make_customer(app, tenant, "initech", name="Initech Inc.", currency="USD")
    make_invoice(app, tenant, acme.id, [("Consulting, November", "12", "9500")], finalize=True)
    make_invoice(app, tenant, shop.id, [("Reference books", "3", "2999")], pay=True)
    make_invoice(app, tenant, usd.id, [("Licence", "1", "120000")], currency="USD", finalize=True)
    detail = make_invoice(
        app,
        tenant,
        acme.id,
        [("Workshop <day 1>", "1", "120000"), ("Travel", "1", "23450"), ("Books", "2", "1999")],
        finalize=True,
    )
    make_invoice(app, tenant, shop.id, [("Gift wrapping", "3", "150")])

    page = _page(chromium)
    page.goto(f"{live_server}/signin")
    _shoot(page, folder, "01-sign-in")
    _sign_in(page, live_server, tenant)
    _shoot(page, folder, "02-invoice-list")
    page.goto(f"{live_server}/invoices/{detail.id}")
    _shoot(page, folder, "03-invoice-detail")
    page.goto(f"{live_server}/invoices/new?customer={acme.id}")
    _fill_line(page, 0, "Consulting", "2", "150")
    page.get_by_role("button", name="+ Add line").click()
    page.wait_for_selector("#lines-1-description")
    _fill_line(page, 1, "Books", "3", "12,50")
    page.select_option("#lines-1-vat", "7")
    page.wait_for_selector('[data-total="total"]:has-text("397,13")')
    page.get_by_role("button", name="+ Add line").click()
    page.wait_for_selector("#lines-2-description")
    _fill_line(page, 2, "Travel", "abc", "10")
    page.press("#lines-2-unit_price", "Tab")
    page.wait_for_selector("#lines-2-quantity-error:has-text('Not a number')")
    _shoot(page, folder, "04-invoice-entry")
    page.goto(f"{live_server}/customers/")
    _shoot(page, folder, "05-customers")
    page.goto(f"{live_server}/customers/{acme.id}")
    _shoot(page, folder, "06-customer")
    page.goto(f"{live_server}/settings/")
    _shoot(page, folder, "07-settings")
    page.goto(f"{live_server}/settings/api-keys")
    page.get_by_label("Name").fill("Shop backend")
    page.get_by_role("button", name="Create key").click()
    _shoot(page, folder, "08-api-keys")
    page.goto(f"{live_server}/invoices/?q=zzz")
    _shoot(page, folder, "09-empty-state")
    page.goto(f"{live_server}/no/such/page")
    _shoot(page, folder, "10-not-found")
    phone = _page(chromium, width=390, height=844)
    _sign_in(phone, live_server, tenant)
    _shoot(phone, folder, "11-invoice-list-phone")
    phone.goto(f"{live_server}/invoices/{detail.id}")
    _shoot(phone, folder, "12-invoice-detail-phone")
    assert page.js_errors == [] and phone.js_errors == []
    assert len(list(folder.glob("*.png"))) >= 12


def _subscription_setup(app: Any, tenant: Any) -> Any:
    """A German customer on a 100 EUR plan with an add-on, a pending cost, a credit and a
    10 % discount (written through the models, as the invoice tests do)."""
    from b_setup import Catalog
    from sqlalchemy import update

    from billing_app.customers.models import Customer
    from billing_app.extensions import db

    cat = Catalog(app, tenant.account_id)
    customer = cat.customer("acme", name="ACME <Europe> GmbH")
    with app.app_context():
        db.session.execute(
            update(Customer).where(Customer.id == customer.id).values(document_locale="de")
        )
        db.session.commit()
        db.session.remove()
    plan = cat.plan("pro-monthly", amount=24900)
    sub = cat.subscription(customer, plan, "acme-pro")
    cat.add_on(sub, "backup", 4900)
    cat.cost(sub, "setup-fee", 9900)
    cat.credit(sub, "goodwill", 2500)
    cat.discount(sub, "welcome", percentage="10")
    return cat, sub


def test_invoice_a_subscription_now_with_the_preview(app, live_server, chromium, tenant):
    _subscription_setup(app, tenant)
    page = _page(chromium)
    _sign_in(page, live_server, tenant)
    page.get_by_role("link", name="Subscriptions").first.click()
    page.get_by_role("link", name="acme-pro").click()
    page.get_by_role("link", name="Invoice now").click()
    page.wait_for_url(f"{live_server}/subscriptions/acme-pro/invoice")
    # Defaults: the pending cost (99), 10 % off it, the credit (25): 64,10 €.
    assert _total(page) == "64,10\xa0€"

    # Plan and add-on lines: + 249 + 49, 10 % off those too: 332,30 €.
    page.get_by_label("Plan and add-on lines").check()
    page.wait_for_selector('[data-total="total"]:has-text("332,30")')
    assert "Plan pro-monthly" in page.inner_text("#preview")
    # Without the discounts: 99 + 249 + 49 - 25 = 372,00 €.
    page.get_by_label("Apply the subscription's discounts").uncheck()
    page.wait_for_selector('[data-total="total"]:has-text("372,00")')
    # An extra order line, typed in German format, excl. VAT at the default rate (0 %).
    page.fill("#lines-0-ordertext", "Migration <help>")
    page.fill("#lines-0-amount", "100,50")
    page.press("#lines-0-amount", "Tab")
    page.wait_for_selector('[data-total="total"]:has-text("472,50")')
    page.get_by_role("button", name="+ Add line").click()
    page.wait_for_selector("#lines-1-ordertext")
    page.fill("#lines-1-ordertext", "Oops")
    page.fill("#lines-1-amount", "abc")
    page.press("#lines-1-amount", "Tab")
    page.wait_for_selector("#lines-1-amount-error:has-text('Not an amount')")
    page.locator("#lines-1-row button[name=remove_line]").click()
    page.wait_for_selector('[data-total="total"]:has-text("472,50")')
    assert page.locator("#lines-1-row").count() == 0

    page.get_by_role("button", name="Create invoice").click()
    page.wait_for_url(re.compile(r".*/invoices/[0-9a-f-]{36}$"))
    assert "The invoice is created." in page.inner_text(".flashes")
    number = page.inner_text(".invoice-number")
    assert re.fullmatch(r"[A-Z]+-\d+", number), number
    assert "472,50\xa0€" in page.inner_text("dl.totals .grand")
    assert "Migration <help>" in page.inner_text("table.lines-view")
    page.get_by_role("link", name="Open its subscription").click()
    page.wait_for_url(f"{live_server}/subscriptions/acme-pro")
    assert number in page.inner_text("body")
    assert page.js_errors == []


def test_screenshots_of_the_subscription_pages(app, live_server, chromium, tenant, tmp_path):
    folder = tmp_path
    if os.environ.get("SAVE_SCREENSHOTS") == "1":
        folder = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
    make_tax(app, tenant, "vat25", "25", applied_to_organization=True)
    cat, _ = _subscription_setup(app, tenant)
    other = cat.customer("bookshop", name="The Bookshop")
    basic = cat.plan(
        "basic-yearly", amount=99000, schedule_type="month_startdate", interval_length=12
    )
    cat.subscription(other, basic, "bookshop-basic", state="on_hold")
    page = _page(chromium)
    _sign_in(page, live_server, tenant)
    page.goto(f"{live_server}/plans/")
    _shoot(page, folder, "13-plans")
    page.goto(f"{live_server}/subscriptions/")
    _shoot(page, folder, "14-subscriptions")
    page.goto(f"{live_server}/subscriptions/acme-pro")
    _shoot(page, folder, "15-subscription")
    page.goto(f"{live_server}/subscriptions/acme-pro/invoice")
    page.get_by_label("Plan and add-on lines").check()
    page.wait_for_selector('[data-total="total"]:has-text("332,30")')
    page.fill("#plan_period_from", "2026-12-01")
    page.fill("#plan_period_to", "2026-12-31")
    page.fill("#lines-0-ordertext", "Migration help")
    page.fill("#lines-0-amount", "100,50")
    page.press("#lines-0-amount", "Tab")
    page.wait_for_selector('[data-total="total"]:not(:has-text("332,30"))')
    _shoot(page, folder, "16-invoice-now")
    phone = _page(chromium, width=390, height=844)
    _sign_in(phone, live_server, tenant)
    phone.goto(f"{live_server}/subscriptions/acme-pro/invoice")
    _shoot(phone, folder, "17-invoice-now-phone")
    assert page.js_errors == [] and phone.js_errors == []
    assert len(list(folder.glob("1[3-7]-*.png"))) == 5
