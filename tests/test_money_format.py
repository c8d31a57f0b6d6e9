"""format_money replays Babel's layout per locale and currency (a list page prints
hundreds of amounts); it must print exactly what Babel prints."""

from __future__ import annotations

import pytest
from babel import localedata
from hypothesis import given, settings
from hypothesis import strategies as st

from billing_app.money import _babel_money, _money_layout, format_money

LOCALES = localedata.locale_identifiers()
CURRENCIES = ["EUR", "USD", "JPY", "KWD", "INR", "CHF", "GBP", "BHD", "CLP"]


@settings(max_examples=400, deadline=None)
@given(
    locale=st.sampled_from(LOCALES),
    currency=st.sampled_from(CURRENCIES),
    amount=st.integers(min_value=-(10**17), max_value=10**17),
)
def test_format_money_prints_what_babel_prints(locale, currency, amount):
    assert format_money(amount, currency, locale) == _babel_money(amount, currency, locale)


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
    ],
)
def test_examples(amount, currency, locale, expected):
    assert format_money(amount, currency, locale) == expected


def test_almost_every_locale_takes_the_fast_path():
    slow = [loc for loc in LOCALES for cur in ("EUR", "JPY") if _money_layout(cur, loc) is None]
    assert len(slow) <= len(LOCALES) // 50
