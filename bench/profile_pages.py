"""Where the browser pages spend their CPU, in-process (Flask's test client, no gunicorn).

    .venv/bin/python bench/profile_pages.py [--db sqlite|postgres] [--invoices 100000]
        [--keep /tmp/pages.sqlite3] [-n 300] [--top 25] [--profile list,detail-50] [--cold]
        [--only list,list-search]

Seeds like bench/pages.py (with --keep a SQLite file is seeded once and reused), signs in
through the test client and, per page, prints the CPU per request (time.process_time over
-n requests after a warm-up), then a cProfile of the pages named by --profile. With
--cold the CPU caches are made cold before each request (see `chill`) and each request
is a WSGI call on the app (no test client): the ratios then come close to those of
bench/pages.py under gunicorn, with less noise.

Besides the pages of bench/pages.py it measures two floors registered on the same app:
`floor-signed-in` (a page blueprint route answering "ok": Flask, the session cookie, the
signed-in user, nothing else) and `floor-layout` (the same route rendering base.html with
an empty content block), which show what any signed-in page costs before doing anything.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import pages as bench_pages  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument("--invoices", type=int, default=100_000)
    p.add_argument("--keep", type=Path, help="SQLite file to seed once and reuse")
    p.add_argument("-n", type=int, default=300)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--profile", default="", help="comma-separated page names to profile")
    p.add_argument("--only", default="", help="comma-separated page names to time (and static)")
    p.add_argument(
        "--cold",
        action="store_true",
        help="between requests, write 16 MB and run unrelated Python code (CPU caches cold, "
        "as under gunicorn); the per-request CPU is then timed request by request",
    )
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/bench_pages_prof")
    args = p.parse_args()
    if args.db == "sqlite":
        path = args.keep or Path(f"/tmp/bench-pages-{os.getpid()}.sqlite3")
        url = f"sqlite:///{path}"
        meta = path.with_suffix(".json")
        if not (path.exists() and meta.exists()):
            path.unlink(missing_ok=True)
            meta.write_text(json.dumps(bench_pages.seed(url, args.invoices)))
    else:
        url = args.pg_url
        meta = Path(f"/tmp/bench-pages-prof-{url.rsplit('/', 1)[-1]}.json")
        if not meta.exists():
            meta.write_text(json.dumps(bench_pages.seed(url, args.invoices)))
    ids = json.loads(meta.read_text())
    run(url, ids, args)
    return 0


def floor_routes(app: Any) -> None:
    from flask import render_template

    from billing_app.web.pages import page_blueprint

    bp = page_blueprint("floor", __name__)
    empty_page = app.jinja_env.from_string('{% extends "base.html" %}')

    @bp.get("/signed-in")
    def signed_in() -> str:
        return "ok"

    @bp.get("/layout")
    def layout() -> str:
        return render_template(empty_page)

    app.register_blueprint(bp, url_prefix="/_floor")


def signed_in_client(app: Any) -> tuple[Any, str]:
    """A test client of `app` signed in as the bench's user, and the CSRF token its pages'
    htmx requests send."""
    client = app.test_client()
    body = client.get("/signin").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', body).group(1)  # type: ignore[union-attr]
    resp = client.post(
        "/signin",
        data={"email": bench_pages.EMAIL, "password": bench_pages.PASSWORD, "csrf_token": token},
    )
    assert resp.status_code == 302, resp.status_code
    body = client.get("/settings/api-keys").get_data(as_text=True)
    return client, re.search(r'"X-CSRFToken": "([^"]+)"', body).group(1)  # type: ignore[union-attr]


def run(url: str, ids: dict[str, Any], args: argparse.Namespace) -> None:
    from werkzeug.test import EnvironBuilder

    from billing_app import create_app

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench"})
    floor_routes(app)
    client, token = signed_in_client(app)
    specs = bench_pages.pages(ids, "", token)
    specs = {
        "static": specs["static"],
        "sign-in": specs["sign-in"],
        "floor-signed-in": {"path": "/_floor/signed-in", "headers": {}},
        "floor-layout": {"path": "/_floor/layout", "headers": {}},
        **{k: v for k, v in specs.items() if k not in ("static", "sign-in")},
    }

    if args.only:
        keep = {"static", *args.only.split(",")}
        specs = {k: v for k, v in specs.items() if k in keep}
    anonymous = app.test_client()

    def call(spec: dict[str, Any]) -> Any:
        headers = {k: v for k, v in spec["headers"].items() if k != "Cookie"}
        if spec.get("method") == "POST":
            return client.post(spec["path"], data=spec["body"], headers=headers)
        if spec["path"].startswith(("/static/", "/signin")):
            return anonymous.get(spec["path"], headers=headers)
        return client.get(spec["path"], headers=headers)

    junk = bytearray(16 * 1024 * 1024)
    blob = [{"a": i / 7, "b": str(i), "c": [i, i + 1]} for i in range(3000)]

    def chill() -> None:
        """What the client and the machine's other processes do to the CPU caches
        between two requests of a gunicorn worker: without it a page's code and data stay
        in the caches, and the in-process figures come out 2-3x below gunicorn's (the
        static file's most of all, so the ratios too)."""
        for i in range(0, len(junk), 64):
            junk[i] = (junk[i] + 1) & 255
        json.dumps(blob)

    session_cookie = client.get_cookie("session")
    assert session_cookie is not None

    def wsgi_call(spec: dict[str, Any]) -> Callable[[], None]:
        """The request as a WSGI call on the app itself, its environ built once: the test
        client's own work, cold, cost more than the static file."""
        headers = {k: v for k, v in spec["headers"].items() if k != "Cookie"}
        if not spec["path"].startswith(("/static/", "/signin")):
            headers["Cookie"] = f"session={session_cookie.value}"
        path, _, query = spec["path"].partition("?")
        environ = EnvironBuilder(
            path=path,
            query_string=query,
            method=spec.get("method", "GET"),
            headers=headers,
            data=spec.get("body"),
        ).get_environ()
        body = spec.get("body") or b""

        def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
            assert status.startswith(str(spec.get("expect", 200))), status

        def run() -> None:
            env = dict(environ)
            env["wsgi.input"] = io.BytesIO(body)
            out = app.wsgi_app(env, start_response)
            try:
                b"".join(out)
            finally:
                getattr(out, "close", lambda: None)()

        return run

    def timed(spec: dict[str, Any]) -> float:
        if not args.cold:
            t0 = time.process_time()
            for _ in range(args.n):
                call(spec).close()
            return (time.process_time() - t0) / args.n * 1000
        run = wsgi_call(spec)
        total = 0.0
        for _ in range(args.n):
            chill()
            t0 = time.process_time()
            run()
            total += time.process_time() - t0
        return total / args.n * 1000

    results = {}
    for name, spec in specs.items():
        for _ in range(20):
            resp = call(spec)
            assert resp.status_code == spec.get("expect", 200), (name, resp.status_code)
            resp.close()
        # Warm: the best of three runs; cold: the median of five (its spread is wider).
        runs = sorted(timed(spec) for _ in range(5 if args.cold else 3))
        results[name] = runs[len(runs) // 2] if args.cold else runs[0]
    static = results["static"]
    print(f"{'page':<18} {'CPU ms':>8} {'x static':>9}")
    for name, ms in results.items():
        print(f"{name:<18} {ms:8.3f} {ms / static:9.2f}")
    for name in filter(None, args.profile.split(",")):
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(args.n):
            call(specs[name]).close()
        prof.disable()
        out = io.StringIO()
        stats = pstats.Stats(prof, stream=out)
        print(f"\n===== {name}: own time")
        stats.sort_stats("tottime").print_stats(args.top)
        print(f"\n===== {name}: cumulative")
        stats.sort_stats("cumulative").print_stats(args.top)
        print(out.getvalue())


if __name__ == "__main__":
    sys.exit(main())
