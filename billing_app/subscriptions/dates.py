"""The date formats of dialect B (`yyyy-MM-dd`, `yyyyMMdd`, `yyyy-MM-ddTHH:mm`,
`yyyy-MM-ddTHH:mm:ss`), read in the account's time zone and stored in UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

_FORMATS = (
    (re.compile(r"^\d{4}-\d{2}-\d{2}$"), "%Y-%m-%d"),
    (re.compile(r"^\d{8}$"), "%Y%m%d"),
    (re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$"), "%Y-%m-%dT%H:%M"),
    (re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$"), "%Y-%m-%dT%H:%M:%S"),
)
FORMATS_TEXT = "yyyy-MM-dd, yyyyMMdd, yyyy-MM-ddTHH:mm or yyyy-MM-ddTHH:mm:ss"


def is_local_datetime(text: str) -> bool:
    for pattern, fmt in _FORMATS:
        if pattern.match(text):
            try:
                datetime.strptime(text, fmt)  # noqa: DTZ007 - zone attached in parse_local
            except ValueError:
                return False
            return True
    return False


def parse_local(text: str, timezone: str) -> datetime:
    """A local date/time of the account as an aware UTC datetime. ValueError if invalid."""
    for pattern, fmt in _FORMATS:
        if pattern.match(text):
            naive = datetime.strptime(text, fmt)  # noqa: DTZ007 - zone attached below
            return naive.replace(tzinfo=ZoneInfo(timezone)).astimezone(UTC)
    raise ValueError(f"Use one of {FORMATS_TEXT}")
