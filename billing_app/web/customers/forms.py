from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, IntegerField, SearchField, SelectField, StringField
from wtforms.validators import DataRequired, Email, Length, NumberRange, Optional

from ..fields import blank_to_none, country, currency_field, locale_field, timezone_field


class CustomerSearchForm(FlaskForm):
    class Meta:
        csrf = False

    q = SearchField("Search name, email or handle", [Optional(), Length(max=100)])


class CustomerForm(FlaskForm):
    external_id = StringField(
        "Handle",
        [DataRequired("Enter a handle."), Length(max=255)],
        filters=[blank_to_none],
        description="Your own id for the customer (e.g. from your CRM); unique in this account.",
    )
    name = StringField(
        "Name", [DataRequired("Enter a name."), Length(max=255)], filters=[blank_to_none]
    )
    company = StringField("Company", [Optional(), Length(max=255)], filters=[blank_to_none])
    email = EmailField(
        "Email",
        [Optional(), Email("Enter a valid email address."), Length(max=320)],
        filters=[blank_to_none],
    )
    phone = StringField("Phone", [Optional(), Length(max=64)], filters=[blank_to_none])
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
    document_locale = locale_field(
        default="en", description="Language and number format of this customer's invoices."
    )
    net_payment_term = IntegerField(
        "Payment term (days)",
        [Optional(), NumberRange(min=0, max=3650, message="Between 0 and 3650 days.")],
        description="Empty: the billing entity's payment terms.",
    )
    tax_code = SelectField("Tax rate", choices=[], validate_choice=True, default="")
    billing_entity_code = SelectField(
        "Billing entity", choices=[], validate_choice=True, default=""
    )

    def service_data(self) -> dict[str, object]:
        """The fields as the customer service takes them (tax / entity by code)."""
        data = {
            name: self[name].data
            for name in (
                "name",
                "company",
                "email",
                "phone",
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
                "net_payment_term",
            )
        }
        data["tax_code"] = self.tax_code.data or None
        data["billing_entity_code"] = self.billing_entity_code.data or None
        return data
