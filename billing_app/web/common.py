"""What every page blueprint shares: the signed-in user, sign-in enforcement, htmx
detection, error pages for domain errors, copying service errors onto form fields, and
the template filters for money (Babel, the customer's locale) and dates (the account's
time zone)."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import UserMixin, current_user
from flask_wtf import FlaskForm
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup
from werkzeug.exceptions import NotFound as HTTPNotFound

from ..accounts.models import Account, User
from ..accounts.scope import PendingSessionUser
from ..accounts.service import AccountRef
from ..accounts.service import SessionUser as SessionUserRow
from ..audit.service import Actor, set_actor
from ..db import decimal_to_str
from ..errors import DomainError, InvalidInput, NotFound
from ..invoices.models import DRAFT, FAILED, OPEN, PAID, VOID
from ..money import format_money, format_unit_amount, fraction_to_percent
from ..reads import read_engine
from .layout import render_page

STATE_LABELS = {DRAFT: "Draft", OPEN: "Open", PAID: "Paid", FAILED: "Failed", VOID: "Void"}


class SessionUser(UserMixin):
    """The signed-in user as the pages see it: the User row's fields and its Account."""

    def __init__(
        self, user: User | SessionUserRow, account: Account | AccountRef, fingerprint: str
    ):
        self.id = user.id
        self.email = user.email
        self.name = user.name
        self.account_id = user.account_id
        self.account = account
        self._fingerprint = fingerprint

    def get_id(self) -> str:
        return f"{self.id}.{self._fingerprint}"


def signed_in_user() -> SessionUser | None:
    """The signed-in user of this request, or None.

    A page asks for the user once, before its view runs (`_require_sign_in`). The session
    names the user (`_user_id`, which `login_user` wrote) and the app's own user loader
    reads them with one statement, refusing a session whose user is gone or whose
    password changed; the user is then put where Flask-Login's `current_user` finds it.
    That is what Flask-Login's `_load_user` does for such a session, without its session
    protection identifier (a SHA-512 of the address and user agent, made on every request
    although the app turns session protection off), its signal and its proxies. Anything
    else (no `_user_id`, or a refused one) takes Flask-Login's own path, so a remember
    cookie and the anonymous user are handled exactly as before.
    """
    if g.get("pending_user") is not None:
        try:
            return _settle_by_lookup()
        except SignInRequired:
            return None
    user = g.get("_login_user")
    if user is None:
        user_id = session.get("_user_id")
        if user_id is not None:
            user = current_app.login_manager._user_callback(user_id)  # type: ignore[attr-defined]
        if user is not None:
            g._login_user = user
        else:
            user = current_user._get_current_object()
    return user if user.is_authenticated else None


def account_id() -> uuid.UUID:
    """The signed-in user's account: every page is scoped to it."""
    return _user().account_id


def account() -> Account | AccountRef:
    return _user().account


def _user() -> SessionUser:
    # Set by signed_in_user before every page's view, or, for a USER_IN_FIRST_READ view,
    # when its first read (or this) settles the pending user.
    user: SessionUser | None = g.get("_login_user")
    return user if user is not None else _settle_by_lookup()


# ---------------------------------------------------------------- the user with the first read

# A view attribute: on PostgreSQL the view's first read carries the session's user
# (`accounts.scope.with_session_user`) instead of a statement of its own before the view.
USER_IN_FIRST_READ = "user_in_first_read"


class SignInRequired(Exception):
    """The session's user, read after the view started, is refused: the page answers
    as `_require_sign_in` would have before it."""


def user_in_first_read(view: Any) -> Any:
    setattr(view, USER_IN_FIRST_READ, True)
    return view


def page_scope() -> uuid.UUID | PendingSessionUser:
    """What a USER_IN_FIRST_READ view hands its first read: the session's user still to
    be read, or the account when it was read already. Nothing of the account may be
    used before that read (anything asking for it, `account_id()`, `account()`,
    `signed_in_user()`, reads the user first)."""
    pending: PendingSessionUser | None = g.get("pending_user")
    return pending if pending is not None else account_id()


