"""What the print template shows, as display strings, from the stored invoice.

Nothing is computed here but formatting: every amount is a stored column of the invoice or
of its lines, a figure of `invoices.service.tax_breakdown` (the one totals function over
the stored lines), or of `invoices.settlement` (what is due, paid how and when). The same
context renders the browser's print page and the PDF; only the asset URLs differ
(`asset_base`, `logo_src`) and the page gets its toolbar.

A source without a settlement is the document as issued (the stored PDF): it asks for the
total by the due date. With one, the document says where the invoice stands: paid (how,
when, nothing due), void (nothing due), or never issued (VOID, no number, not an invoice).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from ..entities.models import BillingEntityLogo
from ..extensions import db
from ..invoices import service as invoices
from ..invoices.models import DRAFT, Invoice
from ..invoices.settlement import Settlement
from .i18n import DocumentLocale

PAPER_SIZES = {"a4": "A4", "letter": "letter"}
KIND_OF_ORIGIN = {"discount": "discount", "credit": "credit"}


@dataclass(frozen=True)
class Logo:
    sha256: str
    data: bytes
    content_type: str


@dataclass(frozen=True)
class PrintSource:
    """Everything a print needs: the invoice with its lines, the snapshot of issuer and
    customer it is printed from, and the logo to print (if any)."""

    invoice: Invoice
    snapshot: dict[str, Any]
    logo: Logo | None
    # Where the invoice stands now (`invoices.settlement`); None: the document as issued.
    settlement: Settlement | None = None


def load_logo(entity_id: uuid.UUID) -> Logo | None:
    """The issuer's logo as stored now. Logos are kept one per entity and not copied into
    the snapshot, so a document prints the logo of the time it is first rendered
    (normally seconds after finalization; docs/pdf.md)."""
    row = db.session.get(BillingEntityLogo, entity_id)
    if row is None:
        return None
    return Logo(row.sha256, row.data, row.content_type)


def _local_date(value: datetime | None, zone: ZoneInfo) -> date | None:
    return None if value is None else value.astimezone(zone).date()


def _party(party: dict[str, Any] | None, loc: DocumentLocale) -> dict[str, Any] | None:
    if not party:
        return None
    lines = list(party.get("lines") or [])
    country = loc.country(party.get("country"))
    if country:
        lines.append(country)
    return {
        "name": party.get("name") or "",
        "lines": lines,
        "tax_id": party.get("tax_id"),
        "email": party.get("email"),
    }


def paper_size(snapshot: dict[str, Any]) -> str:
    """`A4` or `letter` (CSS names), from the issuer's setting; anything else is A4."""
    return PAPER_SIZES.get(str(snapshot.get("paper_size") or "A4").lower(), "A4")


# Widths of the line table's number columns, estimated from their longest text: the table
# is laid out with `table-layout: fixed` (2.4x faster for 200 lines than the automatic
# layout, which measures every cell's text twice), and the description takes the rest.
# DejaVu Sans digits are 0.64 em wide: 2.03 mm at the lines' 9 pt; headings are 7.5 pt
# capitals with letter spacing (≈ 1.95 mm each); a cell adds 4.5 mm of padding.
_MM_PER_CHAR = 2.03
_MM_PER_HEADING_CHAR = 1.95
_MM_PER_NOTE_CHAR = 1.75  # 7.5 pt notes ("incl. VAT")
_CELL_PADDING_MM = 5.5
NUMBER_COLUMNS = ("quantity", "unit_price", "vat_rate", "amount")


def column_widths(
    lines: list[dict[str, Any]], headings: dict[str, str], note: str
) -> dict[str, float]:
    """Millimetres for each number column: wide enough for its longest value and heading."""
    widths = {}
    for column in NUMBER_COLUMNS:
        chars = max((len(line[column]) for line in lines), default=1)
        width = max(chars * _MM_PER_CHAR, len(headings[column]) * _MM_PER_HEADING_CHAR)
        if column == "amount" and any(line["incl_vat"] for line in lines):
            width = max(width, len(note) * _MM_PER_NOTE_CHAR)
        widths[column] = round(min(width + _CELL_PADDING_MM, 48.0), 1)
    return widths


