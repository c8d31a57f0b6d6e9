"""Small helpers every area's service uses: tenant-scoped lookups, paging, change sets."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, TypeVar

from sqlalchemy import Select, select

from .errors import InvalidInput, NotFound
from .extensions import db

T = TypeVar("T")

MAX_LIMIT = 1000


def get_scoped(model: type[T], account_id: uuid.UUID, resource: str, **filters: Any) -> T:
    """The one object of this account matching `filters`, else NotFound (foreign included)."""
    stmt = select(model).where(model.account_id == account_id)  # type: ignore[attr-defined]
    for name, value in filters.items():
        stmt = stmt.where(getattr(model, name) == value)
    obj = db.session.scalars(stmt).one_or_none()
    if obj is None:
        raise NotFound(resource)
    return obj


def parse_uuid(value: Any, resource: str) -> uuid.UUID:
    """A path id that is not a UUID names no object: it is simply not found."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound(resource) from None


def order_clause(
    model: Any, order_by: str | None, allowed: Mapping[str, Any], default: str
) -> list[Any]:
    """`field`, `-field`, `field desc`, `field:asc` ... over a whitelist; id breaks ties."""
    spec = (order_by or default).strip()
    descending = False
    if spec.startswith("-"):
        descending, spec = True, spec[1:]
    for sep in (":", " "):
        if sep in spec:
            spec, direction = spec.split(sep, 1)
            direction = direction.strip().lower()
            if direction not in ("asc", "desc"):
                raise InvalidInput(("query", "order_by"), "Direction must be asc or desc")
            descending = direction == "desc"
    column = allowed.get(spec.strip())
    if column is None:
        raise InvalidInput(
            ("query", "order_by"),
            f"Cannot order by {spec!r}; allowed: {', '.join(sorted(allowed))}",
        )
    if descending:
        return [column.desc(), model.id.desc()]
    return [column.asc(), model.id.asc()]


def page(stmt: Select[Any], skip: int, limit: int) -> list[Any]:
    return list(db.session.scalars(stmt.offset(skip).limit(min(limit, MAX_LIMIT))))


def apply_changes(obj: Any, changes: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Set attributes; return (before, after) of what actually changed, for the audit."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for name, value in changes.items():
        old = getattr(obj, name)
        if old != value:
            before[name] = old
            after[name] = value
            setattr(obj, name, value)
    return before, after


def contains_pattern(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its own `%`, `_` and `\\` taken literally
    (use with `escape="\\\\"`)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
