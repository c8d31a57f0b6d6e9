"""Keyset paging for Reepay-style lists (`size`, `next_page_token`), newest first.

A page is ordered by (created_at, id) descending; the token names the last row handed
out, so the next page continues strictly after it. Unlike offset paging, rows created while
a client pages never shift later pages, and no page has to skip over the rows before it.

The token is opaque to clients: base64url of `[created_at ISO, id hex]`. It carries no
tenant: the statement it is applied to is already scoped to the caller's account, so a
token from another account (or another list) can only skip rows, never reveal any.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, literal_column, or_

from .errors import InvalidInput
from .extensions import db

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


def encode_token(created_at: datetime, row_id: uuid.UUID) -> str:
    raw = json.dumps([created_at.isoformat(), row_id.hex], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_token(token: str) -> tuple[datetime, uuid.UUID]:
    """(created_at, id) of a token made by `encode_token`; InvalidInput for anything else."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        stamp, id_hex = json.loads(raw)
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
    # (see `invoices.browse._list_statement`). `size` is checked above: at most 100 texts.
    stmt = stmt.order_by(model.created_at.desc(), model.id.desc()).limit(
        literal_column(str(int(size) + 1))
    )
    rows = list(db.session.scalars(stmt))
    if len(rows) <= size:
        return rows, None
    rows = rows[:size]
    last = rows[-1]
    return rows, encode_token(last.created_at, last.id)
