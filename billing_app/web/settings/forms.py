from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    EmailField,
    Field,
    Form,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Email, Length, NumberRange, Optional, ValidationError

from ...money import MoneyError, parse_typed_decimal
from ..fields import blank_to_none, country, currency_field, locale_field, timezone_field


def _percent(form: Form, field: Field) -> None:
    text = (field.raw_data or [""])[0].strip() if field.raw_data else ""
    if not text:
        field.data = None
        return
    try:
        field.data = parse_typed_decimal(text)
    except MoneyError as exc:
        raise ValidationError(str(exc)) from None


class PercentField(StringField):
    """A percent typed as text (`19`, `7,7`); `data` is a Decimal or None."""

    def _value(self) -> str:
        if isinstance(self.data, Decimal):
            return format(self.data.normalize(), "f")
        return super()._value()


class AccountForm(FlaskForm):
    name = StringField("Company name", [DataRequired("Enter a name."), Length(max=255)])
    timezone = timezone_field(description="Dates on every page are shown in this time zone.")
    default_currency = currency_field("Default currency")
    default_vat_percent = PercentField(
        "Default VAT (%)",
        [_percent],
        description="Used when neither the line, the customer nor the billing entity has a rate.",
    )


class EntityForm(FlaskForm):
    code = StringField(
        "Code",
        [DataRequired("Enter a code."), Length(max=100)],
        filters=[blank_to_none],
        description="A short id for the API, e.g. de-gmbh.",
    )
    name = StringField("Name", [DataRequired("Enter a name."), Length(max=255)])
    legal_name = StringField("Legal name", [Optional(), Length(max=255)], filters=[blank_to_none])
    email = EmailField(
        "Email",
        [Optional(), Email("Enter a valid email address."), Length(max=320)],
        filters=[blank_to_none],
    )
    address_line1 = StringField("Address", [Optional(), Length(max=500)], filters=[blank_to_none])
    address_line2 = StringField(
        "Address (line 2)", [Optional(), Length(max=500)], filters=[blank_to_none]
    )
    zip_code = StringField("Postcode", [Optional(), Length(max=32)], filters=[blank_to_none])
    city = StringField("City", [Optional(), Length(max=255)], filters=[blank_to_none])
    state = StringField("State / region", [Optional(), Length(max=255)], filters=[blank_to_none])
    country = StringField("Country", [country], filters=[blank_to_none])
    tax_id = StringField("Tax id", [Optional(), Length(max=64)], filters=[blank_to_none])
    currency = currency_field()
    timezone = timezone_field(default="UTC")
    document_locale = locale_field(default="en")
    invoice_prefix = StringField(
        "Number prefix", [Optional(), Length(max=20)], filters=[blank_to_none], default="INV"
    )
    number_pattern = StringField(
        "Number pattern",
        [DataRequired("Enter a pattern."), Length(max=100)],
        default="{prefix}-{number:06}",
        description="Tokens: {prefix}, {number} or {number:06} (zero-padded), {YYYY}, {MM}.",
    )
    next_invoice_number = IntegerField(
        "Next number",
        [DataRequired("Enter the next number."), NumberRange(min=1, message="At least 1.")],
        default=1,
        description="Only before the first invoice of this series is finalized.",
    )
    net_payment_term = IntegerField(
        "Payment terms (days)",
        [
            DataRequired("Enter the payment terms."),
            NumberRange(min=0, max=3650, message="Between 0 and 3650 days."),
        ],
        default=30,
    )
    invoice_footer = TextAreaField(
        "Invoice footer", [Optional(), Length(max=1024)], filters=[blank_to_none]
    )
    tax_code = SelectField("Default tax rate", choices=[], validate_choice=True, default="")
    is_default = BooleanField("The account's default billing entity")

    def service_data(self) -> dict[str, Any]:
        names = (
            "name",
            "legal_name",
            "email",
            "address_line1",
            "address_line2",
            "zip_code",
            "city",
            "state",
            "country",
            "tax_id",
            "currency",
            "timezone",
            "document_locale",
            "invoice_prefix",
            "number_pattern",
            "next_invoice_number",
            "net_payment_term",
            "invoice_footer",
        )
        return {name: self[name].data for name in names}


class LogoForm(FlaskForm):
    logo = FileField("Logo (PNG or JPEG, at most 512 KB)", [FileRequired("Choose a file.")])


class TaxForm(FlaskForm):
    code = StringField(
        "Code", [DataRequired("Enter a code."), Length(max=255)], filters=[blank_to_none]
    )
    name = StringField("Name", [DataRequired("Enter a name."), Length(max=255)])
    rate = PercentField("Rate (%)", [_percent])
    description = TextAreaField(
        "Description", [Optional(), Length(max=2000)], filters=[blank_to_none]
    )
    applied_to_organization = BooleanField("The account-wide default rate")

    def validate_rate(self, field: Field) -> None:
        if field.data is None:
            raise ValidationError("Enter a rate.")


class ApiKeyForm(FlaskForm):
    name = StringField("Name", [DataRequired("Give the key a name."), Length(max=255)])


class CheckOnly(FlaskForm):
    """A button form: the CSRF token is all it carries."""
