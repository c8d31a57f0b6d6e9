"""The printed invoice's text catalogue and its Babel formatting."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from billing_app.documents.i18n import TEXTS, DocumentLocale, css_string, placeholders


def test_every_language_has_every_text_with_the_same_placeholders():
    english = TEXTS["en"]
    assert set(TEXTS) >= {"en", "de", "fr", "da"}
    for language, texts in TEXTS.items():
        assert set(texts) == set(english), language
        for key, text in texts.items():
            assert text.strip(), (language, key)
            assert placeholders(text) == placeholders(english[key]), (language, key)


@pytest.mark.parametrize(
    "tag,language,babel_locale",
    [
        ("en", "en", "en"),
        ("de", "de", "de"),
        ("de-AT", "de", "de_AT"),
        ("fr_CA", "fr", "fr_CA"),
        ("da", "da", "da"),
        ("es", "en", "en"),  # no texts in Spanish: all English, numbers included
        ("", "en", "en"),
        ("xx-YY", "en", "en"),
    ],
)
def test_locale_resolution(tag, language, babel_locale):
    loc = DocumentLocale.for_tag(tag)
    assert (loc.language, loc.babel_locale) == (language, babel_locale)


def test_babel_formats_dates_numbers_percentages_and_countries():
    de, en, fr, da = (DocumentLocale.for_tag(t) for t in ("de", "en", "fr", "da"))
    day = date(2026, 3, 5)
    assert de.long_date(day) == "5. März 2026"
    assert en.long_date(day) == "March 5, 2026"
    assert fr.long_date(day) == "5 mars 2026"
    assert da.long_date(day) == "5. marts 2026"
    assert de.percent(Decimal(19)) == "19\xa0%"
    assert en.percent(Decimal("7.5")) == "7.5%"
    assert de.quantity(Decimal("1234.5")) == "1.234,5"
    assert de.money(123456, "EUR") == "1.234,56\xa0€"
    assert en.money(1235, "JPY") == "¥1,235"
    assert de.country("DK") == "Dänemark" and fr.country("DE") == "Allemagne"
    assert en.period(day, day) == "March 5, 2026"


def test_page_counter_is_a_safe_css_value():
    assert DocumentLocale.for_tag("de").css_page_counter() == (
        '"Seite " counter(page) " von " counter(pages)'
    )
    hostile = css_string('x"; } body { background: url(http://e/) } </style><b>')
    assert '"' not in hostile[1:-1] and "<" not in hostile and "}" not in hostile
