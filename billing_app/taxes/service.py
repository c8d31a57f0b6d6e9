"""Tax rates and the precedence that picks the rate of a line (DOMAIN.md):
the line, the item (plan / add-on / charge), the customer, the billing entity default,
the account (its organisation-wide tax, else its default VAT), else 0."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, bindparam, cast, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..audit import service as audit
from ..db import write_transaction
from ..errors import Duplicate, InvalidInput
from ..extensions import db
from ..querying import apply_changes, get_scoped, order_clause, page
from .models import TaxRate

ORDER_FIELDS = {
    "code": TaxRate.code,
    "name": TaxRate.name,
    # Stored as exact text: order by its numeric value, not by the string.
    "rate": cast(TaxRate.rate, Numeric(20, 6)),
    "created_at": TaxRate.created_at,
}


def validate_percent(rate: Decimal, loc: tuple[str, ...] = ("rate",)) -> Decimal:
    if rate < 0 or rate > 100:
        raise InvalidInput(loc, "A tax rate is a percent between 0 and 100")
    return rate


@dataclass(frozen=True)
class NewTax:
    tax: TaxRate
    # The code of the organisation-wide tax the new one replaced as the account default.
    replaced_organization_tax: str | None


def create_tax(account_id: uuid.UUID, data: dict[str, Any]) -> NewTax:
    validate_percent(data["rate"])
    replaced = None
    with write_transaction():
        if db.session.scalar(
            select(func.count()).where(
                TaxRate.account_id == account_id, TaxRate.code == data["code"]
            )
        ):
            raise Duplicate("Tax", "Tax with this code already exists")
        if data.get("applied_to_organization"):
            replaced = _clear_org_default(account_id)
        tax = TaxRate(account_id=account_id, **data)
        db.session.add(tax)
        try:
            db.session.flush()
        except IntegrityError:
            raise Duplicate("Tax", "Tax with this code already exists") from None
        audit.record(account_id, "tax.created", "tax", tax.id, after=data)
    return NewTax(tax, replaced)


def _clear_org_default(account_id: uuid.UUID) -> str | None:
    """Unset the account's organisation-wide tax; its code (None: there was none)."""
    cleared = db.session.scalars(
        update(TaxRate)
        .where(TaxRate.account_id == account_id, TaxRate.applied_to_organization.is_(True))
        .values(applied_to_organization=False)
        .returning(TaxRate.code)
    ).first()
    return cleared


def update_tax(account_id: uuid.UUID, code: str, changes: dict[str, Any]) -> TaxRate:
    if "rate" in changes:
        validate_percent(changes["rate"])
    with write_transaction():
        tax = get_scoped(TaxRate, account_id, "Tax", code=code)
        if changes.get("applied_to_organization"):
            _clear_org_default(account_id)
        before, after = apply_changes(tax, changes)
        if after:
            audit.record(account_id, "tax.updated", "tax", tax.id, before=before, after=after)
    return tax


def delete_tax(account_id: uuid.UUID, code: str) -> None:
    """Invoice lines keep the rate they copied; customers and entities using it fall back
    to the next level of the precedence."""
    with write_transaction():
        tax = get_scoped(TaxRate, account_id, "Tax", code=code)
        from ..customers.models import Customer
        from ..entities.models import BillingEntity

        db.session.execute(
            update(Customer).where(Customer.tax_rate_id == tax.id).values(tax_rate_id=None)
        )
        db.session.execute(
            update(BillingEntity)
            .where(BillingEntity.default_tax_rate_id == tax.id)
            .values(default_tax_rate_id=None)
        )
        db.session.delete(tax)
        audit.record(
            account_id, "tax.deleted", "tax", tax.id, before={"code": tax.code, "rate": tax.rate}
        )


def get_tax(account_id: uuid.UUID, code: str) -> TaxRate:
    return get_scoped(TaxRate, account_id, "Tax", code=code)


def list_taxes(account_id: uuid.UUID, skip: int, limit: int, order_by: str | None) -> list[TaxRate]:
    stmt = (
        select(TaxRate)
        .where(TaxRate.account_id == account_id)
        .order_by(*order_clause(TaxRate, order_by, ORDER_FIELDS, "code"))
    )
    return page(stmt, skip, limit)


def tax_id_for_code(
    account_id: uuid.UUID, code: str | None, loc: tuple[str, ...]
) -> uuid.UUID | None:
    if code is None:
        return None
    tax_id = db.session.scalar(
        select(TaxRate.id).where(TaxRate.account_id == account_id, TaxRate.code == code)
    )
    if tax_id is None:
        raise InvalidInput(loc, f"Unknown tax code {code!r}")
    return tax_id


