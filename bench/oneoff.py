"""One-off invoice throughput over HTTP: the current code, the code before issue 14 and the
fair floor, in the same run, on the same machine and the same gunicorn configuration.

    .venv/bin/python bench/oneoff.py [--seconds N] [--db sqlite|postgres|both] [--rounds N]
    .venv/bin/python bench/oneoff.py --smoke        # seconds, tiny sizes: CI's check

Three contenders, each on its own fresh database (a SQLite file; a PostgreSQL database
`<--pg-db>_<name>`, dropped at the end) migrated by its own code with `flask db upgrade`,
each with an account made by its own `flask billing create-account`:

- current  `billing_app:create_app()` of this checkout;
- before   the same of commit --before (default 0714851, the code before issue 14): a git
           worktree the script adds under its temp folder (`git worktree add --detach`) and
           removes at the end, run with its own PYTHONPATH (--no-before skips it);
- floor    `bench.floor_app:create_app()`: the work the spec requires of the endpoints
           (API key by its hash, customer, billing entity and tax rates, invoice and
           lines, the audit record chained on the locked head; finalize also takes the
           number from the locked counter), written plainly with Core (see that file).

Each is served by `gunicorn -c gunicorn.conf.py` (2 sync workers, gc.freeze) on a free
loopback port, and measured in turn for --seconds after --warmup by --clients client
processes (one HTTP/1.1 connection each):

    create    POST /v1/invoices/one_off (floor: /floor/invoices), 5 line items, a draft
    finalize  POST /v1/invoices/{id}/finalize (floor: /floor/invoices/{id}/finalize) on
              drafts inserted in bulk beforehand

Reported per contender: requests/s, p50 / p99 latency, non-2xx answers, the gunicorn
workers' CPU per request (and PostgreSQL's backends'), and SQL statements per request
(counted in-process at the driver by bench/statements.py, before the load). Ratios:
current / floor (target >= 0.6) and current / before (target >= 0.85), by requests/s and
by CPU per request. Checks after the load, per database: every finalize took exactly one
number, 1..N without gap or duplicate; the audit chain verifies (`flask billing
verify-audit` of the code that wrote it; the floor's chain with the current code's).

Exit status: 0 when every request answered 2xx and every check passed, 1 otherwise
(a missed target is reported, not a failure).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import sqlalchemy as sa  # noqa: E402

PY = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")
TARGET_FLOOR = 0.6  # current / floor
TARGET_BEFORE = 0.85  # current / before
LINES = [
    {"description": f"Line {i}", "quantity": 2, "unit_price": 1500, "amount": 3000}
    for i in range(1, 6)
]


# ---------------------------------------------------------------- small helpers


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])
    return float(total - idle), float(total)


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


# ---------------------------------------------------------------- servers


def no_control_socket() -> list[str]:
    """gunicorn >= 24 opens a control socket at one fixed path per user by default; two
    bench servers (and anyone else's gunicorn) would take it from each other."""
    from gunicorn.config import KNOWN_SETTINGS

    return (
        ["--no-control-socket"]
        if any(s.name == "control_socket_disable" for s in KNOWN_SETTINGS)
        else []
    )


class Server:
    """A gunicorn master we started, with its log file; stopped by its own pid only."""

    def __init__(
        self, name: str, app_spec: str, env: dict[str, str], workdir: Path, cwd: Path = REPO
    ):
        self.name = name
        self.port = free_port()
        self.expected_workers = int(env.get("GUNICORN_WORKERS", "2"))
        self.log_path = workdir / f"gunicorn-{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                PY, "-m", "gunicorn",
                "-c", str(REPO / "gunicorn.conf.py"),
                "--bind", f"127.0.0.1:{self.port}",
                *no_control_socket(),
                app_spec,
            ],
            cwd=cwd,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        conn = Conn(self.port)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} server exited; see {self.log_path}:\n{self.tail()}"
                )
            with suppress(OSError):
                status, _ = conn.request(request_bytes("GET", "/healthz", self.port))
                if status == 200 and len(self.workers()) >= self.expected_workers:
                    # Both workers booted; one request each is not guaranteed, the warm-up
                    # of every measurement takes care of that.
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} server not ready after {timeout} s:\n{self.tail()}")

    def workers(self) -> list[int]:
        return children(self.proc.pid)

    def cpu(self) -> float:
        return sum(proc_cpu(pid) for pid in self.workers())

    def tail(self, n: int = 30) -> str:
        with suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()


