"""Subscription pages: the catalogue (plans, add-ons, discounts), subscriptions with their
add-ons, discounts, pending additional costs and credits, the state actions, and "invoice
now" with a preview computed by `preview_subscription_invoice`, the same code that
creates the invoice. Every rule is the services'; these routes parse, call and render."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm

from ...catalog import service as catalog
from ...catalog.models import Plan
from ...customers import service as customers
from ...errors import (
    NOTHING_TO_INVOICE,
    DomainError,
    Duplicate,
    InvalidInput,
    InvalidState,
    NotFound,
)
from ...invoices import service as invoices
from ...invoices.calc import Totals
from ...invoices.models import InvoiceLine
from ...payments.service import ManualTransfer
from ...querying import MAX_PAGE_SIZE, parse_uuid
from ...subscriptions import invoicing, overview
from ...subscriptions import service as subs
from ...subscriptions.models import PENDING
from ...taxes import service as taxes
from ..fields import select_choices
from ..formatting import account_zone, start_of_local_day
from ..pages import apply_domain_error, is_htmx, page_blueprint, render
from ..signin import account, account_id
from .forms import (
    APPLY_TO_LABELS,
    STATE_FILTERS,
    AddOnForm,
    AddOnPick,
    AttachDiscountForm,
    CostForm,
    CreditForm,
    DiscountForm,
    InvoiceNowForm,
    OrderLineRow,
    PlanForm,
    SubscriptionFilters,
    SubscriptionForm,
    add_order_line_row,
    money_minor,
    new_handle,
    order_line_rows,
    percentage,
    vat_fraction,
)

bp = page_blueprint("subscriptions", __name__)
PAGE_SIZE = 50
# Catalogue pages are not about one customer: their money is shown in this locale.
CATALOG_LOCALE = "en"


SUB_STATE_LABELS = {"active": "Active", "on_hold": "On hold", "expired": "Expired"}
ORIGIN_LABELS = {
    "plan": "Plan",
    "add_on": "Add-on",
    "additional_cost": "Additional cost",
    "ondemand": "Order line",
    "usage": "Usage",
    "discount": "Discount",
    "credit": "Credit",
}


@bp.app_template_filter("sub_state_label")
def _sub_state_label(state: str) -> str:
    return SUB_STATE_LABELS.get(state, state)


@bp.app_template_filter("origin_label")
def _origin_label(origin: str) -> str:
    return ORIGIN_LABELS.get(origin, origin)


@bp.app_template_filter("apply_to_label")
def _apply_to_label(target: str) -> str:
    return APPLY_TO_LABELS.get(target, target)


SCHEDULE_UNITS = {
    "daily": ("day", "days"),
    "weekly_fixedday": ("week", "weeks"),
    "month_startdate": ("month", "months"),
    "month_fixedday": ("month (fixed day)", "months (fixed day)"),
    "month_lastday": ("month (to its last day)", "months (to the last day)"),
}


@bp.app_template_filter("schedule_label")
def _schedule_label(schedule_type: str, interval: int = 1) -> str:
    units = SCHEDULE_UNITS.get(schedule_type)
    if units is None:
        return "Manual (on demand)"
    return f"Every {units[0]}" if interval == 1 else f"Every {interval} {units[1]}"


CATALOG_ENDPOINTS = {
    "list_plans",
    "new_plan",
    "plan_detail",
    "list_add_ons",
    "new_add_on",
    "add_on_detail",
    "list_discounts",
    "new_discount",
    "discount_detail",
}


@bp.context_processor
def _nav_section() -> dict[str, str]:
    """Which main navigation entry these pages belong to: the catalogue or subscriptions."""
    name = (request.endpoint or "").rpartition(".")[2]
    return {"nav_section": "catalog" if name in CATALOG_ENDPOINTS else "subscriptions"}


@bp.errorhandler(InvalidState)
def _refused(exc: InvalidState) -> Any:
    """An action the subscription's (or cost's, credit's) state does not allow: 409."""
    handle = (request.view_args or {}).get("handle")
    return render_template("subscriptions/refused.html", message=exc.message, handle=handle), 409