def parse_session_id(session_id: Any) -> tuple[uuid.UUID, str] | None:
    """(user id, password fingerprint) of Flask-Login's `_user_id` as `SessionUser.get_id`
    writes it; None for anything else."""
    if not isinstance(session_id, str):
        return None
    raw_id, _, fingerprint = session_id.partition(".")
    try:
        return uuid.UUID(raw_id), fingerprint
    except ValueError:
        return None


def password_fingerprint(password_hash: str) -> str:
    """Part of the session id: changing the password signs out every other session."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def accept_session_user(row: SessionUserRow | None, fingerprint: str) -> SessionUser | None:
    """The page's user from the session's row, if there is one and its password has not
    changed since sign-in (the session id carries a fingerprint of the password hash)."""
    if row is None:
        return None
    current = password_fingerprint(row.password_hash)
    if not hmac.compare_digest(fingerprint, current):
        return None
    g.account = row.account
    return SessionUser(row, row.account, current)


def _defer_sign_in() -> bool:
    """Leave the session's user to the view's first read: a USER_IN_FIRST_READ view on
    PostgreSQL, a session naming a user (anything else takes the usual path)."""
    view = current_app.view_functions.get(request.endpoint or "")
    if not getattr(view, USER_IN_FIRST_READ, False) or g.get("_login_user") is not None:
        return False
    if read_engine().dialect.name != "postgresql":
        return False
    parsed = parse_session_id(session.get("_user_id"))
    if parsed is None:
        return False
    user_id, fingerprint = parsed

    def accept(row: SessionUserRow | None) -> uuid.UUID:
        g.pending_user = None
        user = accept_session_user(row, fingerprint)
        if user is None:
            raise SignInRequired
        g._login_user = user
        _act_as(user)
        return user.account_id

    g.pending_user = PendingSessionUser(user_id, accept)
    return True


def _settle_by_lookup() -> SessionUser:
    """The pending session user, read on its own (its view read nothing yet, or its
    first read found no row). SignInRequired when refused."""
    from ..accounts.service import load_session_user

    pending: PendingSessionUser | None = g.get("pending_user")
    if pending is None:
        raise SignInRequired
    pending.accept(load_session_user(pending.user_id))
    user: SessionUser = g._login_user
    return user


def _settle_after(response: Response) -> Response:
    """A view that answered without settling its pending user (it failed before its
    first read): the user is read now, and a refused one gets the sign-in answer
    instead of the view's."""
    if g.get("pending_user") is None:
        return response
    try:
        _settle_by_lookup()
    except SignInRequired:
        return _sign_in_answer()
    return response


def is_htmx() -> bool:
    """An htmx request that wants a fragment (a history restore wants the whole page)."""
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
        and request.headers.get("HX-Boosted") != "true"
    )


def render(
    page_template: str, fragment_template: str | None = None, /, status: int = 200, **context: Any
) -> Any:
    """The whole page, or for an htmx request the fragment the page includes."""
    if fragment_template and is_htmx():
        return render_template(fragment_template, **context), status
    return render_page(page_template, **context), status


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


def _require_sign_in() -> Any:
    if _defer_sign_in():
        return None
    user = signed_in_user()
    if user is None:
        return _sign_in_answer()
    _act_as(user)
    return None


def _sign_in_answer() -> Any:
    target = url_for("auth.sign_in", next=request.full_path.rstrip("?"))
    if request.headers.get("HX-Request") == "true":
        # htmx would swap a sign-in page into a fragment; send the browser there.
        return Response(status=401, headers={"HX-Redirect": target})
    return redirect(target)


def _act_as(user: SessionUser) -> None:
    from ..api.http import request_id

    set_actor(Actor("user", str(user.id), request_id()))