# ---------------------------------------------------------------- HTTP client


def request_bytes(
    method: str, path: str, port: int, body: bytes = b"", api_key: str | None = None
) -> bytes:
    head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Accept: application/json"]
    if api_key:
        head.append(f"Authorization: Bearer {api_key}")
    if body or method == "POST":
        head.append("Content-Type: application/json")
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class Conn:
    """A minimal HTTP/1.1 client on one socket: keeps the connection when the server
    does, re-opens it when the server closes it (gunicorn's sync workers always do).
    Cheaper per request than http.client, which matters when the load generator
    shares 2 cores with the servers."""

    def __init__(self, port: int):
        self.port = port
        self.sock: socket.socket | None = None

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def request(self, raw: bytes) -> tuple[int, bytes]:
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=60)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock = self.sock
        try:
            sock.sendall(raw)
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("connection closed before the response head")
                buf += chunk
            head, _, body = buf.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            status = int(lines[0].split(b" ", 2)[1])
            length = -1
            close = False
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
                elif name == b"transfer-encoding":
                    raise ConnectionError("chunked responses are not supported here")
            if length < 0:
                close = True
                while chunk := sock.recv(65536):
                    body += chunk
            else:
                while len(body) < length:
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise ConnectionError("connection closed inside the body")
                    body += chunk
            if close:
                self.close()
            return status, body
        except BaseException:
            self.close()
            raise


def api(port: int, method: str, path: str, api_key: str, payload: Any = None) -> tuple[int, Any]:
    body = json.dumps(payload).encode() if payload is not None else b""
    conn = Conn(port)
    try:
        status, data = conn.request(request_bytes(method, path, port, body, api_key))
    finally:
        conn.close()
    return status, json.loads(data) if data else None


# ---------------------------------------------------------------- load generator


@dataclass
class LoadSpec:
    port: int
    # Either one request sent again and again, or a path template over a pool of ids.
    fixed_request: bytes | None = None
    path_template: str | None = None
    ids: list[str] = field(default_factory=list)
    api_key: str | None = None
    # With a path template: the JSON body of each request, "{id}" replaced by its pool id
    # (None: an empty body).
    body_template: bytes | None = None


def _client(
    spec: LoadSpec,
    next_index: Any,
    start_at: float,
    stop_at: float,
    max_requests: int,
    out: Any,
) -> None:
    """One client process: requests back to back from start_at until stop_at (or the
    pool of ids runs out, or max_requests). Sends back (start, end, status) per request
    and its own CPU seconds."""
    records: list[tuple[float, float, int]] = []
    conn = Conn(spec.port)
    cpu0 = time.process_time()
    try:
        while time.monotonic() < start_at:
            time.sleep(0.001)
        exhausted = False
        while len(records) < max_requests:
            if time.monotonic() >= stop_at:
                break
            if spec.fixed_request is not None:
                raw = spec.fixed_request
            else:
                with next_index.get_lock():
                    index = next_index.value
                    next_index.value += 1
                if index >= len(spec.ids):
                    exhausted = True
                    break
                assert spec.path_template is not None
                path = spec.path_template.format(id=spec.ids[index])
                body = (
                    spec.body_template.replace(b"{id}", spec.ids[index].encode())
                    if spec.body_template is not None
                    else b""
                )
                raw = request_bytes("POST", path, spec.port, body, spec.api_key)
            t0 = time.monotonic()
            try:
                status, _ = conn.request(raw)
            except OSError:
                status = 0
            records.append((t0, time.monotonic(), status))
        out.put((records, time.process_time() - cpu0, exhausted))
    except KeyboardInterrupt:
        out.put(([], 0.0, False))


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    ok_total: int  # 2xx answers including warm-up and after the window (for the checks)
    server_cpu_ms: float  # gunicorn workers' CPU per measured request
    db_cpu_ms: float | None  # PostgreSQL backends' CPU per measured request
    client_cpu_share: float  # load generator CPU, fraction of the whole machine
    machine_busy: float  # whole machine, fraction busy during the window
    exhausted: bool


