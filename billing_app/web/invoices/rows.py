"""Table rows of the invoice pages, and the list's whole results section, written out
in Python rather than by Jinja.

A list page shows 50 rows of six cells; as a template loop each row cost ~26 us (a dozen
autoescaped outputs, filters called through the template runtime), as one f-string per
row about a third of that. The results section around them (sortable column heads,
pager) was a template with three macro calls; under gunicorn, where every request runs
with cold CPU caches, a page's cost follows how much distinct code it runs, and the
template runtime is a lot of it. Every text that comes from the database or the request
is escaped here; the markup, whitespace included, is what the templates wrote before
(tests read it, and it was compared byte for byte).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from flask import url_for
from jinja2.filters import do_urlencode
from markupsafe import Markup, escape

from ...db import decimal_to_str
from ...invoices.queries import ListPage, ListRow
from ...money import format_money, format_unit_amount
from ..common import STATE_LABELS, percent
from .forms import STATUS_CHOICES, ListFilters


def invoice_list_rows(rows: Iterable[ListRow], base: str, zone: ZoneInfo) -> Markup:
    """The list's <tr>s: number (a link to the invoice), customer (a link to their
    invoices), state, created and due day in the account's zone, total."""
    base = escape(base)
    out = []
    for r in rows:
        badge = _BADGES.get(r.state) or _badge(r.state)
        money = format_money(r.total_minor, r.currency, r.customer_locale)
        out.append(
            f'<tr><td class="nowrap"><a href="{base}{r.id_text}">{_html(r.invoice_number)}</a>'
            f'</td><td><a href="{base}?customer={r.customer_id_text}" '
            f'title="Only this customer\'s invoices">{_html(r.customer_name)}</a></td>'
            f"<td>{badge}</td>"
            f'<td class="nowrap">{r.created_day(zone)}</td>'
            f'<td class="nowrap">{r.due_day(zone)}</td>'
            f'<td class="num">{_html(money)}</td></tr>\n'
        )
    return Markup("".join(out))  # noqa: S704  (every value above is escaped)


def invoice_list_content(
    filters: ListFilters,
    results_html: Markup,
    *,
    base: str,
    sort: str,
    customer: Any,
) -> Markup:
    """The list page's content: its heading, the filter form (written out rather than
    rendered field by field: it is on every list page) and the results section."""
    new = escape(url_for("invoices.new_invoice"))
    base = escape(base)
    options = "".join(
        f'<option value="{value}"{" selected" if value == filters.status else ""}>'
        f"{escape(label)}</option>"
        for value, label in STATUS_CHOICES
    )
    days = []
    for name, label, value in (
        ("date_from", "Created from", filters.date_from),
        ("date_to", "Created to", filters.date_to),
    ):
        error = filters.errors.get(name)
        invalid = ' aria-invalid="true"' if error else ""
        days.append(
            f'\n  \n  <div class="field{" has-error" if error else ""}"><label for="{name}">'
            f'{label}</label>\n    <input type="date" id="{name}" name="{name}" '
            f'value="{escape(value)}" aria-describedby="{name}-error"'
            f"{invalid}>\n"
            f'    <p class="field-error" id="{name}-error">{escape(error or "")}</p></div>\n  '
        )
    customer_input = (
        f'<input type="hidden" name="customer" value="{escape(customer.id)}">' if customer else ""
    )
    return Markup(  # noqa: S704  (every value is escaped)
        f'\n<div class="page-head">\n  <h1>Invoices</h1>\n'
        f'  <a class="button primary" href="{new}">New invoice</a>\n</div>\n'
        f'<form class="filters" method="get" action="{base}" role="search" '
        f'aria-label="Filter invoices"\n      hx-get="{base}" hx-target="#invoice-results" '
        f'hx-swap="outerHTML"\n      hx-push-url="true" '
        f'hx-trigger="submit, change, input delay:400ms from:#q" hx-sync="this:replace">\n  \n'
        f'  <div class="field"><label for="q">Search number or customer</label>\n'
        f'    <input type="search" id="q" name="q" value="{escape(filters.q)}" maxlength="100">'
        f'</div>\n  <div class="field"><label for="status">Status</label>\n'
        f'    <select id="status" name="status">\n    {options}\n    </select></div>\n'
        f"  {''.join(days)}\n"
        f'  <input type="hidden" name="sort" value="{escape(sort)}">\n  {customer_input}\n'
        f'  <div class="filter-actions">\n    <button type="submit">Apply</button>\n'
        f'    <a href="{base}">Clear</a>\n  </div>\n</form>\n{results_html}\n'
    )


_PREVIOUS = "‹ Previous page"  # noqa: RUF001  (the typographic quote, as shown)
_NEXT = "Next page ›"  # noqa: RUF001
_HTMX_LINK = 'hx-target="#invoice-results" hx-swap="outerHTML" hx-push-url="true"'


