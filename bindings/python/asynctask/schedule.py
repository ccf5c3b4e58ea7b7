"""Cron schedules stored in the store, and the scheduler that fires them.

A schedule is a cron expression in a time zone plus the template of the job
each tick enqueues.  :class:`Schedule` is a snapshot copied from a C
``at_schedule`` (freed at once); :class:`Scheduler` owns one
``at_scheduler`` thread, stopped by :meth:`Scheduler.close` or by leaving its
``with`` block.
"""

from __future__ import annotations

import ctypes
from ctypes import POINTER, byref, c_int32, c_int64, c_size_t, c_uint64, c_void_p
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from . import _lib
from ._lib import lib
from ._util import Duration, Owned, from_datetime, to_datetime, to_ms
from .errors import Misuse, error

if TYPE_CHECKING:
    from .store import Store

#: Misfire policies (AT_MISFIRE_*), by name.
MISFIRE: dict[str, int] = {"skip": 0, "once": 1, "all": 2}


@dataclass(frozen=True)
class Schedule:
    """A snapshot of a stored schedule.

    ``created_at``, ``updated_at`` and ``last_fire`` (the tick time of the
    last firing) are aware UTC datetimes or None; ``next_fire`` is the first
    tick after the store's time when the snapshot was taken (whether or not
    the schedule is paused).
    """

    name: str
    expr: str
    tz: str
    type: str
    payload: bytes
    queue: str
    misfire: str
    grace_ms: int
    cap: int
    paused: bool
    created_at: datetime | None
    updated_at: datetime | None
    last_fire: datetime | None
    last_job_id: str | None
    next_fire: datetime | None

    @classmethod
    def _copy(cls, h: int, now_ms: int) -> Schedule:
        t = _lib.text
        grace, cap = c_int64(0), c_int32(0)
        policy = lib.at_schedule_misfire(h, byref(grace), byref(cap))
        nxt = c_int64(_lib.TIME_NONE)
        if lib.at_schedule_next(byref(nxt), h, now_ms) < 0:
            nxt.value = _lib.TIME_NONE
        return cls(
            name=t(lib.at_schedule_name(h)) or "",
            expr=t(lib.at_schedule_expr(h)) or "",
            tz=t(lib.at_schedule_tz(h)) or "UTC",
            type=t(lib.at_schedule_type(h)) or "",
            payload=_lib.read_bytes(lib.at_schedule_payload, h) or b"",
            queue=t(lib.at_schedule_queue(h)) or "default",
            misfire=next((k for k, v in MISFIRE.items() if v == policy), str(policy)),
            grace_ms=grace.value,
            cap=cap.value,
            paused=bool(lib.at_schedule_paused(h)),
            created_at=to_datetime(lib.at_schedule_time(h, _lib.SCHEDULE_TIME_CREATED)),
            updated_at=to_datetime(lib.at_schedule_time(h, _lib.SCHEDULE_TIME_UPDATED)),
            last_fire=to_datetime(lib.at_schedule_time(h, _lib.SCHEDULE_TIME_LAST_FIRE)),
            last_job_id=t(lib.at_schedule_last_job_id(h)),
            next_fire=to_datetime(nxt.value),
        )


def _store_now_ms(store: Store) -> int:
    v = c_int64()
    store._check(lib.at_store_now(byref(v), store._handle()))
    return v.value


def add(store: Store, name: str, expr: str, type: str, payload: bytes | str, *, tz: str | None,
        queue: str | None, priority: int | None, max_attempts: int | None, lease: Duration | None,
        misfire: str, grace: Duration | None, cap: int | None) -> bool:
    """Build an at_schedule definition, store it, free it (Store.add_schedule)."""
    from .store import _opts

    if misfire not in MISFIRE:
        raise ValueError(f"misfire must be one of {', '.join(MISFIRE)}, not {misfire!r}")
    h = c_void_p()
    rc = lib.at_schedule_new(byref(h), _lib.cstr(name), _lib.cstr(expr), _lib.cstr(tz), _lib.cstr(type))
    if rc < 0:
        raise error(rc, None)
    s = h.value
    try:
        data = _lib.blob(payload)
        if data:
            rc = lib.at_schedule_set_payload(s, data, len(data))
            if rc < 0:
                raise error(rc, None)
        with _opts(queue=queue, priority=priority, max_attempts=max_attempts, lease=lease) as o:
            if o is not None:
                rc = lib.at_schedule_set_opts(s, o)
                if rc < 0:
                    raise error(rc, None)
        grace_ms = 10000 if grace is None else to_ms(grace, "grace")
        rc = lib.at_schedule_set_misfire(s, MISFIRE[misfire], grace_ms, 100 if cap is None else cap)
        if rc < 0:
            raise error(rc, None)
        created = c_int32(0)
        store._check(lib.at_schedule_add(byref(created), store._handle(), s))
        return bool(created.value)
    finally:
        lib.at_schedule_free(s)


def get(store: Store, name: str) -> Schedule:
    """Store.schedule."""
    h = c_void_p()
    store._check(lib.at_schedule_get(byref(h), store._handle(), _lib.cstr(name)))
    try:
        return Schedule._copy(h.value, _store_now_ms(store))  # type: ignore[arg-type]
    finally:
        lib.at_schedule_free(h.value)


def list_all(store: Store) -> list[Schedule]:
    """Store.schedules."""
    arr = POINTER(c_void_p)()
    n = c_size_t(0)
    store._check(lib.at_schedule_list(byref(arr), byref(n), store._handle()))
    try:
        now = _store_now_ms(store)
        return [Schedule._copy(arr[i], now) for i in range(n.value)]
    finally:
        lib.at_schedule_list_free(arr, n.value)


def cron_next(expr: str, after: datetime, tz: str | None = None) -> datetime:
    """The first fire time of the cron ``expr`` in zone ``tz`` (None: UTC)
    strictly after ``after`` (``at_cron_next``)."""
    v = c_int64(_lib.TIME_NONE)
    rc = lib.at_cron_next(byref(v), _lib.cstr(expr), _lib.cstr(tz), from_datetime(after, "after"))
    if rc < 0:
        raise error(rc, None)
    return to_datetime(v.value)  # type: ignore[return-value]


class Scheduler(Owned):
    """A running scheduler (``at_scheduler_start``): competes for the store's
    scheduler lease and, while it leads, fires the unpaused schedules.

    Stopped (lease given back, thread joined, freed) by :meth:`close`, by
    leaving its ``with`` block, or by closing its store.
    """

    def __init__(self, store: Store) -> None:
        h = c_void_p()
        store._check(lib.at_scheduler_start(byref(h), store._handle()))
        self._h: int | None = h.value
        self._store = store
        store._children.add(self)

    def _handle(self) -> int:
        if not self._h:
            raise Misuse(-14, "the scheduler is stopped")
        return self._h

    @property
    def is_leader(self) -> bool:
        """True while this scheduler holds the store's scheduler lease."""
        return bool(lib.at_scheduler_is_leader(self._handle()))

    def counters(self) -> dict[str, int]:
        """Since start: ``fired`` jobs, ``misfires`` catch-ups, ``errors``,
        and times ``elected``."""
        v = [c_uint64(0) for _ in range(4)]
        lib.at_scheduler_counters(self._handle(), *[byref(x) for x in v])
        return dict(zip(("fired", "misfires", "errors", "elected"), (x.value for x in v)))

    def close(self) -> None:
        """Stop the scheduler and free it (idempotent)."""
        if self._h:
            h, self._h = self._h, None
            lib.at_scheduler_stop(h)
        self._store._children.discard(self)

    stop = close

