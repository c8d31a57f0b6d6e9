"""Plain records of invoices and lines for the hot paths.

Creating and finalizing an invoice are the two busiest writes. Their data is read and
written with Core statements into these plain objects: building ORM instances (attribute
instrumentation, relationship events, identity map, unit of work) cost several times the
SQL itself (docs/performance.md). The attribute names are the models', so serialisers and
`calc` read either kind alike; `to_model()` makes the ORM line where the ORM is used.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any, ClassVar

from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Row

from .models import Invoice, InvoiceLine

# The invoice columns a finalize writes from its totals (calc.Totals' fields of the
# same names).
TOTALS_COLUMNS = (
    "subtotal_minor",
    "discount_minor",
    "credit_minor",
    "net_minor",
    "vat_minor",
    "gross_minor",
    "prepaid_credit_minor",
    "total_minor",
)


@dataclass(slots=True)
class LineRecord:
    id: uuid.UUID
    description: str
    quantity: Decimal
    unit_amount: Decimal
    amount_minor: int
    tax_rate: Decimal
    amount_incl_vat: bool
    vat_minor: int
    origin: str
    position: int = 0
    tax_code: str | None = None
    origin_handle: str | None = None
    charge_id: uuid.UUID | None = None
    metric_code: str | None = None
    period_from: datetime | None = None
    period_to: datetime | None = None
    discounted_amount: int | None = None
    invoice_id: uuid.UUID | None = None

    FIELDS: ClassVar[tuple[str, ...]]

    def row(self) -> dict[str, Any]:
        # Not dataclasses.asdict: that deep-copies every value, and this is a hot path.
        return {name: getattr(self, name) for name in _LINE_FIELDS}

    def to_model(self) -> InvoiceLine:
        data = self.row()
        if data["invoice_id"] is None:
            del data["invoice_id"]
        return InvoiceLine(**data)

    @classmethod
    def from_row(cls, row: Row[Any]) -> LineRecord:
        return cls(**row._mapping)


_LINE_FIELDS = tuple(f.name for f in fields(LineRecord))
LineRecord.FIELDS = _LINE_FIELDS

# (column name, attribute name): they differ where a column name is reserved (`metadata`).
INVOICE_COLUMNS = tuple(
    (prop.columns[0].key, prop.key) for prop in sa_inspect(Invoice).column_attrs
)


def invoice_record(row: Row[Any], lines: list[LineRecord]) -> Any:
    """An invoice read with Core, with its lines, as a plain object (typed as the model
    where it is passed on: it has the same attributes)."""
    # By attribute: a row's `_mapping` is a new dict of all its columns (finalize's read
    # has over a hundred).
    record = SimpleNamespace(**{attr: getattr(row, column) for column, attr in INVOICE_COLUMNS})
    record.lines = lines
    return record


def invoice_row(record: Any) -> dict[str, Any]:
    """The Core row (column name -> value) of an invoice record or model."""
    return {column: getattr(record, attr) for column, attr in INVOICE_COLUMNS}
