"""Accounts, users and API keys.

API keys look like `bk_<10 chars>_<40 chars>`. The first part is the visible prefix (stored
in clear, used for lookup and shown in lists); the whole key is stored only as SHA-256. The
secret part has 240 bits of entropy, so a fast hash is enough: there is nothing to guess.
"""

from __future__ import annotations

import hashlib
import secrets
import string
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import case, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import joinedload
from werkzeug.security import check_password_hash, generate_password_hash

from ..audit import service as audit
from ..db import utcnow, write_transaction
from ..entities.models import BillingEntity
from ..errors import DomainError, Duplicate, InvalidInput, NotFound
from ..extensions import db
from ..money import MoneyError, normalise_currency
from ..querying import apply_changes
from ..validation import is_timezone
from .models import Account, ApiKey, SignInThrottle, User

_ALPHABET = string.ascii_letters + string.digits
KEY_PREFIX = "bk_"
_PREFIX_LEN = 10
_SECRET_LEN = 40
# Writing last_used_at on every request would make every read a write; once a minute is
# plenty for "when was this key last used".
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class NewAccount:
    account: Account
    user: User
    api_key: str


def _random(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def _hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or len(email) > 320:
        raise InvalidInput(("email",), "A valid email address is required")
    return email


def create_account(
    name: str, email: str, password: str, *, timezone: str = "UTC", currency: str = "EUR"
) -> NewAccount:
    """An account with its first user, a default billing entity and a first API key."""
    email = normalise_email(email)
    if len(password) < 8:
        raise InvalidInput(("password",), "The password must have at least 8 characters")
    if not name.strip():
        raise InvalidInput(("name",), "A name is required")
    with write_transaction():
        if db.session.scalar(select(User.id).where(User.email == email)) is not None:
            raise Duplicate("User", f"A user with email {email} already exists")
        account = Account(name=name.strip(), timezone=timezone, default_currency=currency)
        db.session.add(account)
        db.session.flush()
        user = User(
            account_id=account.id, email=email, password_hash=generate_password_hash(password)
        )
        entity = BillingEntity(
            account_id=account.id,
            code="default",
            name=account.name,
            legal_name=account.name,
            currency=currency,
            timezone=timezone,
            invoice_prefix="INV",
            is_default=True,
        )
        db.session.add_all([user, entity])
        raw_key = _new_key(account.id, "Default key")
        audit.record(
            account.id,
            "account.created",
            "account",
            account.id,
            after={"name": account.name, "email": email},
        )
    return NewAccount(account=account, user=user, api_key=raw_key)


def _new_key(account_id: uuid.UUID, name: str) -> str:
    prefix = KEY_PREFIX + _random(_PREFIX_LEN)
    raw = f"{prefix}_{_random(_SECRET_LEN)}"
    db.session.add(ApiKey(account_id=account_id, name=name, prefix=prefix, key_hash=_hash_key(raw)))
    return raw


def create_api_key(account_id: uuid.UUID, name: str = "API key") -> tuple[ApiKey, str]:
    """A new key; the plain text is returned once and never stored."""
    with write_transaction():
        if db.session.get(Account, account_id) is None:
            raise NotFound("Account")
        raw = _new_key(account_id, name.strip() or "API key")
        key = db.session.scalars(select(ApiKey).where(ApiKey.prefix == raw.rsplit("_", 1)[0])).one()
        audit.record(
            account_id,
            "api_key.created",
            "api_key",
            key.id,
            after={"prefix": key.prefix, "name": key.name},
        )
    return key, raw


def revoke_api_key(account_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey:
    with write_transaction():
        key = db.session.scalars(
            select(ApiKey).where(ApiKey.id == key_id, ApiKey.account_id == account_id)
        ).one_or_none()
        if key is None:
            raise NotFound("API key")
        if key.revoked_at is None:
            key.revoked_at = utcnow()
            audit.record(
                account_id, "api_key.revoked", "api_key", key.id, after={"prefix": key.prefix}
            )
    return key


def list_api_keys(account_id: uuid.UUID) -> list[ApiKey]:
    return list(
        db.session.scalars(
            select(ApiKey).where(ApiKey.account_id == account_id).order_by(ApiKey.created_at)
        )
    )


def _key_prefix(raw: str) -> str | None:
    """The visible prefix of a key of the right shape, or None (refused without a query)."""
    if (
        not raw.startswith(KEY_PREFIX)
        or len(raw) != len(KEY_PREFIX) + _PREFIX_LEN + 1 + _SECRET_LEN
    ):
        return None
    return raw[: len(KEY_PREFIX) + _PREFIX_LEN]


def authenticate_api_key(raw: str) -> ApiKey | None:
    """The live key `raw` is, with its account loaded; None for a malformed, unknown or
    revoked key. Notes the key's use (at most once a minute).

    One indexed query on the visible prefix, matching the hash too. (The database compares
    the hashes, not in constant time: that is safe, a caller cannot choose what the hash
    of its guess looks like.)
    """
    prefix = _key_prefix(raw)
    if prefix is None:
        return None
    key = db.session.scalars(
        select(ApiKey)
        .options(joinedload(ApiKey.account))
        .where(
            ApiKey.prefix == prefix,
            ApiKey.key_hash == _hash_key(raw),
            ApiKey.revoked_at.is_(None),
        )
    ).one_or_none()
    if key is not None:
        now = utcnow()
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
            with write_transaction():
                key.last_used_at = now
    return key


@lru_cache(maxsize=1)
def _dummy_password_hash() -> str:
    return generate_password_hash(secrets.token_urlsafe(16))


def authenticate_user(email: str, password: str) -> User | None:
    user = db.session.scalars(select(User).where(User.email == email.strip().lower())).one_or_none()
    if user is None:
        # Hash anyway, so the answer takes as long for unknown emails as for known ones.
        check_password_hash(_dummy_password_hash(), password)
        return None
    if not check_password_hash(user.password_hash, password):
        return None
    return user


# ---------------------------------------------------------------- browser sign-in


@dataclass(frozen=True)
class SignInPolicy:
    """How many failed sign-ins a window allows, per email and per client address."""

    max_failures_per_email: int = 5
    max_failures_per_address: int = 50
    window: timedelta = timedelta(minutes=15)


class SignInThrottled(DomainError):
    """Too many failed sign-ins for this email or from this address; retry later."""

    def __init__(self, retry_after_seconds: int):
        minutes = max(1, -(-retry_after_seconds // 60))
        super().__init__(
            f"Too many failed sign-ins. Try again in {minutes} minute{'s' if minutes > 1 else ''}."
        )
        self.retry_after_seconds = retry_after_seconds


def _throttle_key(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


def _count_failures(keys: Iterable[str], policy: SignInPolicy) -> None:
    """One upsert per key: a window older than the policy's starts again at 1."""
    now = utcnow()
    cutoff = now - policy.window
    # INSERT ... ON CONFLICT DO UPDATE: the same statement on both databases.
    insert: Any = (
        postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert
    )
    expired = SignInThrottle.window_start < cutoff
    with write_transaction():
        for key in sorted(keys):  # one order for every process: no deadlock between keys
            stmt = insert(SignInThrottle).values(key=key, window_start=now, failures=1)
            db.session.execute(
                stmt.on_conflict_do_update(
                    index_elements=[SignInThrottle.key],
                    set_={
                        "failures": case((expired, 1), else_=SignInThrottle.failures + 1),
                        "window_start": case((expired, now), else_=SignInThrottle.window_start),
                    },
                )
            )
        # Counters of windows long gone carry no information; keep the table small.
        db.session.execute(
            delete(SignInThrottle).where(SignInThrottle.window_start < now - timedelta(days=1))
        )


def sign_in(
    email: str, password: str, client_address: str | None, policy: SignInPolicy | None = None
) -> User | None:
    """The user for these credentials, or None. Failures are counted in the database per
    email and per client address; past the policy's limit SignInThrottled is raised and
    the password is not even checked, right or wrong. A success clears the email's count.
    """
    policy = policy or SignInPolicy()
    email_key = _throttle_key("email", email.strip().lower())
    address_key = _throttle_key("address", client_address or "unknown")
    limits = {
        email_key: policy.max_failures_per_email,
        address_key: policy.max_failures_per_address,
    }
    now = utcnow()
    counters = db.session.scalars(
        select(SignInThrottle).where(SignInThrottle.key.in_(list(limits)))
    ).all()
    for counter in counters:
        retry_after = counter.window_start + policy.window - now
        if counter.failures >= limits[counter.key] and retry_after > timedelta(0):
            raise SignInThrottled(int(retry_after.total_seconds()) + 1)
    user = authenticate_user(email, password)
    if user is None:
        _count_failures(limits, policy)
        return None
    if any(c.key == email_key for c in counters):
        with write_transaction():
            db.session.execute(delete(SignInThrottle).where(SignInThrottle.key == email_key))
    return user


def load_session_user(user_id: uuid.UUID) -> tuple[User, Account] | None:
    """The user of a browser session with their account (one query), or None."""
    row = db.session.execute(
        select(User, Account).join(Account, Account.id == User.account_id).where(User.id == user_id)
    ).one_or_none()
    return None if row is None else (row[0], row[1])


def actor_labels(account_id: uuid.UUID, actors: Iterable[tuple[str, str | None]]) -> dict[str, str]:
    """People-readable names for audit actors ("user" / "api_key" ids) of this account:
    the user's email, the key's name and prefix. Two queries at most, however many."""
    user_ids = {uuid.UUID(i) for t, i in actors if t == "user" and i}
    key_ids = {uuid.UUID(i) for t, i in actors if t == "api_key" and i}
    labels: dict[str, str] = {}
    if user_ids:
        for uid, email in db.session.execute(
            select(User.id, User.email).where(User.account_id == account_id, User.id.in_(user_ids))
        ):
            labels[str(uid)] = email
    if key_ids:
        for kid, name, prefix in db.session.execute(
            select(ApiKey.id, ApiKey.name, ApiKey.prefix).where(
                ApiKey.account_id == account_id, ApiKey.id.in_(key_ids)
            )
        ):
            labels[str(kid)] = f"API key {name} ({prefix})"
    return labels


def update_account_settings(
    account_id: uuid.UUID,
    *,
    name: str,
    timezone: str,
    default_currency: str,
    default_vat_percent: Decimal | None,
) -> Account:
    """Name, time zone (dates on every page), default currency and default VAT (the last
    level of the tax precedence). InvalidInput names the field."""
    if not name.strip():
        raise InvalidInput(("name",), "A name is required")
    if not is_timezone(timezone):
        raise InvalidInput(("timezone",), f"Unknown time zone {timezone!r}")
    try:
        currency = normalise_currency(default_currency)
    except MoneyError as exc:
        raise InvalidInput(("default_currency",), str(exc)) from None
    if default_vat_percent is not None and not (0 <= default_vat_percent <= 100):
        raise InvalidInput(("default_vat_percent",), "A VAT rate is a percent between 0 and 100")
    with write_transaction():
        account = get_account(account_id)
        before, after = apply_changes(
            account,
            {
                "name": name.strip(),
                "timezone": timezone,
                "default_currency": currency,
                "default_vat_percent": default_vat_percent,
            },
        )
        if after:
            audit.record(
                account_id, "account.updated", "account", account.id, before=before, after=after
            )
    return account


def get_account(account_id: uuid.UUID) -> Account:
    account = db.session.get(Account, account_id)
    if account is None:
        raise NotFound("Account")
    return account