def _page(lister: Any, *args: Any, **kw: Any) -> tuple[list[Any], str | None]:
    """One page of a keyset-paged service list; a page token that is not one (an edited
    URL) starts from the first page."""
    token = request.args.get("after") or None
    try:
        return lister(*args, PAGE_SIZE, token, **kw)
    except InvalidInput as exc:
        if exc.loc != ("next_page_token",):
            raise
        return lister(*args, PAGE_SIZE, None, **kw)


def _status() -> int:
    """A form page answered to a post was not saved: 422."""
    return 422 if request.method == "POST" else 200


def _has_errors(form: FlaskForm) -> bool:
    return bool(form.form_errors) or any(f.errors for f in form)


def _catalog_currency() -> str:
    """Add-ons and fixed discounts carry no currency of their own: they take the currency
    of the plan they are invoiced with. The pages enter and show them in the account's
    default currency."""
    return account().default_currency


# ---------------------------------------------------------------- plans


@bp.get("/plans/")
def list_plans() -> Any:
    """Plans, newest first."""
    rows, next_token = _page(catalog.list_plans, account_id())
    return render_template(
        "subscriptions/plans.html", rows=rows, next_token=next_token, locale=CATALOG_LOCALE
    )


@bp.route("/plans/new", methods=["GET", "POST"])
def new_plan() -> Any:
    """Create a plan."""
    form = PlanForm()
    if request.method == "GET":
        form.currency.data = account().default_currency
    if request.method == "POST":
        valid = form.validate_on_submit()
        currency = form.currency.data if not form.currency.errors else None
        amount = money_minor(form.amount, currency) if currency else None
        vat_ok, vat = vat_fraction(form.vat)
        if valid and amount is not None and vat_ok:
            data = {
                "handle": form.handle.data,
                "name": form.name.data,
                "description": form.description.data,
                "currency": currency,
                "amount": amount,
                "vat": vat,
                "amount_incl_vat": form.amount_incl_vat.data,
                "quantity": form.quantity.data,
                "schedule_type": form.schedule_type.data,
                "interval_length": form.interval_length.data,
            }
            try:
                plan = catalog.create_plan(account_id(), data)
            except DomainError as exc:
                apply_domain_error(form, exc, {"Duplicate": "handle"})
            else:
                flash(f"Plan {plan.name} is created.", "success")
                return redirect(url_for("subscriptions.plan_detail", handle=plan.handle))
    return render_template("subscriptions/plan_form.html", form=form), _status()


@bp.get("/plans/<handle>")
def plan_detail(handle: str) -> Any:
    """One plan and the add-ons that fit it."""
    aid = account_id()
    plan = catalog.get_plan(aid, handle)
    add_ons, _ = catalog.list_add_ons(aid, MAX_PAGE_SIZE, None)
    fitting = [a for a in add_ons if catalog.add_on_fits_plan(a, plan)]
    return render_template(
        "subscriptions/plan_detail.html",
        plan=plan,
        add_ons=fitting,
        locale=CATALOG_LOCALE,
        catalog_currency=_catalog_currency(),
    )


# ---------------------------------------------------------------- add-ons


@bp.get("/add-ons/")
def list_add_ons() -> Any:
    """Add-ons, newest first."""
    rows, next_token = _page(catalog.list_add_ons, account_id())
    return render_template(
        "subscriptions/add_ons.html",
        rows=rows,
        next_token=next_token,
        locale=CATALOG_LOCALE,
        currency=_catalog_currency(),
    )


def _plan_choices(aid: uuid.UUID) -> list[Plan]:
    plans, _ = catalog.list_plans(aid, MAX_PAGE_SIZE, None)
    return plans