def run_load(
    name: str,
    spec: LoadSpec,
    server: Server,
    *,
    clients: int,
    warmup: float,
    seconds: float,
    db_pids: Callable[[], list[int]] | None = None,
) -> Result:
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    next_index = ctx.Value("q", 0)
    start_at = time.monotonic() + 0.5
    measure_from = start_at + warmup
    stop_at = measure_from + seconds
    # A bound on count as well as time: far above anything 2 cores can serve.
    max_requests = int((warmup + seconds) * 20000 / clients) + 100
    procs = [
        ctx.Process(
            target=_client,
            args=(spec, next_index, start_at, stop_at, max_requests, out),
            daemon=True,
        )
        for _ in range(clients)
    ]
    for p in procs:
        p.start()
    try:
        time.sleep(max(0.0, measure_from - time.monotonic()))
        backends = db_pids() if db_pids else []
        cpu0 = server.cpu()
        db0 = sum(proc_cpu(pid) for pid in backends)
        busy0, total0 = machine_busy()
        time.sleep(max(0.0, stop_at - time.monotonic()))
        cpu1 = server.cpu()
        db1 = sum(proc_cpu(pid) for pid in backends)
        busy1, total1 = machine_busy()
        gathered = [out.get(timeout=120) for _ in procs]
    except BaseException:
        for p in procs:
            p.kill()
        raise
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
    records = [r for recs, _, _ in gathered for r in recs]
    client_cpu = sum(cpu for _, cpu, _ in gathered)
    exhausted = any(ex for _, _, ex in gathered)
    window = [r for r in records if measure_from <= r[1] <= stop_at]
    window_end = stop_at
    if exhausted:
        window_end = max((r[1] for r in records), default=stop_at)
    span = max(1e-9, window_end - measure_from)
    latencies = sorted((end - start) * 1000 for start, end, _ in window)
    errors = sum(1 for r in records if not 200 <= r[2] < 300)
    n = len(window)
    wall = stop_at - start_at  # how long the clients ran
    return Result(
        name=name,
        requests=n,
        seconds=round(span, 3),
        rps=n / span,
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        errors=errors,
        ok_total=sum(1 for r in records if 200 <= r[2] < 300),
        server_cpu_ms=(cpu1 - cpu0) * 1000 / n if n else math.nan,
        db_cpu_ms=((db1 - db0) * 1000 / n if n else math.nan) if db_pids else None,
        client_cpu_share=client_cpu / (wall * (os.cpu_count() or 1)),
        machine_busy=(busy1 - busy0) / max(1.0, total1 - total0),
        exhausted=exhausted,
    )


# ---------------------------------------------------------------- database set-up

# Only the columns the bulk drafts need, declared here: they insert into the schema of
# either version of the code (the before tree's models may differ from this checkout's).
_meta = sa.MetaData()
MINOR_COLUMNS = (
    *("subtotal", "discount", "credit", "progressive_credit", "net"),
    *("vat", "gross", "prepaid_credit", "total"),
)
invoices = sa.Table(
    "invoices",
    _meta,
    sa.Column("id", sa.Uuid, primary_key=True),
    *(sa.Column(name, sa.Uuid) for name in ("account_id", "billing_entity_id", "customer_id")),
    *(sa.Column(name, sa.String) for name in ("invoice_type", "state", "currency")),
    sa.Column("invoice_number", sa.String),
    *(sa.Column(f"{name}_minor", sa.BigInteger) for name in MINOR_COLUMNS),
    *(
        sa.Column(name, sa.DateTime(timezone=True))
        for name in ("billing_period_start", "billing_period_end", "created_at", "updated_at")
    ),
)
invoice_lines = sa.Table(
    "invoice_lines",
    _meta,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("invoice_id", sa.Uuid),
    sa.Column("position", sa.BigInteger),
    sa.Column("description", sa.Text),
    *(sa.Column(name, sa.String) for name in ("quantity", "unit_amount", "tax_rate", "origin")),
    sa.Column("amount_minor", sa.BigInteger),
    sa.Column("amount_incl_vat", sa.Boolean),
    sa.Column("vat_minor", sa.BigInteger),
)
billing_entities = sa.Table(
    "billing_entities",
    _meta,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("account_id", sa.Uuid),
    sa.Column("next_invoice_number", sa.BigInteger),
)


