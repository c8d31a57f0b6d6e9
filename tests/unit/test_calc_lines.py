"""calc.py's per-line figures (the VAT shown next to a line, dialect B's line figures) and
`percentage_of`, as exact numbers worked out by hand, plus properties against rational
arithmetic."""

from __future__ import annotations

import math
from decimal import Decimal as D
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing_app.invoices.calc import (
    LineFigures,
    LineInput,
    compute_totals,
    line_figures,
    line_vat_minor,
    percentage_of,
)


def half_up(value: Fraction) -> int:
    whole = math.floor(abs(value) + Fraction(1, 2))
    return whole if value >= 0 else -whole


# ---------------------------------------------------------------- line_vat_minor


@pytest.mark.parametrize(
    ("amount", "rate", "incl", "vat"),
    [
        (1000, "0.19", False, 190),
        (1000, "0.19", True, 160),  # 159.66...
        (350, "0.19", False, 67),  # 66.5, half-up
        (-350, "0.19", False, -67),
        (3, "0.2", True, 1),  # 3 x 0.2 / 1.2 = 0.5 exactly
        (-3, "0.2", True, -1),
        (12500, "0.25", True, 2500),
        (12500, "0.25", False, 3125),
        (999, "0", True, 0),
        (0, "0.19", False, 0),
        (1, "0.123456789012345678901234567", False, 0),
        # 249 999 999 999 999.99... rounds up
        (10**15, "0.333333333333333333333333333333", True, 250_000_000_000_000),
    ],
)
def test_line_vat_minor(amount, rate, incl, vat):
    assert line_vat_minor(amount, D(rate), incl) == vat


rates = st.sampled_from([D("0"), D("0.05"), D("0.07"), D("0.077"), D("0.19"), D("0.2"), D("0.25")])


@settings(max_examples=200, deadline=None)
@given(amount=st.integers(-(10**12), 10**12), rate=rates, incl=st.booleans())
def test_line_vat_minor_is_the_exact_vat_rounded_half_up(amount, rate, incl):
    r = Fraction(rate)
    exact = Fraction(amount) * r / (1 + r) if incl else Fraction(amount) * r
    assert line_vat_minor(amount, rate, incl) == half_up(exact)
    # A document of one line has that line's VAT.
    assert compute_totals([LineInput(amount, rate, incl)]).vat_minor == half_up(exact)


# ---------------------------------------------------------------- line_figures


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # Net-priced: 2 x 5.00 at 19 %.
        ((1000, "2", "500", "0.19", False), (1190, 190, 1000, 595, 95, 500)),
        # Gross-priced: 2 x 5.95 incl. 19 %.
        ((1190, "2", "595", "0.19", True), (1190, 190, 1000, 595, 95, 500)),
        # Net-priced fractional unit: 3 x 12.5 cents = 37.5 -> 38; VAT 7.6 -> 8;
        # unit 12.5 -> 13 net, 15 gross.
        ((38, "3", "12.5", "0.2", False), (46, 8, 38, 15, 2, 13)),
        # Gross-priced fractional unit: 4 x 12.5 = 50 incl. 25 %: VAT 10; unit 12.5 -> 13
        # gross, 12.5 / 1.25 = 10 net.
        ((50, "4", "12.5", "0.25", True), (50, 10, 40, 13, 3, 10)),
        # Unit net 333 at 7 % incl.: 333 / 1.07 = 311.21 -> 311; VAT 1000 x 0.07/1.07 = 65.42
        ((1000, "3", "333", "0.07", True), (1000, 65, 935, 333, 22, 311)),
        # Unit 2.5 net at 7 %: 2.675 -> 3 gross, 3 net (half-up), unit VAT 0.
        ((25, "10", "2.5", "0.07", False), (27, 2, 25, 3, 0, 3)),
        # Negative (a discount line), net-priced at 25 %: -2.5 -> -3 net, -3.125 -> -3 gross.
        ((-25, "10", "-2.5", "0.25", False), (-31, -6, -25, -3, 0, -3)),
        # Zero rate.
        ((700, "7", "100", "0", True), (700, 0, 700, 100, 0, 100)),
    ],
)
def test_line_figures(args, expected):
    amount, quantity, unit, rate, incl = args
    got = line_figures(amount, D(quantity), D(unit), D(rate), incl)
    assert isinstance(got, LineFigures)
    fields = (
        got.amount,
        got.amount_vat,
        got.amount_ex_vat,
        got.unit_amount,
        got.unit_amount_vat,
        got.unit_amount_ex_vat,
    )
    assert fields == expected


@settings(max_examples=200, deadline=None)
@given(
    amount=st.integers(-(10**10), 10**10),
    unit=st.decimals(min_value=-(10**6), max_value=10**6, places=3, allow_nan=False),
    rate=rates,
    incl=st.booleans(),
)
def test_line_figures_against_rational_arithmetic(amount, unit, rate, incl):
    f = line_figures(amount, D(1), unit, rate, incl)
    r = Fraction(rate)
    vat = half_up(Fraction(amount) * r / (1 + r) if incl else Fraction(amount) * r)
    assert f.amount_vat == vat
    assert f.amount == f.amount_vat + f.amount_ex_vat
    assert (f.amount if incl else f.amount_ex_vat) == amount
    u = Fraction(unit)
    unit_gross, unit_net = (u, u / (1 + r)) if incl else (u * (1 + r), u)
    assert f.unit_amount == half_up(unit_gross)
    assert f.unit_amount_ex_vat == half_up(unit_net)
    assert f.unit_amount_vat == f.unit_amount - f.unit_amount_ex_vat


# ---------------------------------------------------------------- percentage_of


@pytest.mark.parametrize(
    ("amount", "percent", "expected"),
    [
        (1000, "12.5", 125),
        (1, "50", 1),  # 0.5 -> 1
        (-1, "50", -1),
        (3, "50", 2),  # 1.5 -> 2 (half-even also 2); 5 x 50 % = 2.5 -> 3 (half-even 2)
        (5, "50", 3),
        (12345, "33.333", 4115),  # 4114.95885
        (10000, "100", 10000),
        (10000, "0", 0),
        (199, "10", 20),  # 19.9
        (10**20, "0.000001", 10**12),
    ],
)
def test_percentage_of(amount, percent, expected):
    assert percentage_of(amount, D(percent)) == expected


@settings(max_examples=200, deadline=None)
@given(
    amount=st.integers(-(10**12), 10**12),
    percent=st.decimals(min_value=0, max_value=100, places=4, allow_nan=False),
)
def test_percentage_of_is_exact_then_half_up(amount, percent):
    assert percentage_of(amount, percent) == half_up(Fraction(amount) * Fraction(percent) / 100)


# ---------------------------------------------------------------- compute_totals inputs


def test_negative_prepaid_credit_is_refused():
    with pytest.raises(ValueError, match="negative"):
        compute_totals([LineInput(100, D("0.19"))], prepaid_available_minor=-1)
    assert compute_totals([], prepaid_available_minor=0).total_minor == 0
