"""The only place that parses, rounds, converts and formats money.

Amounts are integers in the currency's minor unit. The exponent of each currency comes
from ISO 4217 data (the maintained `iso4217` package), never a hard-coded 100. Rounding is
commercial half-up (ties away from zero), always explicit: Python's default is half-even.
No binary float is accepted anywhere on this path.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from iso4217 import Currency

# Enough precision that no product of a 6-decimal quantity and a 6-decimal unit price of
# any realistic size is ever rounded by the context before we round it ourselves.
_PRECISION = 60
# The arithmetic context of the money path: 60 significant digits, and the rest (traps,
# rounding of the inexact last digit) Python's defaults. Used explicitly, never the
# thread's current context, so nothing a caller sets can change a figure.
_MATH = Context(prec=_PRECISION)
_ONE = Decimal(1)


class MoneyError(ValueError):
    """A value that cannot be money: unknown currency, non-finite, a float, a boolean."""


@lru_cache(maxsize=512)
def minor_unit_exponent(code: str) -> int:
    """ISO 4217 exponent: EUR 2, JPY 0, KWD 3. Unknown or unit-less codes raise."""
    try:
        currency = Currency(code.upper())
    except ValueError:
        raise MoneyError(f"Unknown currency code: {code!r}") from None
    exponent = currency.exponent
    if exponent is None:
        # XAU, XXX, XTS ...: ISO 4217 defines no minor unit, so they cannot be invoiced.
        raise MoneyError(f"Currency {code.upper()} has no minor unit and cannot be invoiced")
    return int(exponent)


def normalise_currency(code: object) -> str:
    """Upper-case, three letters, a real ISO 4217 code with a minor unit."""
    if not isinstance(code, str) or len(code) != 3 or not code.isalpha():
        raise MoneyError("Currency must be a three-letter ISO 4217 code")
    code = code.upper()
    minor_unit_exponent(code)
    return code


def is_known_currency(code: str) -> bool:
    try:
        normalise_currency(code)
    except MoneyError:
        return False
    return True


def to_decimal(value: object) -> Decimal:
    """Parse an exact decimal from JSON-ish input: Decimal, int or a numeric string.

    Floats are refused (they arrive only if a caller parsed JSON carelessly), as are
    booleans, NaN and Infinity.
    """
    if isinstance(value, bool):
        raise MoneyError("A number is required, not a boolean")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise MoneyError("A number is required")
        try:
            result = Decimal(text)
        except InvalidOperation:
            raise MoneyError(f"Not a number: {value!r}") from None
    elif isinstance(value, float):
        raise MoneyError("Binary floats are not accepted for money")
    else:
        raise MoneyError("A number is required")
    if not result.is_finite():
        raise MoneyError("NaN and Infinity are not numbers")
    return result


def decimal_places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)  # finite by construction
    return max(0, -exponent)


def round_half_up(value: Decimal) -> int:
    """Round to a whole number, ties away from zero (commercial rounding)."""
    return int(value.quantize(_ONE, rounding=ROUND_HALF_UP, context=_MATH))


def multiply(a: Decimal, b: Decimal) -> Decimal:
    """Exact product (within 60 significant digits) of two decimals."""
    return _MATH.multiply(a, b)


def divide(a: Decimal, b: Decimal) -> Decimal:
    return _MATH.divide(a, b)


def add(a: Decimal, b: Decimal) -> Decimal:
    """Sum within 60 significant digits (the default context keeps 28)."""
    return _MATH.add(a, b)


def line_amount(quantity: Decimal, unit_amount: Decimal) -> int:
    """A line's amount in whole minor units: quantity x unit amount, rounded half-up."""
    return round_half_up(multiply(quantity, unit_amount))


def percent_to_fraction(percent: Decimal) -> Decimal:
    # Memoised by the exact text, not the value: 25 and 25.000 are equal decimals whose
    # fractions differ in exponent (0.25 and 0.250), and each keeps its own.
    return _percent_to_fraction(str(percent))


def fraction_to_percent(fraction: Decimal) -> Decimal:
    return _fraction_to_percent(str(fraction))


@lru_cache(maxsize=1024)
def _percent_to_fraction(text: str) -> Decimal:
    return divide(Decimal(text), Decimal(100))


@lru_cache(maxsize=1024)
def _fraction_to_percent(text: str) -> Decimal:
    return multiply(Decimal(text), Decimal(100))


def minor_to_major(amount_minor: int, currency: str) -> Decimal:
    """12345 EUR -> Decimal('123.45'); 12345 JPY -> Decimal('12345')."""
    exponent = minor_unit_exponent(currency)
    return Decimal(amount_minor).scaleb(-exponent)


