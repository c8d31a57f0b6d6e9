"""Invoice pages: the list, the detail with its lifecycle actions, and the one-off entry
form (new and draft edit). Every figure comes from the invoice services; the entry form's
live totals are `invoices.service.preview_one_off_invoice`: the invoice the save would
store (the same parties, lines and totals code), with nothing stored."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from typing import Any

from flask import flash, redirect, render_template, request, url_for

from ...accounts import service as accounts
from ...customers import service as customers
from ...customers.models import Customer
from ...db import decimal_to_str
from ...documents import service as documents
from ...documents.i18n import DocumentLocale
from ...entities import service as entities
from ...errors import DomainError, InvalidInput, InvalidState, NotFound
from ...invoices import calc, queries
from ...invoices import service as invoices
from ...invoices.models import DRAFT, FAILED, OPEN, PAID, VOID, Invoice, InvoiceLine
from ...invoices.settlement import Settlement
from ...money import invoiceable_currencies, unit_minor_to_major
from ...querying import parse_uuid
from ...taxes import service as taxes
from ..fields import select_choices
from ..formatting import account_zone, local_date, local_day_bounds, start_of_local_day
from ..pages import is_htmx, page_blueprint
from ..signin import account_id
from .forms import (
    SORT_CHOICES,
    STATUS_CHOICES,
    InvoiceForm,
    LineRow,
    ListFilters,
    MarkPaidForm,
    line_rows,
    new_row,
    parse_currency,
    parse_lines,
    parse_uuid_field,
    today_or_none,
)

bp = page_blueprint("invoices", __name__)

STATUS_FILTERS: dict[str, tuple[str, ...]] = {
    "": (),
    "draft": (DRAFT,),
    "open": (OPEN,),
    "unpaid": (OPEN, FAILED),
    "paid": (PAID,),
    "failed": (FAILED,),
    "void": (VOID,),
}
PAGE_SIZE = 50
SORT_KEYS = {value for value, _ in SORT_CHOICES}


@bp.errorhandler(InvalidState)
def _refused(exc: InvalidState) -> Any:
    """An action the invoice's state does not allow (also when posted by hand): 409."""
    invoice_id = (request.view_args or {}).get("invoice_id")
    return render_template("invoices/refused.html", message=exc.message, invoice_id=invoice_id), 409


# ---------------------------------------------------------------- list


@bp.get("/")
def list_invoices() -> Any:
    """Invoices with filters, sorting and keyset paging; htmx gets the results only."""
    filters = ListFilters.parse(request.args)
    sort = request.args.get("sort", "-created")
    if sort not in SORT_KEYS:
        sort = "-created"
    customer = None
    if request.args.get("customer"):
        customer = customers.get_customer(
            account_id(), parse_uuid(request.args["customer"], "Customer")
        )
    created_from, created_before = local_day_bounds(filters.first_day, filters.last_day)
    search = queries.InvoiceSearch(
        states=STATUS_FILTERS[filters.status],
        customer_id=customer.id if customer else None,
        created_from=created_from,
        created_before=created_before,
        text=filters.q,
        sort=sort.lstrip("-"),
        descending=sort.startswith("-"),
        after=request.args.get("after") or None,
        before=request.args.get("before") or None,
        limit=PAGE_SIZE,
    )
    try:
        page = queries.search_invoices(account_id(), search)
    except InvalidInput:
        # A page link from another sort or an edited URL: start from the first page.
        page = queries.search_invoices(account_id(), replace(search, after=None, before=None))
    context = {
        "page": page,
        "filters": filters,
        "status_choices": STATUS_CHOICES,
        "sort": sort,
        "list_args": _list_args(),
        "customer": customer,
        "filtered": bool(
            filters.status or customer or created_from or created_before or search.text
        ),
    }
    if is_htmx():
        return render_template("invoices/_results.html", **context)
    return render_template("invoices/list.html", **context)


def _list_args() -> dict[str, str]:
    """The list's current query without its paging cursors."""
    return {
        k: v for k, v in request.args.items() if k not in ("after", "before") and v not in ("",)
    }


# ---------------------------------------------------------------- detail and actions


def _invoice(invoice_id: str) -> Invoice:
    return invoices.get_invoice(account_id(), parse_uuid(invoice_id, "Invoice"))


