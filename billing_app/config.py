"""Configuration read from the environment.

`DATABASE_URL` picks the database (default: a SQLite file in the instance folder);
`SECRET_KEY` signs sessions and CSRF tokens. Anything in the dict given to
`create_app(config)` wins over the environment, which is how tests pick their database.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any


def normalise_database_url(url: str) -> str:
    """Point plain `postgresql://` URLs at psycopg 3, the driver we ship."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def load_config(instance_path: str, overrides: dict[str, Any] | None) -> dict[str, Any]:
    overrides = dict(overrides or {})
    default_sqlite = "sqlite:///" + str(Path(instance_path) / "billing.sqlite3")
    url = overrides.pop("DATABASE_URL", None) or os.environ.get("DATABASE_URL") or default_sqlite
    secret = overrides.pop("SECRET_KEY", None) or os.environ.get("SECRET_KEY")
    if not secret:
        secret_file = Path(instance_path) / "secret_key"
        if secret_file.exists():
            secret = secret_file.read_text().strip()
        else:
            # A fresh install gets a random key that survives restarts; production sets SECRET_KEY.
            secret = secrets.token_urlsafe(48)
            Path(instance_path).mkdir(parents=True, exist_ok=True)
            secret_file.write_text(secret)
            secret_file.chmod(0o600)
    config: dict[str, Any] = {
        "SECRET_KEY": secret,
        "SQLALCHEMY_DATABASE_URI": normalise_database_url(url),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": False},
        # Bodies over 1 MiB answer 413 (API.md).
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": os.environ.get("SESSION_COOKIE_SECURE", "0") == "1",
        # A browser session lasts 12 hours from sign-in, however busy: the cookie is not
        # re-signed and re-sent on every request (Flask's defaults are 31 days, renewed on
        # every request; they must be set here, Flask's own defaults would win a
        # setdefault).
        "PERMANENT_SESSION_LIFETIME": 12 * 3600,
        "SESSION_REFRESH_EACH_REQUEST": False,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        # A page's CSRF token is good for 8 hours (Flask-WTF signs it with a timestamp):
        # a form left open longer is refused with 400 and works again once reloaded.
        "WTF_CSRF_TIME_LIMIT": 8 * 3600,
        # How long idempotency keys are kept (API.md: at least 24 h).
        "IDEMPOTENCY_TTL_HOURS": int(os.environ.get("IDEMPOTENCY_TTL_HOURS", "48")),
        # A request that reserved an idempotency key but never finished (crashed worker)
        # stops blocking retries after this many seconds.
        "IDEMPOTENCY_LEASE_SECONDS": 300,
        # SQLite: how long a writer waits for the write lock before giving up.
        "SQLITE_BUSY_TIMEOUT_MS": int(os.environ.get("SQLITE_BUSY_TIMEOUT_MS", "30000")),
    }
    config.update(overrides)
    if "DATABASE_URI" in config:
        config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(config.pop("DATABASE_URI"))
    return config
