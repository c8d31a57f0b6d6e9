"""Table rows of the invoice pages written out in Python rather than by a Jinja loop.

A list page shows 50 rows of six cells; as a template loop each row cost ~26 us (a dozen
autoescaped outputs, filters called through the template runtime), as one f-string per
row about a third of that. Every text that comes from the database is escaped here; the
markup is what the templates wrote before (tests read it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

from ...database import decimal_to_str
from ...invoices.browse import ListRow
from ...money import format_money, format_unit_amount
from ..common import STATE_LABELS, percent


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
