"""The browser app: server-rendered pages over the same services as the JSON API.

One blueprint per area (auth, invoices, customers, settings, subscriptions), each with
`routes.py` and `forms.py`; templates live in the top-level `templates/` (partials are
`_underscored` and included by their page, so one template serves the whole page and the
htmx fragment).
"""

from __future__ import annotations

import hmac

from flask import Flask, Response, abort, current_app, g, request, session

from ..audit.service import SYSTEM, set_actor
from ..extensions import csrf, login_manager
from ..reads import close_read_connection
from .common import (
    SessionUser,
    accept_session_user,
    csrf_token,
    header_key,
    parse_session_id,
    register_template_helpers,
)
from .layout import init_layout
from .sessions import RememberingCookieSessions


def init_web(app: Flask) -> None:
    """Sign-in, CSRF, the page blueprints, template helpers and security headers."""
    # A session lasts 12 hours from sign-in, however busy, and its cookie is not re-issued
    # on every request: PERMANENT_SESSION_LIFETIME and SESSION_REFRESH_EACH_REQUEST are
    # set in config.load_config (a setdefault here would lose to Flask's own defaults).
    app.config.setdefault("WTF_CSRF_SSL_STRICT", True)
    app.session_interface = RememberingCookieSessions()
    # CSRF is checked by _check_csrf below, which also lets unknown /v1 paths answer the
    # API's 404/405 instead of a CSRF error.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    app.before_request(_check_csrf)
    login_manager.login_view = "auth.sign_in"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"
    # The session is re-created at sign-in and ends at sign-out or a password change;
    # Flask-Login's address/agent fingerprint would only mark it "not fresh", which no page
    # uses, at the price of a hash on every request.
    login_manager.session_protection = None
    login_manager.user_loader(_load_user)

    from .auth.routes import bp as auth_bp
    from .customers.routes import bp as customers_bp
    from .invoices.routes import bp as invoices_bp
    from .settings.routes import bp as settings_bp
    from .subscriptions.routes import bp as subscriptions_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(invoices_bp, url_prefix="/invoices")
    app.register_blueprint(customers_bp, url_prefix="/customers")
    app.register_blueprint(settings_bp, url_prefix="/settings")
    # /plans/, /add-ons/, /discounts/ and /subscriptions/: the paths say what they are.
    app.register_blueprint(subscriptions_bp)
    register_template_helpers(app)
    init_layout(app, header_key)
    app.after_request(_security_headers)
    app.teardown_request(_forget_actor)
    app.teardown_appcontext(close_read_connection)


def exempt_json_api_from_csrf(app: Flask) -> None:
    """Exempt every blueprint that serves /v1 from CSRF: API clients authenticate with keys
    in a header, never with the session cookie, so a forged cross-site request carries no
    credentials. Call after the last blueprint is registered."""
    for rule in app.url_map.iter_rules():
        if rule.rule == "/v1" or rule.rule.startswith("/v1/"):
            name = rule.endpoint.rpartition(".")[0]
            if name in app.blueprints:
                csrf.exempt(app.blueprints[name])


def _check_csrf() -> None:
    """Every state-changing request outside the JSON API carries the session's CSRF token
    (a form field, or the X-CSRFToken header htmx sends)."""
    if request.path == "/v1" or request.path.startswith("/v1/"):
        return
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if limit and request.content_length and request.content_length > limit:
        # Refuse by the declared length, before the form parser spools the body to disk.
        abort(413)
    if request.method in current_app.config.get(
        "WTF_CSRF_METHODS", ("POST", "PUT", "PATCH", "DELETE")
    ):
        if not _csrf_token_verified_before():
            csrf.protect(apply_exemptions=True)
            _remember_verified_csrf_token()
        if session.get("csrf_token"):
            # The forms this request builds take the session's signed token from here
            # (web.common.csrf_token remembers it) instead of signing a new one each.
            csrf_token()


# Signed CSRF tokens that passed Flask-WTF's check, by (secret, signed token): the raw
# token each one carries. With WTF_CSRF_TIME_LIMIT None a signed token never expires, so
# one that verified once with a secret carries the same raw token for good; a post then
# needs only the comparison with the session's raw token, not the serializer, the HMAC
# and the JSON again (as web.sessions does for the session cookie).
_VERIFIED_CSRF: dict[tuple[str, str], str] = {}
MAX_VERIFIED_CSRF = 10_000


def _csrf_key() -> tuple[str, str] | None:
    config = current_app.config
    if config.get("WTF_CSRF_TIME_LIMIT", 3600) is not None:
        return None
    if request.is_secure and config.get("WTF_CSRF_SSL_STRICT", True):
        return None  # Flask-WTF's referrer check too: the full path
    signed = csrf._get_csrf_token()
    if not signed:
        return None
    return (str(config.get("WTF_CSRF_SECRET_KEY") or current_app.secret_key), signed)


def _csrf_token_verified_before() -> bool:
    """The request's CSRF token is one verified before with this secret and it matches
    the session's raw token: what Flask-WTF's check would find, without redoing it. Only
    ever accepts what that check accepts; anything else goes through the check."""
    key = _csrf_key()
    raw = _VERIFIED_CSRF.get(key) if key is not None else None
    field = current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    in_session = session.get(field)
    if raw is None or not in_session or not hmac.compare_digest(str(in_session), raw):
        return False
    g.csrf_valid = True  # as Flask-WTF's protect marks a checked request
    return True


def _remember_verified_csrf_token() -> None:
    """After Flask-WTF's check passed: remember the raw token the signed one carries."""
    if not g.get("csrf_valid"):
        return  # an exempt view or no endpoint: nothing was verified
    key = _csrf_key()
    raw = session.get(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"))
    if key is None or not raw:
        return
    if len(_VERIFIED_CSRF) >= MAX_VERIFIED_CSRF:
        _VERIFIED_CSRF.clear()
    _VERIFIED_CSRF[key] = str(raw)


def _forget_actor(_exc: BaseException | None) -> None:
    """The audit actor lives in a context variable, and a sync worker serves every request
    in the same thread: without this, whatever runs next in the thread (a request that sets
    no actor, a job, a test) would be recorded as the last request's user or key."""
    set_actor(SYSTEM)


def _load_user(session_id: str) -> SessionUser | None:
    """The session's user and account (one Core query), if the password has not changed
    since sign-in: the session id carries a fingerprint of the password hash."""
    from ..accounts.service import load_session_user

    parsed = parse_session_id(session_id)
    if parsed is None:
        return None
    user_id, fingerprint = parsed
    return accept_session_user(load_session_user(user_id), fingerprint)


# Pages load only their own script and styles; htmx runs without eval (see base.html).
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.mimetype == "text/html":
        headers = response.headers
        headers.setdefault("Content-Security-Policy", _CSP)
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        # One URL answers a whole page or an htmx fragment: caches must keep them apart.
        if "Vary" in headers:
            response.vary.add("HX-Request")
        else:
            headers["Vary"] = "HX-Request"  # what vary.add writes, without parsing a set
        if "Cache-Control" not in headers:
            # Pages of a signed-in user hold customer and money data: keep them out of caches.
            headers["Cache-Control"] = "no-store" if g.get("account") else "no-cache"
    return response
