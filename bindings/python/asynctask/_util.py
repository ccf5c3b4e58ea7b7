"""Conversions between Python values and the C API's integers.

Times cross the API as int64 milliseconds since the Unix epoch; here they are
timezone-aware ``datetime`` objects in UTC.  Durations are ``timedelta`` or a
number of seconds.  Naive datetimes are refused rather than guessed at.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TypeVar

from ._lib import TIME_NONE

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)

Duration = timedelta | float | int


def to_datetime(ms: int) -> datetime | None:
    """Milliseconds since the epoch as an aware UTC datetime (None for AT_TIME_NONE)."""
    if ms == TIME_NONE:
        return None
    return EPOCH + timedelta(milliseconds=ms)


def from_datetime(dt: datetime, what: str = "time") -> int:
    """An aware datetime as milliseconds since the epoch."""
    if not isinstance(dt, datetime):
        raise TypeError(f"{what} must be a datetime, not {type(dt).__name__}")
    if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
        raise ValueError(f"{what} must be timezone-aware (for example datetime.now(timezone.utc))")
    return (dt - EPOCH) // _MS


def to_ms(d: Duration, what: str = "duration") -> int:
    """A timedelta or a number of seconds as whole milliseconds (rounded)."""
    if isinstance(d, timedelta):
        return round(d / _MS)
    if isinstance(d, bool) or not isinstance(d, (int, float)):
        raise TypeError(f"{what} must be a timedelta or a number of seconds, not {type(d).__name__}")
    return round(d * 1000)


_O = TypeVar("_O", bound="Owned")


class Owned:
    """A Python object that owns one C handle in ``self._h`` and frees it in
    ``close()`` (idempotent): usable in ``with``, and closed when collected."""

    _h: object = None

    def close(self) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def __enter__(self: _O) -> _O:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_h", None):
            self.close()
