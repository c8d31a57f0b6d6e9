"""The human API reference at `/docs`: the app's own OpenAPI document (`openapi.py`) cut
into what a reader looks for: per dialect its operations, and each schema they use as a
table of fields (name, type, required, description) with an example. Plain values for the
template `api_docs.html`; nothing here writes HTML."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .http import dumps

DIALECTS = {
    "A": (
        "Dialect A: one-off invoices",
        "Invoices with custom lines, customers, billing entities and taxes. Errors are "
        '{"detail": "..."}; a request that fails validation answers 422 with '
        '{"detail": [{"loc", "msg", "type"}]}. Amounts are strings of minor units.',
    ),
    "B": (
        "Dialect B: subscriptions (Reepay-compatible)",
        "Customers by handle, plans, add-ons, subscriptions, on-demand subscription "
        'invoices, payments, credits and discounts. Errors are {"code", "error", '
        '"message", "http_status", ...} with Reepay\'s codes. Amounts are integers in '
        "minor units; lists page with size and next_page_token.",
    ),
}
SCHEMA_REF = "#/components/schemas/"
# Examples of string formats, so that an example reads like a real request.
FORMAT_EXAMPLES = {
    "uuid": "0190a5b4-7c1e-7d3a-9f2b-3c4d5e6f7a8b",
    "date-time": "2026-12-01T09:30:00+00:00",
    "date": "2026-12-01",
    "email": "billing@example.com",
    "binary": "<bytes>",
}


@dataclass
class Field:
    name: str
    type: str
    required: bool
    description: str
    # The schema the type names, for a link (None: a plain type).
    schema: str | None = None


@dataclass
class Schema:
    name: str
    description: str
    fields: list[Field]
    example: str


@dataclass
class Operation:
    method: str
    path: str
    anchor: str
    summary: str
    description: str
    parameters: list[Field]
    body: str | None
    # (status, description, the answer's type, the schema it names)
    responses: list[tuple[str, str, str, str | None]]


@dataclass
class Dialect:
    name: str
    title: str
    introduction: str
    operations: list[Operation] = field(default_factory=list)
    schemas: list[Schema] = field(default_factory=list)


def _ref_name(node: dict[str, Any]) -> str | None:
    ref = node.get("$ref")
    return ref.removeprefix(SCHEMA_REF) if isinstance(ref, str) else None


def _refs(node: Any) -> set[str]:
    """The names of every schema `node` refers to, directly or nested."""
    found: set[str] = set()
    if isinstance(node, dict):
        name = _ref_name(node)
        if name is not None:
            found.add(name)
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    return found


def type_label(node: dict[str, Any]) -> tuple[str, str | None]:
    """(a reader's name of the type, the schema it names or None)."""
    name = _ref_name(node)
    if name is not None:
        return name, name
    if "anyOf" in node or "oneOf" in node:
        options = node.get("anyOf") or node.get("oneOf") or []
        labels = [type_label(o) for o in options if o.get("type") != "null"]
        nullable = len(labels) < len(options)
        text = " or ".join(label for label, _ in labels) + (" or null" if nullable else "")
        schemas = [s for _, s in labels if s]
        return text, schemas[0] if len(schemas) == 1 else None
    if "enum" in node:
        return "one of " + ", ".join(json.dumps(v) for v in node["enum"]), None
    if "const" in node:
        return json.dumps(node["const"]), None
    kind = node.get("type", "any")
    if kind == "array":
        inner, schema = type_label(node.get("items", {}))
        return f"array of {inner}", schema
    if kind == "object" and "additionalProperties" in node:
        extra = node["additionalProperties"]
        if isinstance(extra, dict) and extra:
            inner, schema = type_label(extra)
            return f"object of {inner}", schema
        return "object", None
    if kind == "string" and "format" in node:
        return f"string ({node['format']})", None
    if kind == "string" and "pattern" in node:
        return "decimal string", None
    return str(kind), None


def _constraints(node: dict[str, Any]) -> str:
    """Limits worth a reader's eye: bounds, lengths and defaults."""
    words = {
        "minimum": "at least",
        "exclusiveMinimum": "more than",
        "maximum": "at most",
        "exclusiveMaximum": "less than",
        "minLength": "length at least",
        "maxLength": "length at most",
        "minItems": "items at least",
        "maxItems": "items at most",
    }
    parts = [f"{text} {node[key]}" for key, text in words.items() if key in node]
    for option in node.get("anyOf", []):
        parts += [f"{text} {option[key]}" for key, text in words.items() if key in option]
    if "default" in node and node["default"] is not None:
        parts.append(f"default {json.dumps(node['default'])}")
    return "; ".join(parts)


def example_of(node: dict[str, Any], schemas: dict[str, Any], depth: int = 0) -> Any:
    """An example value of `node`: its own example or default where it has one, else one
    made from its type."""
    if node.get("examples"):
        return node["examples"][0]
    if "example" in node:
        return node["example"]
    name = _ref_name(node)
    if name is not None:
        return example_of(schemas.get(name, {}), schemas, depth + 1) if depth < 6 else {}
    if node.get("default") is not None:
        return node["default"]
    if "anyOf" in node or "oneOf" in node:
        options = [
            o for o in node.get("anyOf") or node.get("oneOf") or [] if o.get("type") != "null"
        ]
        return example_of(options[0], schemas, depth) if options else None
    if "enum" in node:
        return node["enum"][0]
    if "const" in node:
        return node["const"]
    kind = node.get("type")
    if kind == "object":
        props = node.get("properties", {})
        return {key: example_of(prop, schemas, depth + 1) for key, prop in props.items()}
    if kind == "array":
        return [example_of(node.get("items", {}), schemas, depth + 1)]
    if kind == "string":
        if node.get("format") in FORMAT_EXAMPLES:
            return FORMAT_EXAMPLES[node["format"]]
        if "pattern" in node:
            return "100"
        return "string"
    if kind == "integer":
        return max(int(node.get("minimum", 0)), 1) if "minimum" in node else 100
    if kind == "number":
        return 1
    if kind == "boolean":
        return False
    return None


def _field(name: str, prop: dict[str, Any], required: bool) -> Field:
    label, schema = type_label(prop)
    description = prop.get("description", "")
    limits = _constraints(prop)
    if limits:
        description = f"{description} ({limits})" if description else limits.capitalize()
    return Field(name, label, required, description, schema)


def _schema(name: str, schemas: dict[str, Any]) -> Schema:
    node = schemas[name]
    required = set(node.get("required", []))
    fields = [_field(k, p, k in required) for k, p in node.get("properties", {}).items()]
    example = dumps(example_of(node, schemas), indent=2).decode()
    return Schema(name, node.get("description", ""), fields, example)


def dialects(spec: dict[str, Any]) -> list[Dialect]:
    """The reference of each dialect: its operations in path order, then the schemas
    they use (nested ones included), by name."""
    schemas = spec["components"]["schemas"]
    out = {name: Dialect(name, *texts) for name, texts in DIALECTS.items()}
    used: dict[str, set[str]] = {name: set() for name in DIALECTS}
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            dialect = op.get("x-dialect", "A")
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            responses = []
            for status, answer in op["responses"].items():
                content: dict[str, Any] = answer.get("content", {})
                media: dict[str, Any] = next(iter(content.values()), {})
                schema = media.get("schema", {})
                label, named = type_label(schema) if schema else ("", None)
                responses.append((status, answer["description"], label, named))
            out[dialect].operations.append(
                Operation(
                    method=method.upper(),
                    path=path,
                    anchor=op["operationId"],
                    summary=op["summary"],
                    description=op.get("description", ""),
                    parameters=[
                        _field(
                            f"{p['name']} ({p['in']})",
                            {"description": p.get("description", "")} | p["schema"],
                            p["required"],
                        )
                        for p in op.get("parameters", [])
                    ],
                    body=_ref_name(body.get("schema", {})),
                    responses=responses,
                )
            )
            used[dialect] |= _refs(op)
    for name, dialect in out.items():
        seen: set[str] = set()
        todo = sorted(used[name])
        while todo:
            schema = todo.pop()
            if schema in seen or schema not in schemas:
                continue
            seen.add(schema)
            todo.extend(_refs(schemas[schema]) - seen)
        dialect.schemas = [_schema(schema, schemas) for schema in sorted(seen)]
    return list(out.values())
