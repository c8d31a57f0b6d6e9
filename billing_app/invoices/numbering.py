"""The printed invoice number: the one home of its pattern, its formatting, taking the next
number of a series, and the invoice handle made from it.

- A billing entity's pattern may hold only {prefix}, {number} (optionally zero-padded:
  {number:06}), {YYYY} and {MM}; the year and month are the issue date's in the entity's
  time zone.
- Each billing entity has one gapless series: a number is taken from the entity's counter
  row, which stays locked until the transaction commits (a rollback gives it back).
- An issued invoice's handle is `inv-<printed number>` (characters a handle may not hold
  become `-`), with a suffix from its id in the rare case another issuer of the same
  account printed the same number.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update

from ..accounts.models import Account
from ..entities.models import DEFAULT_NUMBER_PATTERN, BillingEntity
from ..errors import InvalidInput
from ..extensions import db
from .models import Invoice

PATTERN_TOKENS = re.compile(r"\{(prefix|number(?::0?\d{1,2}d?)?|YYYY|MM)\}")
# What an invoice handle may not hold (each such character becomes `-`).
HANDLE_UNSAFE = re.compile(r"[^a-zA-Z0-9_.\-@]")


def validate_number_pattern(pattern: str) -> str:
    """The pattern if it is one `format_number` can print; InvalidInput otherwise."""
    if "{number" not in pattern:
        raise InvalidInput(("number_pattern",), "The pattern must contain {number}")
    leftover = PATTERN_TOKENS.sub("", pattern)
    if "{" in leftover or "}" in leftover:
        raise InvalidInput(
            ("number_pattern",),
            "Allowed tokens are {prefix}, {number}, {number:06}, {YYYY} and {MM}",
        )
    if len(pattern) > 100:
        raise InvalidInput(("number_pattern",), "The pattern is too long")
    return pattern


def format_number(entity: BillingEntity, number: int, issued_local: datetime) -> str:
    """The printed invoice number, e.g. INV-000042 or INV-2026-11-0042. `issued_local`:
    the issue time in the entity's time zone (`issued_in_entity_zone`)."""
    pattern = entity.number_pattern or DEFAULT_NUMBER_PATTERN
    return pattern.format(
        prefix=entity.invoice_prefix or "INV",
        number=number,
        YYYY=f"{issued_local.year:04d}",
        MM=f"{issued_local.month:02d}",
    )


def issued_in_entity_zone(entity: BillingEntity, issued_at: datetime) -> datetime:
    """The issue time as the entity's calendar sees it (for {YYYY} and {MM})."""
    return issued_at.astimezone(ZoneInfo(entity.timezone or "UTC"))


def printed_number(entity: BillingEntity, number: int, issued_at: datetime) -> str:
    """`format_number` for an issue time in UTC."""
    return format_number(entity, number, issued_in_entity_zone(entity, issued_at))


def take_number(entity_id: uuid.UUID) -> int:
    """The next number of the entity's series, inside the caller's write transaction.

    `UPDATE ... RETURNING` locks the counter row until commit on PostgreSQL (parallel
    issuers of one entity queue there); on SQLite the transaction already holds the write
    lock (BEGIN IMMEDIATE). The unique constraint on (billing_entity_id, number) stands
    behind both.
    """
    taken = db.session.execute(
        update(BillingEntity)
        .where(BillingEntity.id == entity_id)
        .values(next_invoice_number=BillingEntity.next_invoice_number + 1)
        .returning(BillingEntity.next_invoice_number - 1)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    return int(taken)


def handle_candidates(printed: str, invoice_id: uuid.UUID) -> tuple[str, str]:
    """`inv-<printed number>`, and the one to use if another issuer of the account already
    printed the same number: with the id's last 8 hex digits (random in a time-ordered
    id; its first ones are the creation time, shared by invoices of the same minute)."""
    base = "inv-" + HANDLE_UNSAFE.sub("-", printed)
    return base, f"{base}-{invoice_id.hex[-8:]}"


def invoice_handle(account_id: uuid.UUID, printed: str, invoice_id: uuid.UUID) -> str:
    """The handle of an invoice issued with the printed number `printed`: the first of
    `handle_candidates` unless another invoice of the account has it.

    Inside the caller's write transaction. The account row is locked first (FOR NO KEY
    UPDATE, as the audit record takes it later in the same transaction), so two issuers
    of one account printing the same number (two billing entities with the same pattern)
    choose their handles one after the other: the second sees the first's.
    """
    base, alternative = handle_candidates(printed, invoice_id)
    db.session.execute(
        select(Account.id)
        .where(Account.id == account_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    taken = db.session.scalar(
        select(func.count())
        .select_from(Invoice)
        .where(Invoice.account_id == account_id, Invoice.handle == base)
    )
    return alternative if taken else base
