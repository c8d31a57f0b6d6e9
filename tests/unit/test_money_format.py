"""format_money: Babel's pattern and symbol for the locale, the currency's ISO 4217
exponent as the number of decimals."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from babel import localedata
from hypothesis import given, settings
from hypothesis import strategies as st

from billing_app.money import format_money, format_unit_amount, minor_unit_exponent

LOCALES = localedata.locale_identifiers()
CURRENCIES = ["EUR", "USD", "JPY", "KWD", "INR", "CHF", "GBP", "BHD", "CLP"]


@pytest.mark.parametrize(
    "amount, currency, locale, expected",
    [
        (123456, "EUR", "de", "1.234,56\xa0€"),
        (123456, "EUR", "en", "€1,234.56"),
        (-5, "EUR", "en", "-€0.05"),
        (-12345678900, "INR", "en_IN", "-₹12,34,56,789.00"),
        (1235, "JPY", "ja", "￥1,235"),
        (1250, "KWD", "en", "KWD1.250"),
        (0, "CHF", "de_CH", "CHF\xa00.00"),
        # CLDR gives CLP no decimals and ISO 4217 none either; BHD has three.
        (1500, "CLP", "es_CL", "$1.500"),
        (1234, "BHD", "en", "BHD1.234"),
    ],
)
def test_examples(amount, currency, locale, expected):
    assert format_money(amount, currency, locale) == expected


@settings(max_examples=200, deadline=None)
@given(
    currency=st.sampled_from(CURRENCIES),
    amount=st.integers(min_value=-(10**17), max_value=10**17),
)
def test_english_shows_the_iso_exponent_and_every_digit(currency, amount):
    text = format_money(amount, currency, "en")
    digits = re.sub(r"[^0-9.]", "", text.replace(",", ""))
    exponent = minor_unit_exponent(currency)
    whole, _, fraction = digits.partition(".")
    assert len(fraction) == exponent
    assert int(whole + fraction) == abs(amount)
    assert text.startswith("-") == (amount < 0)


@settings(max_examples=100, deadline=None)
@given(locale=st.sampled_from(LOCALES), currency=st.sampled_from(CURRENCIES))
def test_every_locale_formats(locale, currency):
    assert format_money(123456, currency, locale)


def test_unit_amounts_keep_their_extra_decimals():
    assert format_unit_amount(Decimal("12.5"), "EUR", "en") == "€0.125"
    assert format_unit_amount(Decimal("1200"), "EUR", "de") == "12,00\xa0€"


@pytest.mark.parametrize(
    ("amount_minor", "currency", "shown"),
    [
        # ISO 4217 exponents, not CLDR's digits (0 for all three): 2, 2 and 3 decimals.
        (12345, "HUF", "HUF123.45"),
        (12345, "IDR", "IDR123.45"),
        (12345, "IQD", "IQD12.345"),
    ],
)
def test_decimals_are_the_iso_exponent_where_cldr_differs(amount_minor, currency, shown):
    assert format_money(amount_minor, currency, "en") == shown
    assert format_unit_amount(Decimal(amount_minor) + Decimal("0.5"), currency, "en") == (
        shown + "5"
    )
