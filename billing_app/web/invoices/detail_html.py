"""The invoice page's content written out in Python, as `invoice_list_content` is for the
list (see `rows.py` for why): what templates/invoices/detail.html rendered, byte for byte
(compared page by page for invoices of every state, with and without addresses, lines of
several rates and history by users, API keys and the system). Every value from the
database is escaped here, as the template's autoescaping did; `escape(None)` writes
"None", as the template did.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from flask import url_for
from markupsafe import Markup, escape

from ...money import format_money, fraction_to_percent
from ..common import HISTORY_LABELS, STATE_LABELS, csrf_token, local_date, local_datetime, percent
from .rows import state_badge

_ACTOR_KINDS = {"system": "the system", "user": "a former user", "api_key": "an API key"}


def invoice_detail_title(invoice: Any) -> str:
    return f"Invoice {escape(invoice.invoice_number)} \N{EN DASH} billing_app"


def invoice_detail_content(
    *,
    invoice: Any,
    customer: Any,
    entity: Any,
    lines_html: Markup,
    breakdown: Any,
    history: list[Any],
    actors: dict[str, str],
    locale: str,
    zone: ZoneInfo,
) -> Markup:
    """The invoice page below the header: actions its state allows, issuer and customer,
    facts, lines, VAT per rate and totals, history."""
    cur = invoice.currency
    iid = invoice.id
    out = [
        f'\n\n<p class="crumbs"><a href="{escape(url_for("invoices.list_invoices"))}">'
        "Invoices</a> \N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK}</p>\n"
        '<div class="page-head">\n'
        f'  <h1>Invoice <span class="invoice-number">{escape(invoice.invoice_number)}</span> '
        f"{state_badge(invoice.state)}</h1>\n"
        '  <div class="actions">\n'
        f'    <a class="button" href="{_url("documents.print_page", iid)}">Print view</a>\n  '
    ]
    if invoice.state != "draft":
        out.append(
            f'\n    <a class="button" href="{_url("documents.download_pdf", iid)}" download>'
            "Download PDF</a>\n  "
        )
    out.append("\n  ")
    token = escape(csrf_token())
    if invoice.state == "draft":
        out.append(
            f'\n    <a class="button" href="{_url("invoices.edit_invoice", iid)}">Edit draft</a>\n'
            '    <details class="confirm">\n'
            '      <summary class="button primary">Finalize\N{HORIZONTAL ELLIPSIS}</summary>\n'
            '      <div class="confirm-body">\n'
            f"        <p>Finalizing takes the next number of {escape(entity.name)}"
            "\N{RIGHT SINGLE QUOTATION MARK}s series and sets the issue date.\n"
            "        After that, lines, amounts and the customer can no longer change.</p>\n"
            f'        <form method="post" action="{_url("invoices.finalize", iid)}">\n'
            f'          <input type="hidden" name="csrf_token" value="{token}">\n'
            '          <button type="submit" class="primary">Finalize invoice</button>\n'
            "        </form>\n      </div>\n    </details>\n"
            '    <details class="confirm">\n'
            '      <summary class="button danger">Delete draft\N{HORIZONTAL ELLIPSIS}</summary>\n'
            '      <div class="confirm-body">\n'
            "        <p>The draft is deleted for good.</p>\n"
            f'        <form method="post" action="{_url("invoices.delete", iid)}">\n'
            f'          <input type="hidden" name="csrf_token" value="{token}">\n'
            '          <button type="submit" class="danger">Delete draft</button>\n'
            "        </form>\n      </div>\n    </details>\n  "
        )
    out.append("\n  ")
    if invoice.state in ("open", "failed"):
        # What MarkPaidForm and the field macro render for an empty form, written out:
        # building the form cost a quarter of this page. The post is checked by the form.
        out.append(
            '\n    <details class="confirm">\n'
            '      <summary class="button primary">Mark paid\N{HORIZONTAL ELLIPSIS}</summary>\n'
            '      <div class="confirm-body">\n'
            f'        <form method="post" action="{_url("invoices.mark_paid", iid)}" novalidate>\n'
            "          \n"
            f'          <input id="csrf_token" name="csrf_token" type="hidden" value="{token}">\n'
            '          <div class="field ">\n'
            '            <label for="paid_on">Paid on</label>\n'
            '            <input aria-describedby="paid_on-error paid_on-hint" id="paid_on" '
            'name="paid_on" type="date" value="">\n'
            '            <p class="hint" id="paid_on-hint">Leave empty for today.</p>\n'
            '            <p class="field-error" id="paid_on-error"></p>\n'
            "          </div>\n"
            '          <button type="submit" class="primary">Mark as paid</button>\n'
            "        </form>\n      </div>\n    </details>\n  "
        )
    out.append("\n  ")
    if invoice.state not in ("paid", "void"):
        with_number = " with its number" if invoice.number else ""
        out.append(
            '\n    <details class="confirm">\n'
            '      <summary class="button danger">Void\N{HORIZONTAL ELLIPSIS}</summary>\n'
            '      <div class="confirm-body">\n'
            f"        <p>A void invoice stays in the books{with_number}; nothing is owed on it.\n"
            "        This cannot be undone.</p>\n"
            f'        <form method="post" action="{_url("invoices.void", iid)}">\n'
            f'          <input type="hidden" name="csrf_token" value="{token}">\n'
            '          <button type="submit" class="danger">Void invoice</button>\n'
            "        </form>\n      </div>\n    </details>\n  "
        )
    customer_url = escape(url_for("customers.customer_detail", customer_id=customer.id))
    named = f"{escape(customer.name)}<br>" if customer.company else ""
    email = f"{escape(customer.email)}<br>" if customer.email else ""
    out.append(
        "\n  </div>\n</div>\n\n"
        '<div class="grid two">\n  <section class="card">\n    <h2>From</h2>\n'
        f"    <p><strong>{escape(entity.legal_name or entity.name)}</strong><br>\n"
        f"    {_address(entity)}\n    {_tax_id(entity)}</p>\n  </section>\n"
        '  <section class="card">\n    <h2>Bill to</h2>\n'
        f'    <p><a href="{customer_url}"><strong>{escape(customer.company or customer.name)}'
        f"</strong></a><br>\n    {named}\n    {_address(customer)}\n    {email}\n"
        f"    {_tax_id(customer)}</p>\n  </section>\n</div>\n\n"
    )
    due = local_date(invoice.due_at, zone) or (
        "on finalizing, from the payment terms" if invoice.state == "draft" else "\N{EM DASH}"
    )
    paid = (
        f"<div><dt>Paid</dt><dd>{escape(local_date(invoice.paid_at, zone))}</dd></div>"
        if invoice.paid_at
        else ""
    )
    voided = (
        f"<div><dt>Voided</dt><dd>{escape(local_date(invoice.voided_at, zone))}</dd></div>"
        if invoice.voided_at
        else ""
    )
    kind = (
        "One-off"
        if invoice.invoice_type == "one_off"
        else str(invoice.invoice_type).replace("_", " ").capitalize()
    )
    subscription = ""
    if invoice.subscription_id:
        subscription_url = url_for(
            "subscriptions.subscription_by_id", subscription_id=invoice.subscription_id
        )
        subscription = (
            f'<div><dt>Subscription</dt><dd><a href="{escape(subscription_url)}">'
            "Open its subscription</a></dd></div>"
        )
    out.append(
        '<section class="card">\n  <dl class="facts">\n'
        f"    <div><dt>Currency</dt><dd>{escape(cur)}</dd></div>\n"
        f"    <div><dt>Created</dt><dd>{escape(local_date(invoice.created_at, zone))}</dd></div>\n"
        "    <div><dt>Issued</dt><dd>"
        f"{escape(local_date(invoice.issued_at, zone) or chr(0x2014))}</dd></div>\n"
        f"    <div><dt>Due</dt><dd>{escape(due)}</dd></div>\n"
        f"    {paid}\n    {voided}\n"
        f"    <div><dt>Type</dt><dd>{escape(kind)}</dd></div>\n"
        f"    {subscription}\n  </dl>\n</section>\n\n"
    )

    def money(minor: int) -> Markup:
        return escape(format_money(minor, cur, locale))

    rates = "".join(
        f'\n          <tr><td class="nowrap">{escape(percent(fraction_to_percent(r.rate)))}</td>'
        f'<td class="num">{money(r.net_minor)}</td><td class="num">{money(r.vat_minor)}</td>'
        f'<td class="num">{money(r.gross_minor)}</td></tr>\n        '
        for r in breakdown.by_rate
    )
    minus = "\N{MINUS SIGN}"
    discount = (
        f"<div><dt>Discounts</dt><dd>{minus}{money(invoice.discount_minor)}</dd></div>"
        if invoice.discount_minor
        else ""
    )
    credit = (
        f"<div><dt>Credits</dt><dd>{minus}{money(invoice.credit_minor)}</dd></div>"
        if invoice.credit_minor
        else ""
    )
    progressive = (
        "<div><dt>Progressive billing credit</dt><dd>"
        f"{minus}{money(invoice.progressive_credit_minor)}</dd></div>"
        if invoice.progressive_credit_minor
        else ""
    )
    prepaid = (
        f"<div><dt>Prepaid credit</dt><dd>{minus}{money(invoice.prepaid_credit_minor)}</dd></div>"
        if invoice.prepaid_credit_minor
        else ""
    )
    out.append(
        '<section class="card">\n  <h2>Lines</h2>\n  <div class="table-wrap">\n'
        '  <table class="lines-view">\n'
        '    <thead><tr><th scope="col">Description</th><th scope="col" class="num">Quantity'
        '</th><th scope="col" class="num">Unit price</th><th scope="col" class="num">VAT</th>'
        '<th scope="col" class="num">Amount</th></tr></thead>\n'
        f"    <tbody>\n    {lines_html}\n    </tbody>\n  </table>\n  </div>\n\n"
        '  <div class="grid two totals-grid">\n    <div>\n      <h3>VAT per rate</h3>\n'
        '      <div class="table-wrap">\n      <table class="breakdown">\n'
        '        <thead><tr><th scope="col">Rate</th><th scope="col" class="num">Net</th>'
        '<th scope="col" class="num">VAT</th><th scope="col" class="num">Gross</th></tr>'
        f"</thead>\n        <tbody>\n        {rates}\n        </tbody>\n      </table>\n"
        "      </div>\n    </div>\n"
        '    <dl class="totals">\n'
        f"      <div><dt>Subtotal</dt><dd>{money(invoice.subtotal_minor)}</dd></div>\n"
        f"      {discount}\n      {credit}\n"
        f"      <div><dt>Net</dt><dd>{money(invoice.net_minor)}</dd></div>\n"
        f"      <div><dt>VAT</dt><dd>{money(invoice.vat_minor)}</dd></div>\n"
        f"      {progressive}\n"
        f"      <div><dt>Total</dt><dd>{money(invoice.gross_minor)}</dd></div>\n"
        f"      {prepaid}\n"
        '      <div class="grand"><dt>Amount due</dt>'
        f"<dd>{money(invoice.total_minor)}</dd></div>\n"
        "    </dl>\n  </div>\n</section>\n\n"
        '<section class="card">\n  <h2>History</h2>\n  '
    )
    if history:
        out.append('\n  <ol class="history">\n  ')
        out.extend(_history_item(rec, actors, zone) for rec in history)
        out.append("\n  </ol>\n  ")
    else:
        out.append('\n  <p class="muted">No recorded changes.</p>\n  ')
    out.append("\n</section>\n")
    return Markup("".join(out))  # noqa: S704  (every value above is escaped)


def _url(endpoint: str, invoice_id: Any) -> Markup:
    return escape(url_for(endpoint, invoice_id=invoice_id))


def _address(party: Any) -> str:
    """Address lines, the postcode and city on one line, the country; empty ones left out."""
    town = f"{party.zip_code or ''} {party.city or ''}".strip()
    parts = (party.address_line1, party.address_line2, town, party.country)
    return "".join(f"{escape(part)}<br>" for part in parts if part)


def _tax_id(party: Any) -> str:
    return f"Tax id {escape(party.tax_id)}" if party.tax_id else ""


def _field(record: Any, name: str) -> Any:
    """`record.name` as the template read it from a JSON object (None when missing)."""
    return record.get(name) if isinstance(record, dict) else None


def _history_item(rec: Any, actors: dict[str, str], zone: ZoneInfo) -> str:
    before, after = _field(rec.before, "state"), _field(rec.after, "state")
    change = ""
    if rec.before and rec.after and before and after and before != after:
        change = (
            f'\n        <span class="muted">({escape(STATE_LABELS.get(before, before))} '
            f"\N{RIGHTWARDS ARROW} {escape(STATE_LABELS.get(after, after))})</span>\n      "
        )
    number = _field(rec.after, "invoice_number")
    numbered = (
        f'<span class="muted">number {escape(number)}</span>'
        if rec.action == "invoice.finalized" and rec.after and number
        else ""
    )
    action = rec.action
    label = HISTORY_LABELS.get(action, action.split(".")[-1].replace("_", " ").capitalize())
    who = actors.get(rec.actor_id) or _ACTOR_KINDS.get(rec.actor_type, rec.actor_type)
    return (
        "\n    <li>\n"
        f'      <time datetime="{escape(rec.created_at.isoformat())}">'
        f"{escape(local_datetime(rec.created_at, zone))}</time>\n"
        f"      <strong>{escape(label)}</strong>\n      {change}\n      {numbered}\n"
        f'      <span class="who">by {escape(who)}</span>\n    </li>\n  '
    )