@bp.get("/<invoice_id>")
def invoice_detail(invoice_id: str) -> Any:
    """One invoice: lines, VAT per rate, totals, status history, the actions its state allows."""
    aid = account_id()
    page = queries.invoice_page(aid, parse_uuid(invoice_id, "Invoice"))
    invoice, customer = page.invoice, page.customer
    actors = accounts.actor_labels(aid, [(r.actor_type, r.actor_id) for r in page.history])
    standing = documents.settlement_for(invoice)
    return render_template(
        "invoices/detail.html",
        invoice=invoice,
        standing=standing,
        paid_note=paid_note(standing),
        customer=customer,
        entity=page.entity,
        breakdown=invoices.tax_breakdown(invoice),
        history=page.history,
        actors=actors,
        locale=customer.document_locale,
    )


def paid_note(standing: Settlement) -> str | None:
    """How and when a paid invoice was paid, in the words its printed document uses."""
    if not standing.paid or standing.method is None:
        return None
    words = DocumentLocale.for_tag("en")
    return words.text(f"paid_by_{standing.method}", date=local_date(standing.paid_at))


def _done(invoice: Invoice, message: str) -> Any:
    flash(message, "success")
    return redirect(url_for("invoices.invoice_detail", invoice_id=invoice.id))


@bp.post("/<invoice_id>/finalize")
def finalize(invoice_id: str) -> Any:
    """Draft -> open: the invoice gets its number."""
    invoice = invoices.finalize_invoice(account_id(), parse_uuid(invoice_id, "Invoice"))
    return _done(invoice, f"Invoice {invoice.invoice_number} is finalized.")


@bp.post("/<invoice_id>/pay")
def mark_paid(invoice_id: str) -> Any:
    """Open or failed -> paid, on the day given (today when left empty)."""
    form = MarkPaidForm()
    iid = parse_uuid(invoice_id, "Invoice")
    paid_at: datetime | None = None
    if form.validate() and form.paid_on.data:
        today = datetime.now(account_zone()).date()
        day = today_or_none(form.paid_on.data, today)
        paid_at = start_of_local_day(day) if day else None
    elif form.errors:
        flash("Enter the payment date as a date.", "error")
        return redirect(url_for("invoices.invoice_detail", invoice_id=iid))
    try:
        invoice = invoices.mark_paid(account_id(), iid, paid_at)
    except InvalidInput as exc:
        flash(exc.message, "error")
        return redirect(url_for("invoices.invoice_detail", invoice_id=iid))
    return _done(invoice, f"Invoice {invoice.invoice_number} is marked paid.")


@bp.post("/<invoice_id>/void")
def void(invoice_id: str) -> Any:
    """Void (never a paid invoice); the invoice keeps its number."""
    invoice = invoices.void_invoice(account_id(), parse_uuid(invoice_id, "Invoice"))
    return _done(invoice, f"Invoice {invoice.invoice_number} is void.")


@bp.post("/<invoice_id>/delete")
def delete(invoice_id: str) -> Any:
    """Delete a draft (numbered invoices are kept forever)."""
    invoice = _invoice(invoice_id)
    invoices.delete_draft(account_id(), invoice.id)
    flash(f"Draft {invoice.invoice_number} is deleted.", "success")
    return redirect(url_for("invoices.list_invoices"))


# ---------------------------------------------------------------- one-off entry


@dataclass
class Entry:
    """Everything the entry form shows besides the form itself."""

    form: InvoiceForm
    rows: list[LineRow]
    invoice: Invoice | None
    customer: Customer | None
    currency: str | None
    customer_q: str = ""
    vat_choices: list[tuple[str, str]] = field(default_factory=list)
    # The previewed invoice's figures per VAT rate and in total (`tax_breakdown`).
    totals: calc.Totals | None = None
    # The previewed invoice's line, by the row's field name prefix (lines-3).
    amounts: dict[str, InvoiceLine] = field(default_factory=dict)
    note: str = ""
    has_errors: bool = False

    @property
    def locale(self) -> str:
        return self.customer.document_locale if self.customer else "en"


@bp.route("/new", methods=["GET", "POST"])
def new_invoice() -> Any:
    """Enter a one-off invoice: customer, billing entity, currency, due date, line rows."""
    return _entry(None)


@bp.route("/<invoice_id>/edit", methods=["GET", "POST"])
def edit_invoice(invoice_id: str) -> Any:
    """Edit a draft's due date and lines. Anything but a draft answers 409."""
    invoice = _invoice(invoice_id)
    invoices.ensure_editable(invoice)
    return _entry(invoice)


