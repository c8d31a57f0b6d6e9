"""`flask billing export-pdfs`: one PDF file per issued invoice, on all cores, resumable.

- Files are the stored documents (a document not rendered yet is rendered and stored
  first, exactly as a download would), so an export and a download are the same bytes.
- Every file is written to a temporary name in its folder, flushed to disk and renamed:
  an interrupted run never leaves a partial file under a final name. A file whose
  SHA-256 equals the stored document's is complete and skipped on the next run; any other
  file under that name is replaced.
- Workers are processes (WeasyPrint is CPU-bound Python), each with its own app and
  database connection; the parent disposes of its engine before forking.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import re
import signal
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TextIO

from flask import Flask, current_app
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from ..entities.models import BillingEntity
from ..extensions import db
from ..invoices.models import DRAFT, FAILED, OPEN, PAID, VOID, Invoice
from . import pdf as renderer
from . import service as documents
from .models import InvoiceDocument

# `--status` accepts dialect A's names and the states themselves.
STATUS_CHOICES: dict[str, tuple[str, ...]] = {
    "finalized": (OPEN, FAILED),
    "open": (OPEN,),
    "failed": (FAILED,),
    "paid": (PAID,),
    "voided": (VOID,),
    "void": (VOID,),
}
ALREADY_COMPLETE = "already complete (same SHA-256 as the stored document)"
DRAFT_REASON = "draft: not issued, so there is no document"
NEVER_ISSUED_REASON = "voided before it was issued: never an invoice, so there is no document"
_TMP_SUFFIX = ".part"


@dataclass(frozen=True)
class Job:
    invoice_id: uuid.UUID
    invoice_number: str
    path: str
    stored_sha256: str | None


@dataclass(frozen=True)
class Outcome:
    invoice_id: uuid.UUID
    invoice_number: str
    result: str  # written | replaced | complete | failed
    detail: str = ""
    size: int = 0


@dataclass
class ExportReport:
    written: int = 0
    replaced: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    failed: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    processes: int = 1
    interrupted: bool = False

    def add(self, outcome: Outcome) -> None:
        if outcome.result == "written":
            self.written += 1
        elif outcome.result == "replaced":
            self.replaced += 1
        elif outcome.result == "complete":
            self.skipped[ALREADY_COMPLETE] += 1
        else:
            self.failed.append(
                {
                    "invoice_id": str(outcome.invoice_id),
                    "invoice_number": outcome.invoice_number,
                    "error": outcome.detail,
                }
            )

    def as_dict(self) -> dict[str, Any]:
        done = self.written + self.replaced
        return {
            "written": self.written,
            "replaced": self.replaced,
            "skipped": dict(sorted(self.skipped.items())),
            "failed": self.failed,
            "processes": self.processes,
            "seconds": round(self.seconds, 2),
            "files_per_second": round(done / self.seconds, 2) if self.seconds and done else 0,
            "interrupted": self.interrupted,
        }


def safe_component(text: str) -> str:
    """A file or folder name from a number or code: letters, digits, `._-`; a name that
    had to change gets a short digest of the original, so two never collide."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "_"
    if cleaned != text:
        cleaned += "-" + hashlib.sha256(text.encode()).hexdigest()[:8]
    return cleaned


def plan(
    out: Path,
    *,
    since: date | None,
    states: tuple[str, ...],
    account_id: uuid.UUID | None,
) -> tuple[list[Job], ExportReport]:
    """What to write: every issued invoice in scope whose file is not complete yet."""
    report = ExportReport()
    stmt = (
        select(
            Invoice.id,
            Invoice.account_id,
            Invoice.invoice_number,
            Invoice.state,
            Invoice.number,
            BillingEntity.code,
            InvoiceDocument.sha256,
        )
        .join(BillingEntity, BillingEntity.id == Invoice.billing_entity_id)
        .outerjoin(InvoiceDocument, InvoiceDocument.invoice_id == Invoice.id)
        .order_by(Invoice.account_id, BillingEntity.code, Invoice.number, Invoice.id)
    )
    if account_id is not None:
        stmt = stmt.where(Invoice.account_id == account_id)
    if states:
        stmt = stmt.where(Invoice.state.in_(states))
    if since is not None:
        # Issued on or after that day (UTC); drafts in scope by their creation day.
        start = datetime(since.year, since.month, since.day, tzinfo=UTC)
        stmt = stmt.where(func.coalesce(Invoice.issued_at, Invoice.created_at) >= start)
    jobs: list[Job] = []
    for row in db.session.execute(stmt):
        if row.state == DRAFT:
            report.skipped[DRAFT_REASON] += 1
            continue
        if row.number is None:
            report.skipped[NEVER_ISSUED_REASON] += 1
            continue
        parts = [safe_component(row.code), safe_component(row.invoice_number) + ".pdf"]
        if account_id is None:
            parts.insert(0, str(row.account_id))
        relative = "/".join(parts)
        if row.sha256 and _file_sha256(out / relative) == row.sha256:
            report.skipped[ALREADY_COMPLETE] += 1
            continue
        jobs.append(Job(row.id, row.invoice_number, relative, row.sha256))
    db.session.commit()
    return jobs, report


