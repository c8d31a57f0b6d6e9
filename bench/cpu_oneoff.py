"""CPU time per request, in-process, of the app's one-off create/finalize and of the bare
floor (bench/floor_app.py), interleaved in rounds: process CPU time moves far less than
wall time when the machine is busy, so this is the quick check to use while optimising.

    .venv/bin/python bench/cpu_oneoff.py [--db sqlite|postgres] [-n 300] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.oneoff import LINES, Tenant, create_drafts, run_in_temp_database  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument("-n", type=int, default=300, help="requests per kind and round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = p.parse_args()
    return run_in_temp_database(args, "bench_oneoff_cpu", run, prefix="bench-cpu-")


def run(url: str, args: argparse.Namespace, workdir: Path) -> None:
    import logging

    import sqlalchemy as sa
    from flask_migrate import upgrade

    from billing_app import create_app
    from billing_app.accounts import service as accounts
    from billing_app.entities.models import BillingEntity
    from billing_app.extensions import db

    logging.disable(logging.INFO)
    os.environ["SECRET_KEY"] = "bench-cpu"
    app = create_app({"DATABASE_URL": url})
    app.instance_path = str(workdir)
    with app.app_context():
        upgrade()
        new = accounts.create_account("CPU GmbH", "cpu@example.com", "secret123")
        entity_id = db.session.scalars(
            sa.select(BillingEntity.id).where(BillingEntity.account_id == new.account.id)
        ).one()
        engine = db.engine
    client = app.test_client()
    headers = {"Authorization": f"Bearer {new.api_key}"}
    resp = client.post("/v1/customers/", json={"external_id": "c1", "name": "C1"}, headers=headers)
    customer_id = resp.get_json()["id"]
    body = json.dumps({"customer_id": customer_id, "currency": "EUR", "line_items": LINES})
    tenant = Tenant(new.account.id, entity_id, uuid.UUID(customer_id), new.api_key)
    total = args.n * args.rounds + 20
    app_drafts = create_drafts(engine, tenant, total)
    floor_drafts = create_drafts(engine, tenant, total)

    os.environ.update(
        DATABASE_URL=url,
        BENCH_ACCOUNT_ID=str(tenant.account_id),
        BENCH_ENTITY_ID=str(tenant.entity_id),
    )
    from bench.floor_app import create_app as create_floor

    floor = create_floor().test_client()

    def app_create(i: int) -> None:
        r = client.post(
            "/v1/invoices/one_off", data=body, content_type="application/json", headers=headers
        )
        assert r.status_code == 200, r.get_data(as_text=True)

    def app_finalize(i: int) -> None:
        r = client.post(f"/v1/invoices/{app_drafts[i]}/finalize", headers=headers)
        assert r.status_code == 200, r.get_data(as_text=True)

    def floor_create(i: int) -> None:
        r = floor.post("/floor/invoices", data=body, content_type="application/json")
        assert r.status_code == 200, r.get_data(as_text=True)

    def floor_finalize(i: int) -> None:
        r = floor.post(f"/floor/invoices/{floor_drafts[i]}/finalize")
        assert r.status_code == 200, r.get_data(as_text=True)

    kinds = {
        "app-create": app_create,
        "floor-create": floor_create,
        "app-finalize": app_finalize,
        "floor-finalize": floor_finalize,
    }
    for fn in kinds.values():  # warm-up: caches, first connections
        for i in range(10):
            fn(i)
    counters = dict.fromkeys(kinds, 10)
    results: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(args.rounds):
        for name, fn in kinds.items():
            t0 = time.process_time()
            for _ in range(args.n):
                fn(counters[name])
                counters[name] += 1
            results[name].append((time.process_time() - t0) / args.n * 1000)
    print(f"CPU ms per request, in-process ({args.db}), median of {args.rounds} rounds")
    med = {k: statistics.median(v) for k, v in results.items()}
    for k, v in med.items():
        print(f"  {k:15s} {v:6.2f} ms   rounds: {' '.join(f'{x:.2f}' for x in results[k])}")
    for what in ("create", "finalize"):
        print(f"  {what}: floor/app CPU = {med['floor-' + what] / med['app-' + what]:.2f}")


if __name__ == "__main__":
    sys.exit(main())
