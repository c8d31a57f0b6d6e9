"""The entry form's pieces that every htmx change answers, written out in Python (see
`rows.py` for why): a line row, the totals panel, the form's errors and the out-of-band
answer to a change. The entry page (templates/invoices/form.html) calls the same
functions, so a piece is written in one place. The markup, whitespace included, is what
the templates (_line_row, _totals, _form_errors, _recalc, _line_added) wrote, compared
byte for byte. Every value from the form or the database is escaped here.
"""

from __future__ import annotations

from typing import Any

from flask import request
from markupsafe import Markup, escape

from ...money import format_money, fraction_to_percent
from ..common import percent

_MINUS = "\N{MINUS SIGN}"


def _errors(field: Any) -> Markup:
    """A field's errors, space-separated and escaped (as Jinja's `join` and autoescape)."""
    return Markup(" ").join(field.errors)


def line_row(entry: Any, e: Any, new_row: Any = None) -> Markup:
    """One line row. Its field names (lines-3-...) keep their number while rows are added
    and removed around it, so htmx can address its pieces; the newly added row's
    description gets the focus."""
    lf = entry.form
    n = entry.name
    amount = e.amounts.get(n)
    focus = bool(new_row) and new_row.name == n
    out = [f'\n\n\n\n\n<tr id="{escape(n)}-row">\n  ']
    for f, cls, mode in (
        (lf.description, "desc", None),
        (lf.quantity, "qty", "decimal"),
        (lf.unit_price, "price", "decimal"),
    ):
        fid = escape(f.id)
        attrs = f' inputmode="{mode}"' if mode else ""
        if f.errors:
            attrs += ' aria-invalid="true"'
        if focus and cls == "desc":
            attrs += " autofocus"
        out.append(
            f'\n  <td class="{cls}{" has-error" if f.errors else ""}">\n'
            f'    <label class="visually-hidden" for="{fid}">{escape(f.label.text)}</label>\n'
            f'    <input type="text" id="{fid}" name="{escape(f.name)}" '
            f'value="{escape(f._value())}" autocomplete="off" aria-describedby="{fid}-error"'
            f"{attrs}>\n"
            f'    <p class="field-error" id="{fid}-error">{_errors(f)}</p>\n  </td>\n  '
        )
    f = lf.vat
    fid = escape(f.id)
    chosen = f.data or ""
    options = "".join(
        f'<option value="{escape(value)}"{" selected" if value == chosen else ""}>'
        f"{escape(label)}</option>"
        for value, label in e.vat_choices
    )
    money = format_money(amount.amount_minor, e.currency, e.locale) if amount else ""
    out.append(
        f'\n  \n  <td class="vat{" has-error" if f.errors else ""}">\n'
        f'    <label class="visually-hidden" for="{fid}">{escape(f.label.text)}</label>\n'
        f'    <select id="{fid}" name="{escape(f.name)}" aria-describedby="{fid}-error"'
        f"{' aria-invalid=' + chr(34) + 'true' + chr(34) if f.errors else ''}>"
        f"{options}</select>\n"
        f'    <p class="field-error" id="{fid}-error">{_errors(f)}</p>\n  </td>\n'
        f'  <td class="num"><span id="{escape(n)}-amount">{escape(money)}</span></td>\n'
        f'  <td><button type="submit" name="remove_line" value="{escape(entry.index)}" '
        'class="icon-button" title="Remove this line"\n'
        f'              aria-label="Remove line {escape(lf.description.data or "")}"\n'
        f'              hx-post="{escape(request.path)}" hx-target="closest tr" '
        'hx-swap="delete">\N{MULTIPLICATION SIGN}</button></td>\n</tr>'
    )
    return Markup("".join(out))  # noqa: S704  (every value above is escaped)


