"""The list reads the cursors it writes for the time and total sorts without base64's and
json's Python layers (`browse._decoded_cursor`, docs/performance.md "Pages", fifth
session): the same values as the service's decoder for every cursor, and the same
refusal for everything else."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing_app.errors import InvalidInput
from billing_app.invoices import queries as browse
from billing_app.invoices.service import _decode_cursor


def _same(sort: str, cursor: str) -> None:
    try:
        expected = _decode_cursor(sort, cursor)
    except InvalidInput as exc:
        with pytest.raises(InvalidInput) as got:
            browse._decoded_cursor(sort, cursor)
        assert got.value.message == exc.message and got.value.loc == exc.loc
        return
    value, id_ = browse._decoded_cursor(sort, cursor)
    assert (value, id_) == expected
    assert type(value) is type(expected[0]) and type(id_) is uuid.UUID
    if isinstance(value, datetime):
        assert value.utcoffset() == expected[0].utcoffset()


def _b64(raw: str | bytes) -> str:
    data = raw.encode() if isinstance(raw, str) else raw
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


times = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
) | st.datetimes(timezones=st.sampled_from([timezone(timedelta(hours=5, minutes=30)), UTC]))


@settings(max_examples=300, deadline=None)
@given(when=times, total=st.integers(-(10**20), 10**20), id_=st.uuids())
def test_written_cursors_read_the_same(when, total, id_):
    for sort, value in (("created", f'"{when.isoformat()}"'), ("total", str(total))):
        _same(sort, _b64(f'["{sort}",{value},"{id_.hex}"]'))
        _same(sort, _b64(f'["{sort}",{value},"{id_.hex}"]') + "==")
        _same(sort, _b64(f'["{sort}", {value}, "{id_.hex}"]'))  # json's own spacing
        _same("number", _b64(f'["{sort}",{value},"{id_.hex}"]'))  # another sort's


@settings(max_examples=400, deadline=None)
@given(text=st.text(max_size=80), raw=st.binary(max_size=80))
def test_anything_else_is_refused_as_before(text, raw):
    for sort in ("created", "total"):
        _same(sort, text)
        _same(sort, _b64(raw))


@pytest.mark.parametrize(
    "inner",
    [
        '["created","2024-01-01T00:00:00","' + "a" * 32 + '"]',  # naive
        '["created","2024-13-01T00:00:00+00:00","' + "a" * 32 + '"]',
        '["created","2024-01-01T00:00:00+00:00","' + "A" * 32 + '"]',  # upper-case hex
        '["created","2024-01-01T00:00:00+00:00","' + "a" * 31 + '"]',
        '["total",1.0,"' + "a" * 32 + '"]',
        '["total",true,"' + "a" * 32 + '"]',
        '["total",-0,"' + "a" * 32 + '"]',
        '["total",007,"' + "a" * 32 + '"]',
        '["total",1,"' + "a" * 32 + '"] ',
        '["total",1,"' + "a" * 32 + '"]\x00',
    ],
)
def test_edge_cursors_read_the_same(inner):
    for sort in ("created", "total"):
        _same(sort, _b64(inner))
        _same(sort, "é" + _b64(inner))
        _same(sort, _b64(inner)[:-1] + "!")