@bp.route("/add-ons/new", methods=["GET", "POST"])
def new_add_on() -> Any:
    """Create an add-on, for every plan or only some."""
    aid = account_id()
    form = AddOnForm()
    form.eligible_plans.choices = select_choices(
        (p.handle, f"{p.name} ({p.handle})") for p in _plan_choices(aid)
    )
    currency = _catalog_currency()
    if request.method == "POST":
        valid = form.validate_on_submit()
        amount = money_minor(form.amount, currency)
        vat_ok, vat = vat_fraction(form.vat)
        if valid and amount is not None and vat_ok:
            data = {
                "handle": form.handle.data,
                "name": form.name.data,
                "description": form.description.data,
                "amount": amount,
                "vat": vat,
                "amount_incl_vat": form.amount_incl_vat.data,
                "type": form.type.data,
                "eligible_plans": list(form.eligible_plans.data or []),
            }
            try:
                add_on = catalog.create_add_on(aid, data)
            except DomainError as exc:
                apply_domain_error(form, exc, {"Duplicate": "handle", "NotFound": "eligible_plans"})
            else:
                flash(f"Add-on {add_on.name} is created.", "success")
                return redirect(url_for("subscriptions.add_on_detail", handle=add_on.handle))
    return (
        render_template("subscriptions/add_on_form.html", form=form, currency=currency),
        _status(),
    )


@bp.get("/add-ons/<handle>")
def add_on_detail(handle: str) -> Any:
    """One add-on."""
    add_on = catalog.get_add_on(account_id(), handle)
    return render_template(
        "subscriptions/add_on_detail.html",
        add_on=add_on,
        locale=CATALOG_LOCALE,
        currency=_catalog_currency(),
    )


# ---------------------------------------------------------------- discounts


@bp.get("/discounts/")
def list_discounts() -> Any:
    """Discounts, newest first."""
    rows, next_token = _page(catalog.list_discounts, account_id())
    return render_template(
        "subscriptions/discounts.html",
        rows=rows,
        next_token=next_token,
        locale=CATALOG_LOCALE,
        currency=_catalog_currency(),
    )


@bp.route("/discounts/new", methods=["GET", "POST"])
def new_discount() -> Any:
    """Create a discount: a fixed amount or a percentage, on some kinds of lines."""
    form = DiscountForm()
    currency = _catalog_currency()
    if request.method == "POST":
        valid = form.validate_on_submit()
        amount = money_minor(form.amount, currency, required=False)
        pct_ok, pct = percentage(form.percentage)
        if valid and not form.amount.errors and pct_ok:
            data = {
                "handle": form.handle.data,
                "name": form.name.data,
                "description": form.description.data,
                "amount": amount,
                "percentage": pct,
                "apply_to": list(form.apply_to.data or ["all"]),
                "fixed_count": form.fixed_count.data,
                "fixed_period": form.fixed_period.data,
                "fixed_period_unit": form.fixed_period_unit.data or None,
            }
            try:
                discount = catalog.create_discount(account_id(), data)
            except DomainError as exc:
                apply_domain_error(form, exc, {"Duplicate": "handle"})
            else:
                flash(f"Discount {discount.name} is created.", "success")
                return redirect(url_for("subscriptions.discount_detail", handle=discount.handle))
    return (
        render_template("subscriptions/discount_form.html", form=form, currency=currency),
        _status(),
    )


@bp.get("/discounts/<handle>")
def discount_detail(handle: str) -> Any:
    """One discount."""
    discount = catalog.get_discount(account_id(), handle)
    return render_template(
        "subscriptions/discount_detail.html",
        discount=discount,
        locale=CATALOG_LOCALE,
        currency=_catalog_currency(),
    )


# ---------------------------------------------------------------- subscriptions


