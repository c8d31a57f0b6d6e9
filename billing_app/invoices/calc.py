"""The one totals function. Pure: no database, no Flask, no floats.

Rules (DOMAIN.md, "Money"):
- A line's amount is already a whole number of minor units (quantity x unit, half-up).
- VAT is computed per rate over the whole document and rounded once per rate: the
  unrounded VAT of every line with that rate is summed (net-priced: amount x r;
  gross-priced: amount x r / (1 + r)) and rounded half-up. That sum is computed exactly
  as G x r / (1 + r) + N x r from the rate's gross-priced and net-priced amounts G and N
  (whole numbers), so one division per rate: summing each line's own quotient, rounded to
  the context's digits, could land a hair either side of an exact half depending on the
  order of the lines (-1 546 281 cents at 20 % with 1 + 1 - 2 cents beside it: exactly
  -257 713.5, which rounds to -257 714, but came out -257 713.4999... in one order).
- Gross-priced lines keep their gross exactly; net-priced lines keep their net exactly.
  Per rate the total incl. VAT is G + N + round(N x r) and the net part is that total
  minus the VAT, so `net + vat = gross` holds for every rate and for the document.
- Discount and credit lines are negative lines at the rate of what they reduce, so they
  reduce the base before VAT.
- Prepaid (wallet) credit is applied after VAT and reduces the amount due, never the VAT.
- The totals table is in one basis, net (docs/money.md, "Subtotal"): the subtotal is the
  net of the charge lines alone, the discount is the net that the discount lines take off
  it and the credit the net that the credit lines take off what is left, each computed
  per rate by the same rule as the document's net. So `subtotal - discount - credit = net`
  holds exactly, also when lines are priced incl. VAT (a 100.00 credit incl. 25 % VAT
  takes 80.00 off the net; the line itself still shows 100.00).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from ..money import add, divide, multiply, round_half_up

CHARGE, DISCOUNT, CREDIT = "charge", "discount", "credit"
_ONE = Decimal(1)


class LineInput(NamedTuple):
    # A named tuple, not a frozen dataclass: an invoice page makes one per line, and a
    # frozen dataclass's __init__ (object.__setattr__ per field) cost 4x as much.
    amount_minor: int
    rate: Decimal  # a fraction: 0.19 for 19 %
    amount_incl_vat: bool = False
    kind: str = CHARGE


@dataclass(frozen=True, slots=True)
class RateTotals:
    rate: Decimal
    net_minor: int
    vat_minor: int
    gross_minor: int


@dataclass(frozen=True, slots=True)
class Totals:
    # The net of the charge lines alone (before discounts and credits). For net-priced
    # lines this is their sum; `subtotal - discount - credit = net` always holds.
    subtotal_minor: int
    # Positive: the net the discount lines take off the subtotal, then the net the credit
    # lines take off what is left. For net-priced lines, their sums as entered.
    discount_minor: int
    credit_minor: int
    net_minor: int
    vat_minor: int
    gross_minor: int
    prepaid_credit_minor: int
    # What the customer owes: gross minus prepaid credit.
    total_minor: int
    by_rate: tuple[RateTotals, ...]


def line_vat_minor(amount_minor: int, rate: Decimal, amount_incl_vat: bool) -> int:
    """VAT of one line on its own, for display next to the line. Invoice VAT is per rate."""
    return round_half_up(_unrounded_vat(amount_minor, rate, amount_incl_vat))


def _unrounded_vat(amount_minor: int, rate: Decimal, amount_incl_vat: bool) -> Decimal:
    amount = Decimal(amount_minor)
    if amount_incl_vat:
        return divide(multiply(amount, rate), add(_ONE, rate))
    return multiply(amount, rate)


def _rate_net_and_vat(rate: Decimal, gross_priced: int, net_priced: int) -> tuple[int, int, int]:
    """(net, VAT, gross) of one rate's lines, from the sums of its gross-priced and
    net-priced amounts: VAT rounded once, gross-priced amounts kept exactly."""
    net_vat = multiply(Decimal(net_priced), rate)  # exact
    # One quotient, correctly rounded to 60 digits: an exact half is a short decimal and
    # comes out exactly; any other value is too far from one for the digits to matter.
    gross_vat = divide(multiply(Decimal(gross_priced), rate), add(_ONE, rate))
    vat = round_half_up(add(gross_vat, net_vat))
    gross = gross_priced + net_priced + round_half_up(net_vat)
    return gross - vat, vat, gross


def compute_totals(
    lines: Iterable[LineInput],
    *,
    prepaid_available_minor: int = 0,
    progressive_credit_minor: int = 0,
) -> Totals:
    """Totals of a document. Line order never matters; every figure is an exact integer."""
    # Per rate: gross-priced and net-priced sums of the charge, discount and credit lines
    # (indexes 0-1, 2-3, 4-5), whole numbers.
    sums: dict[Decimal, list[int]] = {}
    # Rates that are equal as numbers (0.19 and 0.190) are one rate: normalized once per
    # rate, not per line (a fresh Decimal's hash costs more than the rest of a line).
    normalized: dict[Decimal, Decimal] = {}
    reductions = False
    for line in lines:
        if line.rate < 0:
            raise ValueError("VAT rate cannot be negative")
        slot = 0 if line.amount_incl_vat else 1
        if line.kind == DISCOUNT:
            slot += 2
            reductions = True
        elif line.kind == CREDIT:
            slot += 4
            reductions = True
        rate = normalized.get(line.rate)
        if rate is None:
            rate = normalized[line.rate] = line.rate.normalize()
        acc = sums.get(rate)
        if acc is None:
            acc = sums[rate] = [0, 0, 0, 0, 0, 0]
        acc[slot] += line.amount_minor

    by_rate: list[RateTotals] = []
    subtotal = before_credits = 0
    for rate in sorted(sums):
        charge_g, charge_n, discount_g, discount_n, credit_g, credit_n = sums[rate]
        net, vat, gross = _rate_net_and_vat(
            rate, charge_g + discount_g + credit_g, charge_n + discount_n + credit_n
        )
        by_rate.append(RateTotals(rate=rate, net_minor=net, vat_minor=vat, gross_minor=gross))
        if reductions:
            subtotal += _rate_net_and_vat(rate, charge_g, charge_n)[0]
            before_credits += _rate_net_and_vat(rate, charge_g + discount_g, charge_n + discount_n)[
                0
            ]

    net = sum(r.net_minor for r in by_rate)
    vat = sum(r.vat_minor for r in by_rate)
    if not reductions:
        subtotal = before_credits = net
    gross = net + vat - progressive_credit_minor
    if prepaid_available_minor < 0:
        raise ValueError("prepaid credit cannot be negative")
    prepaid = max(0, min(prepaid_available_minor, gross))
    return Totals(
        subtotal_minor=subtotal,
        discount_minor=subtotal - before_credits,
        credit_minor=before_credits - net,
        net_minor=net,
        vat_minor=vat,
        gross_minor=gross,
        prepaid_credit_minor=prepaid,
        total_minor=gross - prepaid,
        by_rate=tuple(by_rate),
    )


def percentage_of(amount_minor: int, percent: Decimal) -> int:
    """`percent` % of an amount, rounded half-up to a whole minor unit (discounts)."""
    return round_half_up(divide(multiply(Decimal(amount_minor), percent), Decimal(100)))


@dataclass(frozen=True, slots=True)
class LineFigures:
    """A line's own figures in dialect B terms (display only; the document totals come
    from `compute_totals`)."""

    amount: int  # line total incl. VAT
    amount_vat: int
    amount_ex_vat: int
    unit_amount: int  # incl. VAT
    unit_amount_vat: int
    unit_amount_ex_vat: int


def line_figures(
    amount_minor: int, quantity: Decimal, unit_amount: Decimal, rate: Decimal, amount_incl_vat: bool
) -> LineFigures:
    vat = line_vat_minor(amount_minor, rate, amount_incl_vat)
    if amount_incl_vat:
        gross, net = amount_minor, amount_minor - vat
        unit_gross = round_half_up(unit_amount)
        unit_net = round_half_up(divide(unit_amount, add(_ONE, rate)))
    else:
        gross, net = amount_minor + vat, amount_minor
        unit_net = round_half_up(unit_amount)
        unit_gross = round_half_up(multiply(unit_amount, add(_ONE, rate)))
    return LineFigures(gross, vat, net, unit_gross, unit_gross - unit_net, unit_net)
