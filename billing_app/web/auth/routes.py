"""Sign-in (email + password, failures rate-limited in the database) and sign-out."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user

from ...accounts import service as accounts
from ..signin import safe_next, signed_in
from .forms import SignInForm

bp = Blueprint("auth", __name__)


def _policy() -> accounts.SignInPolicy:
    cfg = current_app.config
    return accounts.SignInPolicy(
        max_failures_per_email=cfg.get("SIGNIN_MAX_FAILURES_PER_EMAIL", 5),
        max_failures_per_address=cfg.get("SIGNIN_MAX_FAILURES_PER_ADDRESS", 50),
        window=timedelta(seconds=cfg.get("SIGNIN_WINDOW_SECONDS", 15 * 60)),
    )


@bp.route("/signin", methods=["GET", "POST"])
def sign_in() -> Any:
    """The sign-in form; on success a fresh session and on to `next` (this site only)."""
    target = safe_next(request.args.get("next")) or url_for("invoices.list_invoices")
    if current_user.is_authenticated:
        return redirect(target)
    form = SignInForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = accounts.sign_in(
                form.email.data or "", form.password.data or "", request.remote_addr, _policy()
            )
        except accounts.SignInThrottled as exc:
            form.form_errors.append(exc.message)
            status = 429
            response = current_app.make_response(
                (render_template("auth/sign_in.html", form=form), status)
            )
            response.headers["Retry-After"] = str(exc.retry_after_seconds)
            return response
        if user is None:
            form.form_errors.append("The email or the password is not right.")
            status = 401
        else:
            account = accounts.get_account(user.account_id)
            # A new session for the signed-in user: nothing from before survives it.
            session.clear()
            session.permanent = True
            login_user(signed_in(user, account))
            return redirect(target)
    elif request.method == "POST":
        status = 422
    return render_template("auth/sign_in.html", form=form), status


@bp.post("/signout")
def sign_out() -> Any:
    """End the session (a POST with the CSRF token: no cross-site sign-out)."""
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.sign_in"))