@bp.get("/subscriptions/")
def list_subscriptions() -> Any:
    """Subscriptions, newest first, by state and customer; htmx gets the results only."""
    aid = account_id()
    filters = SubscriptionFilters(request.args)
    filters.validate()
    state = filters.state.data if filters.state.data in dict(STATE_FILTERS) else ""
    customer_handle = (filters.customer.data or "").strip() or None
    customer = None
    if customer_handle:
        try:
            customer = customers.get_customer_by_handle(aid, customer_handle)
        except NotFound:
            customer = None
    rows, next_token = _page(
        subs.list_subscriptions, aid, customer=customer_handle, state=state or None
    )
    refs = overview.list_refs(rows)
    args = {k: v for k, v in (("state", state), ("customer", customer_handle)) if v}
    return render(
        "subscriptions/list.html",
        "subscriptions/_results.html",
        filters=filters,
        rows=rows,
        refs=refs,
        next_token=next_token,
        customer=customer,
        customer_handle=customer_handle,
        list_args=args,
        first_page=not request.args.get("after"),
    )


def _add_on_picks(aid: uuid.UUID, posted: bool) -> list[AddOnPick]:
    add_ons, _ = catalog.list_add_ons(aid, MAX_PAGE_SIZE, None)
    picks = []
    for a in sorted(add_ons, key=lambda a: a.name.lower()):
        pick = AddOnPick(a.handle, a.name, a.type, False, "1")
        if posted:
            pick.chosen = request.form.get(pick.field_id) == "1"
            pick.quantity_text = request.form.get(pick.field_id + "-quantity", "1").strip()
        picks.append(pick)
    return picks


def _chosen_add_ons(picks: list[AddOnPick]) -> tuple[subs.AddOnChoice, ...] | None:
    choices = []
    ok = True
    for pick in picks:
        if not pick.chosen:
            continue
        quantity = None
        if pick.type == "quantity":
            text = pick.quantity_text or "1"
            if not text.isdigit() or not 1 <= int(text) <= 10**9:
                pick.error = "Enter a whole number of at least 1."
                ok = False
                continue
            quantity = int(text)
        choices.append(subs.AddOnChoice(add_on=pick.handle, quantity=quantity))
    return tuple(choices) if ok else None


@bp.route("/subscriptions/new", methods=["GET", "POST"])
def new_subscription() -> Any:
    """Subscribe a customer to a plan, with add-ons."""
    aid = account_id()
    form = SubscriptionForm()
    customer_rows = customers.find_customers(aid, "", limit=500)
    plans = _plan_choices(aid)
    form.customer.choices = select_choices(
        [("", "Choose a customer…")]
        + [(c.external_id, f"{c.name} ({c.external_id})") for c in customer_rows]
    )
    form.plan.choices = select_choices(
        [("", "Choose a plan…")]
        + [(p.handle, f"{p.name} ({p.currency} {p.handle})") for p in plans]
    )
    if request.method == "GET":
        form.customer.data = request.args.get("customer", "")
        form.plan.data = request.args.get("plan", "")
    picks = _add_on_picks(aid, request.method == "POST")
    if request.method == "POST":
        valid = form.validate_on_submit()
        if not form.customer.data:
            form.customer.errors = [*form.customer.errors, "Choose a customer."]
        plan = next((p for p in plans if p.handle == form.plan.data), None)
        if plan is None:
            form.plan.errors = [*form.plan.errors, "Choose a plan from the list."]
        amount = (
            money_minor(form.amount, plan.currency, required=False) if plan is not None else None
        )
        chosen = _chosen_add_ons(picks)
        if valid and plan is not None and chosen is not None and not _has_errors(form):
            req = subs.NewSubscription(
                handle=form.handle.data or new_handle("sub"),
                customer=form.customer.data,
                plan=plan.handle,
                amount=amount,
                quantity=form.quantity.data,
                start_date=start_of_local_day(form.start_date.data)
                if form.start_date.data
                else None,
                add_ons=chosen,
                cost_center=form.cost_center.data,
                purchase_order_number=form.purchase_order_number.data,
            )
            try:
                sub = subs.create_subscription(aid, req)
            except NotFound as exc:
                target = {"Customer": form.customer, "Plan": form.plan}.get(exc.resource)
                if target is not None:
                    target.errors = [*target.errors, "Choose one from the list."]
                else:
                    form.form_errors.append(exc.message)
            except DomainError as exc:
                apply_domain_error(form, exc, {"Duplicate": "handle"})
            else:
                flash(f"Subscription {sub.handle} is created.", "success")
                return redirect(url_for("subscriptions.subscription_detail", handle=sub.handle))
    status = 422 if request.method == "POST" else 200
    return render_template("subscriptions/form.html", form=form, picks=picks), status


