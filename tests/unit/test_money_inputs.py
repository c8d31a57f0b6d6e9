"""money.py's parsing and small helpers, figure by figure: what a client or a form sends
(`to_decimal`, `normalise_currency`, `parse_typed_decimal`), the exact text of each refusal
(the API and the forms show it), and the conversions the pages and services call."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal, localcontext

import pytest

from billing_app import money
from billing_app.money import MoneyError

# ---------------------------------------------------------------- to_decimal


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, "5"),
        (-12, "-12"),
        (0, "0"),
        (10**30, "1000000000000000000000000000000"),
        (Decimal("1.50"), "1.50"),
        ("1.50", "1.50"),  # the exponent is kept: 1.50, not 1.5
        ("  -0.125\n", "-0.125"),
        ("1E+3", "1E+3"),
    ],
)
def test_to_decimal_parses_ints_decimals_and_numeric_strings(value, expected):
    result = money.to_decimal(value)
    assert isinstance(result, Decimal)
    assert str(result) == expected


def test_to_decimal_returns_a_decimal_as_it_is():
    value = Decimal("7.000")
    assert money.to_decimal(value) is value


# The API shows these texts to the client (api/types.py: ValueError(str(exc))).
@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "A number is required, not a boolean"),
        (False, "A number is required, not a boolean"),
        ("", "A number is required"),
        ("   ", "A number is required"),
        ("abc", "Not a number: 'abc'"),
        (" 1,5 ", "Not a number: ' 1,5 '"),
        (1.5, "Binary floats are not accepted for money"),
        (None, "A number is required"),
        ([1], "A number is required"),
        (Decimal("NaN"), "NaN and Infinity are not numbers"),
        (Decimal("-Infinity"), "NaN and Infinity are not numbers"),
        ("Infinity", "NaN and Infinity are not numbers"),
        ("nan", "NaN and Infinity are not numbers"),
    ],
)
def test_to_decimal_refusals_say_why(value, message):
    with pytest.raises(MoneyError) as exc:
        money.to_decimal(value)
    assert str(exc.value) == message


# ---------------------------------------------------------------- currencies


@pytest.mark.parametrize(("code", "expected"), [("EUR", "EUR"), ("eur", "EUR"), ("jPy", "JPY")])
def test_normalise_currency_upper_cases_a_real_code(code, expected):
    assert money.normalise_currency(code) == expected


THREE_LETTERS = "Currency must be a three-letter ISO 4217 code"


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (None, THREE_LETTERS),
        (978, THREE_LETTERS),
        (b"EUR", THREE_LETTERS),
        ("EURO", THREE_LETTERS),
        ("EU", THREE_LETTERS),
        ("", THREE_LETTERS),
        ("E1R", THREE_LETTERS),
        ("12A", THREE_LETTERS),
        ("EU ", THREE_LETTERS),
        ("zzz", "Unknown currency code: 'ZZZ'"),
        ("xau", "Currency XAU has no minor unit and cannot be invoiced"),
    ],
)
def test_normalise_currency_refusals_say_why(code, message):
    with pytest.raises(MoneyError) as exc:
        money.normalise_currency(code)
    assert str(exc.value) == message


@pytest.mark.parametrize(
    ("code", "known"),
    [("EUR", True), ("kwd", True), ("ZZZ", False), ("XXX", False), ("EURO", False), (None, False)],
)
def test_is_known_currency(code, known):
    assert money.is_known_currency(code) is known


def test_invoiceable_currencies_are_the_codes_with_a_minor_unit():
    currencies = dict(money.invoiceable_currencies())
    assert {"EUR", "JPY", "KWD", "USD"} <= currencies.keys()
    assert not {"XAU", "XXX", "XTS"} & currencies.keys()
    codes = [code for code, _ in money.invoiceable_currencies()]
    assert codes == sorted(codes)


# ---------------------------------------------------------------- rounding and digits


@pytest.mark.parametrize(
    ("value", "places"),
    [("5", 0), ("100", 0), ("1E+3", 0), ("1.50", 1), ("0.125", 3), ("-0.0001", 4), ("0", 0)],
)
def test_decimal_places(value, places):
    assert money.decimal_places(Decimal(value)) == places


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.5", 1),
        ("-0.5", -1),
        ("2.5", 3),  # half-even would give 2
        ("2.4999", 2),
        ("-2.5", -3),
        # More digits than Python's default context (28) holds: money's own context (60).
        ("123456789012345678901234567890.5", 123456789012345678901234567891),
    ],
)
def test_round_half_up(value, expected):
    assert money.round_half_up(Decimal(value)) == expected


def test_round_half_up_ignores_the_callers_context():
    with localcontext() as ctx:
        ctx.prec = 3
        ctx.rounding = ROUND_DOWN
        assert money.round_half_up(Decimal("12345.5")) == 12346
        assert money.line_amount(Decimal("1000.5"), Decimal("3")) == 3002  # 3001.5


# ---------------------------------------------------------------- percent, unit amounts


def test_percent_and_fraction_keep_the_digits_as_written():
    assert str(money.percent_to_fraction(Decimal("25"))) == "0.25"
    assert str(money.percent_to_fraction(Decimal("25.000"))) == "0.250"
    assert money.percent_to_fraction(Decimal("7.7")) == Decimal("0.077")
    assert str(money.fraction_to_percent(Decimal("0.19"))) == "19.00"
    assert money.fraction_to_percent(Decimal("0.077")) == Decimal("7.7")
    assert money.fraction_to_percent(Decimal("0")) == 0


@pytest.mark.parametrize(
    ("major", "currency", "minor"),
    [
        ("0.125", "EUR", "12.5"),
        ("5", "JPY", "5"),
        ("0.0125", "KWD", "12.5"),
        ("-1.5", "eur", "-150"),
    ],
)
def test_unit_amounts_convert_exactly_both_ways(major, currency, minor):
    assert money.unit_major_to_minor(Decimal(major), currency) == Decimal(minor)
    assert money.unit_minor_to_major(Decimal(minor), currency) == Decimal(major)


def test_the_default_locale_is_english():
    assert money.format_money(123450, "EUR") == "€1,234.50"
    assert money.format_unit_amount(Decimal("12.5"), "EUR") == "€0.125"
    assert money.format_unit_amount(Decimal("1200"), "EUR") == "€12.00"


# ---------------------------------------------------------------- numbers typed in a form


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1234.50", "1234.50"),
        ("1234,5", "1234.5"),
        ("-3", "-3"),
        ("+2", "2"),
        ("  7 ", "7"),
        ("\u22123,25", "-3.25"),  # the minus sign a word processor types
        (".5", "0.5"),
        (",5", "0.5"),
        ("5.", "5"),
        ("0", "0"),
    ],
)
def test_parse_typed_decimal(text, expected):
    result = money.parse_typed_decimal(text)
    assert isinstance(result, Decimal)
    assert str(result) == expected


@pytest.mark.parametrize(
    "text",
    ["", " ", "1.234,50", "1,234.50", "1 000", "abc", "--1", "1e3", "1.2.3", "-", ".", "1-"],
)
def test_parse_typed_decimal_refuses_grouping_and_other_text(text):
    with pytest.raises(MoneyError) as exc:
        money.parse_typed_decimal(text)
    # The settings form shows this text under the field.
    assert str(exc.value) == (
        "Use digits with . or , for decimals (no thousands separators), e.g. 1234.50"
    )
