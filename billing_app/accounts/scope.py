"""The account a service reads for: an account id, or an API key still to be looked up.

An API request's key is normally looked up before its view runs, in a round trip of its
own. A route may instead leave the lookup to its service's first read (`scoped_rows`): on
PostgreSQL the read's statement then carries the lookup (`keyed`), which spares that
round trip. In it the key is found by its prefix, its hash and its not being revoked, and
the statement's `:account` parameter becomes that key's account, so a wrong or revoked key
reads nothing of any account. (The hashes are compared by the database, not in constant
time: that is safe, since a caller cannot choose what the hash of its guess looks like.)
When the statement finds nothing, a plain lookup tells a refused key from a missing row.
The service gets the account id only from an accepted key, so it cannot write for a
refused one; the caller's `accept` decides what a refused key means (the API: 401).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy import Text, bindparam, cast, func, select
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.selectable import FromClause
from sqlalchemy.sql.visitors import iterate, replacement_traverse

from ..db import Precompiled, precompiled
from .models import Account, ApiKey
from .service import (
    AccountRef,
    KeyCandidate,
    KeyPrincipal,
    look_up_key,
    note_key_use,
)


@dataclass(eq=False)
class PendingKey:
    """An API key of the right shape, to be looked up with the request's first read.

    `accept` gets the principal (None: refused) and must raise for None.
    """

    candidate: KeyCandidate
    accept: Callable[[KeyPrincipal | None], None] = field(repr=False)


AccountScope = uuid.UUID | PendingKey

_AK, _AC = ApiKey.__table__.alias("ak"), Account.__table__.alias("ac")
# The key, only if its hash matches and it is not revoked: its account's id, and what a
# principal is made of as one JSON array (one short column: the statements it is added
# to stay under the 4 096 bytes psycopg keeps parsed).
_KEY = (
    select(
        _AC.c.id.label("a"),
        func.json_build_array(
            _AC.c.id,
            _AK.c.id,
            _AK.c.last_used_at,
            _AC.c.name,
            _AC.c.timezone,
            _AC.c.default_currency,
            cast(_AC.c.default_vat_percent, Text),
        ).label("j"),
    )
    .select_from(_AK.join(_AC, _AC.c.id == _AK.c.account_id))
    .where(
        _AK.c.prefix == bindparam("k_prefix"),
        _AK.c.key_hash == bindparam("k_hash"),
        _AK.c.revoked_at.is_(None),
    )
    .cte("k")
)
_KEY_ACCOUNT = select(_KEY.c.a).scalar_subquery()
_KEY_COLUMN = "k_key"


def _for_principal(statement: Any, param: str, account: Any, column: Any) -> Any:
    """`statement` with its `param` bind parameter replaced by `account` (a scalar
    subquery) and `column` added last."""

    def is_param(element: Any) -> bool:
        return isinstance(element, BindParameter) and element.key == param

    # Tables and aliases without the parameter are kept as they are: cloned, a join's left
    # side would no longer be found among the statement's FROMs.
    keep = [
        element
        for element in iterate(statement)
        if isinstance(element, FromClause) and not any(map(is_param, iterate(element)))
    ]
    options: dict[str, Any] = {"stop_on": keep}
    read: Any = replacement_traverse(  # type: ignore[call-overload]
        statement, options, lambda element: account if is_param(element) else None
    )
    return read.add_columns(column)


@cache
def keyed(statement: Any) -> Precompiled:
    """`statement` (a SELECT with an `:account` parameter; PostgreSQL) for the account of
    the key given as `:k_prefix` and `:k_hash`, with one more column, `k_key`, the key's
    principal. No rows for a refused key."""
    return Precompiled(
        _for_principal(
            statement,
            "account",
            _KEY_ACCOUNT,
            select(_KEY.c.j).scalar_subquery().label(_KEY_COLUMN),
        )
    )


def _principal(candidate: KeyCandidate, key: Any) -> KeyPrincipal:
    data = key if isinstance(key, list) else json.loads(key)
    account_id, key_id, last_used, name, timezone, currency, vat = data
    key_id = uuid.UUID(key_id)
    note_key_use(key_id, None if last_used is None else datetime.fromisoformat(last_used))
    return KeyPrincipal(
        key_id=key_id,
        prefix=candidate.prefix,
        account=AccountRef(
            id=uuid.UUID(account_id),
            name=name,
            timezone=timezone,
            default_currency=currency,
            default_vat_percent=None if vat is None else Decimal(vat),
        ),
    )


def scoped_rows(
    conn: Any, statement: Any, scope: AccountScope, params: dict[str, Any]
) -> tuple[uuid.UUID, list[Any]]:
    """(the account id, the rows of `statement` for it). A `PendingKey` is looked up (on
    PostgreSQL by the same statement) and handed to its `accept` before any row is used;
    `accept` raises when the key is refused."""
    if isinstance(scope, PendingKey):
        candidate = scope.candidate
        if conn.dialect.name == "postgresql":
            rows = (
                keyed(statement)
                .execute(
                    conn, params | {"k_prefix": candidate.prefix, "k_hash": candidate.key_hash}
                )
                .all()
            )
            if rows:
                principal = _principal(candidate, rows[0].k_key)
                scope.accept(principal)
                return principal.account.id, rows
        # Nothing read (PostgreSQL): the key is refused or there is no such row.
        found = look_up_key(candidate)
        scope.accept(found)
        if found is None:
            raise RuntimeError("PendingKey.accept must raise for a refused key")
        if conn.dialect.name == "postgresql":
            return found.account.id, []
        scope = found.account.id
    return scope, precompiled(statement).execute(conn, params | {"account": scope}).all()
