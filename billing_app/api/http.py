"""What both JSON dialects share: exact JSON parsing and writing, API-key auth, request
ids, the endpoint registry that OpenAPI is generated from, and the Idempotency-Key's
request fingerprint (the keys themselves: `billing_app.idempotency.service`)."""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from flask import Response, g, request
from pydantic import BaseModel

from ..accounts.service import authenticate_api_key
from ..audit.service import Actor, set_actor
from ..idempotency import service as idempotency


class NonFinite:
    """What `NaN`/`Infinity` in a JSON body parse to, so the field can be named."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


class BodyError(Exception):
    """The body is not JSON at all (or not an object where one is required)."""

    def __init__(self, message: str, kind: str = "json_invalid"):
        super().__init__(message)
        self.message = message
        self.kind = kind


def parse_json_body() -> Any:
    """The request body as JSON with exact numbers: every number becomes int or Decimal."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise BodyError("A JSON body is required", "missing")
    try:
        return json.loads(raw, parse_float=Decimal, parse_constant=NonFinite)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BodyError(f"JSON decode error: {exc}") from None
    except RecursionError:
        raise BodyError("JSON decode error: nested too deeply") from None


class JsonNumber:
    """An exact decimal written as a JSON number (e.g. a VAT fraction `0.25`), without
    ever passing through a binary float."""

    __slots__ = ("value",)

    def __init__(self, value: Decimal):
        if not value.is_finite():
            raise ValueError("JSON numbers are finite")
        self.value = value


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# One compiled pattern for every call (a pattern built around each call's marker was
# compiled anew per response); the marker itself is compared in the replacement.
_PLACEHOLDER = re.compile(r'"([0-9a-f]{16}):(-?[0-9.]+)"')


def dumps(obj: Any, indent: int | None = None) -> bytes:
    """Compact JSON (indented by `indent` spaces if given, for people to read).
    `JsonNumber`s are written as placeholder strings carrying a per-call random marker,
    then turned into bare numbers: no client text can forge one."""
    marker = secrets.token_hex(8)
    used = False

    def default(value: Any) -> Any:
        nonlocal used
        if isinstance(value, JsonNumber):
            used = True
            return f"{marker}:{format(value.value.normalize(), 'f')}"
        return _json_default(value)

    separators = (",", ":") if indent is None else (",", ": ")
    text = json.dumps(
        obj, ensure_ascii=False, indent=indent, separators=separators, default=default
    )
    if used:
        text = _PLACEHOLDER.sub(lambda m: m[2] if m[1] == marker else m[0], text)
    return text.encode()


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    resp = Response(dumps(obj), status=status, mimetype="application/json")
    if headers:
        resp.headers.update(headers)
    return resp


def iso(dt: datetime | None) -> str | None:
    """ISO 8601 with an explicit UTC offset, always (API.md)."""
    return None if dt is None else dt.isoformat()


# ---------------------------------------------------------------- request id and auth


def request_id() -> str:
    rid = g.get("request_id")
    if rid is None:
        supplied = request.headers.get("X-Request-Id", "")
        rid = supplied if 0 < len(supplied) <= 64 and supplied.isprintable() else uuid.uuid4().hex
        g.request_id = rid
    return rid


class AuthError(Exception):
    pass


WWW_AUTHENTICATE = 'Bearer realm="billing_app", Basic realm="billing_app"'


def api_key_from_header() -> str:
    """The key of `Authorization: Bearer <key>`, or of HTTP Basic with the key as user name
    and an empty password. AuthError when there is none or the header is malformed."""
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    credentials = credentials.strip()
    raw: str | None = None
    if scheme.lower() == "bearer" and credentials:
        raw = credentials
    elif scheme.lower() == "basic" and credentials:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise AuthError("Malformed Basic credentials") from None
        user, sep, password = decoded.partition(":")
        if not sep or password:
            raise AuthError("Basic auth takes the API key as user name and an empty password")
        raw = user
    if not raw:
        raise AuthError("Missing API key")
    return raw


def authenticate() -> None:
    """The API's one authentication, run before every API view: sets `g.api_key`,
    `g.account` and the audit actor, or raises AuthError. Never falls back to any account
    and never looks at a session cookie."""
    key = authenticate_api_key(api_key_from_header())
    if key is None:
        raise AuthError("Invalid or revoked API key")
    g.api_key, g.account = key, key.account
    set_actor(Actor("api_key", str(key.id), request_id()))


# ---------------------------------------------------------------- endpoint registry


@dataclass
class EndpointDoc:
    """What OpenAPI says about one route; filled by the dialect's route decorator."""

    dialect: str
    summary: str
    description: str = ""
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: Any = None
    status: int = 200
    errors: dict[int, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    content_type: str = "application/json"


def attach_doc(view: Callable[..., Any], doc: EndpointDoc) -> None:
    view.openapi_doc = doc  # type: ignore[attr-defined]


# ---------------------------------------------------------------- idempotency


def request_fingerprint() -> str:
    """What makes two POSTs under one Idempotency-Key the same request: method, path and
    body, byte for byte."""
    return idempotency.fingerprint(request.method, request.path, request.get_data(cache=True))