def page_blueprint(name: str, import_name: str) -> Blueprint:
    """A blueprint whose every page needs a signed-in user and answers the service's
    NotFound (another account's object included) with the 404 page."""
    bp = Blueprint(name, import_name)
    bp.before_request(_require_sign_in)
    bp.after_request(_settle_after)

    @bp.errorhandler(SignInRequired)
    def _refused(_exc: SignInRequired) -> Any:
        return _sign_in_answer()

    @bp.errorhandler(NotFound)
    def _not_found(exc: NotFound) -> Any:
        return render_template("error.html", error=HTTPNotFound(exc.message)), 404

    return bp


def apply_domain_error(
    form: FlaskForm, exc: DomainError, fields: Mapping[str, str] | None = None
) -> None:
    """Show a service's error on the field it names (InvalidInput's `loc`, mapped through
    `fields` where the form calls it differently), else at the top of the form."""
    target = None
    if isinstance(exc, InvalidInput):
        names = [str(part) for part in exc.loc if isinstance(part, str)]
        for name in reversed(names):
            name = (fields or {}).get(name, name)
            if name in form._fields:
                target = form._fields[name]
                break
    elif fields and type(exc).__name__ in fields:
        target = form._fields.get(fields[type(exc).__name__])
    if target is not None:
        target.errors = [*target.errors, exc.message]
    else:
        form.form_errors.append(exc.message)


# ---------------------------------------------------------------- dates in the account's zone


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def account_zone() -> ZoneInfo:
    acct = g.get("account")
    return _zone(acct.timezone if acct is not None and acct.timezone else "UTC")


def local_date(value: datetime | None, zone: ZoneInfo | None = None) -> str:
    """The calendar day in the account's zone, `YYYY-MM-DD` (pass `zone` in loops: looking
    it up costs). isoformat, not strftime: a third of the time, on every row of a list."""
    if value is None:
        return ""
    return value.astimezone(zone or account_zone()).date().isoformat()


def local_datetime(value: datetime | None, zone: ZoneInfo | None = None) -> str:
    """`YYYY-MM-DD HH:MM` in the account's zone."""
    if value is None:
        return ""
    local = value.astimezone(zone or account_zone()).replace(tzinfo=None)
    return local.isoformat(" ", "minutes")


def start_of_local_day(day: date) -> datetime:
    """Midnight of a calendar day in the account's time zone, as an aware datetime."""
    return datetime.combine(day, time(0), tzinfo=account_zone())


def local_day_bounds(first: date | None, last: date | None) -> tuple[datetime | None, ...]:
    """[first 00:00, the day after `last` 00:00) in the account's zone."""
    return (
        start_of_local_day(first) if first else None,
        start_of_local_day(last + timedelta(days=1)) if last else None,
    )


# ---------------------------------------------------------------- templates


def percent(value: Decimal | None) -> str:
    if value is None:
        return ""
    text = format(value.normalize(), "f")
    return f"{text} %"


HISTORY_LABELS = {
    "invoice.created": "Created",
    "invoice.finalized": "Finalized",
    "invoice.paid": "Marked paid",
    "invoice.voided": "Voided",
    "invoice.deleted": "Deleted",
    "invoice.updated": "Due date changed",
    "invoice.lines_replaced": "Lines changed",
}


def register_template_helpers(app: Flask) -> None:
    app.jinja_env.filters.update(
        money=format_money,
        unit_money=format_unit_amount,
        decimal=decimal_to_str,
        local_date=local_date,
        local_datetime=local_datetime,
        percent=percent,
        rate_percent=lambda fraction: percent(fraction_to_percent(fraction)),
        state_label=lambda state: STATE_LABELS.get(state, state),
        history_label=lambda action: HISTORY_LABELS.get(
            action, action.split(".")[-1].replace("_", " ").capitalize()
        ),
    )
    app.jinja_env.globals.update(
        is_htmx=is_htmx,
        account_zone=account_zone,
        url_for=_memoized_url_for(),
        csrf_token=csrf_token,
        page_header=page_header,
    )
    # Flask-WTF also puts its own generate_csrf into every template's context through a
    # context processor, which wins over the global above: every page re-signed the token
    # (HMAC and a timestamp, twice per page). Drop that processor; the global serves.
    processors = app.template_context_processors[None]
    processors[:] = [p for p in processors if getattr(p, "__module__", "") != "flask_wtf.csrf"]