@dataclass
class Tenant:
    account_id: uuid.UUID
    entity_id: uuid.UUID
    customer_id: uuid.UUID
    api_key: str


def flask_cli(env: dict[str, str], *args: str, cwd: Path = REPO) -> str:
    proc = subprocess.run(
        [PY, "-m", "flask", "--app", "billing_app", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def create_drafts(engine: sa.Engine, tenant: Tenant, count: int) -> list[str]:
    """`count` draft one-off invoices with 5 lines each, as the app would store them
    (no tax configured: rate 0), inserted in bulk with Core. Returns their ids."""
    stamp = datetime.now(UTC)
    if engine.dialect.name == "sqlite":
        stamp = stamp.replace(tzinfo=None)  # the app's UTC columns store naive UTC there
    ids = [uuid.uuid4() for _ in range(count)]
    total = sum(line["amount"] for line in LINES)
    chunk = 2000
    with engine.begin() as conn:
        for start in range(0, count, chunk):
            part = ids[start : start + chunk]
            conn.execute(
                invoices.insert(),
                [
                    {
                        "id": iid,
                        "account_id": tenant.account_id,
                        "billing_entity_id": tenant.entity_id,
                        "customer_id": tenant.customer_id,
                        "invoice_type": "one_off",
                        "state": "draft",
                        "currency": "EUR",
                        "invoice_number": f"DRAFT-{iid.hex[:8].upper()}",
                        **{
                            f"{name}_minor": 0
                            for name in ("discount", "credit", "progressive_credit", "vat")
                        },
                        "prepaid_credit_minor": 0,
                        **{
                            f"{name}_minor": total for name in ("subtotal", "net", "gross", "total")
                        },
                        "billing_period_start": stamp,
                        "billing_period_end": stamp,
                        "created_at": stamp,
                        "updated_at": stamp,
                    }
                    for iid in part
                ],
            )
            conn.execute(
                invoice_lines.insert(),
                [
                    {
                        "id": uuid.uuid4(),
                        "invoice_id": iid,
                        "position": pos,
                        "description": line["description"],
                        "quantity": str(line["quantity"]),
                        "unit_amount": str(line["unit_price"]),
                        "amount_minor": line["amount"],
                        "tax_rate": "0",
                        "amount_incl_vat": False,
                        "vat_minor": 0,
                        "origin": "one_off",
                    }
                    for iid in part
                    for pos, line in enumerate(LINES)
                ],
            )
    return [str(i) for i in ids]


def settle(engine: sa.Engine) -> None:
    """After a bulk insert: statistics and visibility map up to date (PostgreSQL), WAL
    checkpointed (SQLite), so autovacuum or a checkpoint of the bulk rows does not land
    in the next measurement."""
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("VACUUM ANALYZE invoices, invoice_lines")
        else:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


@contextmanager
def postgres_database(admin_url: str, name: str) -> Iterator[str]:
    """A fresh database (dropped first if a previous run left it), dropped at the end."""
    import psycopg

    def admin(sql: str) -> None:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql)

    if not name.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name {name!r}")
    admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with suppress(Exception):
            admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            log(f"dropped PostgreSQL database {name}")


def backend_pids(engine: sa.Engine, dbname: str) -> list[int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT pid FROM pg_stat_activity WHERE datname = :d "
                "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
            ),
            {"d": dbname},
        )
        return [int(r[0]) for r in rows]


def engine_for(url: str) -> sa.Engine:
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))


# ---------------------------------------------------------------- contenders


@dataclass(frozen=True)
class Contender:
    name: str  # "current", "before" or "floor"
    tree: Path  # the checkout its code (and its migrations) come from
    app_spec: str
    create_path: str
    finalize_path: str  # with {id}


def contenders(before: Path | None) -> list[Contender]:
    app = ("billing_app:create_app()", "/v1/invoices/one_off", "/v1/invoices/{id}/finalize")
    found = [Contender("current", REPO, *app)]
    if before is not None:
        found.append(Contender("before", before, *app))
    found.append(
        Contender(
            "floor",
            REPO,
            "bench.floor_app:create_app()",
            "/floor/invoices",
            "/floor/invoices/{id}/finalize",
        )
    )
    return found


