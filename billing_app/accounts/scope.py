"""Transitional: what is left of the machinery that read the API key and the signed-in
user inside a service's first statement. The API key parts are gone (the key is looked up
once, before the view: `api.http.authenticate`); `scoped_rows` now only reads for an
account id, and the session-user parts go with the web pages' rewrite. Delete this module
once nothing imports it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Text, bindparam, cast, func, select
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.selectable import FromClause
from sqlalchemy.sql.visitors import iterate, replacement_traverse

from .models import Account, User
from .service import AccountRef, SessionUser

AccountScope = uuid.UUID


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


# ---------------------------------------------------------------- a page's session user

_SU, _SA = User.__table__.alias("su_u"), Account.__table__.alias("su_a")
# The browser session's user and account (`service.load_session_user`'s row) as one JSON
# text: text, so that the driver does not decode it again for every row it comes with.
_SESSION = (
    select(
        _SA.c.id.label("a"),
        cast(
            func.json_build_array(
                _SU.c.id,
                _SU.c.email,
                _SU.c.name,
                _SU.c.password_hash,
                _SA.c.id,
                _SA.c.name,
                _SA.c.timezone,
                _SA.c.default_currency,
                cast(_SA.c.default_vat_percent, Text),
            ),
            Text,
        ).label("j"),
    )
    .select_from(_SU.join(_SA, _SA.c.id == _SU.c.account_id))
    .where(_SU.c.id == bindparam("su_user"))
    .cte("su")
)
SESSION_USER_COLUMN = "su_user_row"


@dataclass(eq=False)
class PendingSessionUser:
    """A browser session's user, named by the signed session cookie, to be read with the
    page's first read (PostgreSQL). `accept` gets the user's row (None: no such user) and
    answers the account id, or raises when the session is refused (the password changed
    since sign-in, the user is gone)."""

    user_id: uuid.UUID
    accept: Callable[[SessionUser | None], uuid.UUID] = field(repr=False)


PageScope = uuid.UUID | PendingSessionUser


def with_session_user(statement: Any, param: str = "account_id") -> Any:
    """`statement` (a SELECT with the bind parameter `param`; PostgreSQL) for the account
    of the user given as `:su_user`, with one more column, `su_user_row`, that user's row
    (`session_user`). No rows when there is no such user."""
    return _for_principal(
        statement,
        param,
        select(_SESSION.c.a).scalar_subquery(),
        select(_SESSION.c.j).scalar_subquery().label(SESSION_USER_COLUMN),
    )


def session_user(text: str) -> SessionUser:
    """The row `with_session_user`'s column holds."""
    uid, email, name, password_hash, aid, account_name, zone, currency, vat = json.loads(text)
    account_id = uuid.UUID(aid)
    return SessionUser(
        uuid.UUID(uid),
        email,
        name,
        password_hash,
        account_id,
        AccountRef(account_id, account_name, zone, currency, None if vat is None else Decimal(vat)),
    )


def settle_with(scope: PendingSessionUser, rows: list[Any]) -> uuid.UUID:
    """The account of a pending session user after a read `with_session_user` made: from
    the first row, else (nothing read) looked up on its own."""
    from .service import load_session_user

    found = rows[0][-1] if rows else None  # NULL: a read that answers a row regardless
    if found is not None:
        return scope.accept(session_user(found))
    return scope.accept(load_session_user(scope.user_id))


def scoped_rows(
    conn: Any, statement: Any, account_id: AccountScope, params: dict[str, Any]
) -> tuple[uuid.UUID, list[Any]]:
    """(the account id, the rows of `statement` for it)."""
    return account_id, conn.execute(statement, params | {"account": account_id}).all()
