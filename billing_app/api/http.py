"""What both JSON dialects share: exact JSON parsing, API-key auth, request ids, the
endpoint registry that OpenAPI is generated from, and Idempotency-Key handling."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import Response, current_app, g, request
from pydantic import BaseModel
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from ..accounts.scope import AccountScope, PendingKey
from ..accounts.service import KeyPrincipal, authenticate_api_key, key_candidate, look_up_key
from ..audit.service import Actor, set_actor
from ..db import utcnow, write_transaction
from ..errors import IdempotencyConflict
from ..extensions import db
from ..idempotency.models import IdempotencyKey


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


def dumps(obj: Any) -> bytes:
    """Compact JSON. `JsonNumber`s are written as placeholder strings carrying a per-call
    random marker, then turned into bare numbers: no client text can forge one."""
    marker = secrets.token_hex(8)
    used = False

    def default(value: Any) -> Any:
        nonlocal used
        if isinstance(value, JsonNumber):
            used = True
            return f"{marker}:{format(value.value.normalize(), 'f')}"
        return _json_default(value)

    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=default)
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


def authenticate() -> None:
    """Bearer <key>, or HTTP Basic with the key as user name and an empty password.

    Sets g.account / g.api_key and the audit actor. Never falls back to any account and
    never looks at a session cookie.
    """
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
    view = current_app.view_functions.get(request.endpoint or "")
    if getattr(view, KEY_IN_FIRST_READ, False) and "Idempotency-Key" not in request.headers:
        # The route's service looks the key up with its first read (`accounts.scope`).
        candidate = key_candidate(raw)
        if candidate is None:
            raise AuthError(_REFUSED)
        g.pending_key = PendingKey(candidate, _accept)
        return
    _accept(authenticate_api_key(raw))


_REFUSED = "Invalid or revoked API key"
# A view attribute: its service takes `account_scope()` and looks the key up itself.
KEY_IN_FIRST_READ = "key_in_first_read"


def _accept(found: KeyPrincipal | None) -> None:
    g.pending_key = None
    if found is None:
        raise AuthError(_REFUSED)
    g.api_key, g.account = found, found.account
    set_actor(Actor("api_key", str(found.key_id), request_id()))


def account_scope() -> AccountScope:
    """What a KEY_IN_FIRST_READ view hands its service: the key still to be looked up, or
    the account when it was looked up already (a request with an Idempotency-Key)."""
    pending: PendingKey | None = g.get("pending_key")
    return pending if pending is not None else g.account.id


def settle_pending_key() -> None:
    """Look up a key the view left pending (it answered before its first read, e.g. with
    a validation error): AuthError when it is refused, as if it had been looked up first."""
    pending: PendingKey | None = g.get("pending_key")
    if pending is not None:
        _accept(look_up_key(pending.candidate))


WWW_AUTHENTICATE = 'Bearer realm="billing_app", Basic realm="billing_app"'


# ---------------------------------------------------------------- endpoint registry


@dataclass
class EndpointDoc:
    """What OpenAPI says about one route; filled by the dialect's route decorator."""

    dialect: str
    summary: str
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


@dataclass
class IdempotencyState:
    record_id: uuid.UUID | None = None
    replay: Response | None = None


def _fingerprint() -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(b"\0")
    digest.update(request.path.encode())
    digest.update(b"\0")
    digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def idempotency_begin(account_id: uuid.UUID) -> IdempotencyState:
    """Reserve the key, or say how to answer: replay, 409 (running), 422 (other request).

    The reservation is committed on its own so a concurrent retry sees it at once.
    """
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return IdempotencyState()
    if not key or len(key) > 255:
        raise IdempotencyConflict("Idempotency-Key must be 1 to 255 characters", 422)
    fingerprint = _fingerprint()
    now = utcnow()
    ttl = timedelta(hours=current_app.config["IDEMPOTENCY_TTL_HOURS"])
    lease = timedelta(seconds=current_app.config["IDEMPOTENCY_LEASE_SECONDS"])
    with write_transaction():
        existing = db.session.scalars(
            select(IdempotencyKey).where(
                IdempotencyKey.account_id == account_id, IdempotencyKey.key == key
            )
        ).one_or_none()
        if existing is not None and (
            existing.expires_at <= now
            or (existing.state == "running" and existing.created_at + lease <= now)
        ):
            # Expired, or abandoned by a worker that died mid-request: start afresh.
            db.session.delete(existing)
            db.session.flush()
            existing = None
        if existing is None:
            record = IdempotencyKey(
                account_id=account_id,
                key=key,
                fingerprint=fingerprint,
                state="running",
                created_at=now,
                expires_at=now + ttl,
            )
            db.session.add(record)
            try:
                db.session.flush()
            except IntegrityError:
                # Another request reserved the same key a moment ago (PostgreSQL).
                raise IdempotencyConflict(
                    "A request with this Idempotency-Key is still being processed", 409
                ) from None
            return IdempotencyState(record_id=record.id)
    if existing.fingerprint != fingerprint:
        raise IdempotencyConflict(
            "This Idempotency-Key was already used with a different request", 422
        )
    if existing.state == "running":
        raise IdempotencyConflict(
            "A request with this Idempotency-Key is still being processed", 409
        )
    replay = Response(
        existing.response_body or b"",
        status=existing.response_status or 200,
        content_type=existing.response_content_type or "application/json",
    )
    replay.headers["Idempotent-Replayed"] = "true"
    return IdempotencyState(replay=replay)


def idempotency_finish(state: IdempotencyState, response: Response | None) -> None:
    """Store a completed response; forget the key when there is none to store (the
    request failed validation: the caller passes None) or the server failed (5xx), so the
    client can fix and retry with the same key."""
    if state.record_id is None:
        return
    db.session.rollback()
    with write_transaction():
        if response is None or response.status_code >= 500:
            db.session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == state.record_id))
            return
        db.session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.id == state.record_id)
            .values(
                state="done",
                response_status=response.status_code,
                response_body=response.get_data(),
                response_content_type=response.content_type,
            )
        )


def purge_expired_idempotency_keys() -> int:
    with write_transaction():
        result = db.session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.expires_at <= utcnow())
        )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
