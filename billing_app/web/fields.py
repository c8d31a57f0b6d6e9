"""Form validators and field helpers shared by the page forms: the same real-world code
checks as the API schemas (billing_app.validation, billing_app.money)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from wtforms import Field, Form, SelectField, StringField
from wtforms.validators import ValidationError

from ..money import invoiceable_currencies, is_known_currency
from ..validation import is_locale, is_timezone

try:  # WTForms >= 3.3 deprecates (value, label) tuples in favour of SelectChoice
    from wtforms.fields.choices import SelectChoice
except ImportError:  # pragma: no cover - older WTForms
    SelectChoice = None


def select_choices(pairs: Iterable[tuple[str, str]]) -> list[Any]:
    """Options for a SelectField from (value, label) pairs, in whatever form this WTForms
    takes without a deprecation warning."""
    if SelectChoice is None:
        return list(pairs)
    return [SelectChoice(value, label) for value, label in pairs]


def currency_field(label: str = "Currency", **kw: Any) -> SelectField:
    return SelectField(
        label,
        choices=select_choices(
            (code, f"{code}: {name}") for code, name in invoiceable_currencies()
        ),
        validators=[_currency],
        **kw,
    )


def _currency(form: Form, field: Field) -> None:
    if not is_known_currency((field.data or "").upper()):
        raise ValidationError("Choose a currency from the list.")


def timezone_field(label: str = "Time zone", **kw: Any) -> StringField:
    return StringField(label, validators=[_timezone], **kw)


def _timezone(form: Form, field: Field) -> None:
    field.data = (field.data or "").strip()
    if not is_timezone(field.data):
        raise ValidationError("Use a time zone name such as Europe/Berlin or America/New_York.")


def locale_field(label: str = "Document language", **kw: Any) -> StringField:
    return StringField(label, validators=[_locale], **kw)


def _locale(form: Form, field: Field) -> None:
    field.data = (field.data or "").strip()
    if not is_locale(field.data) or len(field.data) > 10:
        raise ValidationError("Use a locale code such as en, de, fr_CH or pt_BR.")


def country(form: Form, field: Field) -> None:
    value = (field.data or "").strip().upper()
    field.data = value or None
    if value and (len(value) != 2 or not value.isalpha()):
        raise ValidationError("Use the two-letter country code, e.g. DE.")


def blank_to_none(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value
