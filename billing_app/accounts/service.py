"""Accounts, users and API keys.

API keys look like `bk_<10 chars>_<40 chars>`. The first part is the visible prefix (stored
in clear, used for lookup and shown in lists); the whole key is stored only as SHA-256. The
secret part has 240 bits of entropy, so a fast hash is enough: there is nothing to guess.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from werkzeug.security import check_password_hash, generate_password_hash

from ..audit import service as audit
from ..database import utcnow, write_transaction
from ..entities.models import BillingEntity
from ..errors import Duplicate, InvalidInput, NotFound
from ..extensions import db
from .models import Account, ApiKey, User

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


def authenticate_api_key(raw: str) -> tuple[ApiKey, Account] | None:
    """The key and its account, or None for a malformed, unknown or revoked key."""
    if (
        not raw.startswith(KEY_PREFIX)
        or len(raw) != len(KEY_PREFIX) + _PREFIX_LEN + 1 + _SECRET_LEN
    ):
        return None
    prefix = raw[: len(KEY_PREFIX) + _PREFIX_LEN]
    row = db.session.execute(
        select(ApiKey, Account)
        .join(Account, Account.id == ApiKey.account_id)
        .where(ApiKey.prefix == prefix)
    ).one_or_none()
    if row is None:
        return None
    key, account = row
    if not hmac.compare_digest(key.key_hash, _hash_key(raw)) or key.revoked_at is not None:
        return None
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        with write_transaction():
            db.session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
        key.last_used_at = now
    return key, account


def authenticate_user(email: str, password: str) -> User | None:
    user = db.session.scalars(select(User).where(User.email == email.strip().lower())).one_or_none()
    if user is None or not check_password_hash(user.password_hash, password):
        return None
    return user


def get_account(account_id: uuid.UUID) -> Account:
    account = db.session.get(Account, account_id)
    if account is None:
        raise NotFound("Account")
    return account
