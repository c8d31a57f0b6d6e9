"""Where one-off create / finalize spend their time, in-process (no HTTP, no gunicorn).

    .venv/bin/python bench/profile_oneoff.py [--db sqlite|postgres] [-n 300] [--top 25]

Migrates a fresh database (a temp SQLite file, or the PostgreSQL database bench_oneoff_prof,
dropped at the end), makes an account and a customer, then runs N requests of each kind
through Flask's test client: it prints the SQL statements per request (with the slowest
statement shapes) and a cProfile of the requests, sorted by own time and by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

PLAIN = 50  # requests timed without the profiler
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.oneoff import LINES, Tenant, create_drafts, postgres_database  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument("-n", type=int, default=300, help="requests of each kind")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--dump", type=Path, help="write <dir>/<create|finalize>-<db>.prof")
    p.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = p.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    try:
        if args.db == "sqlite":
            run(f"sqlite:///{workdir / 'prof.sqlite3'}", args, workdir)
        else:
            with postgres_database(args.pg_admin_url, "bench_oneoff_prof") as url:
                run(url, args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def run(url: str, args: argparse.Namespace, workdir: Path) -> None:
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from billing_app import create_app
    from billing_app.accounts import service as accounts
    from billing_app.entities.models import BillingEntity
    from billing_app.extensions import db

    os.environ["SECRET_KEY"] = "bench-profile"
    app = create_app({"DATABASE_URL": url})
    app.instance_path = str(workdir)
    with app.app_context():
        upgrade()
        new = accounts.create_account("Prof GmbH", "prof@example.com", "secret123")
        entity_id = db.session.scalars(
            sa.select(BillingEntity.id).where(BillingEntity.account_id == new.account.id)
        ).one()
        engine = db.engine
    client = app.test_client()
    headers = {"Authorization": f"Bearer {new.api_key}"}
    resp = client.post(
        "/v1/customers/", json={"external_id": "c1", "name": "C1", "currency": "EUR"},
        headers=headers,
    )  # fmt: skip
    assert resp.status_code == 201, resp.get_data(as_text=True)
    customer_id = resp.get_json()["id"]
    body = json.dumps({"customer_id": customer_id, "currency": "EUR", "line_items": LINES})
    tenant = Tenant(new.account.id, entity_id, __import__("uuid").UUID(customer_id), new.api_key)
    ids = create_drafts(engine, tenant, args.n + 10 + PLAIN)

    statements: list[tuple[str, float]] = []

    holds: list[float] = []

    def before(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        conn.info["t0"] = time.perf_counter()
        if statement.startswith("BEGIN IMMEDIATE"):
            conn.info["locked_at"] = conn.info["t0"]

    def on_commit(conn: Any) -> None:
        locked_at = conn.info.pop("locked_at", None)
        if locked_at is not None:
            # Up to the COMMIT call; the commit itself (a WAL append) is not included.
            holds.append(time.perf_counter() - locked_at)

    def after(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        statements.append((statement, time.perf_counter() - conn.info.pop("t0")))

    sa.event.listen(engine, "before_cursor_execute", before)
    sa.event.listen(engine, "after_cursor_execute", after)
    sa.event.listen(engine, "commit", on_commit)

    def create(i: int) -> None:
        r = client.post(
            "/v1/invoices/one_off", data=body, content_type="application/json", headers=headers
        )
        assert r.status_code == 200, r.get_data(as_text=True)

    def finalize(i: int) -> None:
        r = client.post(f"/v1/invoices/{ids[i]}/finalize", headers=headers)
        assert r.status_code == 200, r.get_data(as_text=True)

    for name, fn in (("create", create), ("finalize", finalize)):
        for i in range(10):  # warm-up (caches, first connection)
            fn(args.n + i)
        holds.clear()
        t_plain = time.perf_counter()
        for i in range(PLAIN):
            fn(args.n + 10 + i)
        plain = (time.perf_counter() - t_plain) / PLAIN
        hold = sorted(holds)
        statements.clear()
        # CPU time, not wall time: waiting for the database is not what is being optimised.
        profiler = cProfile.Profile(time.process_time)
        t0 = time.perf_counter()
        profiler.enable()
        for i in range(args.n):
            fn(i)
        profiler.disable()
        elapsed = time.perf_counter() - t0
        print(
            f"\n===== {name} ({args.db}): {args.n} requests, {elapsed / args.n * 1000:.2f} ms "
            f"each under cProfile, {plain * 1000:.2f} ms without"
        )
        if hold:
            print(
                f"SQLite write lock held (BEGIN IMMEDIATE to COMMIT, no profiler): median "
                f"{hold[len(hold) // 2] * 1000:.2f} ms, max {hold[-1] * 1000:.2f} ms"
            )
        shapes: Counter[str] = Counter()
        cost: defaultdict[str, float] = defaultdict(float)
        for stmt, seconds in statements:
            key = " ".join(stmt.split())[:110]
            shapes[key] += 1
            cost[key] += seconds
        print(
            f"SQL statements per request: {len(statements) / args.n:.1f} (time per statement "
            "under cProfile: inflated)"
        )
        for key, count in shapes.most_common():
            print(f"  {count / args.n:5.2f}/req {cost[key] / count * 1e6:7.0f} us  {key}")
        if args.dump:
            args.dump.mkdir(parents=True, exist_ok=True)
            profiler.dump_stats(args.dump / f"{name}-{args.db}.prof")
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(args.top)
        stats.sort_stats("cumulative").print_stats(args.top)
        print(out.getvalue())
    with app.app_context():
        db.engine.dispose()
    if engine.dialect.name == "postgresql":
        time.sleep(1.5)  # backends report their statistics at most once a second
        with sa.create_engine(engine.url).connect() as conn:
            for row in conn.execute(
                sa.text(
                    "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
                    "WHERE relname IN ('invoices', 'accounts', 'billing_entities', 'audit_records')"
                    " ORDER BY relname"
                )
            ):
                print(
                    f"pg_stat_user_tables {row[0]}: {row[1]} inserts, {row[2]} updates, "
                    f"{row[3]} of them HOT"
                )
        print(f"(requests in total: {args.n + 10 + PLAIN} creates and as many finalizes)")
    floor_in_process(url, tenant, customer_id, body, create_drafts(engine, tenant, PLAIN + 10))


def floor_in_process(url: str, tenant: Any, customer_id: str, body: str, ids: list[str]) -> None:
    """The floor app's two routes, timed the same way (no profiler)."""
    import sqlalchemy as sa

    os.environ.update(
        DATABASE_URL=url,
        BENCH_ACCOUNT_ID=str(tenant.account_id),
        BENCH_ENTITY_ID=str(tenant.entity_id),
    )
    from bench.floor_app import create_app as floor_app

    app = floor_app()
    engine = app.extensions["floor_engine"]
    holds: list[float] = []

    def before(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        if statement.startswith("BEGIN IMMEDIATE"):
            conn.info["locked_at"] = time.perf_counter()

    def on_commit(conn: Any) -> None:
        locked_at = conn.info.pop("locked_at", None)
        if locked_at is not None:
            holds.append(time.perf_counter() - locked_at)

    sa.event.listen(engine, "before_cursor_execute", before)
    sa.event.listen(engine, "commit", on_commit)
    client = app.test_client()
    paths = {
        "create": ["/floor/invoices"] * (PLAIN + 10),
        "finalize": [f"/floor/invoices/{i}/finalize" for i in ids],
    }
    for name, todo in paths.items():
        data = body if name == "create" else None
        for path in todo[:10]:
            assert client.post(path, data=data, content_type="application/json").status_code == 200
        holds.clear()
        t0 = time.perf_counter()
        for path in todo[10:]:
            assert client.post(path, data=data, content_type="application/json").status_code == 200
        each = (time.perf_counter() - t0) / (len(todo) - 10)
        hold = sorted(holds)
        held = f", write lock held: median {hold[len(hold) // 2] * 1000:.2f} ms" if hold else ""
        print(f"===== floor {name}: {each * 1000:.2f} ms per request in-process{held}")
    engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
