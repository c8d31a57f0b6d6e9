"""Forms of the subscription pages. They check shape only, as the dialect B schemas do
(handles, lengths, numbers that are numbers, ranges of single fields); rules that involve
other objects or several fields are the services', whose errors the routes copy onto these
fields.

Money is typed in major units (`249`, `249.00`, `249,5`) and converted to minor units with
the currency's ISO 4217 exponent; VAT is typed in percent (`25`) and handed to the services
as the fraction they store (0.25)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from decimal import Decimal

from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import (
    BooleanField,
    DateField,
    Field,
    Form,
    IntegerField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, Regexp

from ...catalog.service import APPLY_TO
from ...money import (
    MoneyError,
    decimal_places,
    minor_unit_exponent,
    parse_typed_decimal,
    percent_to_fraction,
)
from ..fields import blank_to_none, currency_field, select_choices

HANDLE_PATTERN = r"^[a-zA-Z0-9_.\-@]+$"
HANDLE_HINT = "Letters, digits and . _ - @; unique in this account."
MAX_AMOUNT = 10**13
MAX_ORDER_LINES = 100

SCHEDULE_LABELS = {
    "manual": "Manual (invoiced on demand only)",
    "daily": "Every n days",
    "weekly_fixedday": "Every n weeks",
    "month_startdate": "Every n months from the start date",
    "month_fixedday": "Every n months on a fixed day",
    "month_lastday": "Every n months, ending on the last day",
}
APPLY_TO_LABELS = {
    "all": "All lines",
    "plan": "Plan lines",
    "add_on": "Add-on lines",
    "additional_cost": "Additional costs",
    "ondemand": "Extra order lines",
}
STATE_FILTERS = [
    ("", "All states"),
    ("active", "Active"),
    ("on_hold", "On hold"),
    ("expired", "Expired"),
]
TRANSFER_METHODS = [
    ("bank_transfer", "Bank transfer"),
    ("cash", "Cash"),
    ("check", "Check"),
    ("other", "Other"),
]
SETTLEMENTS = [
    ("none", "Leave it open (collected when due)"),
    ("instant", "Charge the subscription's card now (instant)"),
    ("auto", "Charge the customer's newest card now"),
    ("manual", "Record a manual transfer (paid offline)"),
]


def _handle(label: str, *, required: bool, description: str = HANDLE_HINT) -> StringField:
    checks = [
        DataRequired(f"Enter a {label.lower()}.") if required else Optional(),
        Length(max=255),
        Regexp(HANDLE_PATTERN, message="Use letters, digits and . _ - @ only."),
    ]
    return StringField(label, checks, filters=[blank_to_none], description=description)


def new_handle(prefix: str) -> str:
    """A handle for an object whose form left it empty (random, so it never collides in
    practice; the service still refuses a taken one)."""
    return f"{prefix}-{secrets.token_hex(6)}"


def _text(label: str, max_length: int, *, required: bool = False) -> StringField:
    checks = [DataRequired(f"Enter a {label.lower()}.") if required else Optional()]
    return StringField(label, [*checks, Length(max=max_length)], filters=[blank_to_none])


# ---------------------------------------------------------------- typed numbers


def money_minor(
    field: Field, currency: str, *, required: bool = True, allow_negative: bool = False
) -> int | None:
    """The field's amount (major units as typed) in minor units of `currency`; None with an
    error on the field when it is missing or malformed (or None when optional and empty)."""
    text = (field.data or "").strip() if isinstance(field.data, str) else ""
    if not text:
        if required:
            field.errors = [*field.errors, "Enter an amount."]
        return None
    try:
        value = parse_typed_decimal(text)
    except MoneyError:
        field.errors = [*field.errors, "Not an amount (e.g. 249.00)."]
        return None
    exponent = minor_unit_exponent(currency)
    if decimal_places(value) > exponent:
        places = f"{exponent} decimals" if exponent else "no decimals"
        field.errors = [*field.errors, f"{currency} amounts have {places}."]
        return None
    if value < 0 and not allow_negative:
        field.errors = [*field.errors, "The amount must not be negative."]
        return None
    minor = int(value.scaleb(exponent))
    if abs(minor) > MAX_AMOUNT:
        field.errors = [*field.errors, "This amount is too large."]
        return None
    return minor


def vat_fraction(field: Field) -> tuple[bool, Decimal | None]:
    """(ok, the VAT as a fraction or None for "the default") from a percent typed as text."""
    text = (field.data or "").strip() if isinstance(field.data, str) else ""
    if not text:
        return True, None
    try:
        percent = parse_typed_decimal(text)
    except MoneyError:
        field.errors = [*field.errors, "Not a percentage (e.g. 25)."]
        return False, None
    if not 0 <= percent <= 100:
        field.errors = [*field.errors, "Between 0 and 100 %."]
        return False, None
    if decimal_places(percent) > 4:
        field.errors = [*field.errors, "At most 4 decimals."]
        return False, None
    return True, percent_to_fraction(percent)


def percentage(field: Field) -> tuple[bool, Decimal | None]:
    """A discount percentage as typed (the service checks its range)."""
    text = (field.data or "").strip() if isinstance(field.data, str) else ""
    if not text:
        return True, None
    try:
        return True, parse_typed_decimal(text)
    except MoneyError:
        field.errors = [*field.errors, "Not a percentage (e.g. 10)."]
        return False, None


def _vat_field() -> StringField:
    return StringField(
        "VAT (%)",
        [Optional(), Length(max=20)],
        description="Empty: the customer's, billing entity's or account's rate.",
    )


# ---------------------------------------------------------------- catalogue


class PlanForm(FlaskForm):
    handle = _handle("Handle", required=True)
    name = _text("Name", 255, required=True)
    description = TextAreaField(
        "Description", [Optional(), Length(max=5000)], filters=[blank_to_none]
    )
    currency = currency_field()
    amount = StringField("Price per period", description="Per unit, in the plan's currency.")
    vat = _vat_field()
    amount_incl_vat = BooleanField("The price includes VAT", default=True)
    quantity = IntegerField(
        "Quantity", [InputRequired("Enter a quantity."), NumberRange(1, 10**9)], default=1
    )
    schedule_type = SelectField(
        "Schedule", choices=select_choices(SCHEDULE_LABELS.items()), default="manual"
    )
    interval_length = IntegerField(
        "Every", [InputRequired("Enter a number."), NumberRange(1, 1000)], default=1
    )


class AddOnForm(FlaskForm):
    handle = _handle("Handle", required=True)
    name = _text("Name", 255, required=True)
    description = TextAreaField(
        "Description", [Optional(), Length(max=5000)], filters=[blank_to_none]
    )
    amount = StringField("Price", description="Per unit.")
    vat = _vat_field()
    amount_incl_vat = BooleanField("The price includes VAT", default=True)
    type = SelectField(
        "Kind",
        choices=select_choices([("on_off", "On/off"), ("quantity", "With a quantity")]),
        default="on_off",
    )
    eligible_plans = SelectMultipleField(
        "Only for these plans",
        choices=[],
        description="None chosen: the add-on fits every plan.",
    )


class DiscountForm(FlaskForm):
    handle = _handle("Handle", required=True)
    name = _text("Name", 255, required=True)
    description = TextAreaField(
        "Description", [Optional(), Length(max=5000)], filters=[blank_to_none]
    )
    amount = StringField("Fixed amount", description="Either a fixed amount …")
    percentage = StringField("Percentage", description="… or a percentage (e.g. 10).")
    apply_to = SelectMultipleField(
        "Applies to",
        choices=select_choices((v, APPLY_TO_LABELS[v]) for v in APPLY_TO),
        default=["all"],
    )
    fixed_count = IntegerField("Only for the first n invoices", [Optional(), NumberRange(1, 10**6)])
    fixed_period = IntegerField("Only for a period of", [Optional(), NumberRange(1, 10**6)])
    fixed_period_unit = SelectField(
        "Period unit",
        choices=select_choices([("", "—"), ("days", "days"), ("months", "months")]),
        default="",
    )


# ---------------------------------------------------------------- subscriptions


class SubscriptionFilters(FlaskForm):
    class Meta:
        csrf = False

    state = SelectField("State", choices=select_choices(STATE_FILTERS), default="")
    customer = StringField("Customer handle", [Optional(), Length(max=255)])


class SubscriptionForm(FlaskForm):
    handle = _handle(
        "Handle", required=False, description="Empty: one is made up (sub-…). " + HANDLE_HINT
    )
    customer = SelectField("Customer", choices=[], validate_choice=False)
    plan = SelectField("Plan", choices=[], validate_choice=False)
    quantity = IntegerField(
        "Quantity", [Optional(), NumberRange(1, 10**9)], description="Empty: the plan's quantity."
    )
    amount = StringField(
        "Price override", description="Per unit, in the plan's currency. Empty: the plan's price."
    )
    start_date = DateField("Start date", [Optional()], description="Empty: now.")
    cost_center = _text("Cost center", 255)
    purchase_order_number = _text("Purchase order number", 255)


@dataclass
class AddOnPick:
    """One add-on offered on the new subscription form, and what was chosen for it."""

    handle: str
    name: str
    type: str
    chosen: bool
    quantity_text: str
    error: str = ""

    @property
    def field_id(self) -> str:
        return "add_on-" + re.sub(r"[^a-zA-Z0-9_-]", "_", self.handle)


class CostForm(FlaskForm):
    # Shares the subscription page with other forms, so its fields carry a prefix; the
    # CSRF token is checked for every post before any route runs (web/__init__.py).
    class Meta:
        csrf = False

    handle = _handle("Handle", required=False, description="Empty: one is made up.")
    ordertext = _text("Text", 512, required=True)
    amount = StringField("Amount", description="Per unit.")
    quantity = IntegerField(
        "Quantity", [InputRequired("Enter a quantity."), NumberRange(1, 10**9)], default=1
    )
    vat = _vat_field()
    amount_incl_vat = BooleanField("The amount includes VAT", default=True)


class CreditForm(FlaskForm):
    # Shares the subscription page with other forms, so its fields carry a prefix; the
    # CSRF token is checked for every post before any route runs (web/__init__.py).
    class Meta:
        csrf = False

    handle = _handle("Handle", required=False, description="Empty: one is made up.")
    text = _text("Text", 1024)
    amount = StringField("Amount", description="Including VAT.")
    valid_from = DateField("Valid from", [Optional()], description="Empty: at once.")


class AttachDiscountForm(FlaskForm):
    # Shares the subscription page with other forms, so its fields carry a prefix; the
    # CSRF token is checked for every post before any route runs (web/__init__.py).
    class Meta:
        csrf = False

    discount = SelectField("Discount", choices=[], validate_choice=False)
    coupon = _text("or a coupon code", 100)
    handle = _handle("Handle", required=False, description="Empty: the discount's handle.")


# ---------------------------------------------------------------- invoice now


class OrderLineForm(Form):
    """One extra order line. Text fields, so what was typed comes back as typed."""

    ordertext = StringField("Text", [Length(max=512)])
    quantity = StringField("Quantity", default="1")
    amount = StringField("Unit price")
    tax = SelectField("VAT", choices=[], validate_choice=False, default="")
    amount_incl_vat = SelectField(
        "Price is",
        choices=select_choices([("1", "incl. VAT"), ("0", "excl. VAT")]),
        default="1",
    )

    def is_blank(self) -> bool:
        return not (self.ordertext.data or "").strip() and not (self.amount.data or "").strip()


@dataclass
class OrderLineRow:
    index: int
    form: OrderLineForm

    @property
    def name(self) -> str:
        return f"lines-{self.index}"


_ROW_KEY = re.compile(r"lines-(\d{1,6})-")


def order_line_rows(
    formdata: MultiDict[str, str] | None, choices: list[object]
) -> list[OrderLineRow]:
    indices = sorted({int(m.group(1)) for key in formdata or () if (m := _ROW_KEY.match(key))})
    rows = []
    for i in indices[: MAX_ORDER_LINES + 1]:
        row = OrderLineRow(i, OrderLineForm(formdata=formdata, prefix=f"lines-{i}"))
        row.form.tax.choices = choices
        rows.append(row)
    return rows


def add_order_line_row(rows: list[OrderLineRow], choices: list[object]) -> OrderLineRow:
    index = max((r.index for r in rows), default=-1) + 1
    row = OrderLineRow(index, OrderLineForm(prefix=f"lines-{index}"))
    row.form.tax.choices = choices
    rows.append(row)
    return row


class InvoiceNowForm(FlaskForm):
    handle = _handle(
        "Invoice handle",
        required=False,
        description="Empty: one is made up. A handle already used is refused.",
    )
    plan_manual = BooleanField("Plan and add-on lines", default=False)
    plan_period_from = DateField("Service period from", [Optional()])
    plan_period_to = DateField("Service period to", [Optional()])
    collect_additional_costs = BooleanField("Collect pending additional costs", default=True)
    collect_credit = BooleanField("Collect pending credits", default=True)
    apply_discounts = BooleanField("Apply the subscription's discounts", default=True)
    include_unbilled_usage = BooleanField("Include unbilled usage", default=False)
    due_date = DateField("Due date", [Optional()], description="Empty: due now.")
    cost_center = _text("Cost center", 255)
    purchase_order_number = _text("Purchase order number", 255)
    settlement = RadioField("Payment", choices=select_choices(SETTLEMENTS), default="none")
    transfer_method = SelectField(
        "Transfer method", choices=select_choices(TRANSFER_METHODS), default="bank_transfer"
    )
    transfer_date = DateField("Paid on", [Optional()], description="Empty: today.")
    transfer_reference = _text("Reference", 255)
    transfer_comment = _text("Comment", 1000)
