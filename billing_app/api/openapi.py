"""`/openapi.json`, generated from the same pydantic models that validate requests and
the endpoint registry the route decorators fill, and a human docs page rendering it."""

from __future__ import annotations

import re
from typing import Any, Literal, get_args, get_origin

from flask import Blueprint, Flask, abort, current_app, render_template
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from . import reference
from .http import EndpointDoc, json_response

bp = Blueprint("openapi", __name__)
_PARAM = re.compile(r"<(?:[a-z]+:)?([a-zA-Z_]+)>")
PATH_PARAMETERS = {
    "invoice_id": "The invoice's id.",
    "customer_id": "The customer's id.",
    "code": "The object's code, URL-encoded (it may contain /).",
    "handle": "The object's handle.",
    "ref": "The invoice's id (32 hex digits, or a UUID) or its handle.",
    "method_id": "The payment method's id (ca_...).",
}


def _model_of(tp: Any) -> tuple[type[BaseModel] | None, bool]:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp, False
    if get_origin(tp) is list:
        (inner,) = get_args(tp)
        return inner, True
    return None, False


def build_spec(app: Flask) -> dict[str, Any]:
    docs: list[tuple[str, str, EndpointDoc]] = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions.get(rule.endpoint)
        doc = getattr(view, "openapi_doc", None)
        if doc is None:
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            docs.append((_PARAM.sub(r"{\1}", rule.rule), method.lower(), doc))

    models: dict[tuple[type[BaseModel], Literal["validation", "serialization"]], None] = {}
    for _, _, doc in docs:
        if doc.body is not None:
            models[(doc.body, "validation")] = None
        model, _ = _model_of(doc.response)
        if model is not None:
            models[(model, "serialization")] = None
    from .dialect_a.schemas import HTTPValidationError

    models[(HTTPValidationError, "serialization")] = None
    refs, defs = models_json_schema(list(models), ref_template="#/components/schemas/{model}")
    schemas = defs.get("$defs", {})

    def ref(model: type[BaseModel], mode: Literal["validation", "serialization"]) -> Any:
        return refs[(model, mode)]

    paths: dict[str, dict[str, Any]] = {}
    for path, method, doc in sorted(docs, key=lambda d: (d[0], d[1])):
        op: dict[str, Any] = {
            "summary": doc.summary,
            "description": doc.description,
            "x-dialect": doc.dialect,
            "operationId": f"{method}_{re.sub(r'[^a-zA-Z0-9]+', '_', path).strip('_')}",
            "tags": list(doc.tags),
            "parameters": [],
            "responses": {},
            "security": [{"bearer": []}, {"basic": []}],
        }
        for name in re.findall(r"{([a-zA-Z_]+)}", path):
            op["parameters"].append(
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "description": PATH_PARAMETERS.get(name, ""),
                    "schema": {"type": "string"},
                }
            )
        if doc.query is not None:
            qschema = doc.query.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, prop in qschema.get("properties", {}).items():
                op["parameters"].append(
                    {
                        "name": name,
                        "in": "query",
                        "required": name in qschema.get("required", []),
                        "schema": prop,
                    }
                )
            schemas.update(qschema.get("$defs", {}))
        if doc.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(doc.body, "validation")}},
            }
        model, many = _model_of(doc.response)
        success: dict[str, Any] = {"description": "Successful Response"}
        if model is not None:
            schema = ref(model, "serialization")
            success["content"] = {
                "application/json": {
                    "schema": {"type": "array", "items": schema} if many else schema
                }
            }
        elif doc.content_type != "application/json":
            success["content"] = {
                doc.content_type: {"schema": {"type": "string", "format": "binary"}}
            }
        op["responses"][str(doc.status)] = success
        for code, text in sorted(doc.errors.items()):
            op["responses"][str(code)] = {"description": text}
        if doc.dialect == "A":
            op["responses"]["422"] = {
                "description": "Validation Error",
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/HTTPValidationError"}
                    }
                },
            }
        paths.setdefault(path, {})[method] = op

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "billing_app API",
            "version": "1.0.0",
            "description": "One-off invoices (dialect A) and on-demand subscription "
            "invoices (dialect B). Amounts are integers in the currency's minor unit.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "The API key as user name, empty password.",
                },
            },
        },
    }


def spec_of(app: Flask) -> dict[str, Any]:
    """The app's OpenAPI document, built once per app: a function of its routes and models."""
    spec = app.extensions.get("billing_openapi")
    if spec is None:
        spec = app.extensions["billing_openapi"] = build_spec(app)
    return spec


@bp.get("/openapi.json")
def openapi_json() -> Any:
    """The OpenAPI document of every JSON route."""
    return json_response(spec_of(current_app))


@bp.get("/docs")
@bp.get("/docs/<dialect>")
def docs_page(dialect: str | None = None) -> str:
    """Human-readable API reference, rendered on the server from the same document: both
    dialects, or one (`/docs/a`, `/docs/b`)."""
    spec = spec_of(current_app)
    shown = [d for d in reference.dialects(spec) if dialect in (None, d.name.lower())]
    if not shown:
        abort(404)
    return render_template("api_docs.html", info=spec["info"], dialects=shown, one=dialect)