@contextmanager
def before_worktree(rev: str, workdir: Path) -> Iterator[Path]:
    """A detached git worktree of `rev` under `workdir`, removed at the end."""
    path = workdir / "before"
    proc = subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet", str(path), rev],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"git worktree add {rev} failed (need a full clone):\n{proc.stderr}")
    log(f"code before: {rev} in {path}")
    try:
        yield path
    finally:
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)],
            capture_output=True,
        )
        subprocess.run(["git", "-C", str(REPO), "worktree", "prune"], capture_output=True)


@dataclass
class Setup:
    contender: Contender
    kind: str
    url: str
    dbname: str | None  # PostgreSQL
    env: dict[str, str]
    engine: sa.Engine
    server: Server
    tenant: Tenant

    def path(self, op: str, invoice_id: str = "{id}") -> str:
        c = self.contender
        return c.create_path if op == "create" else c.finalize_path.replace("{id}", invoice_id)


def set_up(c: Contender, kind: str, url: str, dbname: str | None, workdir: Path) -> Setup:
    """Migrate the contender's database with its own code, make its account, start its
    server (not yet waited for) and return what the measurements need."""
    env = dict(os.environ)
    env.pop("GUNICORN_CMD_ARGS", None)
    env.update(DATABASE_URL=url, SECRET_KEY="bench-oneoff-not-a-secret", PYTHONPATH=str(c.tree))
    log(f"[{kind}] {c.name}: migrating")
    flask_cli(env, "db", "upgrade", cwd=c.tree)
    created = json.loads(
        flask_cli(
            env, "billing", "create-account",
            "--name", "Bench GmbH", "--email", "bench@example.com", "--password", "secret123",
            cwd=c.tree,
        ).strip().splitlines()[-1]
    )  # fmt: skip
    engine = engine_for(url)
    account_id = uuid.UUID(created["account_id"])
    with engine.connect() as conn:
        entity_id = conn.execute(
            sa.select(billing_entities.c.id).where(billing_entities.c.account_id == account_id)
        ).scalar_one()
    server = Server(f"{kind}-{c.name}", c.app_spec, env, workdir, cwd=c.tree)
    tenant = Tenant(account_id, entity_id, uuid.uuid4(), created["api_key"])
    return Setup(c, kind, url, dbname, env, engine, server, tenant)


def add_customer(s: Setup) -> None:
    """The customer the invoices are for: through the API where there is one, with the
    app's own table (Core) for the floor."""
    fields = {"external_id": "bench-customer", "name": "Bench Customer", "currency": "EUR"}
    if s.contender.name == "floor":
        from billing_app.models import Customer

        with s.engine.begin() as conn:
            conn.execute(
                sa.insert(Customer.__table__),
                {"id": s.tenant.customer_id, "account_id": s.tenant.account_id, **fields},
            )
        return
    status, customer = api(s.server.port, "POST", "/v1/customers/", s.tenant.api_key, fields)
    if status != 201:
        raise RuntimeError(f"{s.server.name}: creating the customer answered {status}: {customer}")
    s.tenant.customer_id = uuid.UUID(customer["id"])


def create_body(tenant: Tenant) -> bytes:
    return json.dumps(
        {"customer_id": str(tenant.customer_id), "currency": "EUR", "line_items": LINES}
    ).encode()


