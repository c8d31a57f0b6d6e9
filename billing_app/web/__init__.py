"""The browser app: server-rendered pages over the same services as the JSON API.

One blueprint per area (auth, invoices, customers, settings, subscriptions), each with
`routes.py` and `forms.py`; templates live in the top-level `templates/` (partials are
`_underscored` and included by their page, so one template serves the whole page and the
htmx fragment).
"""

from __future__ import annotations

from flask import Flask, Response, abort, current_app, request
from flask_login import current_user

from ..audit.service import SYSTEM, set_actor
from ..extensions import csrf, login_manager
from .formatting import register_filters
from .pages import is_htmx
from .signin import load_user


def init_web(app: Flask) -> None:
    """Sign-in, CSRF, the page blueprints, template helpers and security headers."""
    # Sessions: Flask's own signed cookie. A session lasts 12 hours from sign-in, however
    # busy, and its cookie is not re-issued on every request (PERMANENT_SESSION_LIFETIME
    # and SESSION_REFRESH_EACH_REQUEST in config.load_config). A CSRF token expires with
    # WTF_CSRF_TIME_LIMIT (8 hours, also there).
    app.config.setdefault("WTF_CSRF_SSL_STRICT", True)
    # CSRF is checked by _check_csrf below, which also lets unknown /v1 paths answer the
    # API's 404/405 instead of a CSRF error.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    app.before_request(_check_csrf)
    login_manager.login_view = "auth.sign_in"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"
    # The session is re-created at sign-in and ends at sign-out or a password change
    # (signin.load_user); Flask-Login's address/agent fingerprint would only mark it
    # "not fresh", which no page uses.
    login_manager.session_protection = None
    login_manager.user_loader(load_user)

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
    register_filters(app)
    # Templates get `csrf_token()` from Flask-WTF (CSRFProtect.init_app).
    app.jinja_env.globals.update(is_htmx=is_htmx)
    app.after_request(_security_headers)
    app.teardown_request(_forget_actor)


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
        csrf.protect(apply_exemptions=True)


def _forget_actor(_exc: BaseException | None) -> None:
    """The audit actor lives in a context variable, and a sync worker serves every request
    in the same thread: without this, whatever runs next in the thread (a request that sets
    no actor, a job, a test) would be recorded as the last request's user or key."""
    set_actor(SYSTEM)


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
        response.vary.add("HX-Request")
        if "Cache-Control" not in headers:
            # Pages of a signed-in user hold customer and money data: keep them out of caches.
            headers["Cache-Control"] = "no-store" if current_user.is_authenticated else "no-cache"
    return response
