"""Settings: the account (name, time zone, defaults), billing entities (with their logo,
number pattern and payment terms), tax rates and API keys."""

from __future__ import annotations

from typing import Any

from flask import Response, flash, redirect, render_template, request, url_for

from ...accounts import service as accounts
from ...entities import service as entities
from ...entities.models import BillingEntity
from ...errors import DomainError, InvalidInput
from ...querying import parse_uuid
from ...taxes import service as taxes
from ...taxes.models import TaxRate
from ..fields import select_choices
from ..pages import apply_domain_error, page_blueprint
from ..signin import account, account_id
from .forms import AccountForm, ApiKeyForm, CheckOnly, EntityForm, LogoForm, TaxForm

bp = page_blueprint("settings", __name__)


@bp.route("/", methods=["GET", "POST"])
def overview() -> Any:
    """Account settings, and the lists of billing entities and tax rates."""
    aid = account_id()
    acct = account()
    form = AccountForm(obj=acct)
    status = 200
    if form.validate_on_submit():
        try:
            accounts.update_account_settings(
                aid,
                name=form.name.data or "",
                timezone=form.timezone.data or "",
                default_currency=form.default_currency.data or "",
                default_vat_percent=form.default_vat_percent.data,
            )
        except DomainError as exc:
            apply_domain_error(form, exc)
        else:
            flash("Account settings are saved.", "success")
            return redirect(url_for("settings.overview"))
    if request.method == "POST":
        status = 422
    return render_template(
        "settings/overview.html",
        form=form,
        entities=entities.list_entities(aid, 0, 200, "name"),
        logos=entities.logo_digests(aid),
        taxes=taxes.list_taxes(aid, 0, 500, "code"),
    ), status


# ---------------------------------------------------------------- billing entities


def _tax_choices(form: EntityForm) -> None:
    form.tax_code.choices = select_choices(
        [("", "None (the account's default applies)")]
        + [
            (t.code, f"{t.name} ({t.code}, {t.rate.normalize():f} %)")
            for t in taxes.list_taxes(account_id(), 0, 500, "code")
        ]
    )


def _entity(entity_id: str) -> BillingEntity:
    return entities.get_entity_by_id(account_id(), parse_uuid(entity_id, "Billing entity"))


def _entity_data(form: EntityForm) -> dict[str, Any]:
    data = form.service_data()
    data["default_tax_rate_id"] = taxes.tax_id_for_code(
        account_id(), form.tax_code.data or None, ("tax_code",)
    )
    return data


_ENTITY_ERRORS = {"Duplicate": "code", "default_tax_rate_id": "tax_code"}


@bp.route("/entities/new", methods=["GET", "POST"])
def new_entity() -> Any:
    """Create a billing entity (an issuer with its own number series)."""
    form = EntityForm()
    if request.method == "GET":
        form.currency.data = account().default_currency
        form.timezone.data = account().timezone
    _tax_choices(form)
    if form.validate_on_submit():
        try:
            data = {
                **_entity_data(form),
                "code": form.code.data,
                "is_default": form.is_default.data,
            }
            entity = entities.create_entity(account_id(), data)
        except DomainError as exc:
            apply_domain_error(form, exc, _ENTITY_ERRORS)
        else:
            flash(f"Billing entity {entity.name} is created.", "success")
            return redirect(url_for("settings.edit_entity", entity_id=entity.id))
    status = 422 if request.method == "POST" else 200
    return render_template("settings/entity_form.html", form=form, entity=None), status


@bp.route("/entities/<entity_id>", methods=["GET", "POST"])
def edit_entity(entity_id: str) -> Any:
    """Edit a billing entity; its logo is uploaded with a form of its own."""
    entity = _entity(entity_id)
    form = EntityForm(obj=entity)
    del form.code
    if request.method == "GET":
        form.tax_code.data = (
            taxes.get_tax_by_id(account_id(), entity.default_tax_rate_id).code
            if entity.default_tax_rate_id
            else ""
        )
    _tax_choices(form)
    if form.validate_on_submit():
        changes = _entity_data(form)
        if changes["next_invoice_number"] == entity.next_invoice_number:
            del changes["next_invoice_number"]
        if form.is_default.data:
            changes["is_default"] = True
        try:
            entities.update_entity(account_id(), entity.code, changes)
        except DomainError as exc:
            apply_domain_error(form, exc, _ENTITY_ERRORS)
        else:
            flash(f"Billing entity {entity.name} is saved.", "success")
            return redirect(url_for("settings.edit_entity", entity_id=entity.id))
    status = 422 if request.method == "POST" else 200
    return render_template(
        "settings/entity_form.html",
        form=form,
        entity=entity,
        logo_form=LogoForm(formdata=None),
        logo=entities.logo_digests(account_id()).get(entity.id),
    ), status


