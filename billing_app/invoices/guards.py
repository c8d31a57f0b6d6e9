"""Last line of defence for immutability: refuse, at flush time, any change to what a
finalized invoice has printed on it, whoever tries (a service bug, a script, a shell).

The services check first and answer with a clear InvalidState; this guard makes the rule
hold even for code that bypasses them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from .models import DRAFT, Invoice, InvoiceLine

# Columns that may still change once an invoice has left draft: its lifecycle and the
# state of its collection. Everything printed on it is fixed.
MUTABLE_AFTER_DRAFT = frozenset(
    {
        "state",
        "paid_at",
        "voided_at",
        "failed_at",
        "updated_at",
        "invoice_metadata",
        "dunning",
        "collect_attempts",
        "next_collect_at",
    }
)


class ImmutableInvoiceError(RuntimeError):
    """A finalized invoice (or one of its lines) was changed outside its lifecycle."""


def _committed_state(invoice: Invoice) -> Any:
    history: Any = inspect(invoice).attrs.state.history
    if history.deleted:
        return history.deleted[0]
    return invoice.state


def _check_invoice(invoice: Invoice) -> None:
    was = _committed_state(invoice)
    if was == DRAFT:
        return
    state: Any = inspect(invoice)
    for attr in state.mapper.column_attrs:
        if attr.key in MUTABLE_AFTER_DRAFT:
            continue
        if state.attrs[attr.key].history.has_changes():
            raise ImmutableInvoiceError(
                f"invoice {invoice.id} is {was}; {attr.key} can no longer change"
            )


def _line_owner_state(session: Session, line: InvoiceLine) -> str | None:
    """The stored state of the line's invoice; None for an invoice not stored yet (a new
    invoice is written whole, whatever state it is created in)."""
    invoice: Any = inspect(line).attrs.invoice.loaded_value
    if not isinstance(invoice, Invoice):
        invoice = session.get(Invoice, line.invoice_id) if line.invoice_id else None
    if invoice is None or inspect(invoice).pending or inspect(invoice).transient:
        return None
    return _committed_state(invoice)


@event.listens_for(Session, "before_flush")
def _refuse_changes_to_issued_invoices(session: Session, _ctx: Any, _instances: Any) -> None:
    for obj in session.dirty:
        if isinstance(obj, Invoice) and session.is_modified(obj, include_collections=False):
            _check_invoice(obj)
        elif (
            isinstance(obj, InvoiceLine)
            and session.is_modified(obj)
            and _line_owner_state(session, obj) not in (None, DRAFT)
        ):
            raise ImmutableInvoiceError("lines of a finalized invoice cannot change")
    for obj in session.deleted:
        if isinstance(obj, Invoice) and (obj.state != DRAFT or obj.number is not None):
            raise ImmutableInvoiceError("a numbered invoice is never deleted")
        if isinstance(obj, InvoiceLine) and _line_owner_state(session, obj) not in (None, DRAFT):
            raise ImmutableInvoiceError("lines of a finalized invoice cannot change")
    for obj in session.new:
        if (
            isinstance(obj, InvoiceLine)
            and obj.invoice_id is not None
            and _line_owner_state(session, obj) not in (None, DRAFT)
        ):
            raise ImmutableInvoiceError("lines cannot be added to a finalized invoice")
