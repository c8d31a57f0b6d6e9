"""Browser pages under gunicorn, against a static page of the same app, in the same run.

    .venv/bin/python bench/pages.py [--db sqlite|postgres|both] [--invoices 100000]
                                    [--seconds 3] [--rounds 3] [--clients 4] [--smoke]

For each database (a fresh SQLite file; a fresh PostgreSQL database on
127.0.0.1:5432, dropped at the end) this migrates the schema, seeds one account with
2 000 customers and --invoices invoices (bulk rows spread over two years, all states),
plus one invoice with 50 lines made through the services, then starts the app with the
repository's gunicorn.conf.py (2 sync workers) and signs in over HTTP.

Measured, each in --rounds rounds of --seconds (rounds interleaved, medians reported):

    static        GET /static/css/app.css            a static file of the same app
    sign-in       GET /signin                        the layout, no database
    list          GET /invoices/                     page 1, 50 rows, newest first
    list-deep     GET /invoices/?after=<cursor>      a page ~99 % down the list
    list-open     GET /invoices/?status=open         page 1 with a filter
    list-open-deep                                   the filter, ~99 % down
    list-search   GET /invoices/?q=<text>            text search on number / customer
    detail-50     GET /invoices/<id>                 an invoice with 50 lines
    add-line      POST /invoices/new (htmx)          the add-line round trip, 3 lines

Two figures per page: latency with one client (median, p99) and throughput with
--clients concurrent clients. The ratio to `static` is the target (<= 3x). It also
counts SQL statements per page in-process (they must not grow with the rows shown).

Exit status 0 when every request answered as expected (the ratio is reported, not
enforced: these machines are noisy).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

EMAIL, PASSWORD = "bench@example.com", "bench-password"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
STATES = [("paid", 65), ("open", 25), ("draft", 5), ("void", 3), ("failed", 2)]


def log(msg: str) -> None:
    print(f"[pages] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------- seeding


def seed(url: str, invoices: int) -> dict[str, Any]:
    """Migrate, then one account, its customers and invoices. Returns ids for the pages."""
    from flask_migrate import upgrade
    from sqlalchemy import insert, select, update

    from billing_app import create_app
    from billing_app.accounts.service import create_account
    from billing_app.customers.models import Customer
    from billing_app.entities.models import BillingEntity
    from billing_app.extensions import db
    from billing_app.invoices import service as inv_service
    from billing_app.invoices.models import Invoice
    from billing_app.taxes.service import create_tax

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench"})
    rng = random.Random(42)
    with app.app_context():
        upgrade()
        new = create_account("Bench GmbH", EMAIL, PASSWORD, timezone="Europe/Berlin")
        aid = new.account.id
        create_tax(aid, {"code": "vat19", "name": "VAT 19 %", "rate": Decimal(19)})
        create_tax(aid, {"code": "vat7", "name": "VAT 7 %", "rate": Decimal(7)})
        entity_id = db.session.scalars(
            select(BillingEntity.id).where(BillingEntity.account_id == aid)
        ).one()
        now = datetime.now(UTC)
        customers = []
        for i in range(2000):
            customers.append(
                {
                    "id": uuid.uuid4(),
                    "account_id": aid,
                    "external_id": f"cust-{i:05}",
                    "name": f"{rng.choice(['Acme', 'Globex', 'Initech', 'Umbrella', 'Hooli'])} "
                    f"{rng.choice(['GmbH', 'Ltd', 'SA', 'Inc.', 'AB'])} {i:05}",
                    "currency": "EUR",
                    "document_locale": rng.choice(["en", "de", "fr", "en_GB"]),
                    "billing_metadata": {},
                    "created_at": now,
                    "updated_at": now,
                }
            )
        db.session.execute(insert(Customer.__table__), customers)
        db.session.commit()
        log(f"seeding {invoices} invoices")
        started = now - timedelta(days=730)
        step = timedelta(days=730) / max(invoices, 1)
        weights = [w for _, w in STATES]
        number = 0
        batch: list[dict[str, Any]] = []
        for i in range(invoices):
            state = rng.choices([s for s, _ in STATES], weights)[0]
            created = started + step * i
            net = rng.randrange(1000, 500000)
            vat = net * 19 // 100
            row: dict[str, Any] = {
                "id": uuid.uuid4(),
                "account_id": aid,
                "billing_entity_id": entity_id,
                "customer_id": customers[rng.randrange(len(customers))]["id"],
                "invoice_type": "one_off",
                "state": state,
                "currency": "EUR",
                "subtotal_minor": net,
                "net_minor": net,
                "vat_minor": vat,
                "gross_minor": net + vat,
                "total_minor": net + vat,
                "billing_period_start": created,
                "billing_period_end": created,
                "created_at": created,
                "updated_at": created,
            }
            # executemany wants the same keys in every row
            row.update(number=None, handle=None, issued_at=None, due_at=None)
            if state == "draft":
                row["invoice_number"] = f"DRAFT-{i:08X}"
            else:
                number += 1
                row.update(
                    number=number,
                    invoice_number=f"INV-{number:06}",
                    handle=f"inv-INV-{number:06}",
                    issued_at=created,
                    due_at=created + timedelta(days=30),
                )
            batch.append(row)
            if len(batch) == 5000:
                db.session.execute(insert(Invoice.__table__), batch)
                db.session.commit()
                batch = []
        if batch:
            db.session.execute(insert(Invoice.__table__), batch)
        db.session.execute(
            update(BillingEntity)
            .where(BillingEntity.id == entity_id)
            .values(next_invoice_number=number + 1)
        )
        db.session.commit()
        # The 50-line invoice, made and finalized by the services (lines, audit, number).
        big = inv_service.create_one_off_invoice(
            aid,
            inv_service.OneOffInvoiceRequest(
                customer_id=customers[0]["id"],
                currency="EUR",
                lines=[
                    inv_service.LineDraft(
                        description=f"Line {n}: consulting <hours>",
                        quantity=Decimal(n % 7 + 1),
                        unit_amount=Decimal(1250 + n),
                        tax_percent=Decimal(19 if n % 3 else 7),
                    )
                    for n in range(50)
                ],
            ),
        )
        inv_service.finalize_invoice(aid, big.id)
        if db.engine.dialect.name == "postgresql":
            # What autovacuum does after a bulk load: without statistics the planner sorts
            # all 100 000 rows for page 1 instead of walking the index (85 ms, not 1).
            db.session.commit()
            with db.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
        cursors = {
            "list-deep": _deep_cursor(aid, (), int(invoices * 0.99)),
            "list-open-deep": _deep_cursor(aid, ("open",), int(invoices * 0.25 * 0.99)),
        }
        search = customers[7]["name"].split()[-1]
        db.session.remove()
        db.engine.dispose()
    return {
        "account_id": str(aid),
        "detail_id": str(big.id),
        "customer_id": str(customers[0]["id"]),
        "cursors": cursors,
        "search": search,
    }


def _deep_cursor(account_id: Any, states: tuple[str, ...], offset: int) -> str:
    """The list's own cursor for the row `offset` rows down (newest first)."""
    from sqlalchemy import func, select

    from billing_app.customers.models import Customer
    from billing_app.extensions import db
    from billing_app.invoices import queries as invoice_queries
    from billing_app.invoices.models import Invoice

    stmt = (
        select(
            Invoice.id,
            Invoice.invoice_number,
            Invoice.state,
            Invoice.currency,
            Invoice.total_minor,
            Invoice.created_at,
            Invoice.issued_at,
            Invoice.due_at,
            Invoice.customer_id,
            Customer.name,
            Customer.document_locale,
        )
        .join(Customer, Customer.id == Invoice.customer_id)
        .where(Invoice.account_id == account_id)
    )
    if states:
        stmt = stmt.where(Invoice.state.in_(states))
    # Small seeds (--smoke) may have fewer rows than the offset asks for.
    offset = min(offset, db.session.scalar(select(func.count()).select_from(stmt.subquery())) - 1)
    row = db.session.execute(
        stmt.order_by(Invoice.created_at.desc(), Invoice.id.desc()).offset(offset).limit(1)
    ).one()
    return invoice_queries.encode_cursor("created", invoice_queries.InvoiceListRow(*row))


