"""CPU time per request, in-process, of the on-demand subscription invoice (the shape of
bench/subscription_invoice.py) against the one-off create, interleaved in rounds; with
--profile DIR it also writes a cProfile of the subscription requests. The quick check to use
while optimising; the HTTP benchmark is bench/subscription_invoice.py.

    .venv/bin/python bench/cpu_subscription.py [--db sqlite|postgres] [-n 100] [--rounds 3]
        [--profile DIR]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.oneoff import LINES, run_in_temp_database  # noqa: E402
from bench.subscription_invoice import (  # noqa: E402
    BENCH_SHAPE,
    body_template,
    check_response,
    create_catalogue,
    insert_subscriptions,
)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument("-n", type=int, default=100, help="requests per kind and round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--profile", type=Path, help="write sub.prof (cProfile) into this folder")
    p.add_argument("--statements", action="store_true", help="list one request's statements")
    p.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = p.parse_args()
    return run_in_temp_database(args, "bench_sub_cpu", run, prefix="bench-cpu-sub-")


def run(url: str, args: argparse.Namespace, workdir: Path) -> None:
    import sqlalchemy as sa
    from flask_migrate import upgrade

    from billing_app import create_app
    from billing_app.accounts import service as accounts
    from billing_app.extensions import db

    logging.disable(logging.INFO)
    os.environ["SECRET_KEY"] = "bench-cpu"
    app = create_app({"DATABASE_URL": url})
    app.instance_path = str(workdir)
    with app.app_context():
        upgrade()
        new = accounts.create_account("CPU GmbH", "cpu@example.com", "secret123")
        db.session.commit()
        account_id = new.account.id
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    cat = create_catalogue(engine, account_id)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {new.api_key}"}
    oneoff_body = json.dumps(
        {"customer_id": str(cat.customer_id), "currency": "EUR", "line_items": LINES}
    )
    template = body_template(BENCH_SHAPE)
    handles = insert_subscriptions(engine, cat, "cpu-", args.n * args.rounds + 10)
    statements: list[str] = []
    with app.app_context():
        sa.event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))

    def sub_invoice(handle: str) -> None:
        body = template.replace(b"{id}", handle.encode())
        resp = client.post(
            f"/v1/subscription/{handle}/invoice",
            data=body,
            content_type="application/json",
            headers=headers,
        )
        assert resp.status_code == 200, resp.text
        problem = check_response(resp.get_json(), BENCH_SHAPE, handle)
        assert problem is None, problem

    def oneoff() -> None:
        resp = client.post("/v1/invoices/one_off", data=oneoff_body,
                           content_type="application/json", headers=headers)  # fmt: skip
        assert resp.status_code == 200, resp.text

    for _ in range(5):
        sub_invoice(handles.pop())
        oneoff()
    for name, request in (("one-off create", oneoff), ("subscription invoice", None)):
        statements.clear()
        if request is None:
            sub_invoice(handles.pop())
        else:
            request()
        print(f"statements per {name}: {len(statements)}")
        if args.statements:
            for statement in statements:
                print("   ", " ".join(statement.split())[:150])
    profiler = cProfile.Profile(time.process_time) if args.profile else None
    sub_ms: list[float] = []
    one_ms: list[float] = []
    for _ in range(args.rounds):
        t0 = time.process_time()
        for _ in range(args.n):
            oneoff()
        one_ms.append((time.process_time() - t0) * 1000 / args.n)
        batch = [handles.pop() for _ in range(args.n)]
        if profiler:
            profiler.enable()
        t0 = time.process_time()
        for handle in batch:
            sub_invoice(handle)
        sub_ms.append((time.process_time() - t0) * 1000 / args.n)
        if profiler:
            profiler.disable()
    sub, one = statistics.median(sub_ms), statistics.median(one_ms)
    for name, value, rounds in (("one-off create", one, one_ms), ("subscription", sub, sub_ms)):
        shown = [round(x, 2) for x in rounds]
        print(f"{name:15s} {value:6.2f} ms CPU/request  (rounds {shown})")
    print(f"ratio one-off/subscription (CPU): {one / sub:.2f}  (target of the HTTP bench: 0.5)")
    if profiler and args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
        profiler.dump_stats(str(args.profile / "sub.prof"))
        print(f"profile: {args.profile / 'sub.prof'}")
    engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
