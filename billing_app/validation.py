"""Checks of real-world codes shared by API schemas and forms."""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@lru_cache(maxsize=256)
def is_timezone(name: str) -> bool:
    if not name or "/.." in name or name.startswith("/"):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@lru_cache(maxsize=256)
def is_locale(code: str) -> bool:
    from babel import Locale, UnknownLocaleError

    try:
        Locale.parse(code.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return False
    return True


def check_timezone(name: str) -> str:
    if not is_timezone(name):
        raise ValueError(f"Unknown time zone {name!r} (use an IANA name such as Europe/Berlin)")
    return name


def check_locale(code: str) -> str:
    if not is_locale(code):
        raise ValueError(f"Unknown locale {code!r}")
    return code
