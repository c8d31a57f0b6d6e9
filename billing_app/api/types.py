"""Pydantic field types for exact numbers and real-world codes, shared by both dialects."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, WithJsonSchema

from .. import money
from ..validation import check_locale, check_timezone
from .http import NonFinite

# The numeric-string pattern of the one-off API's excerpt.
NUMERIC_PATTERN = r"^(?!^[-+.]*$)[+-]?0*\d*\.?\d*$"
MAX_ABS = Decimal(10) ** 15


def _exact(value: Any) -> Decimal:
    if isinstance(value, NonFinite):
        raise ValueError("NaN and Infinity are not allowed")
    if isinstance(value, bool):
        raise ValueError("Input should be a number, not a boolean")
    if isinstance(value, str):
        import re

        if not re.match(NUMERIC_PATTERN, value.strip()):
            raise ValueError("Input should be a number or a numeric string")
    try:
        result = money.to_decimal(value)
    except money.MoneyError as exc:
        raise ValueError(str(exc)) from None
    if abs(result) > MAX_ABS:
        raise ValueError("Number is too large")
    return result


ExactDecimal = Annotated[
    Decimal,
    BeforeValidator(_exact),
    WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "string", "pattern": NUMERIC_PATTERN}]}),
]


def _currency(value: str) -> str:
    try:
        return money.normalise_currency(value)
    except money.MoneyError as exc:
        raise ValueError(str(exc)) from None


Currency = Annotated[str, AfterValidator(_currency)]
TimeZone = Annotated[str, AfterValidator(check_timezone)]
LocaleCode = Annotated[str, AfterValidator(check_locale)]


def _strict_int(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("Input should be an integer, not a boolean")
    if isinstance(value, NonFinite):
        raise ValueError("NaN and Infinity are not allowed")
    if isinstance(value, Decimal):
        if value != value.to_integral_value():
            raise ValueError("Input should be a whole number")
        return int(value)
    return value


StrictInt = Annotated[int, BeforeValidator(_strict_int)]


def _strict_bool(value: Any) -> Any:
    if not isinstance(value, bool):
        raise ValueError("Input should be true or false")
    return value


StrictBool = Annotated[bool, BeforeValidator(_strict_bool)]


def described_by(
    descriptions: Mapping[str, str], examples: Mapping[str, Any]
) -> Callable[[dict[str, Any], type], None]:
    """A pydantic `json_schema_extra` hook: every property without a description (or
    example) of its own gets the dialect's description (example) of that field name, so a
    name shared by a request, its update and its response is described once."""

    def describe(schema: dict[str, Any], _model: type) -> None:
        for name, prop in schema.get("properties", {}).items():
            if "description" not in prop and name in descriptions:
                prop["description"] = descriptions[name]
            if "examples" not in prop and name in examples:
                prop["examples"] = [examples[name]]

    return describe