@bp.get("/new/customer-options")
def customer_options() -> Any:
    """The customer picker's options matching a search (htmx); a plain request gets the
    entry page with the search applied."""
    q = request.args.get("customer_q", "")
    if not is_htmx():
        return redirect(url_for("invoices.new_invoice", customer_q=q))
    aid = account_id()
    options = customers.find_customers(aid, q, limit=50)
    selected = _selected_customer(aid, request.args.get("customer_id"), options)
    if selected is not None and selected not in options:
        options.insert(0, selected)
    return render_template(
        "invoices/_customer_options.html", options=options, selected=selected, customer_q=q
    )


def _selected_customer(aid: uuid.UUID, raw: str | None, options: list[Any]) -> Customer | None:
    """The chosen customer: from the options shown, else read; None for an unknown id or
    another account's customer."""
    if not raw:
        return None
    for c in options:
        if str(c.id) == raw:
            return c
    try:
        return customers.get_customer(aid, parse_uuid(raw, "Customer"))
    except NotFound:
        return None


def _vat_choices(
    aid: uuid.UUID, invoice: Invoice | None, tax_rates: list[Any]
) -> list[tuple[str, str]]:
    choices = [("", "Default")]
    seen: set[str] = set()
    for rate, name in taxes.rate_choices(aid, tax_rates):
        value = decimal_to_str(rate)
        if value not in seen:
            seen.add(value)
            choices.append((value, f"{name} ({value} %)"))
    # Keep a rate an existing draft uses even if no tax rate of the account has it (API).
    for line in invoice.lines if invoice else []:
        value = decimal_to_str(line.tax_rate)
        if value not in seen:
            seen.add(value)
            choices.append((value, f"{value} %"))
    return choices


@lru_cache(maxsize=1)
def _currency_choices() -> list[Any]:
    return select_choices(
        [("", "The customer's currency")]
        + [(code, f"{code}: {name}") for code, name in invoiceable_currencies()]
    )


def _prefill(form: InvoiceForm, rows: list[LineRow], invoice: Invoice) -> None:
    form.due_date.data = (
        invoice.due_at.astimezone(account_zone()).date() if invoice.due_at else None
    )
    for line in invoice.lines:
        new_row(
            rows,
            {
                "description": line.description,
                "quantity": decimal_to_str(line.quantity),
                "unit_price": decimal_to_str(
                    unit_minor_to_major(line.unit_amount, invoice.currency)
                ),
                "vat": decimal_to_str(line.tax_rate),
            },
        )


def _entry(invoice: Invoice | None) -> Any:
    aid = account_id()
    form = InvoiceForm()
    posted = request.method == "POST"
    action = request.form.get("action", "recalc") if posted else ""
    rows = line_rows(request.form) if posted else []
    removed = request.form.get("remove_line") if posted else None
    if removed is not None:
        action = "remove_line"
        rows = [r for r in rows if str(r.index) != removed]
    if not posted and invoice is not None:
        _prefill(form, rows, invoice)
    if action == "add_line" or not rows:
        new_row(rows)

    # An htmx change answers pieces that never show the header's selects: skip their options.
    whole_page = not (posted and is_htmx() and action not in ("save", "finalize"))
    vat_choices = _vat_choices(aid, invoice, taxes.account_tax_rates(aid))
    if whole_page:
        form.billing_entity_id.choices = select_choices(
            [("", "The customer's default")]
            + [(str(e.id), e.name) for e in entities.list_entities(aid, 0, 100, "name")]
        )
        form.currency.choices = _currency_choices()
    # Before anything else puts errors on fields: validate() starts every field afresh.
    form_valid = form.validate() if posted else True

    header_ok = True
    customer: Customer | None
    if invoice is not None:
        customer = customers.get_customer(aid, invoice.customer_id)
        currency: str | None = invoice.currency
        entity_id: uuid.UUID | None = invoice.billing_entity_id
        customer_q = ""
    else:
        customer_q = request.values.get("customer_q", "")
        options = customers.find_customers(aid, customer_q, limit=50) if whole_page else []
        if not posted and request.args.get("customer"):
            form.customer_id.data = request.args["customer"]
        entity_id = parse_uuid_field(form.billing_entity_id, "Choose a billing entity.")
        customer = _selected_customer(aid, form.customer_id.data, options)
        if form.customer_id.data and customer is None:
            form.customer_id.errors = ["Choose a customer from the list."]
            header_ok = False
        if customer is not None and customer not in options:
            options.insert(0, customer)
        form.customer_id.choices = select_choices(
            [("", "Choose a customer…")]
            + [(str(c.id), f"{c.name} ({c.external_id})") for c in options]
        )
        currency = parse_currency(form.currency) or (customer.currency if customer else None)
        header_ok = header_ok and not form.billing_entity_id.errors and not form.currency.errors

    entry = Entry(form, rows, invoice, customer, currency, customer_q, vat_choices)
    parsed = parse_lines(rows, currency, {v for v, _ in vat_choices if v})
    drafts = [d for _, d in parsed.drafts]
    if customer is not None and currency is not None and drafts and header_ok:
        # The live totals ARE the saved totals: the invoice the save would store.
        req = invoices.OneOffInvoiceRequest(
            customer_id=customer.id, currency=currency, lines=drafts, billing_entity_id=entity_id
        )
        try:
            preview = invoices.preview_one_off_invoice(aid, req)
            entry.totals = invoices.tax_breakdown(preview)
            entry.amounts = {
                rows[position].name: line
                for (position, _), line in zip(parsed.drafts, preview.lines, strict=True)
            }
        except DomainError as exc:
            _show_invoice_error(entry, exc, parsed.drafts)
    if customer is None:
        entry.note = "Choose a customer to see the totals."
    elif not drafts:
        entry.note = "Add a line to see the totals."
    elif parsed.has_errors:
        entry.note = "Lines with errors are not counted until they are corrected."

    if action in ("save", "finalize") and posted:
        if customer is None and invoice is None and not form.customer_id.errors:
            form.customer_id.errors = ["Choose a customer."]
        if not drafts and not parsed.has_errors:
            form.form_errors.append("Add at least one line.")
        if form_valid and header_ok and not _has_errors(entry):
            saved = _save(form, entry, entity_id, parsed.drafts, finalize=action == "finalize")
            if saved is not None:
                verb = "finalized" if saved.state != DRAFT else "saved as a draft"
                flash(f"Invoice {saved.invoice_number} is {verb}.", "success")
                return redirect(url_for("invoices.invoice_detail", invoice_id=saved.id))
    entry.has_errors = _has_errors(entry)
    status = 422 if entry.has_errors and posted else 200

    if is_htmx() and posted:
        if action == "add_line":
            return render_template("invoices/_line_added.html", e=entry, new_row=rows[-1]), status
        return render_template("invoices/_recalc.html", e=entry, new_row=None), status
    return render_template("invoices/form.html", e=entry), status


