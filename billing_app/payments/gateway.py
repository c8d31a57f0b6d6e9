"""Payment gateways behind one small interface, and the built-in test gateway.

The test gateway needs no network and decides by test card number, like the test modes of
payment service providers: `4111 1111 1111 1111` (and any other valid test card) approves,
`4000 0000 0000 0002` declines, `4000 0000 0000 9995` declines for insufficient funds. The
card number is never stored: tokenising returns an opaque token that carries only the
outcome the card will have, plus brand, masked number and expiry.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from ..errors import InvalidInput

DECLINING_CARDS = {
    "4000000000000002": "card_declined",
    "4000000000009995": "insufficient_funds",
}


@dataclass(frozen=True)
class CardDetails:
    number: str
    exp_month: int
    exp_year: int
    cvv: str | None = None


@dataclass(frozen=True)
class Tokenized:
    token: str
    card_type: str
    masked_card: str
    exp_date: str  # "MM-YY"


@dataclass(frozen=True)
class ChargeResult:
    approved: bool
    reference: str | None = None
    error: str | None = None


class Gateway(Protocol):
    name: str

    def tokenize(self, card: CardDetails, today: date) -> Tokenized: ...

    def charge(self, token: str, amount_minor: int, currency: str, reference: str) -> ChargeResult:
        """Charge once; `reference` (the transaction id) makes retries safe at the PSP."""
        ...


def luhn_ok(number: str) -> bool:
    digits = [int(d) for d in number]
    checksum = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        checksum += d
    return checksum % 10 == 0


def card_brand(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if number[:2] in {"51", "52", "53", "54", "55"} or "2221" <= number[:4] <= "2720":
        return "mc"
    if number[:2] in {"34", "37"}:
        return "amex"
    return "unknown"


class TestGateway:
    name = "test"

    def tokenize(self, card: CardDetails, today: date) -> Tokenized:
        number = card.number.replace(" ", "").replace("-", "")
        if not number.isdigit() or not 12 <= len(number) <= 19 or not luhn_ok(number):
            raise InvalidInput(("card_number",), "Invalid card number")
        if not 1 <= card.exp_month <= 12:
            raise InvalidInput(("exp_month",), "exp_month must be 1 to 12")
        year = card.exp_year + 2000 if card.exp_year < 100 else card.exp_year
        if (year, card.exp_month) < (today.year, today.month):
            raise InvalidInput(("exp_year",), "The card has expired")
        outcome = DECLINING_CARDS.get(number, "approve")
        return Tokenized(
            token=f"tg_{outcome}_{secrets.token_hex(8)}",
            card_type=card_brand(number),
            masked_card=f"{number[:6]}{'X' * (len(number) - 10)}{number[-4:]}",
            exp_date=f"{card.exp_month:02d}-{year % 100:02d}",
        )

    def charge(self, token: str, amount_minor: int, currency: str, reference: str) -> ChargeResult:
        if not token.startswith("tg_"):
            return ChargeResult(False, error="invalid_token")
        outcome = token[3:].rsplit("_", 1)[0]
        if outcome == "approve":
            return ChargeResult(True, reference=f"test_{reference}")
        return ChargeResult(False, error=outcome)


GATEWAYS: dict[str, Gateway] = {"test": TestGateway()}


def gateway(name: str) -> Gateway:
    return GATEWAYS[name]