@dataclass(frozen=True)
class TaxTable:
    """The tax rates one document can use, loaded in one query, and the precedence that
    picks a line's rate: the line, the item (plan / add-on / charge), the customer, the
    billing entity default, the account (organisation-wide tax, else default VAT), else 0."""

    by_id: dict[uuid.UUID, tuple[Decimal, str]]
    organisation: tuple[Decimal, str | None]

    def rate_for(
        self,
        *,
        line_percent: Decimal | None,
        item_tax_id: uuid.UUID | None = None,
        customer_tax_id: uuid.UUID | None = None,
        entity_tax_id: uuid.UUID | None = None,
    ) -> tuple[Decimal, str | None]:
        """(percent, tax code) by the first level that has one."""
        if line_percent is not None:
            return line_percent, None
        for tax_id in (item_tax_id, customer_tax_id, entity_tax_id):
            if tax_id is not None and tax_id in self.by_id:
                return self.by_id[tax_id]
        return self.organisation


_TAXES = TaxRate.__table__
_TAX_COLUMNS = (_TAXES.c.id, _TAXES.c.rate, _TAXES.c.code, _TAXES.c.applied_to_organization)
_ORG_TAXES = (
    select(*_TAX_COLUMNS)
    .where(_TAXES.c.account_id == bindparam("account"), _TAXES.c.applied_to_organization)
    .order_by(_TAXES.c.created_at)
)
_NAMED_OR_ORG_TAXES = (
    select(*_TAX_COLUMNS)
    .where(
        _TAXES.c.account_id == bindparam("account"),
        or_(_TAXES.c.applied_to_organization, _TAXES.c.id.in_(bindparam("ids", expanding=True))),
    )
    .order_by(_TAXES.c.created_at)
)


def load_tax_table(
    account_id: uuid.UUID,
    tax_ids: Iterable[uuid.UUID | None],
    account_default_percent: Decimal | None,
) -> TaxTable:
    """The named rates and the organisation-wide one, scoped to the account (one query)."""
    ids = [tax_id for tax_id in set(tax_ids) if tax_id is not None]
    if ids:
        rows = db.session.execute(_NAMED_OR_ORG_TAXES, {"account": account_id, "ids": ids})
    else:
        rows = db.session.execute(_ORG_TAXES, {"account": account_id})
    return tax_table(rows, account_default_percent)


def tax_table(rows: Iterable[Any], account_default_percent: Decimal | None) -> TaxTable:
    """A TaxTable from rows with the tax rate columns (`id`, `rate`, `code`,
    `applied_to_organization`) ordered by creation; rows whose `id` is None are skipped (a
    caller's outer join that found no rate)."""
    by_id: dict[uuid.UUID, tuple[Decimal, str]] = {}
    organisation: tuple[Decimal, str | None] | None = None
    for row in rows:
        if row.id is None:
            continue
        by_id[row.id] = (row.rate, row.code)
        if row.applied_to_organization and organisation is None:
            organisation = (row.rate, row.code)
    if organisation is None:
        organisation = (
            (account_default_percent, None)
            if account_default_percent is not None
            else (Decimal(0), None)
        )
    return TaxTable(by_id=by_id, organisation=organisation)


def get_tax_by_id(account_id: uuid.UUID, tax_id: uuid.UUID) -> TaxRate:
    return get_scoped(TaxRate, account_id, "Tax", id=tax_id)


# Every rate of the account, oldest first (the order `tax_table` takes).
_ACCOUNT_TAXES = (
    select(*_TAX_COLUMNS, _TAXES.c.name)
    .where(_TAXES.c.account_id == bindparam("account_id"))
    .order_by(_TAXES.c.created_at)
)


def account_tax_rates(account_id: uuid.UUID) -> list[Any]:
    """Every tax rate of the account (`id`, `rate`, `code`, `applied_to_organization`,
    `name`), oldest first: the VAT choices of the forms (`rate_choices`)."""
    return list(db.session.execute(_ACCOUNT_TAXES, {"account_id": account_id}).all())


def rate_choices(
    account_id: uuid.UUID, rows: Iterable[Any] | None = None
) -> list[tuple[Decimal, str]]:
    """(rate, name) of the account's tax rates (or of `rows` from `account_tax_rates`),
    lowest rate first, for pickers. Sorted here: the rate column is text, so ORDER BY
    would put 10 before 5."""
    rows = account_tax_rates(account_id) if rows is None else rows
    return sorted(((row.rate, row.name) for row in rows), key=lambda r: r[0])
