"""Dialect A (seed 000): its blueprint, and the one mapping from domain errors to
FastAPI-style bodies, `{"detail": "..."}` and 422 `{"detail": [{"loc", "msg", "type"}]}`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from ...errors import (
    DomainError,
    Duplicate,
    IdempotencyConflict,
    InUse,
    InvalidInput,
    InvalidState,
    NotFound,
)
from .. import routing
from ..http import WWW_AUTHENTICATE, AuthError, BodyError, json_response
from ..routing import IDEMPOTENCY_STATUS, Dialect


def detail(message: str, status: int, headers: dict[str, str] | None = None) -> Response:
    return json_response({"detail": message}, status, headers)


def validation_error(items: list[dict[str, Any]]) -> Response:
    return json_response({"detail": items}, 422)


def _plain(value: Any) -> Any:
    if isinstance(value, str | int | bool | type(None)):
        return value
    if isinstance(value, float):
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def pydantic_errors(exc: ValidationError, where: str) -> list[dict[str, Any]]:
    items = []
    for err in exc.errors(include_url=False):
        item: dict[str, Any] = {
            "loc": [where, *err["loc"]],
            "msg": err["msg"].removeprefix("Value error, "),
            "type": err["type"],
        }
        if "input" in err and where == "body":
            item["input"] = _plain(err["input"])
        if err.get("ctx"):
            item["ctx"] = _plain(err["ctx"])
        items.append(item)
    return items


def error_response(exc: BaseException) -> Response | None:
    """The dialect A answer for a known error, or None for an unexpected one (a 500)."""
    if isinstance(exc, ValidationError):
        return validation_error(pydantic_errors(exc, "body"))
    if isinstance(exc, BodyError):
        return validation_error([{"loc": ["body"], "msg": exc.message, "type": exc.kind}])
    if isinstance(exc, InvalidInput):
        loc = list(exc.loc)
        if not loc or loc[0] not in ("body", "query", "path"):
            loc = ["body", *loc]
        return validation_error([{"loc": loc, "msg": exc.message, "type": exc.kind}])
    if isinstance(exc, NotFound):
        return detail(exc.message, 404)
    if isinstance(exc, Duplicate):
        return detail(exc.message, 409)
    if isinstance(exc, InvalidState | InUse):
        return detail(exc.message, 400)
    if isinstance(exc, IdempotencyConflict):
        return detail(exc.message, IDEMPOTENCY_STATUS[exc.reason])
    if isinstance(exc, DomainError):
        return detail(exc.message, 400)
    if isinstance(exc, AuthError):
        return detail(str(exc), 401, {"WWW-Authenticate": WWW_AUTHENTICATE})
    if isinstance(exc, RequestEntityTooLarge):
        return detail("Request body is larger than 1 MiB", 413)
    if isinstance(exc, HTTPException):
        return detail(exc.description or exc.name, exc.code or 500)
    return None


DIALECT = Dialect(
    name="A",
    error_response=error_response,
    validation_response=lambda exc, where: validation_error(pydantic_errors(exc, where)),
)


def make_blueprint(name: str) -> Blueprint:
    return routing.make_blueprint(name, DIALECT)


def endpoint(bp: Blueprint, rule: str, method: str, **kwargs: Any) -> Callable[..., Any]:
    """Register a dialect A route (see routing.endpoint)."""
    return routing.endpoint(bp, DIALECT, rule, method, **kwargs)


bp = make_blueprint("api_a")