@bp.get("/subscriptions/by-id/<subscription_id>")
def subscription_by_id(subscription_id: str) -> Any:
    """An invoice's link to its subscription (invoices know it by id)."""
    sub = overview.subscription_by_id(account_id(), parse_uuid(subscription_id, "Subscription"))
    return redirect(url_for("subscriptions.subscription_detail", handle=sub.handle))


@dataclass
class DetailForms:
    cost: CostForm = field(default_factory=lambda: CostForm(formdata=None, prefix="cost"))
    credit: CreditForm = field(default_factory=lambda: CreditForm(formdata=None, prefix="credit"))
    discount: AttachDiscountForm = field(
        default_factory=lambda: AttachDiscountForm(formdata=None, prefix="discount")
    )


def _detail(handle: str, forms: DetailForms | None = None, status: int = 200) -> Any:
    aid = account_id()
    view = overview.subscription_overview(aid, handle)
    forms = forms or DetailForms()
    discounts, _ = catalog.list_discounts(aid, MAX_PAGE_SIZE, None)
    forms.discount.discount.choices = select_choices(
        [("", "Choose a discount…")] + [(d.handle, f"{d.name} ({d.handle})") for d in discounts]
    )
    costs, more_costs = subs.list_additional_costs(aid, MAX_PAGE_SIZE, None, subscription=handle)
    credits, more_credits = subs.list_credits(aid, MAX_PAGE_SIZE, None, subscription=handle)
    latest = invoices.list_invoices(
        aid, invoices.InvoiceFilter(subscription_id=view.subscription.id), 0, 20, "-created_at"
    )
    return render_template(
        "subscriptions/detail.html",
        v=view,
        sub=view.subscription,
        forms=forms,
        costs=costs,
        credits=credits,
        more_costs=bool(more_costs),
        more_credits=bool(more_credits),
        invoices=latest,
        currency=view.plan.currency,
        locale=view.customer.document_locale,
        PENDING=PENDING,
    ), status


@bp.get("/subscriptions/<handle>")
def subscription_detail(handle: str) -> Any:
    """One subscription: state, period, add-ons, discounts, pending costs and credits,
    its invoices, and the actions its state allows."""
    return _detail(handle)


def _acted(handle: str, message: str) -> Any:
    flash(message, "success")
    return redirect(url_for("subscriptions.subscription_detail", handle=handle))


@bp.post("/subscriptions/<handle>/hold")
def hold(handle: str) -> Any:
    """Active -> on hold: no invoices until reactivated."""
    subs.put_on_hold(account_id(), handle)
    return _acted(handle, f"Subscription {handle} is on hold.")


@bp.post("/subscriptions/<handle>/reactivate")
def reactivate(handle: str) -> Any:
    """On hold -> active."""
    subs.reactivate(account_id(), handle)
    return _acted(handle, f"Subscription {handle} is active again.")


@bp.post("/subscriptions/<handle>/cancel")
def cancel(handle: str) -> Any:
    """Cancel: it runs to the end of its period and takes no on-demand invoice."""
    subs.cancel(account_id(), handle)
    return _acted(handle, f"Subscription {handle} is cancelled.")