def major_to_minor(amount: Decimal, currency: str) -> int:
    """Decimal('123.455') EUR -> 12346 (half-up); used by forms that take major units."""
    exponent = minor_unit_exponent(currency)
    return round_half_up(amount.scaleb(exponent))


@lru_cache(maxsize=1024)
def _currency_pattern(
    locale: str, currency: str, min_decimals: int, max_decimals: int
) -> tuple[Any, Any, str | None]:
    """The locale (parsed once), its standard currency pattern with the decimals forced,
    and the currency to hand the pattern: a pure function of the locale's
    data, kept per locale, currency and decimals.

    Where the pattern shows the currency by its symbol (`¤`) or code (`¤¤`), Babel's own
    symbol and code are put into the kept pattern, and the currency given to Babel is
    None: Babel otherwise works out the currency's plural name (`¤¤¤`) for every amount,
    half of the time it takes to format one. A pattern that shows that name keeps it.
    """
    from babel import Locale
    from babel.numbers import get_currency_symbol, parse_pattern

    loc = Locale.parse(locale.replace("-", "_"))
    pattern = parse_pattern(loc.currency_formats["standard"].pattern)
    pattern.frac_prec = (min_decimals, max_decimals)
    affixes = (*pattern.prefix, *pattern.suffix)
    if any("¤¤¤" in affix for affix in affixes):
        return loc, pattern, currency
    symbol = get_currency_symbol(currency, loc)

    def named(affix: str) -> str:
        return affix.replace("¤¤", currency.upper()).replace("¤", symbol)

    pattern.prefix = (named(pattern.prefix[0]), named(pattern.prefix[1]))
    pattern.suffix = (named(pattern.suffix[0]), named(pattern.suffix[1]))
    return loc, pattern, None


def _format_currency(amount: Decimal, currency: str, locale: str, decimals: tuple[int, int]) -> str:
    """Babel's `format_currency` with the kept pattern: the pattern applied to the amount."""
    loc, pattern, babel_currency = _currency_pattern(locale, currency, *decimals)
    return pattern.apply(amount, loc, currency=babel_currency, currency_digits=False)


def format_money(amount_minor: int, currency: str, locale: str = "en") -> str:
    """Money for people, in a locale: `€1,234.50`, `1.234,50 €`, `¥1,235`, `KWD 1.250`.

    Babel formats it with the locale's pattern and symbol; the number of decimals is the
    ISO 4217 exponent (CLDR differs for a few currencies).
    """
    exponent = minor_unit_exponent(currency)
    major = minor_to_major(amount_minor, currency)
    return _format_currency(major, currency, locale, (exponent, exponent))


def format_unit_amount(unit_minor: Decimal, currency: str, locale: str = "en") -> str:
    """A unit price (minor units, possibly fractional) for people: like `format_money`, with
    the extra decimals a price such as 0.125 cents needs, never fewer than the currency's."""
    if unit_minor == unit_minor.to_integral_value():
        return format_money(int(unit_minor), currency, locale)
    exponent = minor_unit_exponent(currency)
    major = unit_minor_to_major(unit_minor, currency)
    return _format_currency(
        major, currency, locale, (exponent, max(exponent, decimal_places(major)))
    )


def unit_minor_to_major(unit_minor: Decimal, currency: str) -> Decimal:
    """Decimal('12.5') EUR cents -> Decimal('0.125') EUR, exactly."""
    return unit_minor.scaleb(-minor_unit_exponent(currency))


def unit_major_to_minor(amount: Decimal, currency: str) -> Decimal:
    """Decimal('0.125') EUR -> Decimal('12.5') cents, exactly: unit prices may hold
    fractions of a minor unit, so nothing is rounded here (line amounts are)."""
    return amount.scaleb(minor_unit_exponent(currency))


_TYPED_NUMBER = re.compile(r"[+-]?(\d+([.,]\d*)?|[.,]\d+)")


def parse_typed_decimal(text: str) -> Decimal:
    """A number as a person types it in a form: optional sign, digits, one `.` or `,` as
    the decimal separator, no grouping (`1234.50`, `1234,5`, `-3`). MoneyError otherwise:
    with grouping allowed, `1.234` would mean a thousand in one locale and one in another.
    """
    text = text.strip().replace("\u2212", "-")
    if not _TYPED_NUMBER.fullmatch(text):
        raise MoneyError(
            "Use digits with . or , for decimals (no thousands separators), e.g. 1234.50"
        )
    return Decimal(text.replace(",", "."))


@lru_cache(maxsize=1)
def invoiceable_currencies() -> tuple[tuple[str, str], ...]:
    """(code, name) of every ISO 4217 currency with a minor unit, by code."""
    return tuple(sorted((c.code, c.currency_name) for c in Currency if c.exponent is not None))
