"""The signed-in user of the browser pages: Flask-Login's `user_loader` is its one home.

The session names the user as `<user id>.<password fingerprint>` (`SessionUser.get_id`,
written by `login_user` at sign-in). On every request Flask-Login calls `load_user` once,
which reads the user and their account and refuses the session when the user is gone or
the password changed since sign-in (the fingerprint no longer matches): a password
change ends every other session. Pages ask `current_user` (or `account_id()` /
`account()` below); `require_sign_in` runs before every page blueprint's views.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from typing import Any
from urllib.parse import urlsplit

from flask import Response, redirect, request, url_for
from flask_login import UserMixin, current_user

from ..accounts.models import Account, User
from ..accounts.service import load_session_user
from ..audit.service import Actor, set_actor


class SessionUser(UserMixin):
    """The signed-in user as the pages see it: the User row's fields and its Account."""

    def __init__(self, user: User, account: Account, fingerprint: str) -> None:
        self.id = user.id
        self.email = user.email
        self.name = user.name
        self.account_id = user.account_id
        self.account = account
        self.fingerprint = fingerprint

    def get_id(self) -> str:
        return f"{self.id}.{self.fingerprint}"


def password_fingerprint(password_hash: str) -> str:
    """Part of the session id: changing the password signs out every other session."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def signed_in(user: User, account: Account) -> SessionUser:
    """The SessionUser to hand `login_user` at sign-in."""
    return SessionUser(user, account, password_fingerprint(user.password_hash))


def load_user(session_id: str) -> SessionUser | None:
    """Flask-Login's user loader: the session's user and account (one query), if the
    user still exists and the password has not changed since sign-in."""
    raw_id, _, fingerprint = session_id.partition(".")
    try:
        user_id = uuid.UUID(raw_id)
    except ValueError:
        return None
    found = load_session_user(user_id)
    if found is None:
        return None
    user, account = found
    current = password_fingerprint(user.password_hash)
    if not hmac.compare_digest(fingerprint, current):
        return None
    return SessionUser(user, account, current)


def _user() -> SessionUser:
    user: Any = current_user
    if not user.is_authenticated:  # pages run after require_sign_in: never here
        raise RuntimeError("no signed-in user")
    return user


def account_id() -> uuid.UUID:
    """The signed-in user's account: every page is scoped to it."""
    return _user().account_id


def account() -> Account:
    return _user().account


def require_sign_in() -> Any:
    """Before every page: a signed-in user (acting as the audit actor), else the sign-in
    page (htmx: a redirect header, so a fragment never becomes a sign-in page)."""
    if not current_user.is_authenticated:
        target = url_for("auth.sign_in", next=request.full_path.rstrip("?"))
        if request.headers.get("HX-Request") == "true":
            return Response(status=401, headers={"HX-Redirect": target})
        return redirect(target)
    from ..api.http import request_id

    set_actor(Actor("user", str(current_user.id), request_id()))
    return None


def safe_next(target: str | None) -> str | None:
    """A `next` URL only if it stays on this site (no open redirect)."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target:
        return None
    return target