@bp.post("/subscriptions/<handle>/costs")
def add_cost(handle: str) -> Any:
    """A one-time charge waiting for the subscription's next invoice."""
    aid = account_id()
    view = overview.subscription_overview(aid, handle)
    form = CostForm(prefix="cost")
    valid = form.validate_on_submit()
    amount = money_minor(form.amount, view.plan.currency)
    vat_ok, vat = vat_fraction(form.vat)
    if valid and amount is not None and vat_ok:
        data = {
            "handle": form.handle.data or new_handle("cost"),
            "subscription": handle,
            "ordertext": form.ordertext.data,
            "amount": amount,
            "quantity": form.quantity.data,
            "vat": vat,
            "amount_incl_vat": form.amount_incl_vat.data,
        }
        try:
            cost = subs.create_additional_cost(aid, data)
        except DomainError as exc:
            apply_domain_error(form, exc, {"Duplicate": "handle", "InvalidState": "ordertext"})
        else:
            return _acted(handle, f"Additional cost {cost.ordertext} is added.")
    return _detail(handle, DetailForms(cost=form), 422)


@bp.post("/subscriptions/<handle>/costs/<cost_handle>/cancel")
def cancel_cost(handle: str, cost_handle: str) -> Any:
    """Cancel a pending additional cost of this subscription."""
    aid = account_id()
    sub = subs.get_subscription(aid, handle)
    cost = subs.get_additional_cost(aid, cost_handle)
    if cost.subscription_id != sub.id:
        raise NotFound("Additional cost")
    subs.cancel_additional_cost(aid, cost_handle)
    return _acted(handle, f"Additional cost {cost.ordertext} is cancelled.")


@bp.post("/subscriptions/<handle>/credits")
def add_credit(handle: str) -> Any:
    """Money owed back to the subscriber, taken off its next invoices."""
    aid = account_id()
    view = overview.subscription_overview(aid, handle)
    form = CreditForm(prefix="credit")
    valid = form.validate_on_submit()
    amount = money_minor(form.amount, view.plan.currency)
    if valid and amount is not None:
        data = {
            "handle": form.handle.data or new_handle("credit"),
            "subscription": handle,
            "amount": amount,
            "text": form.text.data,
            "valid_from": form.valid_from.data,
        }
        try:
            credit = subs.create_credit(aid, data)
        except DomainError as exc:
            apply_domain_error(form, exc, {"Duplicate": "handle", "InvalidState": "amount"})
        else:
            return _acted(handle, f"Credit {credit.text or credit.handle} is added.")
    return _detail(handle, DetailForms(credit=form), 422)


@bp.post("/subscriptions/<handle>/credits/<credit_handle>/cancel")
def cancel_credit(handle: str, credit_handle: str) -> Any:
    """Cancel a credit of this subscription that no invoice has touched."""
    aid = account_id()
    sub = subs.get_subscription(aid, handle)
    credit = subs.get_credit(aid, credit_handle)
    if credit.subscription_id != sub.id:
        raise NotFound("Credit")
    subs.cancel_credit(aid, credit_handle)
    return _acted(handle, f"Credit {credit.text or credit.handle} is cancelled.")


@bp.post("/subscriptions/<handle>/discounts")
def attach_discount(handle: str) -> Any:
    """Attach a discount of the catalogue, or redeem a coupon code."""
    aid = account_id()
    subs.get_subscription(aid, handle)
    form = AttachDiscountForm(prefix="discount")
    form.discount.choices = []
    if form.validate_on_submit():
        discount = form.discount.data or None
        coupon = form.coupon.data or None
        if (discount is None) == (coupon is None):
            form.discount.errors = [
                *form.discount.errors,
                "Choose a discount or enter a coupon code.",
            ]
        else:
            try:
                subs.add_discount(
                    aid, handle, handle=form.handle.data, discount=discount, coupon=coupon
                )
            except NotFound as exc:
                target = form.coupon if exc.resource == "Coupon" else form.discount
                target.errors = [*target.errors, exc.message]
            except DomainError as exc:
                apply_domain_error(form, exc, {"Duplicate": "handle", "InvalidState": "coupon"})
            else:
                return _acted(handle, "The discount is attached.")
    return _detail(handle, DetailForms(discount=form), 422)


