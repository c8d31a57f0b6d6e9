"""Customer pages: the list (searchable), create, edit, and one customer with their invoices."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for

from ...customers import service as customers
from ...customers.models import Customer
from ...entities import service as entities
from ...errors import DomainError
from ...invoices import queries as invoice_queries
from ...querying import parse_uuid
from ...taxes import service as taxes
from ..fields import select_choices
from ..pages import apply_domain_error, page_blueprint, render
from ..signin import account, account_id
from .forms import CustomerForm, CustomerSearchForm

bp = page_blueprint("customers", __name__)
PAGE_SIZE = 50


@bp.get("/")
def list_customers() -> Any:
    """Customers by name, searchable; htmx gets the results only."""
    form = CustomerSearchForm(request.args)
    form.validate()
    page = max(1, request.args.get("page", 1, type=int) or 1)
    rows = customers.find_customers(
        account_id(), form.q.data or "", skip=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE + 1
    )
    return render(
        "customers/list.html",
        "customers/_results.html",
        form=form,
        rows=rows[:PAGE_SIZE],
        page=page,
        has_next=len(rows) > PAGE_SIZE,
    )


def _choices(form: CustomerForm) -> None:
    aid = account_id()
    form.tax_code.choices = select_choices(
        [("", "Default (billing entity or account)")]
        + [
            (t.code, f"{t.name} ({t.code}, {t.rate.normalize():f} %)")
            for t in taxes.list_taxes(aid, 0, 500, "code")
        ]
    )
    form.billing_entity_code.choices = select_choices(
        [("", "The account's default")]
        + [(e.code, e.name) for e in entities.list_entities(aid, 0, 200, "name")]
    )


_FIELD_OF_ERROR = {"Duplicate": "external_id", "tax_rate_id": "tax_code"}


@bp.route("/new", methods=["GET", "POST"])
def new_customer() -> Any:
    """Create a customer."""
    form = CustomerForm()
    if request.method == "GET":
        form.currency.data = account().default_currency
    _choices(form)
    if form.validate_on_submit():
        data = {"external_id": form.external_id.data, **form.service_data()}
        try:
            customer = customers.create_customer(account_id(), data)
        except DomainError as exc:
            apply_domain_error(form, exc, _FIELD_OF_ERROR)
        else:
            flash(f"Customer {customer.name} is created.", "success")
            return redirect(url_for("customers.customer_detail", customer_id=customer.id))
    status = 422 if request.method == "POST" else 200
    return render_template("customers/form.html", form=form, customer=None), status


def _customer(customer_id: str) -> Customer:
    return customers.get_customer(account_id(), parse_uuid(customer_id, "Customer"))


@bp.route("/<customer_id>/edit", methods=["GET", "POST"])
def edit_customer(customer_id: str) -> Any:
    """Edit a customer (the handle stays: API clients know the customer by it)."""
    customer = _customer(customer_id)
    form = CustomerForm(obj=customer)
    del form.external_id
    if request.method == "GET":
        form.tax_code.data = _tax_code_of(customer)
        form.billing_entity_code.data = _entity_code_of(customer)
    _choices(form)
    if form.validate_on_submit():
        try:
            customers.update_customer(account_id(), customer.id, form.service_data())
        except DomainError as exc:
            apply_domain_error(form, exc, _FIELD_OF_ERROR)
        else:
            flash(f"Customer {customer.name} is saved.", "success")
            return redirect(url_for("customers.customer_detail", customer_id=customer.id))
    status = 422 if request.method == "POST" else 200
    return render_template("customers/form.html", form=form, customer=customer), status


def _tax_code_of(customer: Customer) -> str:
    if customer.tax_rate_id is None:
        return ""
    return taxes.get_tax_by_id(account_id(), customer.tax_rate_id).code


def _entity_code_of(customer: Customer) -> str:
    if customer.billing_entity_id is None:
        return ""
    return entities.get_entity_by_id(account_id(), customer.billing_entity_id).code


@bp.get("/<customer_id>")
def customer_detail(customer_id: str) -> Any:
    """One customer: details, and their latest invoices."""
    customer = _customer(customer_id)
    latest = invoice_queries.search_invoices(
        account_id(), invoice_queries.InvoiceSearch(customer_id=customer.id, limit=10)
    )
    tax = taxes.get_tax_by_id(account_id(), customer.tax_rate_id) if customer.tax_rate_id else None
    entity = (
        entities.get_entity_by_id(account_id(), customer.billing_entity_id)
        if customer.billing_entity_id
        else None
    )
    return render_template(
        "customers/detail.html", customer=customer, latest=latest, tax=tax, entity=entity
    )
