"""Billing entities: the legal issuers, each with its own invoice number series."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from ..audit import service as audit
from ..db import utcnow, write_transaction
from ..errors import Duplicate, InUse, InvalidInput, NotFound
from ..extensions import db
from ..invoices.models import Invoice
from ..invoices.numbering import validate_number_pattern
from ..querying import apply_changes, get_scoped, order_clause, page
from .models import BillingEntity, BillingEntityLogo

ORDER_FIELDS = {
    "code": BillingEntity.code,
    "name": BillingEntity.name,
    "created_at": BillingEntity.created_at,
}


def default_entity(account_id: uuid.UUID) -> BillingEntity:
    entity = db.session.scalars(
        select(BillingEntity)
        .where(BillingEntity.account_id == account_id)
        .order_by(BillingEntity.is_default.desc(), BillingEntity.created_at)
    ).first()
    if entity is None:
        raise NotFound("Billing entity")
    return entity


def get_entity(account_id: uuid.UUID, code: str) -> BillingEntity:
    return get_scoped(BillingEntity, account_id, "Billing entity", code=code)


def get_entity_by_id(account_id: uuid.UUID, entity_id: uuid.UUID) -> BillingEntity:
    return get_scoped(BillingEntity, account_id, "Billing entity", id=entity_id)


def list_entities(
    account_id: uuid.UUID, skip: int, limit: int, order_by: str | None
) -> list[BillingEntity]:
    stmt = (
        select(BillingEntity)
        .where(BillingEntity.account_id == account_id)
        .order_by(*order_clause(BillingEntity, order_by, ORDER_FIELDS, "created_at"))
    )
    return page(stmt, skip, limit)


def _clear_default(account_id: uuid.UUID) -> None:
    db.session.execute(
        update(BillingEntity)
        .where(BillingEntity.account_id == account_id, BillingEntity.is_default.is_(True))
        .values(is_default=False)
    )


def create_entity(account_id: uuid.UUID, data: dict[str, Any]) -> BillingEntity:
    if "number_pattern" in data:
        validate_number_pattern(data["number_pattern"])
    with write_transaction():
        exists = db.session.scalar(
            select(func.count()).where(
                BillingEntity.account_id == account_id, BillingEntity.code == data["code"]
            )
        )
        if exists:
            raise Duplicate("Billing entity", "Billing entity with this code already exists")
        has_any = db.session.scalar(
            select(func.count()).where(BillingEntity.account_id == account_id)
        )
        if data.get("is_default") or not has_any:
            _clear_default(account_id)
            data = {**data, "is_default": True}
        entity = BillingEntity(account_id=account_id, **data)
        db.session.add(entity)
        try:
            db.session.flush()
        except IntegrityError:
            raise Duplicate(
                "Billing entity", "Billing entity with this code already exists"
            ) from None
        audit.record(account_id, "billing_entity.created", "billing_entity", entity.id, after=data)
    return entity


def update_entity(account_id: uuid.UUID, code: str, changes: dict[str, Any]) -> BillingEntity:
    if "number_pattern" in changes:
        validate_number_pattern(changes["number_pattern"])
    with write_transaction():
        entity = db.session.scalars(
            select(BillingEntity)
            .where(BillingEntity.account_id == account_id, BillingEntity.code == code)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one_or_none()
        if entity is None:
            raise NotFound("Billing entity")
        if (
            "next_invoice_number" in changes
            and changes["next_invoice_number"] != entity.next_invoice_number
        ):
            # The series never resets and never jumps once it has been used: moving the
            # counter is only for continuing a series kept elsewhere before the first invoice.
            used = db.session.scalar(
                select(func.count()).where(
                    Invoice.billing_entity_id == entity.id, Invoice.number.is_not(None)
                )
            )
            if used:
                raise InvalidInput(
                    ("next_invoice_number",),
                    "The number series is in use; its next number can no longer be changed",
                )
        if changes.get("is_default") is False and entity.is_default:
            raise InvalidInput(("is_default",), "Make another billing entity the default instead")
        if changes.get("is_default") and not entity.is_default:
            _clear_default(account_id)
        before, after = apply_changes(entity, changes)
        if after:
            audit.record(
                account_id,
                "billing_entity.updated",
                "billing_entity",
                entity.id,
                before=before,
                after=after,
            )
    return entity


def delete_entity(account_id: uuid.UUID, code: str) -> None:
    with write_transaction():
        entity = get_entity(account_id, code)
        if db.session.scalar(select(func.count()).where(Invoice.billing_entity_id == entity.id)):
            raise InUse("Cannot delete billing entity with invoices")
        if entity.is_default:
            raise InUse(
                "Cannot delete the default billing entity; make another one the default first"
            )
        from ..customers.models import Customer

        db.session.execute(
            update(Customer)
            .where(Customer.billing_entity_id == entity.id)
            .values(billing_entity_id=None)
        )
        db.session.delete(entity)
        audit.record(
            account_id,
            "billing_entity.deleted",
            "billing_entity",
            entity.id,
            before={"code": entity.code},
        )


# ---------------------------------------------------------------- logos

LOGO_MAX_BYTES = 512 * 1024
# Only raster formats, recognised by their first bytes: what a file is called or says it is
# counts for nothing. SVG is refused on purpose: it can carry scripts.
_LOGO_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))


def logo_content_type(data: bytes) -> str:
    """`image/png` or `image/jpeg` by magic bytes; InvalidInput (field `logo`) otherwise."""
    for signature, content_type in _LOGO_SIGNATURES:
        if data.startswith(signature):
            return content_type
    raise InvalidInput(("logo",), "The logo must be a PNG or JPEG image")


def set_logo(account_id: uuid.UUID, entity_id: uuid.UUID, data: bytes) -> BillingEntityLogo:
    """Store (or replace) an entity's logo: PNG or JPEG, at most 512 KB."""
    if not data:
        raise InvalidInput(("logo",), "The file is empty")
    if len(data) > LOGO_MAX_BYTES:
        raise InvalidInput(("logo",), f"The logo may be at most {LOGO_MAX_BYTES // 1024} KB")
    content_type = logo_content_type(data)
    digest = hashlib.sha256(data).hexdigest()
    with write_transaction():
        entity = get_entity_by_id(account_id, entity_id)
        logo = db.session.get(BillingEntityLogo, entity.id)
        before = {"sha256": logo.sha256} if logo else None
        if logo is None:
            logo = BillingEntityLogo(billing_entity_id=entity.id, account_id=account_id)
            db.session.add(logo)
        logo.content_type = content_type
        logo.data = data
        logo.sha256 = digest
        logo.updated_at = utcnow()
        audit.record(
            account_id,
            "billing_entity.logo_set",
            "billing_entity",
            entity.id,
            before=before,
            after={"sha256": digest, "content_type": content_type, "bytes": len(data)},
        )
    return logo


def remove_logo(account_id: uuid.UUID, entity_id: uuid.UUID) -> None:
    with write_transaction():
        entity = get_entity_by_id(account_id, entity_id)
        logo = db.session.get(BillingEntityLogo, entity.id)
        if logo is not None:
            db.session.delete(logo)
            audit.record(
                account_id,
                "billing_entity.logo_removed",
                "billing_entity",
                entity.id,
                before={"sha256": logo.sha256},
            )


def get_logo(account_id: uuid.UUID, entity_id: uuid.UUID) -> BillingEntityLogo:
    """The logo of one of this account's entities, else NotFound."""
    return get_scoped(BillingEntityLogo, account_id, "Logo", billing_entity_id=entity_id)


def logo_digests(account_id: uuid.UUID) -> dict[uuid.UUID, str]:
    """SHA-256 of each entity's logo (for cache-busting URLs), without loading the bytes."""
    rows = db.session.execute(
        select(BillingEntityLogo.billing_entity_id, BillingEntityLogo.sha256).where(
            BillingEntityLogo.account_id == account_id
        )
    )
    return {entity_id: digest for entity_id, digest in rows}
