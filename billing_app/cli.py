"""`flask --app billing_app billing ...` commands."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import click
from flask.cli import AppGroup
from sqlalchemy import select

from .accounts import service as accounts
from .accounts.models import User
from .errors import DomainError
from .extensions import db

billing_cli = AppGroup("billing", help="Accounts, API keys, demo data and maintenance.")


def _fail(exc: DomainError) -> None:
    raise click.ClickException(exc.message)


@billing_cli.command("create-account")
@click.option("--name", required=True)
@click.option("--email", required=True)
@click.option("--password", required=True)
@click.option("--timezone", default="UTC", show_default=True)
@click.option("--currency", default="EUR", show_default=True)
def create_account(name: str, email: str, password: str, timezone: str, currency: str) -> None:
    """Create an account with its first user and API key (the key is shown only now)."""
    try:
        new = accounts.create_account(name, email, password, timezone=timezone, currency=currency)
    except DomainError as exc:
        _fail(exc)
        return
    click.echo(
        json.dumps(
            {"account_id": str(new.account.id), "email": new.user.email, "api_key": new.api_key}
        )
    )


@billing_cli.command("create-api-key")
@click.option("--account", "account_id", required=True, help="Account id (UUID)")
@click.option("--name", default="API key")
def create_api_key(account_id: str, name: str) -> None:
    """Create another API key for an account; prints it once."""
    try:
        aid = uuid.UUID(account_id)
    except ValueError:
        raise click.ClickException("--account must be an account id (UUID)") from None
    try:
        _, raw = accounts.create_api_key(aid, name)
    except DomainError as exc:
        _fail(exc)
        return
    click.echo(json.dumps({"api_key": raw}))


DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-password"  # noqa: S105 - the documented demo sign-in


@billing_cli.command("demo")
def demo() -> None:
    """Create (once) a demo account with taxes, customers and invoices; print sign-in + key."""
    from .customers import service as customers
    from .invoices import service as invoices
    from .taxes import service as taxes

    user = db.session.scalars(select(User).where(User.email == DEMO_EMAIL)).one_or_none()
    if user is not None:
        _, raw = accounts.create_api_key(user.account_id, "Demo key")
        click.echo("Demo account already exists; a fresh API key was made for it.")
        _print_demo(str(user.account_id), raw)
        return
    new = accounts.create_account(
        "Demo GmbH", DEMO_EMAIL, DEMO_PASSWORD, timezone="Europe/Berlin", currency="EUR"
    )
    aid = new.account.id
    taxes.create_tax(
        aid,
        {
            "code": "vat_19",
            "name": "VAT 19 %",
            "rate": Decimal(19),
            "applied_to_organization": True,
        },
    )
    taxes.create_tax(aid, {"code": "vat_7", "name": "VAT 7 %", "rate": Decimal(7)})
    acme = customers.create_customer(
        aid,
        {
            "external_id": "acme",
            "name": "ACME Corporation",
            "email": "billing@acme.example",
            "currency": "EUR",
            "timezone": "Europe/Berlin",
            "net_payment_term": 14,
            "address_line1": "Hauptstraße 1",
            "city": "Berlin",
            "zip_code": "10115",
            "country": "DE",
        },
    )
    books = customers.create_customer(
        aid,
        {
            "external_id": "bookshop",
            "name": "Die Buchhandlung",
            "email": "kasse@buch.example",
            "currency": "EUR",
            "tax_code": "vat_7",
        },
    )

    def line(text: str, qty: str, unit: str, percent: str | None = None) -> invoices.LineDraft:
        return invoices.LineDraft(
            description=text,
            quantity=Decimal(qty),
            unit_amount=Decimal(unit),
            tax_percent=Decimal(percent) if percent else None,
        )

    first = invoices.create_one_off_invoice(
        aid,
        invoices.OneOffInvoiceRequest(
            customer_id=acme.id,
            currency="EUR",
            lines=[line("Consulting, November", "12", "9500"), line("Travel costs", "1", "23450")],
        ),
    )
    invoices.finalize_invoice(aid, first.id)
    second = invoices.create_one_off_invoice(
        aid,
        invoices.OneOffInvoiceRequest(
            customer_id=books.id,
            currency="EUR",
            lines=[line("Reference books", "3", "2999"), line("Gift wrapping", "3", "150", "19")],
        ),
    )
    invoices.finalize_invoice(aid, second.id)
    invoices.mark_paid(aid, second.id)
    invoices.create_one_off_invoice(
        aid,
        invoices.OneOffInvoiceRequest(
            customer_id=acme.id,
            currency="EUR",
            due_at=first.issued_at + timedelta(days=30) if first.issued_at else None,
            lines=[line("Workshop (draft)", "1", "120000")],
        ),
    )
    _print_demo(str(aid), new.api_key)


def _print_demo(account_id: str, api_key: str) -> None:
    click.echo(
        json.dumps(
            {
                "account_id": account_id,
                "email": DEMO_EMAIL,
                "password": DEMO_PASSWORD,
                "api_key": api_key,
            }
        )
    )


@billing_cli.command("purge-idempotency-keys")
def purge_idempotency_keys() -> None:
    """Delete expired Idempotency-Key records (run daily from cron)."""
    from .idempotency import service as idempotency

    click.echo(f"deleted {idempotency.purge_expired()} expired keys")


@billing_cli.command("verify-audit")
@click.option("--account", "account_id", required=True)
def verify_audit(account_id: str) -> None:
    """Check an account's audit hash chain; exits 1 at the first broken record."""
    from .audit.service import verify_chain

    broken = verify_chain(uuid.UUID(account_id))
    if broken is not None:
        raise click.ClickException(f"audit chain broken at record {broken}")
    click.echo("audit chain intact")


