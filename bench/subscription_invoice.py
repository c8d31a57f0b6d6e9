"""On-demand subscription invoices over HTTP, against the one-off create in the same run.

    .venv/bin/python bench/subscription_invoice.py [--seconds N] [--db sqlite|postgres|both]
    .venv/bin/python bench/subscription_invoice.py --smoke      # seconds, tiny sizes: CI's

For each database (a fresh SQLite file, a fresh PostgreSQL database `bench_sub`), migrated
with `flask --app billing_app db upgrade`, this makes an account, a dialect B catalogue
(customer, plan with 25 % VAT incl., 6 add-ons, a 10 % discount; written with SQLAlchemy
Core into the models' tables) and starts the app with the repository's gunicorn.conf.py
(2 sync workers) on a free loopback port. Then, for a fixed time each, client processes
(bench/oneoff.py's load generator) measure:

    sub-invoice   POST /v1/subscription/{handle}/invoice: plan_manual, 2 add-ons, 3 pending
                  additional costs, 1 pending credit, 1 active percentage discount and 5
                  order lines; every request its own subscription, from a pool inserted in
                  bulk beforehand
    oneoff-create POST /v1/invoices/one_off with bench/oneoff.py's 5 line items (a draft):
                  the baseline

and prints invoices/s, p50 / p99 latency, non-2xx answers, the workers' CPU per request and
the ratio sub-invoice / oneoff-create (target: >= 0.5). The two alternate which goes first
from round to round (--rounds).

Before the load, the app runs in-process (Flask test client) to count the SQL statements
(cursor executions, SQLite's BEGIN included) of one request of the same shape, and of
shapes with 40 order lines, 1 and 6 add-ons, 10 additional costs and 3 credits: a count
that grows with the lines is an N+1 (target: 5 and 40 order lines give the same count). An
executemany (one batch of rows) counts as one; --verbose lists the statements. The one-off
create is counted the same way, for comparison.

After the load it checks that every subscription used has exactly one invoice, that its
additional costs were transferred to that invoice and its credit consumed by it, its
discount counted once, that unused subscriptions were left untouched, that the numbers form
1..N without gap, and that the audit chain is intact. It stops the server and drops the
PostgreSQL database it made, also on Ctrl-C.

Exit status: 0 when every request answered 2xx and the checks passed, 1 otherwise (missing
a target is reported, not a failure).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import sqlalchemy as sa  # noqa: E402

import billing_app.models  # noqa: E402, F401  (every table: foreign keys get their types)
from bench.oneoff import (  # noqa: E402
    LINES,
    LoadSpec,
    Result,
    Server,
    api,
    backend_pids,
    check_load_args,
    flask_cli,
    load_bench_parser,
    log,
    median_result,
    postgres_database,
    request_bytes,
    run_load,
)
from billing_app.catalog.models import AddOn, Discount, Plan  # noqa: E402
from billing_app.customers.models import Customer  # noqa: E402
from billing_app.entities.models import BillingEntity  # noqa: E402
from billing_app.invoices.models import Invoice  # noqa: E402
from billing_app.subscriptions.models import (  # noqa: E402
    AdditionalCost,
    Credit,
    CreditUse,
    Subscription,
    SubscriptionAddOn,
    SubscriptionDiscount,
)

TARGET = 0.5
VAT = Decimal("0.25")
PLAN_AMOUNT = 10000
ADD_ON_AMOUNTS = [2500, 1500, 1000, 800, 600, 400]  # the first N go onto a subscription
COST_AMOUNTS = [500, 750, 1250, 300, 400, 600, 700, 800, 900, 1000]
CREDIT_AMOUNT = 3000  # smaller than any invoice made here
DISCOUNT_PERCENT = Decimal(10)
ORDER_LINE = {"amount": 1000, "quantity": 2}  # 20.00 incl. 25 % VAT per line

_SUB = Subscription.__table__
_SUB_ADD_ON = SubscriptionAddOn.__table__
_SUB_DISCOUNT = SubscriptionDiscount.__table__
_COST = AdditionalCost.__table__
_CREDIT = Credit.__table__
_CREDIT_USE = CreditUse.__table__
_INV = Invoice.__table__


@dataclass(frozen=True)
class Shape:
    """What one subscription carries and one request asks for."""

    name: str
    lines: int = 5
    add_ons: int = 2
    costs: int = 3
    credits: int = 1

    def expected_amount(self) -> int:
        """Invoice amount (incl. VAT): everything positive less 10 %, less the credits."""
        positive = (
            PLAN_AMOUNT
            + sum(ADD_ON_AMOUNTS[: self.add_ons])
            + sum(COST_AMOUNTS[: self.costs])
            + self.lines * ORDER_LINE["amount"] * ORDER_LINE["quantity"]
        )
        return positive - positive * int(DISCOUNT_PERCENT) // 100 - self.credits * CREDIT_AMOUNT

    def positive_lines(self) -> int:
        return 1 + self.add_ons + self.costs + self.lines


ONEOFF = "one-off create, 5 line items (baseline)"
BENCH_SHAPE = Shape("5 order lines, 2 add-ons, 3 costs, 1 credit")
COUNT_SHAPES = [
    BENCH_SHAPE,
    Shape("40 order lines", lines=40),
    Shape("1 add-on", add_ons=1),
    Shape("6 add-ons", add_ons=6),
    Shape("10 additional costs", costs=10),
    Shape("3 credits", credits=3),
]


def body_template(shape: Shape) -> bytes:
    """The request body, `{id}` standing for the subscription handle. VAT is written as
    the JSON number 0.25."""
    lines = ", ".join(
        f'{{"ordertext": "Line {i}", "amount": {ORDER_LINE["amount"]}, '
        f'"quantity": {ORDER_LINE["quantity"]}, "vat": 0.25}}'
        for i in range(1, shape.lines + 1)
    )
    return f'{{"handle": "inv-{{id}}", "plan_manual": true, "order_lines": [{lines}]}}'.encode()


# ---------------------------------------------------------------- catalogue and pools


@dataclass(frozen=True)
class Catalogue:
    account_id: uuid.UUID
    entity_id: uuid.UUID
    customer_id: uuid.UUID
    plan_id: uuid.UUID
    add_on_ids: tuple[uuid.UUID, ...]
    discount_id: uuid.UUID


def now_utc() -> datetime:
    # Aware UTC; the models' UTCDateTime type stores it naive on SQLite.
    return datetime.now(UTC)


def create_catalogue(engine: sa.Engine, account_id: uuid.UUID) -> Catalogue:
    """The dialect B customer, plan, add-ons and discount every subscription refers to."""
    now = now_utc()
    ids = {k: uuid.uuid4() for k in ("customer", "plan", "discount")}
    add_on_ids = tuple(uuid.uuid4() for _ in ADD_ON_AMOUNTS)
    with engine.begin() as conn:
        entity_id = conn.execute(
            sa.select(BillingEntity.__table__.c.id).where(
                BillingEntity.__table__.c.account_id == account_id
            )
        ).scalar_one()
        conn.execute(
            Customer.__table__.insert(),
            {
                "id": ids["customer"],
                "account_id": account_id,
                "external_id": "bench-sub-customer",
                "name": "Bench Subscriber",
                "email": "subscriber@example.com",
                "currency": "EUR",
                "created_at": now,
                "updated_at": now,
            },
        )
        conn.execute(
            Plan.__table__.insert(),
            {
                "id": ids["plan"],
                "account_id": account_id,
                "handle": "bench-plan",
                "name": "Bench plan",
                "amount": PLAN_AMOUNT,
                "vat": VAT,
                "amount_incl_vat": True,
                "currency": "EUR",
                "schedule_type": "manual",
                "created_at": now,
            },
        )
        conn.execute(
            AddOn.__table__.insert(),
            [
                {
                    "id": add_on_id,
                    "account_id": account_id,
                    "handle": f"addon-{k + 1}",
                    "name": f"Add-on {k + 1}",
                    "amount": amount,
                    "vat": VAT,
                    "amount_incl_vat": True,
                    "type": "on_off",
                    "all_plans": True,
                    "eligible_plans": [],
                    "created_at": now,
                }
                for k, (add_on_id, amount) in enumerate(
                    zip(add_on_ids, ADD_ON_AMOUNTS, strict=True)
                )
            ],
        )
        conn.execute(
            Discount.__table__.insert(),
            {
                "id": ids["discount"],
                "account_id": account_id,
                "handle": "bench-10pct",
                "name": "Ten percent",
                "percentage": DISCOUNT_PERCENT,
                "apply_to": ["all"],
                "fixed_count": None,
                "created_at": now,
            },
        )
    return Catalogue(
        account_id, entity_id, ids["customer"], ids["plan"], add_on_ids, ids["discount"]
    )


def insert_subscriptions(
    engine: sa.Engine, cat: Catalogue, prefix: str, count: int, shape: Shape = BENCH_SHAPE
) -> list[str]:
    """`count` active subscriptions `<prefix><n>`, each with the shape's add-ons, one active
    discount, pending additional costs and pending credits, in bulk with Core. Returns
    their handles."""
    now = now_utc()
    handles = [f"{prefix}{n:06d}" for n in range(count)]
    chunk = 1000
    with engine.begin() as conn:
        for start in range(0, count, chunk):
            part = [(uuid.uuid4(), h) for h in handles[start : start + chunk]]
            conn.execute(
                _SUB.insert(),
                [
                    {
                        "id": sid,
                        "account_id": cat.account_id,
                        "handle": handle,
                        "customer_id": cat.customer_id,
                        "plan_id": cat.plan_id,
                        "state": "active",
                        "is_cancelled": False,
                        "quantity": 1,
                        "start_date": now,
                        "current_period_start": now,
                        "created_at": now,
                    }
                    for sid, handle in part
                ],
            )
            conn.execute(
                _SUB_ADD_ON.insert(),
                [
                    {
                        "id": uuid.uuid4(),
                        "subscription_id": sid,
                        "handle": f"addon-{k + 1}",
                        "add_on_id": cat.add_on_ids[k],
                        "quantity": 1,
                        "created_at": now + timedelta(microseconds=k),
                    }
                    for sid, _ in part
                    for k in range(shape.add_ons)
                ],
            )
            conn.execute(
                _SUB_DISCOUNT.insert(),
                [
                    {
                        "id": uuid.uuid4(),
                        "account_id": cat.account_id,
                        "subscription_id": sid,
                        "handle": "sd-10pct",
                        "discount_id": cat.discount_id,
                        "state": "active",
                        "invoice_count": 0,
                        "invoice_ids": [],
                        "created_at": now,
                    }
                    for sid, _ in part
                ],
            )
            conn.execute(
                _COST.insert(),
                [
                    {
                        "id": uuid.uuid4(),
                        "account_id": cat.account_id,
                        "handle": f"{handle}-cost-{k + 1}",
                        "subscription_id": sid,
                        "ordertext": f"Cost {k + 1}",
                        "amount": COST_AMOUNTS[k],
                        "quantity": 1,
                        "vat": VAT,
                        "amount_incl_vat": True,
                        "state": "pending",
                        "created_at": now + timedelta(microseconds=k),
                    }
                    for sid, handle in part
                    for k in range(shape.costs)
                ],
            )
            conn.execute(
                _CREDIT.insert(),
                [
                    {
                        "id": uuid.uuid4(),
                        "account_id": cat.account_id,
                        "handle": f"{handle}-credit-{k + 1}",
                        "subscription_id": sid,
                        "amount": CREDIT_AMOUNT,
                        "pending_amount": CREDIT_AMOUNT,
                        "text": "Goodwill credit",
                        "state": "pending",
                        "created_at": now + timedelta(microseconds=k),
                    }
                    for sid, handle in part
                    for k in range(shape.credits)
                ],
            )
    return handles


def settle_pool(engine: sa.Engine) -> None:
    """After a bulk insert: statistics and visibility map up to date (PostgreSQL), WAL
    checkpointed (SQLite), so neither lands in the measurement."""
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql(
                "VACUUM ANALYZE subscriptions, subscription_add_ons, subscription_discounts, "
                "additional_costs, credits, credit_uses, invoices, invoice_lines"
            )
        else:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def check_response(inv: Any, shape: Shape, handle: str) -> str | None:
    """What one 200 answer must show; None when it does, else what is wrong."""
    lines = inv.get("order_lines", [])
    origins = Counter(line["origin"] for line in lines)
    problems = []
    if inv.get("handle") != f"inv-{handle}" or inv.get("state") != "pending":
        problems.append(f"handle {inv.get('handle')}, state {inv.get('state')}")
    expected = {
        "plan": 1,
        "add_on": shape.add_ons,
        "ondemand": shape.lines,
        "additional_cost": shape.costs,
        "discount": shape.positive_lines(),
        "credit": shape.credits,
    }
    if dict(origins) != expected:
        problems.append(f"lines by origin {dict(origins)}, expected {expected}")
    if len(inv.get("additional_costs", [])) != shape.costs:
        problems.append(f"additional_costs {inv.get('additional_costs')}")
    credits = inv.get("credits", [])
    if len(credits) != shape.credits or any(c["amount"] != CREDIT_AMOUNT for c in credits):
        problems.append(f"credits {credits}")
    if inv.get("amount") != inv.get("amount_ex_vat", 0) + inv.get("amount_vat", 0):
        problems.append(
            f"amount {inv.get('amount')} != {inv.get('amount_ex_vat')} + {inv.get('amount_vat')}"
        )
    if inv.get("amount") != shape.expected_amount():
        problems.append(f"amount {inv.get('amount')}, expected {shape.expected_amount()}")
    if inv.get("discount_amount", 0) <= 0 or not isinstance(inv.get("number"), int):
        problems.append(f"discount_amount {inv.get('discount_amount')}, number {inv.get('number')}")
    return "; ".join(problems) or None


# ---------------------------------------------------------------- statements per request


def count_statements(
    url: str, api_key: str, engine: sa.Engine, cat: Catalogue, per_shape: int
) -> dict[str, Any]:
    """The app in-process (Flask test client): SQL statements (cursor executions) of each
    request, per shape, and for the benchmark's request and the one-off create the median
    CPU, wall time and how long the request held the lock every writer of the account
    queues on (SQLite: BEGIN IMMEDIATE to COMMIT; PostgreSQL: the first UPDATE of the
    number counter or of the account's audit head, to COMMIT)."""
    from billing_app import create_app
    from billing_app.extensions import db

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench-sub-not-a-secret"})
    with app.app_context():
        app_engine = db.engine
    sqlite = app_engine.dialect.name == "sqlite"
    serialising = ("BEGIN IMMEDIATE",) if sqlite else ("UPDATE billing_entities", "UPDATE accounts")
    statements: list[str] = []
    holds: list[float] = []

    def before(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool
    ) -> None:
        statements.append(f"(executemany) {statement}" if executemany else statement)
        if "locked_at" not in conn.info and statement.startswith(serialising):
            conn.info["locked_at"] = time.perf_counter()

    def on_commit(conn: Any) -> None:
        locked_at = conn.info.pop("locked_at", None)
        if locked_at is not None:
            holds.append(time.perf_counter() - locked_at)

    sa.event.listen(app_engine, "before_cursor_execute", before)
    sa.event.listen(app_engine, "commit", on_commit)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {api_key}"}
    timings: dict[str, list[tuple[float, float, float]]] = {}

    def timed(name: str, path: str, body: bytes) -> tuple[int, Any]:
        statements.clear()
        holds.clear()
        cpu0, t0 = time.process_time(), time.perf_counter()
        resp = client.post(path, data=body, content_type="application/json", headers=headers)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
        if resp.status_code != 200:
            raise RuntimeError(f"in-process {name} answered {resp.status_code}: {resp.text}")
        timings.setdefault(name, []).append((cpu, wall, sum(holds)))
        return len(statements), resp.get_json()

    def invoice(handle: str, shape: Shape) -> int:
        body = body_template(shape).replace(b"{id}", handle.encode())
        n, answer = timed(shape.name, f"/v1/subscription/{handle}/invoice", body)
        problem = check_response(answer, shape, handle)
        if problem:
            raise RuntimeError(f"in-process {shape.name}: {problem}")
        return n

    oneoff_body = json.dumps(
        {"customer_id": str(cat.customer_id), "currency": "EUR", "line_items": LINES}
    ).encode()

    def oneoff() -> int:
        return timed(ONEOFF, "/v1/invoices/one_off", oneoff_body)[0]

    counts: dict[str, list[int]] = {}
    shapes: Counter[str] = Counter()
    try:
        # Warm-up: first connection, caches.
        for handle in insert_subscriptions(engine, cat, "stw-", 3):
            invoice(handle, BENCH_SHAPE)
        oneoff()
        timings.clear()
        counts[ONEOFF] = [oneoff() for _ in range(per_shape)]
        for index, shape in enumerate(COUNT_SHAPES):
            handles = insert_subscriptions(engine, cat, f"st{index}-", per_shape, shape)
            counts[shape.name] = []
            for handle in handles:
                counts[shape.name].append(invoice(handle, shape))
                if shape is BENCH_SHAPE:
                    shapes.update(" ".join(s.split())[:120] for s in statements)
    finally:
        sa.event.remove(app_engine, "before_cursor_execute", before)
        sa.event.remove(app_engine, "commit", on_commit)
        with app.app_context():
            db.engine.dispose()
    return {
        "counts": counts,
        "shapes": {k: v / per_shape for k, v in shapes.most_common()},
        "timing_ms": {
            name: [round(statistics.median(t[i] for t in values) * 1000, 2) for i in range(3)]
            for name, values in timings.items()
            if name in (ONEOFF, BENCH_SHAPE.name, "40 order lines")
        },
        "invoices": 3 + per_shape * len(COUNT_SHAPES),
        "oneoff_drafts": 1 + per_shape,
    }


# ---------------------------------------------------------------- one database


def bench_database(kind: str, url: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    env = dict(os.environ)
    env.pop("GUNICORN_CMD_ARGS", None)
    env.update(DATABASE_URL=url, SECRET_KEY="bench-sub-not-a-secret")
    log(f"[{kind}] migrating")
    flask_cli(env, "db", "upgrade")
    created = json.loads(
        flask_cli(
            env, "billing", "create-account",
            "--name", "Bench GmbH", "--email", "bench@example.com", "--password", "secret123",
        ).strip().splitlines()[-1]
    )  # fmt: skip
    api_key = created["api_key"]
    account_id = uuid.UUID(created["account_id"])
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    servers: list[Server] = []
    checks: list[str] = []
    try:
        cat = create_catalogue(engine, account_id)
        log(f"[{kind}] counting SQL statements in-process")
        statements = count_statements(url, api_key, engine, cat, args.count_requests)
        for name, values in statements["counts"].items():
            log(f"[{kind}]   {name:45s} {sorted(set(values))} statements/request")

        app = Server(f"{kind}-app", "billing_app:create_app()", env, workdir)
        servers.append(app)
        app.wait_ready()
        status, customer = api(
            app.port, "POST", "/v1/customers/", api_key,
            {"external_id": "bench-customer", "name": "Bench Customer", "currency": "EUR"},
        )  # fmt: skip
        if status != 201:
            raise RuntimeError(f"creating the customer answered {status}: {customer}")
        oneoff_body = json.dumps(
            {"customer_id": customer["id"], "currency": "EUR", "line_items": LINES}
        ).encode()
        sub_body = body_template(BENCH_SHAPE)
        # One request of each, checked, before measuring anything.
        status, sample = api(
            app.port, "POST", "/v1/invoices/one_off", api_key, json.loads(oneoff_body)
        )
        if status != 200 or sample["total_cents"] != "15000":
            raise RuntimeError(f"one-off create answered {status}: {sample}")
        (handle,) = insert_subscriptions(engine, cat, "check-", 1)
        status, sample = api(
            app.port, "POST", f"/v1/subscription/{handle}/invoice", api_key,
            json.loads(sub_body.replace(b"{id}", handle.encode())),
        )  # fmt: skip
        if status != 200:
            raise RuntimeError(f"subscription invoice answered {status}: {sample}")
        problem = check_response(sample, BENCH_SHAPE, handle)
        if problem:
            raise RuntimeError(f"subscription invoice answer: {problem}\n{sample}")
        log(
            f"[{kind}] sample invoice ok: amount {sample['amount']} = {sample['amount_ex_vat']} "
            f"+ {sample['amount_vat']} VAT, {len(sample['order_lines'])} lines, "
            f"number {sample['number']}"
        )

        pool_size = math.ceil((args.seconds + args.warmup) * args.max_rate) + 100
        runs: list[dict[str, Result]] = []
        pools: list[str] = []
        for rnd in range(args.rounds):
            results: dict[str, Result] = {}
            order = ["sub-invoice", "oneoff-create"]
            if rnd % 2:
                order.reverse()
            for name in order:
                if name == "sub-invoice":
                    prefix = f"bs{rnd}-"
                    log(f"[{kind}] inserting {pool_size} subscriptions for {name}")
                    t0 = time.monotonic()
                    ids = insert_subscriptions(engine, cat, prefix, pool_size)
                    settle_pool(engine)
                    log(f"[{kind}]   inserted in {time.monotonic() - t0:.1f} s")
                    pools.append(prefix)
                    spec = LoadSpec(
                        port=app.port,
                        path_template="/v1/subscription/{id}/invoice",
                        ids=ids,
                        api_key=api_key,
                        body_template=sub_body,
                    )
                else:
                    spec = LoadSpec(
                        port=app.port,
                        fixed_request=request_bytes(
                            "POST", "/v1/invoices/one_off", app.port, oneoff_body, api_key
                        ),
                    )
                load_before = os.getloadavg()[0]
                log(f"[{kind}] round {rnd + 1}/{args.rounds}: {name} for {args.seconds:g} s")
                res = run_load(
                    name,
                    spec,
                    app,
                    clients=args.clients,
                    warmup=args.warmup,
                    seconds=args.seconds,
                    db_pids=(
                        (lambda: backend_pids(engine, args.pg_db)) if kind == "postgres" else None
                    ),
                )
                if app.proc.poll() is not None:
                    raise RuntimeError(f"{app.name} server exited during {name}")
                if res.exhausted:
                    log(f"[{kind}] WARNING: {name} used up its {pool_size} subscriptions")
                results[name] = res
                log(
                    f"[{kind}]   {res.rps:8.1f} req/s  p50 {res.p50_ms:6.1f} ms  "
                    f"p99 {res.p99_ms:6.1f} ms  errors {res.errors}  "
                    f"CPU {res.server_cpu_ms:.1f} ms/req  load avg {load_before:.1f}"
                )
            runs.append(results)

        checks = check_database(engine, env, cat, runs, pools, statements)
    except BaseException:
        for s in servers:
            if s.proc.poll() is not None or args.verbose:
                log(f"--- {s.name} log tail ---\n{s.tail()}")
        raise
    finally:
        for s in servers:
            s.stop()
        engine.dispose()
    for s in servers:
        if "Traceback" in s.log_path.read_text(errors="replace"):
            checks.append(f"FAIL: {s.name} logged a traceback (see {s.log_path})")
    return {
        "db": kind,
        "runs": [{k: asdict(v) for k, v in r.items()} for r in runs],
        "statements": statements,
        "checks": checks,
    }


def check_database(
    engine: sa.Engine,
    env: dict[str, str],
    cat: Catalogue,
    runs: list[dict[str, Result]],
    pools: list[str],
    in_process: dict[str, Any],
) -> list[str]:
    """What must hold after the load (see the module docstring)."""
    notes: list[str] = []

    def note(ok: bool, text: str) -> None:
        notes.append(f"{'ok' if ok else 'FAIL'}: {text}")

    answered = sum(r["sub-invoice"].ok_total for r in runs)
    oneoff = sum(r["oneoff-create"].ok_total for r in runs)
    sub_invoices = _INV.c.subscription_id.is_not(None)
    with engine.connect() as conn:

        def scalar(stmt: Any) -> Any:
            return conn.execute(stmt).scalar_one()

        # Subscriptions of the load pools, and which of them have an invoice.
        pool_subs = sa.or_(*[_SUB.c.handle.startswith(p) for p in pools])
        used = (
            sa.select(_SUB.c.id.label("sid"), _INV.c.id.label("iid"))
            .join(_INV, _INV.c.subscription_id == _SUB.c.id)
            .where(pool_subs)
            .subquery()
        )
        n_used = scalar(sa.select(sa.func.count()).select_from(used))
        n_pool = scalar(sa.select(sa.func.count()).where(pool_subs))
        note(
            n_used == answered,
            f"{answered} subscription invoices answered 2xx under load, {n_used} of the "
            f"{n_pool} pool subscriptions have an invoice",
        )
        twice = scalar(
            sa.select(sa.func.count()).select_from(
                sa.select(_INV.c.subscription_id)
                .where(sub_invoices)
                .group_by(_INV.c.subscription_id)
                .having(sa.func.count() > 1)
                .subquery()
            )
        )
        note(twice == 0, f"{twice} subscriptions with more than one invoice")
        bad_costs = scalar(
            sa.select(sa.func.count())
            .select_from(_COST.join(used, used.c.sid == _COST.c.subscription_id))
            .where(
                sa.or_(
                    _COST.c.state != "transferred",
                    _COST.c.invoice_id.is_(None),
                    _COST.c.invoice_id != used.c.iid,
                )
            )
        )
        moved_costs = scalar(
            sa.select(sa.func.count()).select_from(
                _COST.join(used, used.c.sid == _COST.c.subscription_id)
            )
        )
        note(
            bad_costs == 0 and moved_costs == 3 * n_used,
            f"{moved_costs} additional costs of used subscriptions, {bad_costs} of them not "
            "transferred to that subscription's invoice",
        )
        bad_credits = scalar(
            sa.select(sa.func.count())
            .select_from(_CREDIT.join(used, used.c.sid == _CREDIT.c.subscription_id))
            .where(sa.or_(_CREDIT.c.state != "transferred", _CREDIT.c.pending_amount != 0))
        )
        uses = conn.execute(
            sa.select(sa.func.count(), sa.func.count(sa.distinct(_CREDIT_USE.c.invoice_id)))
            .select_from(
                _CREDIT_USE.join(_CREDIT, _CREDIT.c.id == _CREDIT_USE.c.credit_id).join(
                    used, used.c.sid == _CREDIT.c.subscription_id
                )
            )
            .where(_CREDIT_USE.c.invoice_id == used.c.iid, _CREDIT_USE.c.amount == CREDIT_AMOUNT)
        ).one()
        note(
            bad_credits == 0 and tuple(uses) == (n_used, n_used),
            f"credits of used subscriptions: {bad_credits} not fully consumed, {uses[0]} full "
            f"credit uses on {uses[1]} invoices",
        )
        counted = scalar(
            sa.select(sa.func.count())
            .select_from(_SUB_DISCOUNT.join(used, used.c.sid == _SUB_DISCOUNT.c.subscription_id))
            .where(_SUB_DISCOUNT.c.invoice_count == 1)
        )
        note(counted == n_used, f"{counted} discounts of used subscriptions counted exactly once")
        unused = sa.and_(pool_subs, _SUB.c.id.not_in(sa.select(used.c.sid)))
        touched = scalar(
            sa.select(sa.func.count())
            .select_from(_COST.join(_SUB, _SUB.c.id == _COST.c.subscription_id))
            .where(unused, sa.or_(_COST.c.state != "pending", _COST.c.invoice_id.is_not(None)))
        ) + scalar(
            sa.select(sa.func.count())
            .select_from(_CREDIT.join(_SUB, _SUB.c.id == _CREDIT.c.subscription_id))
            .where(unused, _CREDIT.c.pending_amount != CREDIT_AMOUNT)
        )
        note(touched == 0, f"{touched} costs or credits of unused subscriptions changed")
        amounts = conn.execute(
            sa.select(_INV.c.gross_minor, sa.func.count())
            .select_from(_INV.join(used, used.c.iid == _INV.c.id))
            .group_by(_INV.c.gross_minor)
        ).all()
        note(
            [tuple(a) for a in amounts] in ([], [(BENCH_SHAPE.expected_amount(), n_used)]),
            f"amounts of the load's invoices: {dict((a[0], a[1]) for a in amounts)}",
        )
        total_sub = scalar(sa.select(sa.func.count()).where(sub_invoices))
        # + the checked sample and the in-process requests
        expected_sub = answered + 1 + in_process["invoices"]
        count, distinct, low, high = conn.execute(
            sa.select(
                sa.func.count(),
                sa.func.count(sa.distinct(_INV.c.number)),
                sa.func.min(_INV.c.number),
                sa.func.max(_INV.c.number),
            ).where(_INV.c.number.is_not(None))
        ).one()
        next_number = scalar(
            sa.select(BillingEntity.__table__.c.next_invoice_number).where(
                BillingEntity.__table__.c.id == cat.entity_id
            )
        )
        note(
            total_sub == expected_sub == count == distinct
            and (count == 0 or (low == 1 and high == count))
            and next_number == count + 1,
            f"{total_sub} subscription invoices ({expected_sub} expected), numbers {low}..{high}:"
            f" {count} numbered, {distinct} distinct, next number {next_number}",
        )
        drafts = scalar(sa.select(sa.func.count()).where(_INV.c.invoice_type == "one_off"))
        oneoff += 1 + in_process["oneoff_drafts"]
        note(drafts == oneoff, f"{drafts} one-off drafts ({oneoff} answered 2xx)")
    out = flask_cli(env, "billing", "verify-audit", "--account", str(cat.account_id))
    note("intact" in out, out.strip())
    return notes


# ---------------------------------------------------------------- report


def report(outcome: list[dict[str, Any]], args: argparse.Namespace) -> tuple[str, bool]:
    lines = [
        f"subscription invoices vs one-off create: gunicorn 2 sync workers, {args.clients} "
        f"client processes, {args.seconds:g} s per measurement after {args.warmup:g} s "
        f"warm-up, {args.rounds} round(s){' (medians)' if args.rounds > 1 else ''}, "
        f"{os.cpu_count()} cores, load average {args.loadavg}",
        "",
        "| db | measurement | req/s | p50 ms | p99 ms | non-2xx | server CPU ms/req "
        "| db CPU ms/req | load gen CPU | machine busy |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    healthy = True
    ratios: list[str] = []
    counts: list[str] = []
    timing: list[str] = []
    names = ("sub-invoice", "oneoff-create")
    for db in outcome:
        merged = {n: median_result([Result(**r[n]) for r in db["runs"]]) for n in names}
        for n in names:
            r = merged[n]
            healthy &= r.errors == 0
            db_cpu = "n/a" if r.db_cpu_ms is None else f"{r.db_cpu_ms:.2f}"
            lines.append(
                f"| {db['db']} | {n} | {r.rps:.1f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | "
                f"{r.errors} | {r.server_cpu_ms:.2f} | {db_cpu} | {r.client_cpu_share:.0%} | "
                f"{r.machine_busy:.0%} |"
            )
        per_round = [r["sub-invoice"]["rps"] / r["oneoff-create"]["rps"] for r in db["runs"]]
        ratio = statistics.median(per_round)
        spread = ""
        if len(per_round) > 1:
            spread = f" (rounds: {', '.join(f'{x:.2f}' for x in per_round)})"
        sub, base = merged["sub-invoice"], merged["oneoff-create"]
        cpu_ratio = (base.server_cpu_ms + (base.db_cpu_ms or 0)) / (
            sub.server_cpu_ms + (sub.db_cpu_ms or 0)
        )
        ratios.append(
            f"{db['db']:8s} sub-invoice / oneoff-create = {ratio:.2f}{spread}: "
            f"{'meets' if ratio >= TARGET else 'MISSES'} the {TARGET} target "
            f"(CPU per request oneoff/sub: {cpu_ratio:.2f})"
        )
        by_shape = db["statements"]["counts"]
        for name, values in by_shape.items():
            shown = "/".join(str(v) for v in sorted(set(values)))
            counts.append(f"{db['db']:8s} {name:45s} {shown}")
        lock = "write lock" if db["db"] == "sqlite" else "counter/audit row lock"
        for name, (cpu, wall, hold) in db["statements"].get("timing_ms", {}).items():
            timing.append(
                f"{db['db']:8s} {name:45s} CPU {cpu:6.2f} ms  wall {wall:6.2f} ms  "
                f"{lock} held {hold:5.2f} ms"
            )
        base_count = set(by_shape[BENCH_SHAPE.name])
        lines_equal = len(base_count) == 1 and set(by_shape["40 order lines"]) == base_count
        others = [n for n, v in by_shape.items() if set(v) != base_count and n != ONEOFF]
        counts.append(
            f"{db['db']:8s} 5 vs 40 order lines: "
            f"{'equal (no N+1 over lines)' if lines_equal else 'NOT EQUAL (N+1 over lines)'}"
            + (f"; differs from the benchmark's shape: {', '.join(others)}" if others else "")
        )
        for note in db["checks"]:
            healthy &= not note.startswith("FAIL")
    lines += ["", "Throughput ratio (subscription invoice / one-off create, same run):", *ratios]
    lines += ["", "SQL statements per request (in-process, cursor executions):", *counts]
    lines += ["", "In-process, one request at a time (medians):", *timing]
    if args.verbose:
        for db in outcome:
            lines += ["", f"{db['db']}: statements of one benchmark request"]
            lines += [f"  {n:5.2f} {k}" for k, n in db["statements"]["shapes"].items()]
    lines += ["", "Checks:"]
    lines += [f"{db['db']:8s} {note}" for db in outcome for note in db["checks"]]
    if not healthy:
        lines.append("\nFAILED: non-2xx answers or a failed check (see above)")
    return "\n".join(lines), healthy


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = load_bench_parser(
        __doc__.split("\n\n")[0], rounds_help="repeat both measurements, alternating",
        pg_db="bench_sub",
    )  # fmt: skip
    p.add_argument(
        "--max-rate", type=float, default=300.0,
        help="invoices/s the subscription pool is sized for (default 300)",
    )  # fmt: skip
    p.add_argument(
        "--count-requests", type=int, default=10,
        help="in-process requests per shape for the statement counts (default 10)",
    )  # fmt: skip
    p.add_argument("--verbose", action="store_true", help="also the statements of one request")
    args = p.parse_args(argv)
    check_load_args(p, args)
    if args.smoke:
        args.max_rate, args.count_requests = 20.0, 2
    if not args.pg_db.startswith("bench_sub"):
        p.error("--pg-db must start with bench_sub")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        saved = json.loads(args.report.read_text())
        for key, value in saved["args"].items():
            if key not in ("report", "json", "verbose"):
                setattr(args, key, value)
        text, healthy = report(saved["results"], args)
        print(text)
        return 0 if healthy else 1

    def on_term(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    # Also when started in the background of a shell, which ignores SIGINT for its jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    load0 = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="bench-sub-"))
    outcome: list[dict[str, Any]] = []
    try:
        if args.db in ("sqlite", "both"):
            url = f"sqlite:///{workdir / 'bench.sqlite3'}"
            outcome.append(bench_database("sqlite", url, args, workdir))
        if args.db in ("postgres", "both"):
            with postgres_database(args.pg_admin_url, args.pg_db) as url:
                outcome.append(bench_database("postgres", url, args, workdir))
    except KeyboardInterrupt:
        log("interrupted; servers stopped")
        return 130
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    args.loadavg = f"{load0:.1f} at start, {os.getloadavg()[0]:.1f} at end"
    text, healthy = report(outcome, args)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {"args": vars(args) | {"json": str(args.json)}, "results": outcome},
                indent=1,
                default=str,
            )
        )
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