def invoice_list_results(
    page: ListPage,
    rows_html: Markup,
    *,
    base: str,
    sort: str,
    list_args: dict[str, str],
    customer: Any,
    filtered: bool,
) -> Markup:
    """The list's results section (the page includes it; htmx swaps it): the customer
    filter's chip, the table with its sortable heads and `rows_html`, the pager, or what
    to say when there is no row. `base` is the list's URL, `list_args` its query without
    the paging cursors."""
    out = ['\n\n<section id="invoice-results" class="results" aria-label="Invoices found">\n  ']
    if customer:
        without: dict[str, Any] = dict(list_args, customer=None)
        everyone = url_for("invoices.list_invoices", **without)
        out.append(
            f'\n  <p class="chip">Customer: <strong>{escape(customer.name)}</strong>\n'
            f'    <a href="{escape(everyone)}">Show all customers</a></p>\n  '
        )
    out.append("\n  ")
    if page.rows:
        head = (
            _sort_header(base, "number", "Number", sort, list_args, default_desc=False),
            _sort_header(base, "created", "Created", sort, list_args),
            _sort_header(base, "total", "Total", sort, list_args, num=True),
        )
        out.append(
            '\n  <div class="table-wrap">\n  <table class="invoices">\n    <thead><tr>\n'
            f'      {head[0]}\n      <th scope="col">Customer</th>\n'
            f'      <th scope="col">Status</th>\n      {head[1]}\n'
            f'      <th scope="col">Due</th>\n      {head[2]}\n    </tr></thead>\n'
            f"    <tbody>\n    {rows_html}\n    </tbody>\n  </table>\n  </div>\n"
            '  <nav class="pager" aria-label="Pages">\n    '
        )
        if page.prev_cursor:
            first = escape(f"{base}?{do_urlencode(list_args)}")
            prev = escape(f"{base}?{do_urlencode(dict(list_args, before=page.prev_cursor))}")
            out.append(
                f'\n      \n      \n      <a href="{first}" hx-get="{first}" {_HTMX_LINK}>'
                f'« First page</a>\n      <a rel="prev" href="{prev}" hx-get="{prev}" '
                f"{_HTMX_LINK}>{_PREVIOUS}</a>\n    "
            )
        out.append("\n    ")
        if page.next_cursor:
            following = escape(f"{base}?{do_urlencode(dict(list_args, after=page.next_cursor))}")
            out.append(
                f'\n      \n      <a rel="next" href="{following}" hx-get="{following}" '
                f"{_HTMX_LINK}>{_NEXT}</a>\n    "
            )
        out.append("\n  </nav>\n  ")
    elif filtered:
        out.append(
            '\n  <div class="empty">\n    <p><strong>No invoices match these filters.</strong>'
            f'</p>\n    <p><a href="{escape(base)}">Clear the filters</a> to see every invoice.'
            "</p>\n  </div>\n  "
        )
    else:
        new = escape(url_for("invoices.new_invoice"))
        out.append(
            '\n  <div class="empty">\n    <p><strong>No invoices yet.</strong></p>\n'
            "    <p>Invoices you enter here or create through the API show up in this list."
            f'</p>\n    <p><a class="button primary" href="{new}">Enter your first invoice</a>'
            "</p>\n  </div>\n  "
        )
    out.append("\n</section>")
    return Markup("".join(out))  # noqa: S704  (every value above is escaped)


def _sort_header(
    base: str,
    key: str,
    label: str,
    sort: str,
    list_args: dict[str, str],
    *,
    default_desc: bool = True,
    num: bool = False,
) -> str:
    """A column head that sorts the list (keeping the filters, dropping the cursors); the
    current sort's head says which way it sorts."""
    current = sort.lstrip("-") == key
    desc_now = sort.startswith("-")
    descending = not desc_now if current else default_desc
    next_sort = ("-" if descending else "") + key
    url = escape(f"{base}?{do_urlencode(dict(list_args, sort=next_sort))}")
    attrs = ' class="num"' if num else ""
    arrow = ""
    if current:
        attrs += f' aria-sort="{"descending" if desc_now else "ascending"}"'
        arrow = f' <span aria-hidden="true">{"▼" if desc_now else "▲"}</span>'
    return (
        f'\n\n\n\n<th scope="col"{attrs}>\n  <a href="{url}" hx-get="{url}" {_HTMX_LINK}>'
        f"{escape(label)}{arrow}</a>\n</th>"
    )


_NEEDS_ESCAPING = re.compile(r"[&<>\"']").search


def _html(text: str) -> str:
    """`escape(text)` as text: the text itself when it holds none of the characters
    markupsafe escapes (most numbers, names and amounts; a regex search costs a quarter
    of an escape, which makes a Markup object)."""
    return str(escape(text)) if _NEEDS_ESCAPING(text) else text


def _badge(state: str) -> str:
    label = STATE_LABELS.get(state, state)
    return f'<span class="badge state-{escape(state)}">{escape(label)}</span>'


# The badge of each known state, written once (an unknown state is escaped per row).
_BADGES = {state: _badge(state) for state in STATE_LABELS}


def state_badge(state: str) -> str:
    """An invoice state's badge (what the `state_badge` macro writes)."""
    return _BADGES.get(state) or _badge(state)


def invoice_line_rows(lines: Iterable[Any], currency: str, locale: str) -> Markup:
    """The invoice page's line rows: description, quantity, unit price, VAT, amount."""
    out = []
    # Quantities and rates repeat within an invoice: each distinct one is written once.
    quantities: dict[Decimal, str] = {}
    rates: dict[Decimal, str] = {}
    for line in lines:
        incl = ' <span class="muted">incl. VAT</span>' if line.amount_incl_vat else ""
        quantity = quantities.get(line.quantity)
        if quantity is None:
            quantity = quantities[line.quantity] = _decimal(line.quantity)
        rate = rates.get(line.tax_rate)
        if rate is None:
            rate = rates[line.tax_rate] = str(escape(percent(line.tax_rate)))
        unit = format_unit_amount(line.unit_amount, currency, locale)
        amount = format_money(line.amount_minor, currency, locale)
        out.append(
            f'<tr><td class="description">{_html(line.description)}</td>'
            f'<td class="num">{quantity}</td>'
            f'<td class="num">{_html(unit)}</td><td class="num">{rate}</td>'
            f'<td class="num">{_html(amount)}{incl}</td></tr>\n'
        )
    return Markup("".join(out))  # noqa: S704  (every value above is escaped)


def _decimal(value: Decimal) -> str:
    return str(escape(decimal_to_str(value)))
