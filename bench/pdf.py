"""PDF rendering and export, against bare WeasyPrint measured in the same run.

    .venv/bin/python bench/pdf.py [--rounds N] [--export-invoices 500] [--no-export]
                                  [--json PATH] [--screenshots DIR] [--database-url URL]
                                  [--smoke]

On a fresh SQLite database (or an empty PostgreSQL one given by --database-url), migrated
like production, with an issuer that has a logo:

1. render   the app's renderer (load the invoice, its snapshot and logo from the database,
            build the context, Jinja, WeasyPrint through the fenced fetcher, SHA-256)
            against bare WeasyPrint rendering the *same HTML string* with its default
            fetcher from the static folder on disk, for a one-page invoice and a 200-line
            invoice, alternating, medians of --rounds. Target: overhead <= 15 %.
2. finalize the cost finalizing adds by recording the document as due (snapshot, logo
            digest, one row), against finalize with that step switched off, in-process.
3. export   `flask billing export-pdfs` over --export-invoices invoices not rendered yet,
            with 1 process and with one per core (documents reset to due in between), and
            once more with every document stored. Target: >= 1.7x with 2 cores.

--screenshots DIR writes docs/screenshots-style PNGs of page 1 of the one-page invoice and
page 2 of the 200-line invoice (pdftoppm).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

RENDER_TARGET = 0.15
SCALE_TARGET = 1.7


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def make_logo() -> bytes:
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (520, 140), "white")
    draw = ImageDraw.Draw(img)
    draw.rounded_rectangle((4, 14, 116, 126), radius=22, fill=(31, 78, 121))
    draw.polygon([(30, 100), (60, 36), (90, 100)], fill=(141, 211, 199))
    font = ImageFont.truetype(str(REPO / "static/print/fonts/DejaVuSans-Bold.ttf"), 54)
    draw.text((140, 36), "NORDLICHT", font=font, fill=(31, 78, 121))
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _children_cpu() -> float:
    """User + system CPU seconds of every finished child process (and theirs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return float(sum(values[:8]) - idle), float(sum(values[:8]))


def setup(url: str) -> dict[str, Any]:
    """Account, issuer with logo, two customers, the one-page and the 200-line invoice."""
    from flask_migrate import upgrade

    from billing_app import create_app
    from billing_app.accounts.service import create_account
    from billing_app.customers import service as customers
    from billing_app.entities import service as entities
    from billing_app.extensions import db
    from billing_app.invoices import service as invoices

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench"})
    ctx = app.app_context()
    ctx.push()
    upgrade()
    acct = create_account("Nordlicht Software GmbH", "bench@example.com", "correct horse battery")
    aid = acct.account.id
    entity = entities.default_entity(aid)
    entities.update_entity(
        aid,
        entity.code,
        {
            "legal_name": "Nordlicht Software GmbH",
            "address_line1": "Torstraße 12",
            "zip_code": "10119",
            "city": "Berlin",
            "country": "DE",
            "tax_id": "DE123456789",
            "email": "billing@nordlicht.example",
            "invoice_footer": "Nordlicht Software GmbH · Amtsgericht Charlottenburg HRB 123456 · "
            "Geschäftsführung: A. Berg\nCommerzbank · IBAN DE89 3704 0044 0532 0130 00 · "
            "BIC COBADEFFXXX",
        },
    )
    entities.set_logo(aid, entity.id, make_logo())
    address = {
        "address_line1": "1 Harbour Street",
        "zip_code": "EH6 6LX",
        "city": "Edinburgh",
        "country": "GB",
        "tax_id": "GB123456789",
    }
    en = customers.create_customer(
        aid,
        {
            "external_id": "acme",
            "name": "Jane Buyer",
            "company": "ACME Trading Ltd",
            "currency": "EUR",
            "document_locale": "en",
            **address,
        },
    )
    de = customers.create_customer(
        aid,
        {
            "external_id": "muster",
            "name": "Erika Mustermann",
            "company": "Muster Logistik GmbH",
            "currency": "EUR",
            "document_locale": "de",
            "address_line1": "Am Hafen 3",
            "zip_code": "20457",
            "city": "Hamburg",
            "country": "DE",
            "tax_id": "DE987654321",
        },
    )

    def line(text: str, qty: str, unit: str, tax: str = "19") -> Any:
        return invoices.LineDraft(
            description=text,
            quantity=Decimal(qty),
            unit_amount=Decimal(unit),
            tax_percent=Decimal(tax),
        )

    def issue(customer_id: uuid.UUID, lines: list[Any]) -> uuid.UUID:
        inv = invoices.create_one_off_invoice(
            aid,
            invoices.OneOffInvoiceRequest(customer_id=customer_id, currency="EUR", lines=lines),
        )
        return invoices.finalize_invoice(aid, inv.id).id

    one_page = issue(
        en.id,
        [
            line("Architecture review, November (days)", "4.5", "95000"),
            line("Implementation sprint: payments module", "1", "1240000"),
            line("Cloud hosting, 3 nodes, monthly", "3", "18900"),
            line("Support plan Business", "1", "49000"),
            line("Technical books", "3", "2999", "7"),
            line("Goodwill discount", "1", "-25000"),
        ],
    )
    long = issue(
        de.id,
        [
            line(
                f"Pos. {i:03d} Wartung Server-Cluster"
                + (", inklusive Überwachung und Datensicherung" if i % 6 == 0 else ""),
                str(1 + i % 3),
                str(1000 + i),
                "7" if i % 5 == 0 else "19",
            )
            for i in range(1, 201)
        ],
    )
    db.session.commit()
    return {"app": app, "ctx": ctx, "account_id": aid, "one_page": one_page, "long": long, "de": de}


def bare_base(tmp: Path, source: Any) -> str:
    """A folder that holds what the HTML refers to, for WeasyPrint's own file fetcher."""
    root = tmp / "bare"
    root.mkdir(exist_ok=True)
    if not (root / "print").exists():
        (root / "print").symlink_to(REPO / "static" / "print")
    if source.logo is not None:
        (root / "logos").mkdir(exist_ok=True)
        (root / "logos" / source.logo.sha256).write_bytes(source.logo.data)
    return root.as_uri() + "/"


def bench_render(env: dict[str, Any], rounds: int, tmp: Path) -> dict[str, Any]:
    import weasyprint

    from billing_app.documents import service as documents
    from billing_app.extensions import db
    from billing_app.invoices import service as invoices

    aid = env["account_id"]
    results: dict[str, Any] = {}
    for name in ("one_page", "long"):
        iid = env[name]

        def app_render(iid: uuid.UUID = iid) -> bytes:
            invoice = invoices.get_invoice(aid, iid)
            source = documents.load_source(invoice)
            db.session.commit()
            return documents.render_pdf(source).pdf

        source = documents.load_source(invoices.get_invoice(aid, iid))
        html = documents.print_html(source)
        base = bare_base(tmp, source)
        db.session.commit()

        def bare_render(html: str = html, base: str = base) -> bytes:
            return weasyprint.HTML(string=html, base_url=base).write_pdf()

        pages = documents.render_pdf(source).pages
        app_render(), bare_render()  # warm-up: imports, fonts, caches
        # Wall time and this process's CPU time of each render, alternating app and bare
        # so that both see the same machine; CPU time is the steadier figure on a machine
        # shared with other work.
        samples: dict[str, list[tuple[float, float]]] = {"app": [], "bare": []}
        for _ in range(rounds):
            for label, fn in (("app", app_render), ("bare", bare_render)):
                wall, cpu = time.perf_counter(), time.process_time()
                fn()
                samples[label].append((time.perf_counter() - wall, time.process_time() - cpu))

        def median_ms(label: str, index: int, samples: dict[str, Any] = samples) -> float:
            return statistics.median(s[index] for s in samples[label]) * 1000

        app_ms, bare_ms = median_ms("app", 0), median_ms("bare", 0)
        app_cpu, bare_cpu = median_ms("app", 1), median_ms("bare", 1)
        results[name] = {
            "pages": pages,
            "lines": len(source.invoice.lines),
            "app_ms": round(app_ms, 1),
            "bare_ms": round(bare_ms, 1),
            "overhead": round(app_ms / bare_ms - 1, 3),
            "app_cpu_ms": round(app_cpu, 1),
            "bare_cpu_ms": round(bare_cpu, 1),
            "overhead_cpu": round(app_cpu / bare_cpu - 1, 3),
            "rounds": rounds,
        }
        log(
            f"render {name:8s} {pages:2d} p  wall: app {app_ms:7.1f} ms  bare {bare_ms:7.1f} ms "
            f"({app_ms / bare_ms - 1:+.1%})   cpu: app {app_cpu:7.1f} ms  bare "
            f"{bare_cpu:7.1f} ms ({app_cpu / bare_cpu - 1:+.1%})"
        )
    return results


def bench_finalize(env: dict[str, Any], count: int = 600) -> dict[str, Any]:
    """Finalize with and without recording the due document, alternating in blocks."""
    from billing_app.invoices import service as invoices

    if not hasattr(invoices, "record_due"):
        # Finalize calls documents.snapshot.record_due through invoices.service's name for
        # it; without that name there is no step to switch off here.
        log("finalize: invoices.service does not call record_due by that name: SKIPPED")
        return {"skipped": "invoices.service.record_due not found"}
    aid = env["account_id"]
    customer_id = env["de"].id
    drafts = [
        invoices.create_one_off_invoice(
            aid,
            invoices.OneOffInvoiceRequest(
                customer_id=customer_id,
                currency="EUR",
                lines=[
                    invoices.LineDraft(f"Line {i}", Decimal(2), Decimal(1500)) for i in range(5)
                ],
            ),
        ).id
        for _ in range(count)
    ]
    real = invoices.record_due
    # CPU time of this process per finalize (the database is SQLite, in-process).
    times: dict[str, list[float]] = {"with_document": [], "without_document": []}
    for block in range(0, count, 10):
        mode = "with_document" if (block // 10) % 2 == 0 else "without_document"
        invoices.record_due = real if mode == "with_document" else (lambda *a, **k: None)
        for iid in drafts[block : block + 10]:
            start = time.process_time()
            invoices.finalize_invoice(aid, iid)
            times[mode].append(time.process_time() - start)
    invoices.record_due = real
    with_ms = statistics.mean(times["with_document"]) * 1000
    without_ms = statistics.mean(times["without_document"]) * 1000
    log(
        f"finalize  cpu per call: with due document {with_ms:.2f} ms  without {without_ms:.2f} ms"
        f"  (+{with_ms - without_ms:.2f} ms, {with_ms / without_ms - 1:+.1%})"
    )
    return {
        "with_document_ms": round(with_ms, 3),
        "without_document_ms": round(without_ms, 3),
        "added_ms": round(with_ms - without_ms, 3),
        "count": count,
    }


def bench_export(env: dict[str, Any], url: str, invoices_n: int, tmp: Path) -> dict[str, Any]:
    from sqlalchemy import func, select, update

    from billing_app.documents.models import InvoiceDocument
    from billing_app.extensions import db
    from billing_app.invoices import service as invoices

    aid = env["account_id"]
    log(f"export: issuing {invoices_n} invoices …")
    for i in range(invoices_n):
        inv = invoices.create_one_off_invoice(
            aid,
            invoices.OneOffInvoiceRequest(
                customer_id=env["de"].id,
                currency="EUR",
                lines=[
                    invoices.LineDraft(
                        f"Leistung {i}-{k}",
                        Decimal(1 + k),
                        Decimal(990 + k),
                        tax_percent=Decimal(19),
                    )
                    for k in range(6)
                ],
            ),
        )
        invoices.finalize_invoice(aid, inv.id)
    total = int(db.session.scalar(select(func.count()).select_from(InvoiceDocument)) or 0)
    db.session.commit()

    def reset() -> None:
        db.session.execute(
            update(InvoiceDocument).values(
                state="due", pdf=None, sha256=None, size_bytes=None, rendered_at=None
            )
        )
        db.session.commit()

    def run(processes: int, label: str) -> dict[str, Any]:
        out = tmp / f"export-{label}"
        shutil.rmtree(out, ignore_errors=True)
        envvars = {**os.environ, "FLASK_APP": "billing_app", "DATABASE_URL": url}
        envvars["SECRET_KEY"] = "bench"
        before_cpu = _children_cpu()
        before_busy = machine_busy()
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "flask", "billing", "export-pdfs", "--out", str(out),
             "--processes", str(processes)],
            cwd=REPO, env=envvars, capture_output=True, text=True, check=False,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        cpu = _children_cpu() - before_cpu
        busy = machine_busy()
        machine = (busy[0] - before_busy[0]) / max(busy[1] - before_busy[1], 1)
        if proc.returncode != 0:
            raise SystemExit(f"export failed: {proc.stderr[-2000:]}")
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        assert report["written"] == total, report
        # cpu / seconds: how many cores the export actually got; machine: how busy the
        # whole machine was meanwhile (other work included).
        log(
            f"export {label:12s} {processes} process(es)  {total} files  {seconds:6.1f} s  "
            f"{total / seconds:5.1f} files/s  cpu {cpu:6.1f} s ({cpu / seconds:.2f} cores, "
            f"{cpu / total * 1000:.0f} ms/file)  machine busy {machine:.0%}"
        )
        return {
            "processes": processes,
            "files": total,
            "seconds": round(seconds, 2),
            "cpu_seconds": round(cpu, 2),
            "cores_used": round(cpu / seconds, 2),
            "machine_busy": round(machine, 3),
        }

    cores = os.cpu_count() or 1
    db.session.remove()
    reset()
    single = run(1, "cold-1")
    reset()
    multi = run(cores, f"cold-{cores}")
    warm = run(cores, "stored")
    speedup = single["seconds"] / multi["seconds"]
    log(f"export speed-up with {cores} cores: {speedup:.2f}x (target >= {SCALE_TARGET}x)")
    return {
        "cold_single": single,
        "cold_all_cores": multi,
        "stored_all_cores": warm,
        "speedup": round(speedup, 2),
        "cores": cores,
    }


def screenshots(env: dict[str, Any], out: Path) -> None:
    from billing_app.documents import service as documents
    from billing_app.invoices import service as invoices

    out.mkdir(parents=True, exist_ok=True)
    for name, page, target in (
        ("one_page", 1, "invoice-en-eur"),
        ("long", 2, "invoice-de-long-page2"),
    ):
        source = documents.load_source(invoices.get_invoice(env["account_id"], env[name]))
        pdf = documents.render_pdf(source).pdf
        with tempfile.NamedTemporaryFile(suffix=".pdf") as fh:
            fh.write(pdf)
            fh.flush()
            subprocess.run(
                ["pdftoppm", "-png", "-r", "80", "-f", str(page), "-l", str(page),
                 "-singlefile", fh.name, str(out / target)],
                check=True,
            )  # fmt: skip
        log(f"wrote {out / target}.png")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--export-invoices", type=int, default=500)
    parser.add_argument("--no-export", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--screenshots", type=Path, default=None)
    parser.add_argument("--database-url", default=None, help="an empty PostgreSQL database")
    parser.add_argument(
        "--smoke", action="store_true",
        help="end to end in seconds with tiny sizes (CI): 2 rounds, 6 exported, 20 finalized",
    )  # fmt: skip
    args = parser.parse_args()
    finalize_count = 600
    if args.smoke:
        args.rounds, args.export_invoices, finalize_count = 2, 6, 20

    tmp = Path(tempfile.mkdtemp(prefix="bench-pdf-"))
    url = args.database_url or f"sqlite:///{tmp / 'bench.sqlite3'}"
    try:
        env = setup(url)
        if args.screenshots:
            screenshots(env, args.screenshots)
        results: dict[str, Any] = {"database": url.split(":")[0]}
        results["render"] = bench_render(env, args.rounds, tmp)
        if not args.no_export:
            results["export"] = bench_export(env, url, args.export_invoices, tmp)
        results["finalize"] = bench_finalize(env, finalize_count)
        ok = all(r["overhead"] <= RENDER_TARGET for r in results["render"].values())
        if "export" in results:
            ok = ok and results["export"]["speedup"] >= SCALE_TARGET
        results["targets_met"] = ok
        print(json.dumps(results, indent=1))
        if args.json:
            args.json.write_text(json.dumps(results, indent=1) + "\n")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