# ---------------------------------------------------------------- server and HTTP


def no_control_socket() -> list[str]:
    from bench.oneoff import no_control_socket as flags

    return flags()


@contextmanager
def gunicorn(url: str, workdir: Path) -> Any:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SECRET_KEY": "bench-secret",
        "GUNICORN_WORKERS": "2",
        "PYTHONPATH": str(REPO),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(REPO / "gunicorn.conf.py"),
            "--bind",
            f"127.0.0.1:{port}",
            *no_control_socket(),
            "billing_app:create_app()",
        ],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / "gunicorn.log", "w"),  # noqa: SIM115
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                status, _, _ = request(port, "GET", "/healthz")
                if status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        else:
            log_tail = (workdir / "gunicorn.log").read_text()[-3000:]
            raise RuntimeError(f"gunicorn did not start:\n{log_tail}")
        yield port, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


_TICK = os.sysconf("SC_CLK_TCK")


def workers_cpu(master: int) -> float:
    """CPU seconds (user + system) the master's worker processes have used so far."""
    total = 0.0
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    for pid in children:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / _TICK
    return total


def request(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def sign_in(port: int) -> tuple[str, str]:
    """The session cookie and a CSRF token of a signed-in session."""
    status, headers, body = request(port, "GET", "/signin")
    cookie = headers["set-cookie"].split(";", 1)[0]
    token = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', body)
    assert status == 200 and token, body[:300]
    form = f"email={EMAIL}&password={PASSWORD}&csrf_token={token.group(1).decode()}"
    status, headers, _ = request(
        port,
        "POST",
        "/signin",
        {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"},
        form.encode(),
    )
    assert status == 302, status
    cookie = headers["set-cookie"].split(";", 1)[0]
    status, headers, body = request(port, "GET", "/settings/api-keys", {"Cookie": cookie})
    token = re.search(rb'"X-CSRFToken": "([^"]+)"', body)
    assert status == 200 and token
    # The session now holds the token's secret: keep the cookie that carries it.
    cookie = headers.get("set-cookie", cookie).split(";", 1)[0]
    return cookie, token.group(1).decode()


def pages(ids: dict[str, Any], cookie: str, token: str) -> dict[str, dict[str, Any]]:
    auth = {"Cookie": cookie}
    form = {
        "csrf_token": token,
        "customer_id": ids["customer_id"],
        "action": "add_line",
    }
    for i, (text, qty, price, vat) in enumerate(
        [("Consulting", "2", "150", ""), ("Books", "3", "12,50", "7"), ("Travel", "1", "42.5", "")]
    ):
        form.update(
            {
                f"lines-{i}-description": text,
                f"lines-{i}-quantity": qty,
                f"lines-{i}-unit_price": price,
                f"lines-{i}-vat": vat,
            }
        )
    from urllib.parse import urlencode

    c = ids["cursors"]
    return {
        "static": {"path": "/static/css/app.css", "headers": {}, "expect": 200},
        "sign-in": {"path": "/signin", "headers": {}, "expect": 200},
        "list": {"path": "/invoices/", "headers": auth, "expect": 200},
        "list-deep": {"path": f"/invoices/?after={c['list-deep']}", "headers": auth},
        "list-open": {"path": "/invoices/?status=open", "headers": auth},
        "list-open-deep": {
            "path": f"/invoices/?status=open&after={c['list-open-deep']}",
            "headers": auth,
        },
        "list-search": {"path": f"/invoices/?q={ids['search']}", "headers": auth},
        "detail-50": {"path": f"/invoices/{ids['detail_id']}", "headers": auth},
        "add-line": {
            "path": "/invoices/new",
            "method": "POST",
            "headers": {
                **auth,
                "HX-Request": "true",
                "Content-Type": "application/x-www-form-urlencoded",
            },
            "body": urlencode(form).encode(),
        },
    }


def _client(port: int, spec: dict[str, Any], until: float, out: Any) -> None:
    latencies: list[float] = []
    bad = 0
    method = spec.get("method", "GET")
    while time.perf_counter() < until:
        t0 = time.perf_counter()
        status, _, _ = request(port, method, spec["path"], spec["headers"], spec.get("body"))
        latencies.append(time.perf_counter() - t0)
        bad += status != spec.get("expect", 200)
    out.put((latencies, bad))


def run(
    port: int, master: int, spec: dict[str, Any], seconds: float, clients: int
) -> dict[str, float]:
    """Single-client latency for `seconds`, then `clients` in parallel for `seconds`; the
    workers' CPU per request over both (a figure the machine's other load barely moves)."""
    q: Any = mp.Queue()
    cpu_before = workers_cpu(master)
    _client(port, spec, time.perf_counter() + seconds, q)
    single, bad = q.get()
    single.sort()
    until = time.perf_counter() + seconds
    procs = [mp.Process(target=_client, args=(port, spec, until, q)) for _ in range(clients)]
    for p in procs:
        p.start()
    parallel: list[float] = []
    for _ in procs:
        lat, b = q.get()
        parallel += lat
        bad += b
    for p in procs:
        p.join()
    cpu = workers_cpu(master) - cpu_before
    return {
        "cpu_ms": cpu / (len(single) + len(parallel)) * 1000,
        "p50_ms": statistics.median(single) * 1000,
        "p99_ms": single[min(len(single) - 1, int(len(single) * 0.99))] * 1000,
        "rps": len(parallel) / seconds,
        "bad": bad,
    }


# ---------------------------------------------------------------- statements per page


def statement_counts(url: str, ids: dict[str, Any]) -> dict[str, Any]:
    """SQL statements per page, in-process: the list at 10 and 50 rows, the detail of a
    1-line and the 50-line invoice. Constant in the rows shown is the requirement."""
    from sqlalchemy import event, select

    from billing_app import create_app
    from billing_app.extensions import db
    from billing_app.invoices.models import Invoice
    from billing_app.web.invoices import routes

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench"})
    client = app.test_client()
    body = client.get("/signin").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', body).group(1)  # type: ignore[union-attr]
    client.post("/signin", data={"email": EMAIL, "password": PASSWORD, "csrf_token": token})
    with app.app_context():
        one_line = db.session.scalars(
            select(Invoice.id).where(Invoice.state == "paid").limit(1)
        ).one()
        engines = {db.engine}
    counts: dict[str, int] = {}

    def count(path: str, name: str) -> None:
        n = {"n": 0}

        def _c(*_: Any) -> None:
            n["n"] += 1

        for engine in engines:
            event.listen(engine, "before_cursor_execute", _c)
        try:
            assert client.get(path).status_code == 200, path
        finally:
            for engine in engines:
                event.remove(engine, "before_cursor_execute", _c)
        counts[name] = n["n"]

    if hasattr(routes, "PAGE_SIZE"):
        original = routes.PAGE_SIZE
        routes.PAGE_SIZE = 10
        count("/invoices/", "list, 10 rows")
        routes.PAGE_SIZE = original
    count("/invoices/", "list, 50 rows")
    count(f"/invoices/?after={ids['cursors']['list-deep']}", "list deep, 50 rows")
    count(f"/invoices/{one_line}", "detail, 1 line")  # bulk rows have no lines: 0 lines
    count(f"/invoices/{ids['detail_id']}", "detail, 50 lines")
    with app.app_context():
        db.engine.dispose()
    return counts


# ---------------------------------------------------------------- main


def bench(kind: str, url: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    t0 = time.monotonic()
    ids = seed(url, args.invoices)
    log(f"{kind}: seeded in {time.monotonic() - t0:.1f}s")
    counts = statement_counts(url, ids)
    results: dict[str, list[dict[str, float]]] = {}
    with gunicorn(url, workdir) as (port, master):
        cookie, token = sign_in(port)
        specs = pages(ids, cookie, token)
        for name, spec in specs.items():  # warm both workers
            for _ in range(20):
                status, _, body = request(
                    port, spec.get("method", "GET"), spec["path"], spec["headers"], spec.get("body")
                )
                assert status == spec.get("expect", 200), (name, status, body[:300])
        for r in range(args.rounds):
            for name, spec in specs.items():
                results.setdefault(name, []).append(
                    run(port, master, spec, args.seconds, args.clients)
                )
            log(f"{kind}: round {r + 1}/{args.rounds} done")
    summary = {}
    for name, runs in results.items():
        summary[name] = {
            key: statistics.median(r[key] for r in runs)
            for key in ("cpu_ms", "p50_ms", "p99_ms", "rps")
        } | {"bad": sum(r["bad"] for r in runs)}
    return {"db": kind, "pages": summary, "statements": counts}


def report(outcomes: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        f"Pages under gunicorn (2 sync workers), {args.invoices} invoices, "
        f"{args.rounds} rounds x {args.seconds}s, {args.clients} parallel clients, "
        f"{os.cpu_count()} CPUs",
    ]
    for out in outcomes:
        pages_ = out["pages"]
        static, signin = pages_["static"], pages_["sign-in"]
        lines += [
            "",
            f"## {out['db']}",
            "",
            "| page | server CPU ms/req | x static | x sign-in | p50 ms | p99 ms | x static (p50) "
            "| req/s |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, r in pages_.items():
            lines.append(
                f"| {name} | {r['cpu_ms']:.2f} | {r['cpu_ms'] / static['cpu_ms']:.2f} | "
                f"{r['cpu_ms'] / signin['cpu_ms']:.2f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                f"{r['p50_ms'] / static['p50_ms']:.2f} | {r['rps']:.0f} |"
            )
        lines += ["", "SQL statements per page: " + json.dumps(out["statements"])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument(
        "--smoke", action="store_true",
        help="end to end in seconds with tiny sizes (CI): 300 invoices, 1 round of 0.5 s",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.smoke:
        args.invoices, args.seconds, args.rounds, args.clients = 300, 0.5, 1, 2
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="bench-pages-") as tmp:
        workdir = Path(tmp)
        if args.db in ("sqlite", "both"):
            outcomes.append(
                bench("SQLite", f"sqlite:///{workdir / 'pages.sqlite3'}", args, workdir)
            )
        if args.db in ("postgres", "both"):
            import sqlalchemy as sa

            name = f"bench_pages_{os.getpid()}"
            from billing_app.config import normalise_database_url

            admin = sa.create_engine(normalise_database_url(PG_ADMIN), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f"CREATE DATABASE {name}"))
            try:
                url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
                outcomes.append(bench("PostgreSQL", url, args, workdir))
            finally:
                with admin.connect() as conn:
                    conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                admin.dispose()
    text = report(outcomes, args)
    print(text)
    results = REPO / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "pages.md").write_text(text + "\n")
    bad = sum(r["bad"] for out in outcomes for r in out["pages"].values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