# ---------------------------------------------------------------- invoice now


@dataclass
class InvoiceNow:
    """The invoice-now form and what it shows besides: rows, preview, notes."""

    form: InvoiceNowForm
    rows: list[OrderLineRow]
    view: overview.SubscriptionOverview
    tax_choices: list[Any]
    lines: list[InvoiceLine] = field(default_factory=list)
    totals: Totals | None = None
    note: str = ""
    preview_error: str = ""

    @property
    def currency(self) -> str:
        return self.view.plan.currency

    @property
    def locale(self) -> str:
        return self.view.customer.document_locale

    def has_errors(self) -> bool:
        return _has_errors(self.form) or any(f.errors for row in self.rows for f in row.form)


def _tax_choices(aid: uuid.UUID) -> list[Any]:
    return select_choices(
        [("", "Default")]
        + [
            (t.code, f"{t.name} ({t.rate.normalize():f} %)")
            for t in taxes.list_taxes(aid, 0, 500, "code")
        ]
    )


def _day(value: date | None) -> datetime | None:
    return start_of_local_day(value) if value else None


def _order_lines(now: InvoiceNow) -> tuple[invoicing.OrderLineInput, ...] | None:
    lines = []
    ok = True
    for row in now.rows:
        f = row.form
        if f.is_blank():
            continue
        if not f.validate():
            ok = False
        text = (f.ordertext.data or "").strip()
        if not text:
            f.ordertext.errors = [*f.ordertext.errors, "Enter a text."]
            ok = False
        qty_text = (f.quantity.data or "").strip() or "1"
        if not qty_text.isdigit() or not 1 <= int(qty_text) <= 10**9:
            f.quantity.errors = [*f.quantity.errors, "A whole number of at least 1."]
            ok = False
        amount = money_minor(f.amount, now.currency, allow_negative=True)
        tax = f.tax.data or ""
        if tax and tax not in {c.value for c in now.tax_choices}:
            f.tax.errors = [*f.tax.errors, "Choose one of the listed rates."]
            ok = False
        if not ok or amount is None:
            ok = False
            continue
        lines.append(
            invoicing.OrderLineInput(
                ordertext=text,
                amount=amount,
                quantity=int(qty_text),
                amount_incl_vat=f.amount_incl_vat.data != "0",
                tax_policy=tax or None,
            )
        )
    return tuple(lines) if ok else None


def _on_demand_request(now: InvoiceNow) -> invoicing.OnDemandRequest | None:
    """The request the form describes, or None when a field is malformed."""
    form = now.form
    lines = _order_lines(now)
    period = invoicing.Period(_day(form.plan_period_from.data), _day(form.plan_period_to.data))
    add_on_periods = (
        {a.link.handle: period for a in now.view.add_ons}
        if form.plan_manual.data and (period.start or period.end)
        else {}
    )
    transfer = None
    settlement = form.settlement.data
    if settlement == "manual":
        paid_on = form.transfer_date.data or datetime.now(account_zone()).date()
        transfer = ManualTransfer(
            method=form.transfer_method.data,
            payment_date=start_of_local_day(paid_on),
            comment=form.transfer_comment.data,
            reference=form.transfer_reference.data,
        )
    if lines is None or _has_errors(form):
        return None
    return invoicing.OnDemandRequest(
        handle=form.handle.data or "preview",
        due=_day(form.due_date.data),
        instant=settlement == "instant",
        settle_requested=settlement == "auto",
        settle_payment_method="auto" if settlement == "auto" else None,
        plan_manual=form.plan_manual.data,
        plan_period=period if form.plan_manual.data else invoicing.Period(),
        add_on_service_periods=add_on_periods,
        collect_additional_costs=form.collect_additional_costs.data,
        collect_credit=form.collect_credit.data,
        apply_discounts=form.apply_discounts.data,
        include_unbilled_usage=form.include_unbilled_usage.data,
        cost_center=form.cost_center.data,
        purchase_order_number=form.purchase_order_number.data,
        order_lines=lines,
        manual_transfer=transfer,
    )