@billing_cli.command("collect")
@click.option("--limit", type=int, default=None, help="Stop after this many invoices.")
def collect(limit: int | None) -> None:
    """Charge pending subscription invoices that are due; run dunning retries.

    Safe to run from cron on several machines at once: each invoice is claimed once.
    """
    from .payments.service import collect_due

    report = collect_due(limit=limit)
    click.echo(
        json.dumps(
            {
                "attempted": report.attempted,
                "settled": report.settled,
                "declined": report.declined,
                "skipped_no_method": report.skipped_no_method,
            }
        )
    )


@billing_cli.command("render-documents")
@click.option("--limit", type=int, default=None, help="Stop after this many documents.")
@click.option("--batch", type=int, default=10, show_default=True, help="Documents per claim.")
@click.option(
    "--follow",
    is_flag=True,
    help="Keep running: look for due documents again every --interval seconds.",
)
@click.option("--interval", type=float, default=5.0, show_default=True)
def render_documents(limit: int | None, batch: int, follow: bool, interval: float) -> None:
    """Render and store the PDFs of finalized invoices that are due.

    Finalizing only records that a document is due; this worker (or the first download,
    whichever comes first) renders it. Safe on many hosts at once: each document is
    claimed by one worker (FOR UPDATE SKIP LOCKED on PostgreSQL).
    """
    import time

    from .documents.service import render_due

    while True:
        report = render_due(limit=limit, batch=batch)
        click.echo(json.dumps(report.as_dict()))
        if not follow:
            return
        time.sleep(interval)


@billing_cli.command("export-pdfs")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, writable=True),
    help="Folder to write the PDFs into (created if missing).",
)
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Only invoices issued on or after this day (UTC), YYYY-MM-DD.",
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(["finalized", "open", "failed", "paid", "voided", "void"]),
    help="Only invoices in this status (repeatable). Default: every issued invoice.",
)
@click.option("--account", "account", default=None, help="Only this account (UUID).")
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes. Default: one per core.",
)
def export_pdfs(
    out_dir: str,
    since: Any,
    statuses: tuple[str, ...],
    account: str | None,
    processes: int | None,
) -> None:
    """Write one PDF per issued invoice into OUT: <account>/<entity>/<number>.pdf
    (<entity>/<number>.pdf with --account).

    Safe to interrupt and run again: files are written under a temporary name and renamed
    when complete, and files whose SHA-256 matches the stored document are skipped. Prints
    a progress line on stderr and a JSON report on stdout (written, skipped and why,
    failed). Exits 1 if any invoice failed, 130 if interrupted.
    """
    import os
    import sys
    from pathlib import Path

    from .documents import export

    account_id = None
    if account is not None:
        try:
            account_id = uuid.UUID(account)
        except ValueError:
            raise click.ClickException("--account must be an account id (UUID)") from None
    states = tuple(s for status in statuses for s in export.STATUS_CHOICES[status])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    export.remove_partial_files(out)
    jobs, report = export.plan(
        out, since=since.date() if since else None, states=states, account_id=account_id
    )
    workers = processes or os.cpu_count() or 1
    progress = export.Progress(len(jobs))
    export.run(out, jobs, report, processes=min(workers, max(len(jobs), 1)), progress=progress)
    export.describe(report, sys.stderr)
    click.echo(json.dumps(report.as_dict()))
    if report.interrupted:
        sys.exit(130)
    if report.failed:
        sys.exit(1)
