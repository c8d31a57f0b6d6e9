"""What every page blueprint shares: sign-in before each view, the 404 page for a
service's NotFound, htmx detection, rendering a page or its fragment, and copying a
service's error onto the form field it concerns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, render_template, request
from flask_wtf import FlaskForm
from werkzeug.exceptions import NotFound as HTTPNotFound

from ..errors import DomainError, InvalidInput, NotFound
from .signin import require_sign_in


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
    """The whole page, or for an htmx request the fragment (a partial the page includes)."""
    if fragment_template and is_htmx():
        return render_template(fragment_template, **context), status
    return render_template(page_template, **context), status


def page_blueprint(name: str, import_name: str) -> Blueprint:
    """A blueprint whose every page needs a signed-in user and answers the service's
    NotFound (another account's object included) with the 404 page."""
    bp = Blueprint(name, import_name)
    bp.before_request(require_sign_in)

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
            if name in form:
                target = form[name]
                break
    elif fields and fields.get(type(exc).__name__) in form:
        target = form[fields[type(exc).__name__]]
    if target is not None:
        target.errors = [*target.errors, exc.message]
    else:
        form.form_errors.append(exc.message)