def _show_invoice_error(now: InvoiceNow, exc: DomainError, *, preview: bool) -> None:
    """A service error on the field it names, or on the form (preview: in the panel)."""
    form = now.form
    if isinstance(exc, InvalidInput) and exc.loc:
        if exc.loc[0] == "order_lines" and len(exc.loc) >= 3 and isinstance(exc.loc[1], int):
            rows = [r for r in now.rows if not r.form.is_blank()]
            if 0 <= exc.loc[1] < len(rows):
                target = (
                    rows[exc.loc[1]].form.tax
                    if exc.loc[2] == "tax_policy"
                    else rows[exc.loc[1]].form.amount
                )
                target.errors = [*target.errors, exc.message]
                return
        if exc.loc[0] == "due":
            form.due_date.errors = [*form.due_date.errors, exc.message]
            return
    if isinstance(exc, Duplicate):
        form.handle.errors = [*form.handle.errors, exc.message]
        return
    if isinstance(exc, InvalidState) and exc.reason == NOTHING_TO_INVOICE:
        now.note = "Nothing to invoice: choose plan lines, or add an order line."
        if not preview:
            form.form_errors.append("There is nothing to invoice: " + now.note.split(": ", 1)[1])
        return
    if preview:
        now.preview_error = exc.message
    else:
        form.form_errors.append(exc.message)


@bp.route("/subscriptions/<handle>/invoice", methods=["GET", "POST"])
def invoice_now(handle: str) -> Any:
    """Invoice a subscription now with the on-demand options; the preview is computed by
    the server on every change (htmx) or with the Preview button."""
    aid = account_id()
    view = overview.subscription_overview(aid, handle)
    posted = request.method == "POST"
    form = InvoiceNowForm()
    choices = _tax_choices(aid)
    rows = order_line_rows(request.form if posted else None, choices)
    action = request.form.get("action", "preview") if posted else ""
    removed = request.form.get("remove_line") if posted else None
    if removed is not None:
        action = "remove_line"
        rows = [r for r in rows if str(r.index) != removed]
    if posted:
        form.validate()
    if not rows or action == "add_line":
        add_order_line_row(rows, choices)
    now = InvoiceNow(form, rows, view, choices)

    req = _on_demand_request(now)
    if req is not None:
        try:
            preview = invoicing.preview_subscription_invoice(aid, handle, req)
        except DomainError as exc:
            _show_invoice_error(now, exc, preview=True)
        else:
            now.lines, now.totals = preview.lines, preview.totals
    else:
        now.note = "Correct the marked fields to see the preview."

    if action == "create" and req is not None and not now.has_errors():
        created = _create(now, req)
        if created is not None:
            return created
    status = 422 if posted and (now.has_errors() or now.preview_error or now.note) else 200
    if is_htmx() and posted and action != "create":
        if action == "add_line":
            return render_template(
                "subscriptions/_order_line_row.html", n=now, row=rows[-1]
            ), status
        return render_template("subscriptions/_invoice_update.html", n=now, removed=removed), status
    return render_template("subscriptions/invoice_now.html", n=now), status


def _create(now: InvoiceNow, req: invoicing.OnDemandRequest) -> Any:
    aid = account_id()
    req = replace(req, handle=now.form.handle.data or new_handle("inv"))
    try:
        plan = invoicing.create_subscription_invoice(aid, now.view.subscription.handle, req)
    except DomainError as exc:
        _show_invoice_error(now, exc, preview=False)
        return None
    invoicing.charge_after_create(aid, plan)
    # The invoice page shows its number and state (paid, failed …); this request does not
    # read it back.
    flash("The invoice is created.", "success")
    return redirect(url_for("invoices.invoice_detail", invoice_id=plan.invoice_id))
