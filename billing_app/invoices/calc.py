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
    # Net before discounts and credits: net + discount + credit. For net-priced documents
    # this is the sum of the charge lines; it keeps `subtotal - discount - credit = net`.
    subtotal_minor: int
    # Positive sums of the discount and credit lines as entered.
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


def compute_totals(
    lines: Iterable[LineInput],
    *,
    prepaid_available_minor: int = 0,
    progressive_credit_minor: int = 0,
) -> Totals:
    """Totals of a document. Line order never matters; every figure is an exact integer."""
    # Per rate: [gross-priced amounts, net-priced amounts], whole numbers.
    sums: dict[Decimal, list[int]] = {}
    # Rates that are equal as numbers (0.19 and 0.190) are one rate: normalized once per
    # rate, not per line (a fresh Decimal's hash costs more than the rest of a line).
    normalized: dict[Decimal, Decimal] = {}
    discount = credit = 0
    for line in lines:
        if line.rate < 0:
            raise ValueError("VAT rate cannot be negative")
        amount = line.amount_minor
        if line.kind == DISCOUNT:
            discount -= amount
        elif line.kind == CREDIT:
            credit -= amount
        rate = normalized.get(line.rate)
        if rate is None:
            rate = normalized[line.rate] = line.rate.normalize()
        acc = sums.get(rate)
        if acc is None:
            acc = sums[rate] = [0, 0]
        acc[0 if line.amount_incl_vat else 1] += amount

    by_rate: list[RateTotals] = []
    for rate in sorted(sums):
        gross_priced, net_priced = sums[rate]
        net_vat = multiply(Decimal(net_priced), rate)  # exact
        # One quotient, correctly rounded to 60 digits: an exact half is a short decimal and
        # comes out exactly; any other value is too far from one for the digits to matter.
        gross_vat = divide(multiply(Decimal(gross_priced), rate), add(_ONE, rate))
        vat = round_half_up(add(gross_vat, net_vat))
        gross = gross_priced + net_priced + round_half_up(net_vat)
        by_rate.append(
            RateTotals(rate=rate, net_minor=gross - vat, vat_minor=vat, gross_minor=gross)
        )

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
