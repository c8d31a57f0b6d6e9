"""`calc.compute_totals` was made cheaper per line (docs/performance.md, "Pages", fifth
session: one accumulator per rate, each rate normalized once): it answers exactly what
its former self did, down to each figure and the text of each rate."""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from billing_app.invoices.calc import CHARGE, CREDIT, DISCOUNT, LineInput, Totals, compute_totals
from billing_app.invoices.calc import RateTotals as Rate
from billing_app.money import divide, multiply, round_half_up


def former_compute_totals(
    lines: list[LineInput], *, prepaid_available_minor: int = 0, progressive_credit_minor: int = 0
) -> Totals:
    """compute_totals as it was before (commit 2c99317), word for word."""
    gross_sums: dict[D, int] = {}
    net_sums: dict[D, int] = {}
    vat_unrounded: dict[D, D] = {}
    discount = credit = 0
    for line in lines:
        if line.rate < 0:
            raise ValueError("VAT rate cannot be negative")
        if line.kind == DISCOUNT:
            discount -= line.amount_minor
        elif line.kind == CREDIT:
            credit -= line.amount_minor
        rate = line.rate.normalize()
        bucket = gross_sums if line.amount_incl_vat else net_sums
        bucket[rate] = bucket.get(rate, 0) + line.amount_minor
        gross_sums.setdefault(rate, 0)
        net_sums.setdefault(rate, 0)
        amount = D(line.amount_minor)
        unrounded = (
            divide(multiply(amount, rate), D(1) + rate)
            if line.amount_incl_vat
            else multiply(amount, rate)
        )
        vat_unrounded[rate] = vat_unrounded.get(rate, D(0)) + unrounded
    by_rate = []
    for rate in sorted(vat_unrounded):
        vat = round_half_up(vat_unrounded[rate])
        net_priced = net_sums[rate]
        gross = gross_sums[rate] + net_priced + round_half_up(multiply(D(net_priced), rate))
        by_rate.append(Rate(rate=rate, net_minor=gross - vat, vat_minor=vat, gross_minor=gross))
    net = sum(r.net_minor for r in by_rate)
    vat = sum(r.vat_minor for r in by_rate)
    gross = net + vat - progressive_credit_minor
    if prepaid_available_minor < 0:
        raise ValueError("prepaid credit cannot be negative")
    prepaid = max(0, min(prepaid_available_minor, gross))
    return Totals(
        subtotal_minor=net + discount + credit,
        discount_minor=discount,
        credit_minor=credit,
        net_minor=net,
        vat_minor=vat,
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
def test_compute_totals_answers_what_it_did(lines, prepaid, progressive):
    now = compute_totals(
        lines, prepaid_available_minor=prepaid, progressive_credit_minor=progressive
    )
    before = former_compute_totals(
        lines, prepaid_available_minor=prepaid, progressive_credit_minor=progressive
    )
    assert now == before
    assert repr(now) == repr(before)  # each rate's text too (0.19, not 0.190)


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
