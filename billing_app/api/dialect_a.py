"""Dialect A plumbing: the route decorator (parse, call, respond, idempotency) and the
one mapping from domain errors to FastAPI-style error bodies."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, g, request
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from ..errors import (
    DomainError,
    Duplicate,
    IdempotencyConflict,
    InUse,
    InvalidInput,
    InvalidState,
    NotFound,
)
from ..extensions import db
from .core import (
    WWW_AUTHENTICATE,
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
)


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
        return detail(exc.message, exc.status)
    if isinstance(exc, DomainError):
        return detail(exc.message, 400)
    if isinstance(exc, AuthError):
        return detail(str(exc), 401, {"WWW-Authenticate": WWW_AUTHENTICATE})
    if isinstance(exc, RequestEntityTooLarge):
        return detail("Request body is larger than 1 MiB", 413)
    if isinstance(exc, HTTPException):
        return detail(exc.description or exc.name, exc.code or 500)
    return None


def make_blueprint(name: str) -> Blueprint:
    bp = Blueprint(name, __name__)

    @bp.before_request
    def _auth() -> None:
        request_id()
        authenticate()

    @bp.errorhandler(AuthError)
    def _auth_error(exc: AuthError) -> Response:
        resp = error_response(exc)
        assert resp is not None
        return resp

    @bp.after_request
    def _rid(resp: Response) -> Response:
        resp.headers["X-Request-Id"] = request_id()
        return resp

    return bp


def _parse(model: type[BaseModel], data: Any, where: str) -> BaseModel:
    if where == "body" and not isinstance(data, dict):
        raise BodyError("Input should be a JSON object", "model_attributes_type")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _Located(exc, where) from None


class _Located(Exception):
    def __init__(self, exc: ValidationError, where: str):
        self.exc, self.where = exc, where


def endpoint(
    bp: Blueprint,
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
    """Register a dialect A route: validate body/query with the models, call the view,
    answer JSON with `status`, map errors, and apply Idempotency-Key to POSTs."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def view(**path: Any) -> Response:
            state = IdempotencyState()
            resp: Response | None = None
            try:
                if method == "POST":
                    state = idempotency_begin(g.account.id)
                    if state.replay is not None:
                        return state.replay
                kwargs: dict[str, Any] = {}
                if body is not None:
                    kwargs["body"] = _parse(body, parse_json_body(), "body")
                if query is not None:
                    kwargs["query"] = _parse(query, request.args.to_dict(), "query")
                result = fn(**path, **kwargs)
                if isinstance(result, Response):
                    resp = result
                elif result is None:
                    resp = Response(status=204)
                else:
                    resp = json_response(result, status)
            except _Located as located:
                db.session.rollback()
                resp = validation_error(pydantic_errors(located.exc, located.where))
            except Exception as exc:
                db.session.rollback()
                resp = error_response(exc)
                if resp is None:
                    raise
            finally:
                idempotency_finish(state, resp)
            return resp

        attach_doc(
            view,
            EndpointDoc(
                dialect="A",
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
        bp.add_url_rule(rule, view_func=view, methods=[method])
        return view

    return decorate