def page_css(snapshot: dict[str, Any], widths: dict[str, float]) -> str:
    """The document's own rules: paper size, the translated page counter, the number
    columns' widths. Inline in the template (the browser page allows exactly this text by
    its CSP hash); built from an allowlist, our own texts and numbers only."""
    loc = DocumentLocale.for_tag(snapshot.get("locale"))
    cols = " ".join(f".lines .c-{name} {{ width: {mm}mm; }}" for name, mm in widths.items())
    return (
        f"@page {{ size: {paper_size(snapshot)}; "
        f"@bottom-right {{ content: {loc.css_page_counter()}; }} }} {cols}"
    )


def print_context(source: PrintSource, *, asset_base: str, logo_src: str | None) -> dict[str, Any]:
    """The template's variables. Deterministic: the same source gives the same context."""
    invoice, snap = source.invoice, source.snapshot
    loc = DocumentLocale.for_tag(snap.get("locale"))
    zone = ZoneInfo(snap.get("timezone") or "UTC")
    cur = invoice.currency
    is_draft = invoice.state == DRAFT
    standing = source.settlement
    # A draft voided before it was finalized: no number, not an invoice.
    never_issued = standing is not None and standing.void and not standing.issued
    paid = standing is not None and standing.paid
    void = standing is not None and standing.void
    issue_date = _local_date(invoice.issued_at, zone)
    due_date = _local_date(invoice.due_at, zone)

    facts: list[tuple[str, str]] = []
    if not never_issued:
        facts.append((loc.text("invoice_number"), invoice.invoice_number))
    if issue_date:
        facts.append((loc.text("issue_date"), loc.long_date(issue_date)))
    if due_date:
        facts.append((loc.text("due_date"), loc.long_date(due_date)))
    if invoice.service_period_from or invoice.service_period_to:
        facts.append(
            (
                loc.text("service_period"),
                loc.period(
                    _local_date(invoice.service_period_from, zone),
                    _local_date(invoice.service_period_to, zone),
                ),
            )
        )
    else:
        start = _local_date(invoice.billing_period_start, zone)
        end = _local_date(invoice.billing_period_end, zone)
        # One-off invoices carry their creation time as both ends: not a period.
        if start and end and start != end:
            facts.append((loc.text("billing_period"), loc.period(start, end)))
    if snap.get("customer_number"):
        facts.append((loc.text("customer_number"), snap["customer_number"]))
    if invoice.purchase_order_number:
        facts.append((loc.text("purchase_order"), invoice.purchase_order_number))
    if invoice.cost_center:
        facts.append((loc.text("cost_center"), invoice.cost_center))

    lines = []
    for index, line in enumerate(invoice.lines, start=1):
        period = ""
        if line.period_from or line.period_to:
            period = loc.period(
                _local_date(line.period_from, zone), _local_date(line.period_to, zone)
            )
        lines.append(
            {
                "position": index,
                "description": line.description,
                "kind": KIND_OF_ORIGIN.get(line.origin, "charge"),
                "period": period,
                "quantity": loc.quantity(line.quantity),
                "unit_price": loc.unit_money(line.unit_amount, cur),
                "vat_rate": loc.percent(line.tax_rate),
                "amount": loc.money(line.amount_minor, cur),
                "incl_vat": line.amount_incl_vat,
            }
        )

    breakdown = invoices.tax_breakdown(invoice)
    vat_rows = [
        {
            "rate": loc.percent(r.rate * 100),
            "net": loc.money(r.net_minor, cur),
            "vat": loc.money(r.vat_minor, cur),
            "gross": loc.money(r.gross_minor, cur),
        }
        for r in breakdown.by_rate
    ]

    totals: list[tuple[str, str, str]] = [
        (loc.text("subtotal"), loc.money(invoice.subtotal_minor, cur), "")
    ]
    if invoice.discount_minor:
        totals.append((loc.text("discounts"), loc.negative_money(invoice.discount_minor, cur), ""))
    if invoice.credit_minor:
        totals.append((loc.text("credits"), loc.negative_money(invoice.credit_minor, cur), ""))
    if invoice.discount_minor or invoice.credit_minor:
        totals.append((loc.text("net_amount"), loc.money(invoice.net_minor, cur), "sum"))
    totals.append((loc.text("vat_amount"), loc.money(invoice.vat_minor, cur), ""))
    if invoice.progressive_credit_minor:
        totals.append(
            (
                loc.text("progressive_credit"),
                loc.negative_money(invoice.progressive_credit_minor, cur),
                "",
            )
        )
    totals.append((loc.text("total"), loc.money(invoice.gross_minor, cur), "sum"))
    if invoice.prepaid_credit_minor:
        totals.append(
            (loc.text("prepaid_credit"), loc.negative_money(invoice.prepaid_credit_minor, cur), "")
        )
    amount_due_minor = invoice.total_minor if standing is None else standing.amount_due_minor
    if standing is not None and standing.amount_paid_minor:
        totals.append((loc.text("paid"), loc.negative_money(standing.amount_paid_minor, cur), ""))
    totals.append((loc.text("amount_due"), loc.money(amount_due_minor, cur), "grand"))

    payment: list[str] = []
    if never_issued:
        payment.append(loc.text("void_draft_notice"))
    elif void:
        payment.append(loc.text("void_notice"))
    elif standing is not None and standing.paid:
        paid_on = _local_date(standing.paid_at, zone)
        payment.append(
            loc.text(
                f"paid_by_{standing.method}",
                date=loc.long_date(paid_on) if paid_on else "",
            )
        )
    elif amount_due_minor == 0 and not is_draft:
        payment.append(loc.text("nothing_due"))
    else:
        amount_due = loc.money(amount_due_minor, cur)
        if due_date:
            payment.append(loc.text("pay_by", amount=amount_due, date=loc.long_date(due_date)))
        if not is_draft:
            payment.append(loc.text("pay_reference", number=invoice.invoice_number))

    issuer = _party(snap.get("issuer"), loc) or {"name": "", "lines": []}
    if never_issued:
        title = loc.text("void_draft_title")
    else:
        title = f"{loc.text('invoice')} {invoice.invoice_number}"
    # The status stamped on the page: a watermark and a badge by the title.
    # (The title of a never-issued void says VOID already: it gets the watermark only.)
    mark = watermark = None
    if is_draft:
        mark = watermark = loc.text("draft_mark")
    elif void:
        watermark = loc.text("void_mark")
        mark = None if never_issued else watermark
    elif paid:
        mark = loc.text("paid_mark")
    paper = paper_size(snap)
    return {
        "t": loc.text,
        "lang": loc.lang_attr,
        "title": title,
        "author": issuer["name"],
        # The PDF's creation and modification dates: the issue time, so that every render
        # of an issued invoice is the same file. Drafts are never stored.
        "created": invoice.issued_at.isoformat(timespec="seconds") if invoice.issued_at else None,
        "is_draft": is_draft,
        "mark": mark,
        # A paid invoice's stamp is a badge only; a draft or a void is watermarked too.
        "watermark": watermark,
        "number": None if never_issued else invoice.invoice_number,
        "payment_heading": loc.text("payment") if paid else loc.text("payment_terms"),
        "facts": facts,
        "issuer": issuer,
        "footer": (snap.get("issuer") or {}).get("footer"),
        "logo_src": logo_src if source.logo else None,
        "bill_to": _party(snap.get("bill_to"), loc),
        "ship_to": _party(snap.get("ship_to"), loc),
        "lines": lines,
        "vat_rows": vat_rows,
        "totals": totals,
        "payment": payment,
        "paper": paper,
        "page_css": page_css(
            snap,
            column_widths(lines, {c: loc.text(c) for c in NUMBER_COLUMNS}, loc.text("incl_vat")),
        ),
        "asset_base": asset_base,
    }