def _has_errors(entry: Entry) -> bool:
    form = entry.form
    if form.form_errors:
        return True
    if any(f.errors for f in form if f.name != "csrf_token"):
        return True
    return any(f.errors for row in entry.rows for f in row.form)


def _save(
    form: InvoiceForm,
    entry: Entry,
    entity_id: uuid.UUID | None,
    drafts: list[tuple[int, invoices.LineDraft]],
    *,
    finalize: bool,
) -> Invoice | None:
    aid = account_id()
    due_at = start_of_local_day(form.due_date.data) if form.due_date.data else None
    lines = [d for _, d in drafts]
    try:
        if entry.invoice is not None:
            return invoices.edit_draft(
                aid, entry.invoice.id, due_at=due_at, drafts=lines, finalize=finalize
            )
        assert entry.customer is not None and entry.currency is not None
        req = invoices.OneOffInvoiceRequest(
            customer_id=entry.customer.id,
            currency=entry.currency,
            lines=lines,
            due_at=due_at,
            billing_entity_id=entity_id,
        )
        if finalize:
            return invoices.issue_one_off_invoice(aid, req)
        return invoices.create_one_off_invoice(aid, req)
    except DomainError as exc:
        _show_invoice_error(entry, exc, drafts)
        return None


_LINE_FIELDS = {"amount": "unit_price", "unit_price": "unit_price", "quantity": "quantity"}


def _show_invoice_error(
    entry: Entry, exc: DomainError, drafts: list[tuple[int, invoices.LineDraft]]
) -> None:
    """A service error on the field it concerns: a line's (by the service's line index),
    the customer, the billing entity, or the top of the form."""
    form = entry.form
    if isinstance(exc, InvalidInput) and len(exc.loc) >= 2 and exc.loc[0] == "line_items":
        index = exc.loc[1]
        if isinstance(index, int) and 0 <= index < len(drafts):
            line_form = entry.rows[drafts[index][0]].form
            target = line_form[_LINE_FIELDS.get(str(exc.loc[-1]), "description")]
            target.errors = [*target.errors, exc.message]
            return
    if isinstance(exc, NotFound) and exc.resource == "Customer":
        form.customer_id.errors = [*form.customer_id.errors, "Choose a customer from the list."]
        return
    if isinstance(exc, NotFound) and exc.resource == "Billing entity":
        form.billing_entity_id.errors = [
            *form.billing_entity_id.errors,
            "Choose a billing entity from the list.",
        ]
        return
    form.form_errors.append(exc.message)
