"""How the pages show values: days and times in the account's time zone, percentages,
state and history labels, and the template filters for them and for money (Babel, the
customer's locale: `money.format_money`)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from flask import Flask
from flask_login import current_user

from ..db import decimal_to_str
from ..invoices.models import DRAFT, FAILED, OPEN, PAID, VOID
from ..money import format_money, format_unit_amount, fraction_to_percent

STATE_LABELS = {DRAFT: "Draft", OPEN: "Open", PAID: "Paid", FAILED: "Failed", VOID: "Void"}

HISTORY_LABELS = {
    "invoice.created": "Created",
    "invoice.finalized": "Finalized",
    "invoice.paid": "Marked paid",
    "invoice.voided": "Voided",
    "invoice.deleted": "Deleted",
    "invoice.updated": "Due date changed",
    "invoice.lines_replaced": "Lines changed",
}


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def account_zone() -> ZoneInfo:
    """The signed-in user's account's time zone (UTC without a signed-in user)."""
    timezone = current_user.account.timezone if current_user.is_authenticated else None
    return _zone(timezone or "UTC")


def local_date(value: datetime | None, zone: ZoneInfo | None = None) -> str:
    """The calendar day in the account's zone, `YYYY-MM-DD`."""
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


def percent(value: Decimal | None) -> str:
    if value is None:
        return ""
    return f"{format(value.normalize(), 'f')} %"


def history_label(action: str) -> str:
    return HISTORY_LABELS.get(action, action.split(".")[-1].replace("_", " ").capitalize())


def register_filters(app: Flask) -> None:
    app.jinja_env.filters.update(
        money=format_money,
        unit_money=format_unit_amount,
        decimal=decimal_to_str,
        local_date=local_date,
        local_datetime=local_datetime,
        percent=percent,
        rate_percent=lambda fraction: percent(fraction_to_percent(fraction)),
        state_label=lambda state: STATE_LABELS.get(state, state),
        history_label=history_label,
    )
    app.jinja_env.globals.update(account_zone=account_zone)
