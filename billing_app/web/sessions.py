"""Flask's signed-cookie sessions, without verifying and decoding the same cookie again
on every request.

Since sessions are no longer re-signed on every request, a signed-in browser sends the
very same cookie with every page. Checking its signature and decoding it (HMAC, base64,
zlib, tagged JSON) cost ~0.1 ms of every page; this remembers, per process, the cookies
already verified with the app's key and the time they were signed, and serves their data
again as long as the session has not expired. Only an exact cookie string that passed
verification is ever found in it, and PERMANENT_SESSION_LIFETIME is enforced from the
remembered signing time, so what is accepted is exactly what Flask would accept. Sessions
holding anything mutable (flashed messages) are not remembered.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import BadSignature

_IMMUTABLE = (str, int, float, bool, type(None))
MAX_REMEMBERED = 10_000


class RememberingCookieSessions(SecureCookieSessionInterface):
    def __init__(self) -> None:
        self._verified: dict[tuple[Any, str], tuple[dict[str, Any], float]] = {}

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        value = request.cookies.get(self.get_cookie_name(app))
        if not value:
            # No cookie (every API request): a new session, or None without a key, as
            # Flask decides, without making a signing serializer to find that out.
            return self.session_class() if app.secret_key else None
        max_age = int(app.permanent_session_lifetime.total_seconds())
        # Looked up before the signing serializer is made: making one (itsdangerous checks
        # its JSON serializer by serializing {}) cost more than the lookup. Only a cookie
        # verified with this very key is ever found.
        key = (app.secret_key, value)
        known = self._verified.get(key)
        if known is not None:
            data, signed_at = known
            if time.time() - signed_at <= max_age:
                return self.session_class(data)
            del self._verified[key]
        serializer = self.get_signing_serializer(app)
        if serializer is None:
            return None
        try:
            data, signed = serializer.loads(value, max_age=max_age, return_timestamp=True)
        except BadSignature:
            return self.session_class()
        if all(isinstance(v, _IMMUTABLE) for v in data.values()):
            if len(self._verified) >= MAX_REMEMBERED:
                self._verified.clear()
            self._verified[key] = (dict(data), signed.timestamp())
        return self.session_class(data)