def count_statements(s: Setup, n: int) -> dict[str, Any]:
    """bench/statements.py on the contender's code and database (n + 1 drafts used)."""
    ids = create_drafts(s.engine, s.tenant, n + 1)
    spec = s.contender.app_spec.removesuffix("()")
    proc = subprocess.run(
        [
            PY, str(REPO / "bench" / "statements.py"),
            "--app", spec, "--api-key", s.tenant.api_key,
            "--create-path", s.path("create"), "--body", create_body(s.tenant).decode(),
            "--finalize-path", s.path("finalize"), "--ids", ",".join(ids), "-n", str(n),
        ],
        cwd=s.contender.tree,
        env=s.env,
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"statement count of {s.server.name} failed:\n{proc.stderr}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


# ---------------------------------------------------------------- one database


def bench_database(
    kind: str, contenders_: list[Contender], args: argparse.Namespace, workdir: Path
) -> dict[str, Any]:
    setups: list[Setup] = []
    with ExitStack() as stack:
        for c in contenders_:
            if kind == "sqlite":
                url, dbname = f"sqlite:///{workdir / f'{c.name}.sqlite3'}", None
            else:
                dbname = f"{args.pg_db}_{c.name}"
                url = stack.enter_context(postgres_database(args.pg_admin_url, dbname))
            setups.append(set_up(c, kind, url, dbname, workdir))
        try:
            return measure_database(kind, setups, args)
        except BaseException:
            for s in setups:
                if s.server.proc.poll() is not None or args.verbose:
                    log(f"--- {s.server.name} log tail ---\n{s.server.tail()}")
            raise
        finally:
            for s in setups:
                s.server.stop()
                s.engine.dispose()
    raise AssertionError("unreachable")


def measure_database(kind: str, setups: list[Setup], args: argparse.Namespace) -> dict[str, Any]:
    by_name = {s.contender.name: s for s in setups}
    for s in setups:
        s.server.wait_ready()
        add_customer(s)
        # One request, checked, before measuring anything.
        status, sample = api(
            s.server.port, "POST", s.path("create"), s.tenant.api_key,
            json.loads(create_body(s.tenant)),
        )  # fmt: skip
        if status != 200 or sample["total_cents"] != "15000":
            raise RuntimeError(f"{s.server.name} create answered {status}: {sample}")
    statements: dict[str, dict[str, float]] = {}
    finalized_in_process: dict[str, int] = {}
    for s in setups:
        log(f"[{kind}] {s.contender.name}: counting SQL statements ({args.count_requests} each)")
        counted = count_statements(s, args.count_requests)
        statements[s.contender.name] = counted["statements"]
        finalized_in_process[s.contender.name] = counted["answers_2xx"]["finalize"]

    names = list(by_name)
    pool = math.ceil((args.seconds + args.warmup) * args.max_rate) + 100
    runs: list[dict[str, Result]] = []
    for rnd in range(args.rounds):
        results: dict[str, Result] = {}
        order = names[rnd % len(names) :] + names[: rnd % len(names)]
        for op in ("create", "finalize"):
            for who in order:
                s = by_name[who]
                port, key = s.server.port, s.tenant.api_key
                if op == "create":
                    raw = request_bytes("POST", s.path("create"), port, create_body(s.tenant), key)
                    spec = LoadSpec(port=port, fixed_request=raw)
                else:
                    log(f"[{kind}] inserting {pool} drafts for {who}-finalize")
                    ids = create_drafts(s.engine, s.tenant, pool)
                    settle(s.engine)
                    spec = LoadSpec(
                        port=port, path_template=s.path("finalize"), ids=ids, api_key=key
                    )
                name = f"{who}-{op}"
                log(f"[{kind}] round {rnd + 1}/{args.rounds}: {name} for {args.seconds:g} s")
                res = run_load(
                    name,
                    spec,
                    s.server,
                    clients=args.clients,
                    warmup=args.warmup,
                    seconds=args.seconds,
                    db_pids=(
                        (lambda s=s: backend_pids(s.engine, s.dbname or ""))
                        if kind == "postgres"
                        else None
                    ),
                )
                if s.server.proc.poll() is not None:
                    raise RuntimeError(f"{s.server.name} server exited during {name}")
                if res.exhausted:
                    log(f"[{kind}] WARNING: {name} used up its {pool} drafts; raise --max-rate")
                results[name] = res
                log(
                    f"[{kind}]   {res.rps:8.1f} req/s  p50 {res.p50_ms:6.1f} ms  "
                    f"p99 {res.p99_ms:6.1f} ms  errors {res.errors}"
                )
        runs.append(results)

    checks: list[str] = []
    for s in setups:
        who = s.contender.name
        finalized = finalized_in_process[who] + sum(r[f"{who}-finalize"].ok_total for r in runs)
        checks += check_database(s, finalized)
        s.server.stop()
        if "Traceback" in s.server.log_path.read_text(errors="replace"):
            checks.append(f"FAIL: {s.server.name} logged a traceback (see {s.server.log_path})")
    return {
        "db": kind,
        "contenders": names,
        "statements": statements,
        "runs": [{k: asdict(v) for k, v in r.items()} for r in runs],
        "checks": checks,
    }


def check_database(s: Setup, finalized: int) -> list[str]:
    """What must hold after the load: every finalize took exactly one number, the series
    has no gap and no duplicate, the audit chain is intact."""
    who = s.contender.name
    with s.engine.connect() as conn:
        count, distinct, low, high = conn.execute(
            sa.text(
                "SELECT count(*), count(DISTINCT number), min(number), max(number) "
                "FROM invoices WHERE number IS NOT NULL"
            )
        ).one()
        next_number = conn.execute(
            sa.select(billing_entities.c.next_invoice_number).where(
                billing_entities.c.id == s.tenant.entity_id
            )
        ).scalar_one()
        open_count = conn.execute(
            sa.text("SELECT count(*) FROM invoices WHERE state = 'open'")
        ).scalar_one()
    ok = (
        count == distinct == finalized == open_count
        and (count == 0 or (low == 1 and high == count))
        and next_number == count + 1
    )
    notes = [
        f"{'ok' if ok else 'FAIL'}: {who}: {finalized} finalize answers 2xx, {count} numbered "
        f"invoices ({distinct} distinct, {low}..{high}), next number {next_number}"
    ]
    # The floor's records are checked by the current code: the same chain format.
    tree = REPO if who == "floor" else s.contender.tree
    out = flask_cli(
        s.env | {"PYTHONPATH": str(tree)},
        "billing", "verify-audit", "--account", str(s.tenant.account_id),
        cwd=tree,
    ).strip()  # fmt: skip
    notes.append(f"{'ok' if 'intact' in out else 'FAIL'}: {who}: {out}")
    return notes


# ---------------------------------------------------------------- report


def median_result(results: list[Result]) -> Result:
    """Per-field median over rounds (a single round: itself)."""
    if len(results) == 1:
        return results[0]
    first = results[0]
    merged = {}
    for key, value in asdict(first).items():
        values = [getattr(r, key) for r in results]
        if isinstance(value, bool):
            merged[key] = any(values)
        elif key in ("errors", "ok_total"):
            merged[key] = sum(values)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            merged[key] = statistics.median(values)
        elif value is None:
            merged[key] = None
        else:
            merged[key] = value
    return Result(**merged)


def cpu_ms(r: Result) -> float:
    """Worker CPU plus PostgreSQL backend CPU per request."""
    return r.server_cpu_ms + (r.db_cpu_ms or 0.0)


def report(outcome: list[dict[str, Any]], args: argparse.Namespace) -> tuple[str, bool]:
    lines = [
        f"one-off invoices: gunicorn 2 sync workers, {args.clients} client processes, "
        f"{args.seconds:g} s per measurement after {args.warmup:g} s warm-up, "
        f"{args.rounds} round(s){' (medians)' if args.rounds > 1 else ''}, "
        f"{os.cpu_count()} cores; before = {args.before if not args.no_before else 'skipped'}",
        "",
        "| db | code | request | req/s | p50 ms | p99 ms | non-2xx | worker CPU ms/req "
        "| db CPU ms/req | SQL/req | machine busy |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    healthy = True
    ratios: list[str] = []
    for db in outcome:
        names = [f"{who}-{op}" for op in ("create", "finalize") for who in db["contenders"]]
        merged = {n: median_result([Result(**r[n]) for r in db["runs"]]) for n in names}
        for n in names:
            r = merged[n]
            who, op = n.rsplit("-", 1)
            healthy &= r.errors == 0
            db_cpu = "n/a" if r.db_cpu_ms is None else f"{r.db_cpu_ms:.2f}"
            lines.append(
                f"| {db['db']} | {who} | {op} | {r.rps:.0f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} "
                f"| {r.errors} | {r.server_cpu_ms:.2f} | {db_cpu} "
                f"| {db['statements'][who][op]:.1f} | {r.machine_busy:.0%} |"
            )
        for op in ("create", "finalize"):
            for other, target in (("floor", TARGET_FLOOR), ("before", TARGET_BEFORE)):
                if other not in db["contenders"]:
                    continue
                per_round = [
                    r[f"current-{op}"]["rps"] / r[f"{other}-{op}"]["rps"]
                    for r in db["runs"]
                    if r[f"{other}-{op}"]["rps"] > 0
                ]
                if not per_round:
                    healthy = False
                    ratios.append(f"{db['db']:8s} {op:8s} current/{other:6s}: no answers measured")
                    continue
                ratio = statistics.median(per_round)
                spread = (
                    f" (rounds: {', '.join(f'{x:.2f}' for x in per_round)})"
                    if len(per_round) > 1
                    else ""
                )
                # The same comparison from CPU cost alone (workers + database per request):
                # less sensitive to other load on the machine than requests/s.
                cpu_ratio = cpu_ms(merged[f"{other}-{op}"]) / cpu_ms(merged[f"current-{op}"])
                verdict = "meets" if ratio >= target else "MISSES"
                ratios.append(
                    f"{db['db']:8s} {op:8s} current/{other:6s} = {ratio:.2f}{spread}: {verdict} "
                    f"the {target} target (by CPU per request: {cpu_ratio:.2f})"
                )
        for note in db["checks"]:
            healthy &= not note.startswith("FAIL")
    lines += ["", "Ratios (requests/s, current / other):", *ratios, "", "Checks:"]
    lines += [f"{db['db']:8s} {note}" for db in outcome for note in db["checks"]]
    if not healthy:
        lines.append("\nFAILED: non-2xx answers or a failed check (see above)")
    return "\n".join(lines), healthy


# ---------------------------------------------------------------- main


def load_bench_parser(description: str, *, rounds_help: str, pg_db: str) -> argparse.ArgumentParser:
    """The command-line options every HTTP load benchmark here shares."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--seconds", type=float, default=10.0, help="per measurement (default 10)")
    p.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds before each measurement")
    p.add_argument("--clients", type=int, default=8, help="concurrent client processes")
    p.add_argument("--rounds", type=int, default=1, help=rounds_help)
    p.add_argument(
        "--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="where to create and drop the bench database",
    )  # fmt: skip
    p.add_argument("--pg-db", default=pg_db, help="bench database (dropped at the end)")
    p.add_argument("--json", type=Path, help="also write the raw results here")
    p.add_argument("--report", type=Path, help="only print the report of a --json file")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (SQLite file, logs)")
    p.add_argument(
        "--smoke", action="store_true",
        help="end to end in seconds with tiny sizes (CI): 1 s per measurement, 2 clients",
    )  # fmt: skip
    return p


def check_load_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.smoke:
        args.seconds, args.warmup, args.clients, args.rounds = 1.0, 0.3, 2, 1
    if not 1 <= args.clients <= 64 or args.seconds <= 0 or args.rounds < 1:
        p.error("need 1..64 clients, seconds > 0, rounds >= 1")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = load_bench_parser(
        __doc__.split("\n\n")[0], rounds_help="repeat the measurements, rotating the order",
        pg_db="bench_oneoff",
    )  # fmt: skip
    p.add_argument(
        "--max-rate", type=float, default=2500.0,
        help="finalize req/s the draft pool is sized for (default 2500)",
    )  # fmt: skip
    p.add_argument(
        "--before", default="0714851",
        help="the commit measured as the code before (default 0714851, before issue 14)",
    )  # fmt: skip
    p.add_argument("--no-before", action="store_true", help="measure current and floor only")
    p.add_argument(
        "--count-requests", type=int, default=20,
        help="in-process requests of each kind for the statement counts (default 20)",
    )  # fmt: skip
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    check_load_args(p, args)
    if args.smoke:
        # Enough drafts that even the fastest contender cannot run out in a smoke run (the
        # code before issue 14 finalizes ~700 a second here).
        args.max_rate, args.count_requests = 1500.0, 3
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        saved = json.loads(args.report.read_text())
        for key, value in saved["args"].items():
            if key not in ("report", "json"):
                setattr(args, key, value)
        text, healthy = report(saved["results"], args)
        print(text)
        return 0 if healthy else 1

    def on_term(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    # Also when started in the background of a shell, which ignores SIGINT for its jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    workdir = Path(tempfile.mkdtemp(prefix="bench-oneoff-"))
    outcome: list[dict[str, Any]] = []
    try:
        with ExitStack() as stack:
            before = None if args.no_before else stack.enter_context(
                before_worktree(args.before, workdir)
            )  # fmt: skip
            found = contenders(before)
            for kind in ("sqlite", "postgres"):
                if args.db in (kind, "both"):
                    outcome.append(bench_database(kind, found, args, workdir))
    except KeyboardInterrupt:
        log("interrupted; servers stopped")
        return 130
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
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