def totals_panel(e: Any, oob: bool = False) -> Markup:
    """The totals the server computed for the lines as entered, or what is missing."""
    out = [
        '\n<section id="totals" class="totals-panel" aria-live="polite" aria-label="Totals"'
        f"{' hx-swap-oob=' + chr(34) + 'true' + chr(34) if oob else ''}>\n  "
    ]
    totals = e.totals
    if totals:

        def money(minor: int) -> Markup:
            return escape(format_money(minor, e.currency, e.locale))

        discount = (
            f"<div><dt>Discounts</dt><dd>{_MINUS}{money(totals.discount_minor)}</dd></div>"
            if totals.discount_minor
            else ""
        )
        rates = []
        for r in totals.by_rate:
            rate = escape(percent(fraction_to_percent(r.rate)))
            rates.append(
                f'\n    <div><dt>VAT {rate} <span class="muted">on {money(r.net_minor)}</span>'
                f'</dt><dd data-total="vat-{rate}">{money(r.vat_minor)}</dd></div>\n    '
            )
        out.append(
            '\n  <dl class="totals">\n'
            '    <div><dt>Subtotal</dt><dd data-total="subtotal">'
            f"{money(totals.subtotal_minor)}</dd></div>\n"
            f"    {discount}\n    {''.join(rates)}\n"
            '    <div class="grand"><dt>Total</dt><dd data-total="total">'
            f"{money(totals.total_minor)}</dd></div>\n  </dl>\n  "
        )
    note = f'<p class="note">{escape(e.note)}</p>' if e.note else ""
    out.append(f"\n  {note}\n</section>")
    return Markup("".join(out))  # noqa: S704  (every value above is escaped)


def form_errors(e: Any, oob: bool = False) -> Markup:
    """Errors that belong to no field, at the top of the form."""
    swap = ' hx-swap-oob="true"' if oob else ""
    messages = ""
    if e.form.form_errors:
        ps = "".join(f"<p>{escape(m)}</p>" for m in e.form.form_errors)
        messages = f'\n  <div class="flash flash-error" role="alert">{ps}</div>\n'
    return Markup(f'<div id="form-errors"{swap}>\n{messages}\n</div>')  # noqa: S704


def recalc(e: Any, new_row: Any = None) -> Markup:
    """The htmx answer to a change in the entry form: only out-of-band pieces, so nothing
    the user is typing in is replaced: totals, line amounts, errors on fields, the
    currency hint."""
    out = ["\n", totals_panel(e, oob=True), form_errors(e, oob=True), "\n\n"]
    for entry in e.rows:
        if new_row and entry.name == new_row.name:
            continue
        amount = e.amounts.get(entry.name)
        money = format_money(amount.amount_minor, e.currency, e.locale) if amount else ""
        errors = "".join(
            f'<p class="field-error" id="{escape(f.id)}-error" hx-swap-oob="true">{_errors(f)}</p>'
            for f in entry.form
        )
        out.append(
            f'\n\n<span id="{escape(entry.name)}-amount" hx-swap-oob="true">{escape(money)}'
            f"</span>\n{errors}\n"
        )
    out.append("\n")
    form = e.form
    for f in (form.customer_id, form.billing_entity_id, form.currency, form.due_date):
        out.append("\n")
        if not (e.invoice and f.name in ("customer_id", "billing_entity_id", "currency")):
            out.append(
                f'\n<p class="field-error" id="{escape(f.id)}-error" hx-swap-oob="true">'
                f"{_errors(f)}</p>\n"
            )
        out.append("\n")
    out.append("\n")
    if not e.invoice:
        hint = (
            f"{e.customer.name} is invoiced in {e.customer.currency} unless you choose otherwise."
            if e.customer
            else "The customer\N{RIGHT SINGLE QUOTATION MARK}s currency unless you choose one."
        )
        out.append(f'\n<p class="hint" id="currency-hint" hx-swap-oob="true">{escape(hint)}</p>\n')
    currency = f"({escape(e.currency)})" if e.currency else ""
    out.append(f'\n<span id="price-currency" hx-swap-oob="true">{currency}</span>')
    return Markup("".join(out))  # noqa: S704  (every value above is escaped)


def line_added(e: Any, new_row: Any) -> Markup:
    """The htmx answer to "add line": the new row, then the out-of-band pieces."""
    return Markup(f"{line_row(new_row, e, new_row)}\n{recalc(e, new_row)}")  # noqa: S704
