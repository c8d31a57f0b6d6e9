"""Dialect B (seed 002, Reepay-compatible): the error body and the mapping from domain
errors to its codes.

`{"code": 11, "error": "Duplicate handle", "message": "...", "path": "/v1/...",
  "timestamp": "...", "http_status": 400, "http_reason": "Bad Request", "request_id": "..."}`
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from flask import Blueprint, Response, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from ... import errors
from ...db import utcnow
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
from ..http import WWW_AUTHENTICATE, AuthError, BodyError, json_response, request_id
from ..routing import IDEMPOTENCY_STATUS, Dialect

# Reepay's catalogue of error codes (the subset this server answers with).
ERRORS: dict[int, tuple[str, int]] = {
    1: ("Invalid request", 400),
    2: ("Internal error", 500),
    6: ("Not authenticated", 401),
    8: ("Not found", 404),
    9: ("Customer not found", 404),
    10: ("Subscription plan not found", 404),
    11: ("Duplicate handle", 400),
    12: ("Subscription not found", 404),
    13: ("Subscription expired", 400),
    22: ("Subscription cancelled", 400),
    25: ("Additional cost not pending", 400),
    26: ("Additional cost not found", 404),
    27: ("Credit not found", 404),
    28: ("Credit not pending", 400),
    29: ("Invoice already cancelled", 400),
    31: ("Invoice not found", 404),
    40: ("Payment method not found", 404),
    54: ("No order lines for invoice", 400),
    74: ("Concurrent resource update", 409),
    76: ("Payment method not provided", 400),
    77: ("Transaction declined", 400),
    79: ("Invoice already settled", 400),
    80: ("Invoice has processing transaction", 400),
    82: ("Invoice wrong state", 400),
    83: ("Discount not found", 404),
    86: ("Coupon not found or not eligible", 404),
    87: ("Coupon already used", 400),
    88: ("Coupon code already exists", 400),
    95: ("Subscription on hold", 400),
    97: ("Subscription not on hold", 400),
    113: ("Add-on not found", 404),
    114: ("Add-on already added to subscription", 400),
    115: ("Add-on quantity not allowed for on-off add-on type", 400),
    116: ("Add-on not eligible for subscription plan", 400),
}

NOT_FOUND_CODES = {
    "Customer": 9,
    "Plan": 10,
    "Subscription": 12,
    "Additional cost": 26,
    "Credit": 27,
    "Invoice": 31,
    "Payment method": 40,
    "Discount": 83,
    "Coupon": 86,
    "Add-on": 113,
    "Metric": 8,
    "Charge": 8,
    "Usage event": 8,
}

# Why a rule refused an action (errors.InvalidState.reason) -> Reepay's code; a reason not
# listed here (or none) answers 1, "Invalid request".
REASON_CODES: dict[str | None, int] = {
    errors.SUBSCRIPTION_EXPIRED: 13,
    errors.SUBSCRIPTION_CANCELLED: 22,
    errors.COST_NOT_PENDING: 25,
    errors.CREDIT_NOT_PENDING: 28,
    errors.ALREADY_CANCELLED: 29,
    errors.NOTHING_TO_INVOICE: 54,
    errors.NO_PAYMENT_METHOD: 76,
    errors.CHARGE_DECLINED: 77,
    errors.ALREADY_SETTLED: 79,
    errors.CHARGE_IN_PROGRESS: 80,
    errors.INVOICE_WRONG_STATE: 82,
    errors.COUPON_ALREADY_USED: 87,
    errors.COUPON_CODE_TAKEN: 88,
    errors.SUBSCRIPTION_ON_HOLD: 95,
    errors.SUBSCRIPTION_NOT_ON_HOLD: 97,
    errors.ADD_ON_ALREADY_ADDED: 114,
    errors.ADD_ON_QUANTITY_NOT_ALLOWED: 115,
    errors.ADD_ON_NOT_ELIGIBLE: 116,
}


def error_body(code: int, message: str | None = None, status: int | None = None) -> Response:
    error, default_status = ERRORS.get(code, ("Invalid request", 400))
    http_status = status or default_status
    body: dict[str, Any] = {
        "code": code,
        "error": error,
        "path": request.path,
        "timestamp": utcnow().isoformat(timespec="milliseconds"),
        "http_status": http_status,
        "http_reason": HTTPStatus(http_status).phrase,
        "request_id": request_id(),
    }
    if message and message != error:
        body["message"] = message
    headers = {"WWW-Authenticate": WWW_AUTHENTICATE} if http_status == 401 else None
    return json_response(body, http_status, headers)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validation_response(exc: ValidationError, where: str) -> Response:
    parts = []
    for err in exc.errors(include_url=False):
        name = _field(err["loc"]) or where
        parts.append(f"{name}: {err['msg'].removeprefix('Value error, ')}")
    return error_body(1, "; ".join(parts))


def error_response(exc: BaseException) -> Response | None:
    if isinstance(exc, BodyError):
        return error_body(1, exc.message)
    if isinstance(exc, InvalidInput):
        name = _field(exc.loc)
        return error_body(1, f"{name}: {exc.message}" if name else exc.message)
    if isinstance(exc, NotFound):
        return error_body(NOT_FOUND_CODES.get(exc.resource, 8), exc.message)
    if isinstance(exc, Duplicate):
        return error_body(11, exc.message)
    if isinstance(exc, InvalidState):
        return error_body(REASON_CODES.get(exc.reason, 1), exc.message)
    if isinstance(exc, InUse):
        return error_body(1, exc.message)
    if isinstance(exc, IdempotencyConflict):
        status = IDEMPOTENCY_STATUS[exc.reason]
        return error_body(74 if exc.reason == "in_progress" else 1, exc.message, status)
    if isinstance(exc, DomainError):
        return error_body(1, exc.message)
    if isinstance(exc, AuthError):
        return error_body(6, str(exc))
    if isinstance(exc, RequestEntityTooLarge):
        return error_body(1, "Request body is larger than 1 MiB", 413)
    if isinstance(exc, HTTPException):
        code = exc.code or 500
        return error_body(8 if code == 404 else 1, exc.description, code)
    return None


DIALECT = Dialect(name="B", error_response=error_response, validation_response=validation_response)


def make_blueprint(name: str) -> Blueprint:
    return routing.make_blueprint(name, DIALECT)


def endpoint(bp: Blueprint, rule: str, method: str, **kwargs: Any) -> Callable[..., Any]:
    """Register a dialect B route (see routing.endpoint)."""
    return routing.endpoint(bp, DIALECT, rule, method, **kwargs)


bp = make_blueprint("api_b")
