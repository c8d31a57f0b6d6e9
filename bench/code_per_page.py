"""How much distinct code each page runs, in-process: a measure that does not move with
the machine's load.

    .venv/bin/python bench/code_per_page.py --url <DATABASE_URL> --ids <seed ids .json>
        [--dump list]

Under gunicorn every request runs with cold CPU caches, so a page's cost follows how much
distinct code it runs (docs/performance.md, "Pages"). For each page of bench/pages.py,
after a warm-up, one request is traced with `sys.setprofile` inside the app's WSGI
callable: the distinct Python functions it entered, the size of their bytecode, and the
calls made (Python and C). `--dump <page>` also lists, by file, the functions the page
runs that the static file does not. The seeded database comes from profile_pages.py
(`--keep` for SQLite; its ids are the .json next to it).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from types import CodeType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import pages as bench_pages  # noqa: E402
from bench.profile_pages import signed_in_client  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True)
    p.add_argument("--ids", type=Path, required=True)
    p.add_argument("--dump", default="")
    args = p.parse_args()
    ids = json.loads(args.ids.read_text())

    from billing_app import create_app

    app = create_app({"DATABASE_URL": args.url, "SECRET_KEY": "bench"})
    client, token = signed_in_client(app)
    specs = bench_pages.pages(ids, "", token)
    anonymous = app.test_client()
    inner = app.wsgi_app

    def call(spec: dict[str, Any]) -> None:
        headers = {k: v for k, v in spec["headers"].items() if k != "Cookie"}
        who = anonymous if spec["path"].startswith(("/static/", "/signin")) else client
        if spec.get("method") == "POST":
            resp = who.post(spec["path"], data=spec["body"], headers=headers)
        else:
            resp = who.get(spec["path"], headers=headers)
        assert resp.status_code == spec.get("expect", 200), (spec["path"], resp.status_code)
        resp.close()

    def traced(spec: dict[str, Any]) -> tuple[set[CodeType], int]:
        """The distinct functions one request of `spec` runs inside the app, and its calls."""
        codes: set[CodeType] = set()
        calls = [0]

        def profiler(frame: Any, event: str, _arg: Any) -> None:
            if event == "call":
                codes.add(frame.f_code)
                calls[0] += 1
            elif event == "c_call":
                calls[0] += 1

        def app_traced(environ: Any, start_response: Callable[..., Any]) -> Iterable[bytes]:
            sys.setprofile(profiler)
            try:
                out = inner(environ, start_response)
                body = b"".join(out)
                getattr(out, "close", lambda: None)()
            finally:
                sys.setprofile(None)
            return [body]

        for _ in range(5):
            call(spec)
        app.wsgi_app = app_traced  # type: ignore[method-assign]
        try:
            call(spec)
        finally:
            app.wsgi_app = inner  # type: ignore[method-assign]
        return codes, calls[0]

    print(f"{'page':<16}{'functions':>10}{'bytecode':>10}{'calls':>8}")
    seen: dict[str, set[CodeType]] = {}
    for name, spec in specs.items():
        codes, calls = traced(spec)
        seen[name] = codes
        size = sum(len(c.co_code) for c in codes)
        print(f"{name:<16}{len(codes):>10}{size:>10}{calls:>8}")
    if args.dump:
        extra = seen[args.dump] - seen["static"]
        by_file = Counter(c.co_filename for c in extra)
        print(f"\n{args.dump}: {len(extra)} functions the static file does not run, by file")
        for filename, n in by_file.most_common():
            print(f"{n:5}  {filename}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
