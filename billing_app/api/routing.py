"""The route decorator both dialects share: authenticate (before the view, once per
request), parse the body and query with pydantic models, call the view, answer JSON,
apply Idempotency-Key to POSTs, and turn every known error into the dialect's own error
body. Each dialect supplies only its error mapping."""

from __future__ import annotations

import functools
import inspect
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, g, request
from pydantic import BaseModel, ValidationError

from ..errors import InvalidInput
from ..extensions import db
from ..idempotency import service as idempotency
from .http import (
    AuthError,
    BodyError,
    EndpointDoc,
    attach_doc,
    authenticate,
    json_response,
    parse_json_body,
    request_fingerprint,
    request_id,
)


@dataclass(frozen=True)
class Dialect:
    name: str
    # The answer for a known error, or None for an unexpected one (which becomes a 500).
    error_response: Callable[[BaseException], Response | None]
    # The answer for a request that fails its model: (error, "body" | "query").
    validation_response: Callable[[ValidationError, str], Response]


def make_blueprint(name: str, dialect: Dialect) -> Blueprint:
    """A JSON blueprint: API-key auth before every route, request id after."""
    bp = Blueprint(name, __name__)

    @bp.before_request
    def _auth() -> None:
        request_id()
        authenticate()

    @bp.errorhandler(AuthError)
    def _auth_error(exc: AuthError) -> Response:
        resp = dialect.error_response(exc)
        assert resp is not None
        return resp

    @bp.after_request
    def _rid(resp: Response) -> Response:
        resp.headers["X-Request-Id"] = request_id()
        return resp

    return bp


# The HTTP status of an Idempotency-Key that cannot run the request, in both dialects.
IDEMPOTENCY_STATUS = {"invalid_key": 422, "mismatch": 422, "in_progress": 409}


def replay(stored: idempotency.StoredResponse) -> Response:
    resp = Response(stored.body, status=stored.status, content_type=stored.content_type)
    resp.headers["Idempotent-Replayed"] = "true"
    return resp


def stored(resp: Response | None) -> idempotency.StoredResponse | None:
    """What is kept of an answer for replay: nothing of a server failure (5xx)."""
    if resp is None or resp.status_code >= 500:
        return None
    return idempotency.StoredResponse(resp.status_code, resp.get_data(), resp.content_type or "")


class _Invalid(Exception):
    def __init__(self, exc: ValidationError, where: str):
        self.exc, self.where = exc, where


def parse_model(model: type[BaseModel], data: Any, where: str) -> Any:
    if where == "body" and not isinstance(data, dict):
        raise BodyError("Input should be a JSON object", "model_attributes_type")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _Invalid(exc, where) from None


def endpoint(
    bp: Blueprint,
    dialect: Dialect,
    rule: str,
    method: str,
    *,
    summary: str,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    response: Any = None,
    status: int = 200,
    errors: dict[int, str] | None = None,
    tags: tuple[str, ...] = (),
    content_type: str = "application/json",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a route: validate body/query with the models, call the view, answer JSON
    with `status` (204 for None), map errors, and apply Idempotency-Key to POSTs. The
    blueprint has authenticated the request before (`make_blueprint`)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def view(**path: Any) -> Response:
            key = request.headers.get("Idempotency-Key") if method == "POST" else None
            reservation: uuid.UUID | None = None
            resp: Response | None = None
            # Failed validation is not stored under an Idempotency-Key (API.md): the
            # client may fix the request and retry with the same key.
            store = True
            try:
                if key is not None:
                    begun = idempotency.begin(g.account.id, key, request_fingerprint())
                    if isinstance(begun, idempotency.StoredResponse):
                        return replay(begun)
                    reservation = begun
                kwargs: dict[str, Any] = {}
                if body is not None:
                    kwargs["body"] = parse_model(body, parse_json_body(), "body")
                if query is not None:
                    kwargs["query"] = parse_model(query, request.args.to_dict(), "query")
                result = fn(**path, **kwargs)
                if isinstance(result, Response):
                    resp = result
                elif result is None:
                    resp = Response(status=204)
                else:
                    resp = json_response(result, status)
            except _Invalid as invalid:
                db.session.rollback()
                store = False
                resp = dialect.validation_response(invalid.exc, invalid.where)
            except Exception as exc:
                db.session.rollback()
                store = not isinstance(exc, BodyError | InvalidInput)
                resp = dialect.error_response(exc)
                if resp is None:
                    raise
            finally:
                if reservation is not None:
                    # Nothing the request left unwritten may ride along with the key.
                    db.session.rollback()
                    idempotency.finish(reservation, stored(resp) if store else None)
            return resp

        attach_doc(
            view,
            EndpointDoc(
                dialect=dialect.name,
                summary=summary,
                description=inspect.getdoc(fn) or "",
                body=body,
                query=query,
                response=response,
                status=status,
                errors=errors or {},
                tags=tags,
                content_type=content_type,
            ),
        )
        bp.add_url_rule(rule, view_func=view, methods=[method])
        return view

    return decorate
