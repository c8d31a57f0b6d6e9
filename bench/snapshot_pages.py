"""Every page and fragment the page work touches, written to a JSON file, to compare two
versions of the code byte for byte on the same seeded database.

    PYTHONPATH=<checkout> .venv/bin/python bench/snapshot_pages.py --url <DATABASE_URL> \\
        --ids <seed ids .json, from profile_pages.py> --cookie /tmp/cookie.txt --out a.json

The first run signs in and keeps the session cookie in --cookie; later runs reuse it, so
both versions serve the same session. CSRF tokens (signed anew per process, with a
timestamp) and the sign-in page's new session cookie are replaced by placeholders;
everything else, status, headers but `Date`, and body, is kept. Only requests that write
nothing are made (the entry form's recalculations and refused saves).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import pages as bench_pages  # noqa: E402

_TOKEN = re.compile(r"I[A-Za-z0-9_\-]{20,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{20,}")
_SESSION = re.compile(r"session=[^;]*")
_FOREIGN = uuid.UUID("0193a1b2-0000-7000-8000-00000000beef")  # no row has it


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True)
    p.add_argument("--ids", type=Path, required=True)
    p.add_argument("--cookie", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    ids = json.loads(args.ids.read_text())

    import sqlalchemy as sa

    from billing_app import create_app

    app = create_app({"DATABASE_URL": args.url, "SECRET_KEY": "bench"})
    client = app.test_client()
    if args.cookie.exists():
        client.set_cookie("session", args.cookie.read_text().strip())
    else:
        body = client.get("/signin").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', body).group(1)  # type: ignore[union-attr]
        resp = client.post(
            "/signin",
            data={
                "email": bench_pages.EMAIL,
                "password": bench_pages.PASSWORD,
                "csrf_token": token,
            },
        )
        assert resp.status_code == 302, resp.status_code
        cookie = client.get_cookie("session")
        assert cookie is not None
        args.cookie.write_text(cookie.value)
    body = client.get("/settings/api-keys").get_data(as_text=True)
    token = re.search(r'"X-CSRFToken": "([^"]+)"', body).group(1)  # type: ignore[union-attr]

    engine = sa.create_engine(args.url.replace("postgresql://", "postgresql+psycopg://"))
    aid = ids["account_id"]
    with engine.connect() as conn:
        account = aid.replace("-", "") if "sqlite" in args.url else aid
        by_state = {}
        for state in ("draft", "open", "paid", "void", "failed"):
            found = conn.execute(
                sa.text(
                    "SELECT id FROM invoices WHERE account_id = :a AND state = :s"
                    " ORDER BY id LIMIT 1"
                ),
                {"a": account, "s": state},
            ).scalar()
            if found is not None:
                by_state[state] = str(uuid.UUID(str(found)))
        more = [
            str(uuid.UUID(str(i)))
            for (i,) in conn.execute(
                sa.text("SELECT id FROM invoices ORDER BY total_minor DESC, id LIMIT 10")
            )
        ]
        # Invoices of customers whose external id starts with "rich" (richer data added
        # to a seeded database by hand: addresses, companies, lines, history), if any.
        rich = [
            (str(uuid.UUID(str(i))), state)
            for (i, state) in conn.execute(
                sa.text(
                    "SELECT i.id, i.state FROM invoices i JOIN customers c"
                    " ON c.id = i.customer_id WHERE c.external_id LIKE 'rich%'"
                    " ORDER BY i.invoice_number"
                )
            )
        ]
        rich_customers = [
            str(uuid.UUID(str(i)))
            for (i,) in conn.execute(
                sa.text("SELECT id FROM customers WHERE external_id LIKE 'rich%' ORDER BY id")
            )
        ]
        customers = [
            str(uuid.UUID(str(i)))
            for (i,) in conn.execute(sa.text("SELECT id FROM customers ORDER BY name, id LIMIT 3"))
        ]

    out: dict[str, Any] = {}
    anonymous = app.test_client()

    def take(
        name: str,
        path: str,
        *,
        method: str = "GET",
        data: Any = None,
        htmx: bool = False,
        who: Any = client,
    ) -> Any:
        headers = {"HX-Request": "true"} if htmx else {}
        if method == "POST":
            headers["X-CSRFToken"] = token
            resp = who.post(path, data=data, headers=headers)
        else:
            resp = who.get(path, headers=headers)
        body = resp.get_data(as_text=True)
        hdrs = [
            [k, _SESSION.sub("session=X", v) if k == "Set-Cookie" else v]
            for k, v in resp.headers.items()
            if k != "Date"
        ]
        out[f"{name} {method} {path} htmx={htmx}"] = {
            "status": resp.status_code,
            "headers": hdrs,
            "body": _TOKEN.sub("TOKEN", body),
        }
        return body

    take("static", "/static/css/app.css", who=anonymous)
    take("signin", "/signin", who=anonymous)
    take("signed-out list", "/invoices/", who=anonymous)
    take("signed-out list htmx", "/invoices/?q=a", who=anonymous, htmx=True)
    take("signed-out detail", f"/invoices/{ids['detail_id']}", who=anonymous)

    sorts = ["-created", "created", "-number", "number", "-total", "total"]
    statuses = ["", "draft", "open", "unpaid", "paid", "failed", "void"]
    next_link = re.compile(r'rel="next" href="([^"]+)"')
    prev_link = re.compile(r'rel="prev" href="([^"]+)"')
    for sort in sorts:
        for status in statuses:
            query = urlencode({k: v for k, v in (("sort", sort), ("status", status)) if v})
            path = f"/invoices/?{query}"
            for depth in range(3):
                body = take(f"list {sort} {status} {depth}", path, htmx=depth == 1)
                found = next_link.search(body)
                if not found:
                    break
                path = found.group(1).replace("&amp;", "&")
            found = prev_link.search(body)
            if found:
                take(f"list prev {sort} {status}", found.group(1).replace("&amp;", "&"))
    for text in ["00007", "INV-0000", "a", "zzz", "<script>", "DRAFT", "Customer 1", "%", "_x"]:
        for sort in ("-created", "total"):
            path = "/invoices/?" + urlencode({"q": text, "sort": sort})
            body = take(f"search {text} {sort}", path)
            take(f"search {text} {sort}", path, htmx=True)
            found = next_link.search(body)
            if found:
                take(f"search next {text}", found.group(1).replace("&amp;", "&"))
    for extra in [
        f"customer={ids['customer_id']}",
        f"customer={ids['customer_id']}&status=paid&sort=number",
        "date_from=2025-01-01&date_to=2025-03-31",
        "date_from=nonsense",
        "after=garbage",
        "sort=bogus&status=bogus",
        f"customer={_FOREIGN}",
        "customer=not-a-uuid",
    ]:
        take(f"list {extra}", f"/invoices/?{extra}")
        take(f"list {extra}", f"/invoices/?{extra}", htmx=True)

    for state, iid in sorted(by_state.items()):
        take(f"detail {state}", f"/invoices/{iid}")
    for iid in more:
        take("detail more", f"/invoices/{iid}")
    for iid, state in rich:
        take(f"detail rich {state}", f"/invoices/{iid}")
        if state == "draft":
            take("edit rich draft", f"/invoices/{iid}/edit")
    for cid in rich_customers:
        take("list rich customer", f"/invoices/?customer={cid}")
        take("customer rich", f"/customers/{cid}")
        take("new rich customer", f"/invoices/new?customer={cid}")
    take("detail 50", f"/invoices/{ids['detail_id']}")
    take("detail missing", f"/invoices/{_FOREIGN}")
    take("detail malformed", "/invoices/not-an-id")
    if "draft" in by_state:
        take("edit draft", f"/invoices/{by_state['draft']}/edit")
    take("edit paid", f"/invoices/{by_state['paid']}/edit")

    take("new", "/invoices/new")
    take("new with customer", f"/invoices/new?customer={ids['customer_id']}")
    take("customer options", "/invoices/new/customer-options?customer_q=a", htmx=True)
    take("customer options plain", "/invoices/new/customer-options?customer_q=a")
    lines = {
        "lines-0-description": "Consulting",
        "lines-0-quantity": "2",
        "lines-0-unit_price": "150",
        "lines-0-vat": "",
        "lines-1-description": "Books <b>&amp;",
        "lines-1-quantity": "3",
        "lines-1-unit_price": "12,50",
        "lines-1-vat": "7",
        "lines-2-description": "Travel",
        "lines-2-quantity": "1",
        "lines-2-unit_price": "42.5",
        "lines-2-vat": "",
    }
    bad = dict(lines, **{"lines-1-quantity": "x", "lines-2-unit_price": "-"})
    base = {"csrf_token": token, "customer_id": ids["customer_id"]}
    for action in ("add_line", "recalc", "remove_line"):
        data = dict(base, action=action, **lines)
        if action == "remove_line":
            data["remove_line"] = "1"
        for htmx in (True, False):
            take(f"entry {action}", "/invoices/new", method="POST", data=data, htmx=htmx)
            take(
                f"entry bad {action}",
                "/invoices/new",
                method="POST",
                data=dict(data, **{k: v for k, v in bad.items()}),
                htmx=htmx,
            )
    take("entry save bad", "/invoices/new", method="POST", data=dict(base, action="save", **bad))
    take(
        "entry no customer",
        "/invoices/new",
        method="POST",
        data=dict(lines, csrf_token=token, action="save"),
        htmx=True,
    )
    take(
        "entry foreign customer",
        "/invoices/new",
        method="POST",
        data=dict(lines, csrf_token=token, action="recalc", customer_id=str(_FOREIGN)),
        htmx=True,
    )
    take(
        "entry no csrf",
        "/invoices/new",
        method="POST",
        data=dict(lines, action="recalc", customer_id=ids["customer_id"]),
        htmx=True,
        who=app.test_client(),
    )

    take("customers", "/customers/")
    for cid in customers:
        take("customer", f"/customers/{cid}")
    take("settings", "/settings/")
    take("api keys", "/settings/api-keys")
    take("index", "/")
    args.out.write_text(json.dumps(out, indent=1, sort_keys=True))
    print(f"{len(out)} pages and fragments written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
