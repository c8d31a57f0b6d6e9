"""`calc.compute_totals` against a reference written in exact rational numbers
(`fractions.Fraction`) straight from DOMAIN.md's rules: every figure and the text of each
rate. compute_totals was made cheaper per line (docs/performance.md, "Pages", fifth
session) and its VAT per rate is now one quotient per rate instead of a sum of each line's
rounded quotient, which in some orders of the lines came out a hair short of an exact half
(test_order_never_moves_an_exact_half)."""

from __future__ import annotations

import itertools
import math
from decimal import Decimal as D
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from billing_app.invoices.calc import CHARGE, CREDIT, DISCOUNT, LineInput, Totals, compute_totals
from billing_app.invoices.calc import RateTotals as Rate


def half_up(value: Fraction) -> int:
    """Round to a whole number, ties away from zero."""
    whole = math.floor(abs(value) + Fraction(1, 2))
    return whole if value >= 0 else -whole


def exact_rate(rate: D, items: list[LineInput]) -> Rate:
    """One rate's figures in rational numbers: the VAT of every line summed exactly and
    rounded once; gross = G + N + round(N x r); net = gross - VAT."""
    r = Fraction(rate)
    gross_priced = sum(li.amount_minor for li in items if li.amount_incl_vat)
    net_priced = sum(li.amount_minor for li in items if not li.amount_incl_vat)
    vat = half_up(Fraction(gross_priced) * r / (1 + r) + Fraction(net_priced) * r)
    gross = gross_priced + net_priced + half_up(net_priced * r)
    return Rate(rate=rate, net_minor=gross - vat, vat_minor=vat, gross_minor=gross)


def exact_totals(
    lines: list[LineInput], *, prepaid_available_minor: int = 0, progressive_credit_minor: int = 0
) -> Totals:
    """The rules in rational numbers, per rate (equal rates are one, written as the first
    line writes it, normalized). The subtotal is the net of the charge lines, the discount
    what the discount lines take off that net, the credit what the credit lines take off
    the rest (docs/money.md)."""
    first_text: dict[D, D] = {}
    per_rate: dict[D, list[LineInput]] = {}
    for line in lines:
        if line.rate < 0:
            raise ValueError("VAT rate cannot be negative")
        rate = first_text.setdefault(line.rate, line.rate.normalize())
        per_rate.setdefault(rate, []).append(line)
    by_rate = [exact_rate(rate, per_rate[rate]) for rate in sorted(per_rate)]

    def net_of(kinds: tuple[str, ...]) -> int:
        return sum(
            exact_rate(rate, [li for li in items if li.kind in kinds]).net_minor
            for rate, items in per_rate.items()
        )

    subtotal = net_of((CHARGE,))
    before_credits = net_of((CHARGE, DISCOUNT))
    net = sum(r.net_minor for r in by_rate)
    total_vat = sum(r.vat_minor for r in by_rate)
    gross = net + total_vat - progressive_credit_minor
    if prepaid_available_minor < 0:
        raise ValueError("prepaid credit cannot be negative")
    prepaid = max(0, min(prepaid_available_minor, gross))
    return Totals(
        subtotal_minor=subtotal,
        discount_minor=subtotal - before_credits,
        credit_minor=before_credits - net,
        net_minor=net,
        vat_minor=total_vat,
        gross_minor=gross,
        prepaid_credit_minor=prepaid,
        total_minor=gross - prepaid,
        by_rate=tuple(by_rate),
    )


# Rates equal as numbers but written apart (0.19, 0.190), zero both ways, long fractions
# whose sums the default context rounds, and what percent_to_fraction makes of 7.7 %.
rates = st.sampled_from(
    [
        D("0"),
        D("-0"),
        D("0.00"),
        D("0.07"),
        D("0.070"),
        D("0.077"),
        D("0.19"),
        D("0.190"),
        D("0.1900000"),
        D("0.25"),
        D("0.123456789012345678901234567"),
        D("0.333333333333333333333333333333"),
    ]
)
line = st.builds(
    LineInput,
    amount_minor=st.one_of(
        st.integers(-(10**6), 10**6), st.integers(-(10**15), 10**15), st.sampled_from([1, -1])
    ),
    rate=rates,
    amount_incl_vat=st.booleans(),
    kind=st.sampled_from([CHARGE, CHARGE, DISCOUNT, CREDIT]),
)


@settings(max_examples=600, deadline=None)
@given(
    lines=st.lists(line, max_size=60),
    prepaid=st.integers(0, 10**12),
    progressive=st.integers(0, 10**6),
)
def test_compute_totals_answers_the_exact_rules(lines, prepaid, progressive):
    now = compute_totals(
        lines, prepaid_available_minor=prepaid, progressive_credit_minor=progressive
    )
    exact = exact_totals(
        lines, prepaid_available_minor=prepaid, progressive_credit_minor=progressive
    )
    assert now == exact
    assert repr(now) == repr(exact)  # each rate's text too (0.19, not 0.190)


def test_order_never_moves_an_exact_half():
    """-1 546 281 + 1 + 1 - 2 cents, prices incl. 20 % VAT: the VAT is exactly
    -257 713.5 cents, -257 714 rounded half away from zero, in every order of the lines
    (summing each line's 28-digit quotient gave -257 713 in some)."""
    lines = [LineInput(amount, D("0.2"), True) for amount in (1, -2, -1_546_281, 1)]
    answers = {compute_totals(order) for order in itertools.permutations(lines)}
    assert len(answers) == 1
    (totals,) = answers
    assert totals.vat_minor == -257_714
    assert totals.gross_minor == -1_546_281
    assert totals.net_minor == -1_546_281 + 257_714


def test_a_negative_rate_is_still_refused():
    for lines in ([LineInput(1, D("-0.1"))], [LineInput(1, D("0.19")), LineInput(1, D("-0.19"))]):
        try:
            compute_totals(lines)
        except ValueError as exc:
            assert "negative" in str(exc)
        else:
            raise AssertionError("accepted a negative rate")


def test_line_inputs_are_still_built_by_keyword_and_compare_by_value():
    one = LineInput(amount_minor=100, rate=D("0.19"), amount_incl_vat=True, kind=DISCOUNT)
    assert one == LineInput(100, D("0.19"), True, DISCOUNT)
    assert LineInput(5, D("0.07")).kind == CHARGE and not LineInput(5, D("0.07")).amount_incl_vat
