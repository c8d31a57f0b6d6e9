"""The route decorator both dialects share: parse the body and query with pydantic
models, call the view, answer JSON, apply Idempotency-Key to POSTs, and turn every known
error into the dialect's own error body. Each dialect supplies only its error mapping."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, g, request
from pydantic import BaseModel, ValidationError

from ..errors import InvalidInput
from ..extensions import db
from .http import (
    KEY_IN_FIRST_READ,
    AuthError,
    BodyError,
    EndpointDoc,
    IdempotencyState,
    attach_doc,
    authenticate,
    idempotency_begin,
    idempotency_finish,
    json_response,
    parse_json_body,
    request_id,
    settle_pending_key,
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
    key_in_first_read: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a route: validate body/query with the models, call the view, answer JSON
    with `status` (204 for None), map errors, and apply Idempotency-Key to POSTs.

    `key_in_first_read`: the view hands its service `core.account_scope()`, whose first
    read looks the API key up (`accounts.scope`); a key the view leaves pending is looked
    up when it answers, and a refused one turns the answer into the 401.
    """

    def refused() -> Response | None:
        """The 401 for a key left pending by a view that failed before its first read."""
        try:
            settle_pending_key()
        except AuthError as exc:
            return dialect.error_response(exc)
        return None

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def view(**path: Any) -> Response:
            state = IdempotencyState()
            resp: Response | None = None
            # Failed validation is not stored under an Idempotency-Key (API.md): the
            # client may fix the request and retry with the same key.
            store = True
            try:
                if method == "POST" and g.get("pending_key") is None:
                    state = idempotency_begin(g.account.id)
                    if state.replay is not None:
                        return state.replay
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
                settle_pending_key()
            except _Invalid as invalid:
                db.session.rollback()
                store = False
                resp = refused() or dialect.validation_response(invalid.exc, invalid.where)
            except Exception as exc:
                db.session.rollback()
                store = not isinstance(exc, BodyError | InvalidInput)
                resp = refused() or dialect.error_response(exc)
                if resp is None:
                    raise
            finally:
                idempotency_finish(state, resp if store else None)
            return resp

        attach_doc(
            view,
            EndpointDoc(
                dialect=dialect.name,
                summary=summary,
                body=body,
                query=query,
                response=response,
                status=status,
                errors=errors or {},
                tags=tags,
                content_type=content_type,
            ),
        )
        setattr(view, KEY_IN_FIRST_READ, key_in_first_read)
        bp.add_url_rule(rule, view_func=view, methods=[method])
        return view

    return decorate
