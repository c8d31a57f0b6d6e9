"""gunicorn settings for billing_app (see docs/performance.md and bench/oneoff.py).

    gunicorn -c gunicorn.conf.py "billing_app:create_app()"

One sync worker per core: the work is CPU-bound (ORM, JSON), threads gained nothing and
made SQLite write latency worse. `--bind` / `GUNICORN_CMD_ARGS` override anything here.
"""

import gc
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
worker_class = "sync"
timeout = 60
graceful_timeout = 10


def post_worker_init(worker):
    """The app is loaded by now: move everything it allocated out of the collector's way
    (removes the 20-30 ms full-collection pauses on ~1 % of requests)."""
    gc.collect()
    gc.freeze()