@bp.post("/entities/<entity_id>/logo")
def upload_logo(entity_id: str) -> Any:
    """Store the uploaded logo: PNG or JPEG by content, at most 512 KB."""
    entity = _entity(entity_id)
    form = LogoForm()
    if not form.validate_on_submit():
        flash("Choose a PNG or JPEG file to upload.", "error")
    else:
        data = form.logo.data.read(entities.LOGO_MAX_BYTES + 1)
        try:
            entities.set_logo(account_id(), entity.id, data)
        except InvalidInput as exc:
            flash(exc.message, "error")
        else:
            flash("The logo is saved.", "success")
    return redirect(url_for("settings.edit_entity", entity_id=entity.id))


@bp.post("/entities/<entity_id>/logo/delete")
def delete_logo(entity_id: str) -> Any:
    """Remove the entity's logo."""
    entity = _entity(entity_id)
    entities.remove_logo(account_id(), entity.id)
    flash("The logo is removed.", "success")
    return redirect(url_for("settings.edit_entity", entity_id=entity.id))


@bp.get("/entities/<entity_id>/logo")
def logo(entity_id: str) -> Any:
    """The logo bytes, with the type their content showed; never sniffed, never a page."""
    stored = entities.get_logo(account_id(), parse_uuid(entity_id, "Billing entity"))
    response = Response(stored.data, mimetype=stored.content_type)
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Content-Disposition"] = "inline"
    response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    response.set_etag(stored.sha256)
    return response.make_conditional(request)


# ---------------------------------------------------------------- tax rates


def _tax(tax_id: str) -> TaxRate:
    return taxes.get_tax_by_id(account_id(), parse_uuid(tax_id, "Tax"))


@bp.route("/taxes/new", methods=["GET", "POST"])
def new_tax() -> Any:
    """Create a tax rate."""
    form = TaxForm()
    if form.validate_on_submit():
        data = {
            "code": form.code.data,
            "name": form.name.data,
            "rate": form.rate.data,
            "description": form.description.data,
            "applied_to_organization": form.applied_to_organization.data,
        }
        try:
            tax = taxes.create_tax(account_id(), data).tax
        except DomainError as exc:
            apply_domain_error(form, exc, {"Duplicate": "code"})
        else:
            flash(f"Tax rate {tax.name} is created.", "success")
            return redirect(url_for("settings.overview"))
    status = 422 if request.method == "POST" else 200
    return render_template("settings/tax_form.html", form=form, tax=None), status


@bp.route("/taxes/<tax_id>", methods=["GET", "POST"])
def edit_tax(tax_id: str) -> Any:
    """Edit a tax rate. Existing invoices keep the rate their lines copied."""
    tax = _tax(tax_id)
    form = TaxForm(obj=tax)
    del form.code
    if form.validate_on_submit():
        changes = {
            "name": form.name.data,
            "rate": form.rate.data,
            "description": form.description.data,
            "applied_to_organization": form.applied_to_organization.data,
        }
        try:
            taxes.update_tax(account_id(), tax.code, changes)
        except DomainError as exc:
            apply_domain_error(form, exc)
        else:
            flash(f"Tax rate {tax.name} is saved.", "success")
            return redirect(url_for("settings.overview"))
    status = 422 if request.method == "POST" else 200
    return render_template("settings/tax_form.html", form=form, tax=tax), status


@bp.post("/taxes/<tax_id>/delete")
def delete_tax(tax_id: str) -> Any:
    """Delete a tax rate; invoice lines keep the rate they copied."""
    tax = _tax(tax_id)
    taxes.delete_tax(account_id(), tax.code)
    flash(f"Tax rate {tax.name} is deleted.", "success")
    return redirect(url_for("settings.overview"))


# ---------------------------------------------------------------- API keys


@bp.route("/api-keys", methods=["GET", "POST"])
def api_keys() -> Any:
    """The account's API keys; creating one shows it in full this once."""
    form = ApiKeyForm()
    new_key: str | None = None
    status = 200
    if form.validate_on_submit():
        _, new_key = accounts.create_api_key(account_id(), form.name.data or "")
        form = ApiKeyForm(formdata=None)
        status = 201
    elif request.method == "POST":
        status = 422
    response = Response(
        render_template(
            "settings/api_keys.html",
            form=form,
            keys=accounts.list_api_keys(account_id()),
            new_key=new_key,
            revoke_form=CheckOnly(),
        ),
        status=status,
    )
    if new_key:
        # Shown once: not in the session cookie, not in any cache, not in history.
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/api-keys/<key_id>/revoke")
def revoke_api_key(key_id: str) -> Any:
    """Revoke a key (it is kept, marked revoked: audit records still name it)."""
    key = accounts.revoke_api_key(account_id(), parse_uuid(key_id, "API key"))
    flash(f"API key {key.name} ({key.prefix}…) is revoked.", "success")
    return redirect(url_for("settings.api_keys"))
