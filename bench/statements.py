"""SQL statements per request of one app, counted in-process at the database driver.

    PYTHONPATH=<tree> DATABASE_URL=... .venv/bin/python bench/statements.py \\
        --app billing_app:create_app --api-key KEY --create-path /v1/invoices/one_off \\
        --body '{...}' --finalize-path '/v1/invoices/{id}/finalize' --ids id1,id2,... -n 20

bench/oneoff.py runs this once per server it measures (the current code, the code before,
the floor), each with its own PYTHONPATH, so every contender is counted the same way.
Counted at the driver, below anything an app may do with SQLAlchemy: on SQLite every
statement the app runs (`sqlite3` trace callback, without what SQLite runs on its own for
triggers and FTS5 tables), on PostgreSQL every execute / executemany call on a psycopg
cursor (one round trip each). Transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT,
RELEASE) and PRAGMAs are not counted. After one warm-up request of each kind, `-n` creates
and then `-n` finalizes (of the drafts `--ids` names; it needs n + 1) are counted. Prints
one JSON object: statements per request of each kind, and how many answers were 2xx (the
numbers and records they took count in the checks).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Any

import psycopg
from sqlalchemy import event
from sqlalchemy.pool import Pool

NOT_COUNTED = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "PRAGMA", "END")
counted = [0]
seen: list[str] = []  # the statements counted, for --list


def count(sql: str | bytes | None) -> None:
    text = sql.decode() if isinstance(sql, bytes) else (sql or "")
    head = text.lstrip().split(None, 1)[0].upper() if text.strip() else ""
    if head and not head.startswith("--") and head not in NOT_COUNTED:
        counted[0] += 1
        seen.append(" ".join(text.split())[:160])


class CountingCursor(psycopg.Cursor[Any]):
    def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        count(query if isinstance(query, str | bytes) else str(query))
        return super().execute(query, *args, **kwargs)

    def executemany(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        count(query if isinstance(query, str | bytes) else str(query))
        return super().executemany(query, *args, **kwargs)


def count_sqlite(sql: str) -> None:
    """The trace callback also reports what SQLite runs on its own: a trigger's statements
    ("-- …"), FTS5's reads and writes of its shadow tables (`'main'.'…'`), and the
    statement that fired a trigger again after each one. Those are not the app's: count
    the app's statements once each."""
    if sql.lstrip().startswith("--") or "'main'." in sql:
        return
    if sql != last_sqlite[0]:
        count(sql)
    last_sqlite[0] = sql


last_sqlite = [""]


@event.listens_for(Pool, "connect")
def _count_on(dbapi_connection: Any, _record: Any) -> None:
    if isinstance(dbapi_connection, psycopg.Connection):
        dbapi_connection.cursor_factory = CountingCursor
    elif hasattr(dbapi_connection, "set_trace_callback"):
        dbapi_connection.set_trace_callback(count_sqlite)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--app", required=True, help="module:factory, called with no arguments")
    p.add_argument("--api-key", required=True)
    p.add_argument("--create-path", required=True)
    p.add_argument("--body", required=True, help="JSON body of a create")
    p.add_argument("--finalize-path", required=True, help="with {id}")
    p.add_argument("--ids", required=True, help="comma-separated drafts to finalize (n + 1)")
    p.add_argument("-n", type=int, default=20)
    p.add_argument("--list", action="store_true", help="the statements of one of each, to stderr")
    args = p.parse_args(argv)
    module, factory = args.app.split(":")
    app = getattr(importlib.import_module(module), factory)()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {args.api_key}", "Accept": "application/json"}
    body = json.loads(args.body)
    ids = args.ids.split(",")
    if len(ids) < args.n + 1:
        p.error("--ids needs n + 1 drafts")
    answers = {"create": 0, "finalize": 0}
    per_request = {}

    def run(kind: str, send: Any, times: int) -> float:
        before = counted[0]
        seen.clear()
        for i in range(times):
            response = send(i)
            if not 200 <= response.status_code < 300:
                sys.exit(f"{kind} answered {response.status_code}: {response.get_data(True)}")
            answers[kind] += 1
            if args.list and i == 0:
                print(f"-- one {kind}:", *seen, sep="\n", file=sys.stderr)
        return (counted[0] - before) / times

    def create(_: int) -> Any:
        return client.post(args.create_path, json=body, headers=headers)

    def finalize(i: int) -> Any:
        return client.post(args.finalize_path.format(id=ids[i]), headers=headers)

    run("create", create, 1)
    per_request["create"] = run("create", create, args.n)
    run("finalize", finalize, 1)
    per_request["finalize"] = run("finalize", lambda i: finalize(i + 1), args.n)
    print(json.dumps({"statements": per_request, "answers_2xx": answers}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
