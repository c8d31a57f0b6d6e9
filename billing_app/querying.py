"""Queries every area shares: tenant-scoped lookups, the order whitelist, offset and keyset
paging, change sets.

Keyset paging (`paged`): a page is ordered by (created_at, id) descending; the token names
the last row handed out, so the next page continues strictly after it. Unlike offset
paging, rows created while a client pages never shift later pages, and no page has to skip
over the rows before it.

The token is opaque to clients: base64url of `[created_at ISO, id hex]`. It carries no
tenant: the statement it is applied to is already scoped to the caller's account, so a
token from another account (or another list) can only skip rows, never reveal any.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, and_, literal_column, or_, select

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


DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


def cursor_text(values: list[Any]) -> str:
    """A keyset cursor as clients see it: base64url of the JSON of the last row's sort
    values (the one encoding of every list cursor, the API's tokens and the pages')."""
    raw = json.dumps(values, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def cursor_values(text: str) -> Any:
    """The values `cursor_text` wrote. ValueError (or a subclass) for anything else: the
    caller checks their kinds and answers InvalidInput for its own field."""
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return json.loads(raw)


def encode_token(created_at: datetime, row_id: uuid.UUID) -> str:
    return cursor_text([created_at.isoformat(), row_id.hex])


def decode_token(token: str) -> tuple[datetime, uuid.UUID]:
    """(created_at, id) of a token made by `encode_token`; InvalidInput for anything else."""
    try:
        stamp, id_hex = cursor_values(token)
        created_at = datetime.fromisoformat(stamp)
        if created_at.tzinfo is None:
            raise ValueError("naive timestamp")
        return created_at, uuid.UUID(hex=id_hex)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(("next_page_token",), "Invalid next_page_token") from None


def paged(
    stmt: Select[Any], model: Any, size: int, token: str | None
) -> tuple[list[Any], str | None]:
    """One page of `stmt` (a select of `model`, already filtered to the account) and the
    token of the next page, or None when this is the last one.

    `model` needs `created_at` and `id` columns. Raises InvalidInput for a size outside
    1..MAX_PAGE_SIZE or a token that is not ours.
    """
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise InvalidInput(("size",), f"size must be between 1 and {MAX_PAGE_SIZE}")
    if token:
        created_at, row_id = decode_token(token)
        stmt = stmt.where(
            or_(
                model.created_at < created_at,
                and_(model.created_at == created_at, model.id < row_id),
            )
        )
    # The LIMIT is written into the statement, not bound: PostgreSQL plans a bound LIMIT
    # for 10 % of the rows, so it never settles on one plan and plans every execution
    # (as the invoice list in `invoices.queries` does). `size` is checked above: at most 100
    # texts.
    stmt = stmt.order_by(model.created_at.desc(), model.id.desc()).limit(
        literal_column(str(int(size) + 1))
    )
    rows = list(db.session.scalars(stmt))
    if len(rows) <= size:
        return rows, None
    rows = rows[:size]
    last = rows[-1]
    return rows, encode_token(last.created_at, last.id)