def _file_sha256(path: Path) -> str | None:
    try:
        with path.open("rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def write_atomically(path: Path, data: bytes) -> None:
    """Write under a temporary name, flush to disk, then rename: readers (and a resumed
    run) see either no file or the whole file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}{_TMP_SUFFIX}")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def export_one(out: Path, job: Job) -> Outcome:
    """Get (or render and store) the invoice's document and write it to its file."""
    try:
        invoice = db.session.scalars(
            select(Invoice).where(Invoice.id == job.invoice_id).options(selectinload(Invoice.lines))
        ).one()
        stored = documents.issued_pdf(invoice)
        path = out / job.path
        existing = _file_sha256(path)
        if existing == stored.sha256:
            return Outcome(job.invoice_id, job.invoice_number, "complete")
        write_atomically(path, stored.data)
        result = "written" if existing is None else "replaced"
        return Outcome(job.invoice_id, job.invoice_number, result, size=len(stored.data))
    except Exception as exc:  # reported per invoice; the export goes on
        db.session.rollback()
        return Outcome(job.invoice_id, job.invoice_number, "failed", f"{type(exc).__name__}: {exc}")


def remove_partial_files(out: Path) -> int:
    """Temporary files left by an interrupted run (never complete, never final names)."""
    removed = 0
    if out.is_dir():
        for tmp in out.rglob(f".*{_TMP_SUFFIX}"):
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


# ---------------------------------------------------------------- processes

_worker_app: Flask | None = None
_worker_out: Path | None = None


def _init_worker(config: dict[str, Any], out: str) -> None:
    """Each worker: its own app, engine and connection (nothing shared with the parent)."""
    global _worker_app, _worker_out
    from .. import create_app

    _worker_app = create_app(config)
    _worker_app.app_context().push()
    _worker_out = Path(out)
    renderer.weasyprint_module()


def _work(job: Job) -> Outcome:
    assert _worker_out is not None
    return export_one(_worker_out, job)


def _pool_context() -> Any:
    # fork: workers inherit the imported WeasyPrint (0.4 s each saved); spawn elsewhere.
    if "fork" in mp.get_all_start_methods():
        return mp.get_context("fork")
    return mp.get_context("spawn")


def run(
    out: Path,
    jobs: list[Job],
    report: ExportReport,
    *,
    processes: int,
    progress: Progress,
) -> ExportReport:
    """Write every job's file, in this process (processes=1) or a pool of processes."""
    started = time.perf_counter()
    report.processes = processes
    stop = _StopOnInterrupt()
    try:
        for outcome in _outcomes(out, jobs, processes):
            report.add(outcome)
            progress.advance()
            if stop.requested:
                report.interrupted = True
                break
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        stop.restore()
        remove_partial_files(out)
        report.seconds = time.perf_counter() - started
        progress.finish()
    return report


class _StopOnInterrupt:
    """Ctrl-C (SIGINT) asks the export to stop after the file in hand, instead of raising
    KeyboardInterrupt wherever the signal lands: raised inside a finaliser (WeasyPrint's
    font cleanup has one) Python reports and drops it, and the export went on to the end.
    Installed only from the main thread (where signal handlers live); pool workers forked
    afterwards inherit it, so a terminal's Ctrl-C does not kill them mid-file either."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._request)

    def _request(self, _signum: int, _frame: Any) -> None:
        self.requested = True

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _outcomes(out: Path, jobs: list[Job], processes: int) -> Iterator[Outcome]:
    if processes <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield export_one(out, job)
        return
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    config = {
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "SECRET_KEY": app.config["SECRET_KEY"],
        "SQLALCHEMY_ENGINE_OPTIONS": {},
    }
    renderer.weasyprint_module()
    # Nothing of the parent's connection pool may be used by a child.
    db.session.remove()
    db.engine.dispose()
    ctx = _pool_context()
    pool = ctx.Pool(processes, initializer=_init_worker, initargs=(config, str(out)))
    try:
        # Small chunks keep every process busy to the end and the progress bar live.
        yield from pool.imap_unordered(_work, jobs, chunksize=2)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


# ---------------------------------------------------------------- progress


class Progress:
    """A progress line on stderr: count, rate and time left. Redrawn in place on a
    terminal (at most 10 times a second); a plain line every 10 % otherwise (logs)."""

    def __init__(self, total: int, stream: TextIO | None = None, label: str = "PDFs"):
        self.total, self.done, self.label = total, 0, label
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.started = time.perf_counter()
        self._last_draw = 0.0
        self._last_decile = -1

    def _line(self) -> str:
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        rate = self.done / elapsed
        left = (self.total - self.done) / rate if rate else 0
        width = 30
        filled = int(width * self.done / self.total) if self.total else width
        bar = "#" * filled + "." * (width - filled)
        return (
            f"{self.label} [{bar}] {self.done}/{self.total}  {rate:.1f}/s"
            f"  {int(left // 60)}:{int(left % 60):02d} left"
        )

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.perf_counter()
        if self.tty:
            if now - self._last_draw >= 0.1 or self.done == self.total:
                self.stream.write("\r" + self._line())
                self.stream.flush()
                self._last_draw = now
        elif self.total:
            decile = self.done * 10 // self.total
            if decile != self._last_decile:
                self._last_decile = decile
                self.stream.write(self._line() + "\n")
                self.stream.flush()

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\r" + self._line() + "\n")
            self.stream.flush()


def describe(report: ExportReport, stream: TextIO) -> None:
    """The human summary (the JSON report goes to stdout)."""
    lines: Iterable[str] = [
        f"written: {report.written}, replaced: {report.replaced}, failed: {len(report.failed)}",
        *(f"skipped {count}: {reason}" for reason, count in sorted(report.skipped.items())),
        *(
            f"failed {item['invoice_number']} ({item['invoice_id']}): {item['error']}"
            for item in report.failed
        ),
    ]
    if report.interrupted:
        lines = [*lines, "interrupted: run the same command again to resume"]
    for line in lines:
        stream.write(line + "\n")