_STAND_IN = uuid.UUID(int=0)
_STAND_IN_TEXT = str(_STAND_IN)


def _memoized_url_for() -> Any:
    """url_for for templates, remembering the URLs that depend on nothing but the
    endpoint (the layout's navigation, static files): a page builds a dozen of them, and
    building one costs ~10 us. Per app (the closure) and per script root (an app mounted
    under a prefix). A URL whose one value is a UUID (an invoice's actions, a customer's
    page) is built once per endpoint with a stand-in UUID and the stand-in replaced: a
    UUID's text is hex digits and dashes, which a URL carries as they are. Anything else
    is built every time."""
    urls: dict[tuple[str, str, str | None], str] = {}

    def template_url_for(endpoint: str, **values: Any) -> str:
        if endpoint[:1] == ".":
            return url_for(endpoint, **values)
        if not values or values.keys() == {"filename"}:
            key = (request.script_root, endpoint, values.get("filename"))
            url = urls.get(key)
            if url is None:
                url = url_for(endpoint, **values)
                if len(urls) < 1000:
                    urls[key] = url
            return url
        if len(values) == 1:
            ((name, value),) = values.items()
            if type(value) is uuid.UUID and name[:1] != "_":
                key = (request.script_root, endpoint, name)
                pattern = urls.get(key)
                if pattern is None:
                    stand_in: dict[str, Any] = {name: _STAND_IN}
                    pattern = url_for(endpoint, **stand_in)
                    if len(urls) < 1000:
                        urls[key] = pattern
                return pattern.replace(_STAND_IN_TEXT, str(value), 1)
        return url_for(endpoint, **values)

    return template_url_for


# The layout's header by everything it shows or depends on (see page_header).
_HEADERS: dict[tuple[Any, ...], Markup] = {}


def header_key() -> tuple[Any, ...]:
    """Everything the layout's header shows or depends on (see page_header)."""
    user = current_user
    if user.is_authenticated:
        return (
            request.script_root,
            request.endpoint,
            user.id,
            user.email,
            user.account.name,
            csrf_token(),
        )
    return (request.script_root, request.endpoint)


def page_header() -> Markup:
    """The layout's <header> (navigation with the current entry marked, the signed-in
    user, the sign-out form). It depends only on the endpoint, the user's email and
    account name and the CSRF token, so it is rendered once per such combination and
    process (templates/_header.html) and reused: ~8 links and their conditions cost a
    tenth of a list page."""
    key = header_key()
    html = _HEADERS.get(key)
    if html is None:
        html = Markup(render_template("_header.html"))  # noqa: S704  (a rendered template)
        if len(_HEADERS) >= 10_000:
            _HEADERS.clear()
        _HEADERS[key] = html
    return html


# Signed CSRF tokens by (secret, the session's raw token). WTF_CSRF_TIME_LIMIT is None, so
# a signed token never expires and any one of them checks against the session's raw token:
# re-signing it on every page (Flask-WTF's generate_csrf) bought nothing.
_SIGNED_CSRF: dict[tuple[str, str], str] = {}


def csrf_token() -> str:
    """The CSRF token for this page's forms and htmx header (Flask-WTF's, reused)."""
    cached = g.get("csrf_token")
    if cached:
        return str(cached)
    config = current_app.config
    raw = session.get("csrf_token")
    if not raw or config.get("WTF_CSRF_TIME_LIMIT", 3600) is not None:
        return str(generate_csrf())
    key = (str(config.get("WTF_CSRF_SECRET_KEY") or current_app.secret_key), str(raw))
    signed = _SIGNED_CSRF.get(key)
    if signed is None:
        signed = str(generate_csrf())
        if len(_SIGNED_CSRF) > 10_000:
            _SIGNED_CSRF.clear()
        _SIGNED_CSRF[key] = signed
    g.csrf_token = signed
    return signed
