"""Invoice forms. They check shape only (a number is a number, a quantity is positive,
at most 6 decimals, as the API schema does); business rules are the services' and their
errors are copied onto these fields by the routes."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import DateField, Form, SelectField, StringField
from wtforms.validators import Length, Optional

from ...invoices.service import MAX_LINES, LineDraft
from ...money import (
    MoneyError,
    decimal_places,
    is_known_currency,
    parse_typed_decimal,
    unit_major_to_minor,
)
from ..fields import select_choices

MAX_ABS = Decimal(10) ** 15
MAX_DECIMALS = 6

STATUS_CHOICES = [
    ("", "All statuses"),
    ("draft", "Draft"),
    ("open", "Open"),
    ("unpaid", "Unpaid (open or failed)"),
    ("paid", "Paid"),
    ("failed", "Failed"),
    ("void", "Void"),
]
SORT_CHOICES = [
    ("-created", "Newest first"),
    ("created", "Oldest first"),
    ("-number", "Number, descending"),
    ("number", "Number, ascending"),
    ("-total", "Total (highest first)"),
    ("total", "Total (lowest first)"),
]


@dataclass(frozen=True)
class ListFilters:
    """The list's filters from the query string (a GET form, no CSRF). Parsed by hand
    rather than with a WTForms form: the list is the busiest page."""

    q: str
    status: str
    date_from: str
    date_to: str
    first_day: date | None
    last_day: date | None
    errors: dict[str, str]

    @classmethod
    def parse(cls, args: MultiDict[str, str]) -> ListFilters:
        errors: dict[str, str] = {}
        days: dict[str, date | None] = {}
        for name in ("date_from", "date_to"):
            raw = (args.get(name) or "").strip()
            try:
                days[name] = date.fromisoformat(raw) if raw else None
            except ValueError:
                days[name] = None
                errors[name] = "Enter a date like 2026-03-31."
        status = args.get("status", "")
        return cls(
            q=(args.get("q") or "").strip()[:100],
            status=status if status in dict(STATUS_CHOICES) else "",
            date_from=(args.get("date_from") or "").strip()[:10],
            date_to=(args.get("date_to") or "").strip()[:10],
            first_day=days["date_from"],
            last_day=days["date_to"],
            errors=errors,
        )


class LineForm(Form):
    """One line row. Every field is text so that what was typed comes back as typed."""

    description = StringField("Description", [Length(max=1000)])
    quantity = StringField("Quantity", default="1")
    unit_price = StringField("Unit price")
    vat = SelectField(
        "VAT", choices=select_choices([("", "Default")]), validate_choice=False, default=""
    )

    def is_blank(self) -> bool:
        return not any((f.data or "").strip() for f in (self.description, self.unit_price)) and (
            self.quantity.data or ""
        ).strip() in ("", "1")


class InvoiceForm(FlaskForm):
    """Header of a one-off invoice; its line rows are LineRows. Choices are per request."""

    customer_id = SelectField("Customer", choices=[], validate_choice=False)
    billing_entity_id = SelectField("Billing entity", choices=[], validate_choice=False)
    currency = SelectField("Currency", choices=[], validate_choice=False)
    due_date = DateField("Due date", [Optional()])


@dataclass
class LineRow:
    """One line row, its fields named `lines-<index>-...`. The index a row was given stays
    its name while rows are added and removed around it, so htmx can address its pieces."""

    index: int
    form: LineForm

    @property
    def name(self) -> str:
        return f"lines-{self.index}"


_ROW_KEY = re.compile(r"lines-(\d{1,6})-")


def line_rows(formdata: MultiDict[str, str] | None) -> list[LineRow]:
    """The rows a form post carries, in index order (at most one more than the service
    takes, so that too many lines is its error, not a silent cut)."""
    indices = sorted({int(m.group(1)) for key in formdata or () if (m := _ROW_KEY.match(key))})
    return [
        LineRow(i, LineForm(formdata=formdata, prefix=f"lines-{i}"))
        for i in indices[: MAX_LINES + 1]
    ]


def new_row(rows: list[LineRow], data: dict[str, str] | None = None) -> LineRow:
    """A row after the last one (blank, or with `data`)."""
    index = max((r.index for r in rows), default=-1) + 1
    row = LineRow(index, LineForm(prefix=f"lines-{index}", data=data))
    rows.append(row)
    return row


@dataclass
class ParsedLines:
    # (position in the rows, the line as the service takes it)
    drafts: list[tuple[int, LineDraft]]
    has_errors: bool


def _number(field: StringField, label: str, *, positive: bool = False) -> Decimal | None:
    text = (field.data or "").strip()
    if not text:
        field.errors = [*field.errors, f"Enter a {label}."]
        return None
    try:
        value = parse_typed_decimal(text)
    except MoneyError:
        field.errors = [*field.errors, "Not a number (e.g. 12.50)."]
        return None
    if abs(value) > MAX_ABS:
        field.errors = [*field.errors, "This number is too large."]
        return None
    if positive and value <= 0:
        field.errors = [*field.errors, f"The {label} must be greater than 0."]
        return None
    return value


def parse_lines(rows: list[LineRow], currency: str | None, vat_percents: set[str]) -> ParsedLines:
    """LineDrafts of the rows that are not blank, errors put on the fields of those that
    are malformed. Blank rows (nothing typed) are skipped: a new row is not an error."""
    drafts: list[tuple[int, LineDraft]] = []
    has_errors = False
    for index, row in enumerate(rows):
        line = row.form
        if line.is_blank():
            continue
        ok = line.validate()
        description = (line.description.data or "").strip()
        if not description:
            line.description.errors = [*line.description.errors, "Enter a description."]
            ok = False
        quantity = _number(line.quantity, "quantity", positive=True)
        if quantity is not None and decimal_places(quantity) > MAX_DECIMALS:
            line.quantity.errors = [*line.quantity.errors, "At most 6 decimals."]
            quantity = None
        unit_minor = None
        price = _number(line.unit_price, "unit price")
        if price is not None and currency:
            unit_minor = unit_major_to_minor(price, currency)
            if decimal_places(unit_minor) > MAX_DECIMALS:
                line.unit_price.errors = [
                    *line.unit_price.errors,
                    "Too many decimals for a price (at most 6 beyond the smallest coin).",
                ]
                unit_minor = None
        vat = line.vat.data or ""
        if vat and vat not in vat_percents:
            line.vat.errors = [*line.vat.errors, "Choose one of the listed VAT rates."]
            ok = False
        if not ok or quantity is None or unit_minor is None:
            has_errors = True
            continue
        drafts.append(
            (
                index,
                LineDraft(
                    description=description,
                    quantity=quantity,
                    unit_amount=unit_minor,
                    tax_percent=Decimal(vat) if vat else None,
                ),
            )
        )
    return ParsedLines(drafts, has_errors)


def parse_uuid_field(field: SelectField, message: str) -> uuid.UUID | None:
    value = (field.data or "").strip()
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        field.errors = [*field.errors, message]
        return None


def parse_currency(field: SelectField) -> str | None:
    value = (field.data or "").strip().upper()
    if not value:
        return None
    if not is_known_currency(value):
        field.errors = [*field.errors, "Choose a currency from the list."]
        return None
    return value


class MarkPaidForm(FlaskForm):
    paid_on = DateField("Paid on", [Optional()])


class ConfirmForm(FlaskForm):
    """An action button: the CSRF token is all it carries."""


def today_or_none(day: date | None, today: date) -> date | None:
    return None if day is None or day == today else day
