"""The store: open a URI, enqueue, claim and finish jobs, inspect queues.

:class:`Store` wraps one ``at_store`` handle.  It may be used from any number
of threads at once (the C store serialises what it must), except that
:meth:`Store.close` must not race other calls on the same store.  Closing a
store first stops its workers and schedulers, then closes the handle.
"""

from __future__ import annotations

import ctypes
import time
from contextlib import contextmanager
from ctypes import byref, c_char_p, c_int32, c_int64, c_size_t, c_uint64, c_void_p
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable, Iterator, Mapping, NamedTuple, Sequence

from . import _lib
from ._lib import lib
from ._util import Duration, Owned, from_datetime, to_datetime, to_ms
from .errors import Duplicate, InvalidArgument, Misuse, check, error
from .job import STATES, Job, state_value, take_array

# Store options (AT_OPT_STORE_*), by the keyword used in Store.set_option.
STORE_OPTIONS: dict[str, int] = {
    "max_payload": 100,
    "retention_ms": 101,
    "default_lease_ms": 102,
    "default_max_attempts": 103,
    "default_backoff_base_ms": 104,
    "default_backoff_cap_ms": 105,
    "default_backoff_jitter": 106,
    "idempotency_ttl_ms": 107,
    "max_result": 108,
    "watch_interval_ms": 109,
    "scheduler_lease_ms": 110,
    "scheduler_refresh_ms": 111,
}

# The longest single blocking at_poll call: a longer (or unlimited) timeout
# is waited for in slices of this length, so that Python signal handlers
# (KeyboardInterrupt) run between them; a blocked C call cannot be
# interrupted.
_POLL_SLICE = 0.5


class EnqueueResult(NamedTuple):
    """One job of :meth:`Store.enqueue_batch`: its id, and whether the id is
    that of an existing job holding the same idempotency key."""

    id: str
    duplicate: bool


@dataclass(frozen=True)
class WorkflowStatus:
    """A workflow's progress (``at_workflow_status``).

    Attributes:
        done: no job of the workflow is waiting, scheduled, ready or running.
        failed: some job of the workflow is dead or cancelled.
        counts: the number of its jobs per state name.
    """

    done: bool
    failed: bool
    counts: dict[str, int]


class ManualClock:
    """A manual clock (``at_clock_new_manual``) for tests: stores opened with
    it judge due times by its reading, which moves only when told to.

    Only the memory and SQLite backends accept one.  The clock must outlive
    the stores that use it; :meth:`close` refuses (Busy) while one is open.
    """

    def __init__(self, start: datetime | None = None) -> None:
        h = c_void_p()
        start_ms = from_datetime(start, "start") if start is not None else round(time.time() * 1000)
        check(lib.at_clock_new_manual(byref(h), start_ms))
        self._h: int | None = h.value

    def _handle(self) -> int:
        if not self._h:
            raise Misuse(-14, "the clock is closed")
        return self._h

    def now(self) -> datetime:
        """The clock's current reading."""
        return to_datetime(lib.at_clock_now(self._handle()))  # type: ignore[return-value]

    def advance(self, delta: Duration) -> None:
        """Move the clock forward and wake the pollers of its stores."""
        check(lib.at_clock_advance(self._handle(), to_ms(delta, "delta")))

    def set(self, when: datetime) -> None:
        """Set the clock's wall time, forward or backward."""
        check(lib.at_clock_set(self._handle(), from_datetime(when, "when")))

    def close(self) -> None:
        """Free the clock (Busy while a store still uses it)."""
        if self._h:
            check(lib.at_clock_free(self._h))
            self._h = None

    def __del__(self) -> None:
        if getattr(self, "_h", None):
            lib.at_clock_free(self._h)  # refused, and leaked, while a store uses it


class Store(Owned):
    """An open job store (``at_store_open``).

    URIs: ``memory:``, ``sqlite:PATH[?sync=full|normal]``,
    ``redis://[user:password@]host:port[/db][?prefix=P]``.  Use it as a
    context manager, or call :meth:`close`.
    """

    def __init__(self, uri: str, *, clock: ManualClock | None = None) -> None:
        """Open the store at ``uri``; with ``clock``, judge time by it."""
        h = c_void_p()
        rc = lib.at_store_open(byref(h), _lib.cstr(uri))
        if rc < 0:
            raise error(rc, None)
        self._h: int | None = h.value
        self.uri = uri
        self._clock = clock
        self._children: set[Any] = set()  # running workers and schedulers, closed first
        if clock is not None:
            rc = lib.at_store_set_clock(self._h, clock._handle())
            if rc < 0:
                e = error(rc, self._h)
                self.close()
                raise e

    # ------------------------------------------------------------ handle
    def _handle(self) -> int:
        h = self._h
        if not h:
            raise Misuse(-14, "the store is closed")
        return h

    def _check(self, rc: int) -> int:
        if rc < 0:
            raise error(rc, self._h)
        return rc

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return not self._h

    def close(self) -> None:
        """Stop the store's workers and schedulers, then close the store.

        No other thread may be using the store (a blocked :meth:`poll` must
        have returned)."""
        for child in list(self._children):
            child.close()
        if self._h:
            h, self._h = self._h, None
            lib.at_store_close(h)


    def __repr__(self) -> str:
        return f"<Store {self.uri!r}{' closed' if self.closed else ''}>"

    @property
    def backend(self) -> str:
        """The URI scheme the store was opened with ("memory", "sqlite", ...)."""
        return _lib.text(lib.at_store_backend(self._handle())) or ""

    def now(self) -> datetime:
        """The store's current time (its clock: host, manual, or Redis TIME)."""
        v = c_int64()
        self._check(lib.at_store_now(byref(v), self._handle()))
        return to_datetime(v.value)  # type: ignore[return-value]

    def set_option(self, name: str, value: int) -> None:
        """Set a store option by name, one of :data:`STORE_OPTIONS`
        ("max_payload", "retention_ms", "default_lease_ms", ...)."""
        self._check(lib.at_store_set_option(self._handle(), _store_option(name), value))

    def get_option(self, name: str) -> int:
        """Read a store option (see :meth:`set_option`)."""
        v = c_int64()
        self._check(lib.at_store_get_option(byref(v), self._handle(), _store_option(name)))
        return v.value

    # ------------------------------------------------------------ enqueue
    def enqueue(self, type: str, payload: bytes | str = b"", *, queue: str | None = None,
                priority: int | None = None, delay: timedelta | float | None = None,
                run_at: datetime | None = None, max_attempts: int | None = None,
                backoff_base: Duration | None = None, backoff_cap: Duration | None = None,
                backoff_jitter: int | None = None, lease: Duration | None = None,
                key: str | None = None, key_ttl: Duration | None = None) -> str:
        """Enqueue one job of ``type`` and return its id.

        ``delay`` (timedelta or seconds, by the store's clock) and ``run_at``
        (an aware datetime) make it due later; ``backoff_base``,
        ``backoff_cap``, ``lease`` and ``key_ttl`` are durations (timedelta
        or seconds); ``backoff_jitter`` is in permille.  With an idempotency
        ``key`` already held by a job, nothing is created and
        :class:`~asynctask.errors.Duplicate` is raised with that job's id as
        ``existing_id``.
        """
        data = _lib.blob(payload)
        out = ctypes.create_string_buffer(_lib.ID_SIZE)
        h = self._handle()
        with _opts(queue=queue, priority=priority, delay=delay, run_at=run_at,
                   max_attempts=max_attempts, backoff_base=backoff_base, backoff_cap=backoff_cap,
                   backoff_jitter=backoff_jitter, lease=lease, key=key, key_ttl=key_ttl) as o:
            rc = lib.at_enqueue(out, h, _lib.cstr(type), data, len(data), o)
        if rc == -8:
            raise error(rc, h, existing_id=_lib.text(out.value))
        self._check(rc)
        return _lib.text(out.value) or ""

    def enqueue_batch(self, jobs: Iterable[Mapping[str, Any] | tuple[str, bytes | str] | str]
                      ) -> list[EnqueueResult]:
        """Enqueue several jobs atomically: all of them, or (on an error)
        none.

        Each job is a dict of :meth:`enqueue`'s arguments (``{"type": ...,
        "payload": ..., "queue": ...}``), a ``(type, payload)`` tuple, or a
        type.  Duplicate idempotency keys do not fail the batch: their entry
        has the existing job's id and ``duplicate`` True.
        """
        b = c_void_p()
        check(lib.at_batch_new(byref(b)))
        try:
            for i, spec in enumerate(jobs):
                if isinstance(spec, str):
                    kw: dict[str, Any] = {"type": spec}
                elif isinstance(spec, tuple):
                    kw = {"type": spec[0], "payload": spec[1] if len(spec) > 1 else b""}
                else:
                    kw = dict(spec)
                try:
                    type_ = kw.pop("type")
                except KeyError:
                    raise ValueError(f"batch job {i} has no type") from None
                data = _lib.blob(kw.pop("payload", b""))
                with _opts(**kw) as o:
                    rc = lib.at_batch_add(b.value, _lib.cstr(type_), data, len(data), o)
                if rc < 0:
                    raise error(rc, None)
            if lib.at_batch_count(b.value) == 0:
                return []
            self._check(lib.at_enqueue_batch(self._handle(), b.value))
            return [EnqueueResult(_lib.text(lib.at_batch_id(b.value, i)) or "",
                                  lib.at_batch_status(b.value, i) == -8)
                    for i in range(lib.at_batch_count(b.value))]
        finally:
            lib.at_batch_free(b.value)

    # --------------------------------------------------------------- claim
    def poll(self, queues: str | Sequence[str], max: int = 1, timeout: float | None = None) -> list[Job]:
        """Claim up to ``max`` due jobs from ``queues`` (earlier queues first).

        Blocks up to ``timeout`` seconds (0: not at all; None: until a job is
        due) and returns the claimed jobs, possibly none.  Long waits are
        made of short C calls, so Ctrl-C and signal handlers work.
        """
        if isinstance(queues, str):
            queues = [queues]
        qs = (c_char_p * len(queues))(*[_lib.cstr(q) for q in queues])
        if max < 1:
            raise InvalidArgument(-1, "max must be at least 1")
        arr = (c_void_p * max)()
        n = c_size_t(0)
        h = self._handle()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if deadline is None:
                slice_ms = round(_POLL_SLICE * 1000)
            else:
                left = deadline - time.monotonic()
                slice_ms = max_(0, round(min(left, _POLL_SLICE) * 1000))
            self._check(lib.at_poll(arr, byref(n), h, qs, len(queues), max, slice_ms))
            if n.value or (deadline is not None and time.monotonic() >= deadline):
                return take_array(self, arr, n.value)

    def ack(self, id: str, token: int, result: bytes | str = b"") -> None:
        """Finish a claimed job successfully (``at_ack``)."""
        data = _lib.blob(result)
        self._check(lib.at_ack(self._handle(), _lib.cstr(id), token, data or None, len(data)))

    def fail(self, id: str, token: int, error: str | None, *, permanent: bool = False) -> str:
        """Fail a claimed job (``at_fail``); returns its new state name."""
        st = c_int32(0)
        flags = _lib.FAIL_PERMANENT if permanent else _lib.FAIL_RETRY
        self._check(lib.at_fail(byref(st), self._handle(), _lib.cstr(id), token, _lib.cstr(error), flags))
        return STATES.get(st.value, str(st.value))

    def touch(self, id: str, token: int, extend: Duration = 0) -> None:
        """Extend a claimed job's lease (``at_touch``)."""
        self._check(lib.at_touch(self._handle(), _lib.cstr(id), token, to_ms(extend, "extend")))

    def release(self, id: str, token: int, delay: Duration = 0) -> None:
        """Give a claimed job back without using an attempt (``at_release``)."""
        self._check(lib.at_release(self._handle(), _lib.cstr(id), token, to_ms(delay, "delay")))

    # ------------------------------------------------------------- inspect
    def get(self, id: str) -> Job:
        """A snapshot of job ``id``; NotFound if there is none."""
        out = c_void_p()
        self._check(lib.at_get(byref(out), self._handle(), _lib.cstr(id)))
        return Job._take(self, out.value)  # type: ignore[arg-type]

    def cancel(self, id: str) -> bool:
        """Cancel a job.  Returns True when the job is RUNNING and only
        marked (its worker finishes the cancellation), False when it is
        CANCELLED now.  Terminal if it already finished."""
        pending = c_int32(0)
        self._check(lib.at_cancel(byref(pending), self._handle(), _lib.cstr(id)))
        return bool(pending.value)

    def list(self, queue: str | None = None, state: str | None = None, *,
             page_size: int = 100) -> Iterator[Job]:
        """Every job of ``queue`` (None: all) in ``state`` (None or "any":
        all), oldest first, read lazily ``page_size`` at a time."""
        st = state_value(state)
        q = _lib.cstr(queue)
        return self._pages(lambda arr, n, cur_out, cur: lib.at_list(
            arr, n, cur_out, self._handle(), q, st, cur, page_size), page_size)

    def _pages(self, call, page_size: int) -> Iterator[Job]:
        if not 1 <= page_size <= _lib.LIST_LIMIT_MAX:
            raise InvalidArgument(-1, f"page_size must be 1..{_lib.LIST_LIMIT_MAX}")
        arr = (c_void_p * page_size)()
        cursor_out = ctypes.create_string_buffer(_lib.CURSOR_SIZE)
        cursor: bytes | None = None
        n = c_size_t(0)
        while True:
            self._check(call(arr, byref(n), cursor_out, cursor))
            page = take_array(self, arr, n.value)
            yield from page
            cursor = cursor_out.value
            if not cursor:
                return

    def requeue(self, id: str | None = None, *, queue: str | None = None) -> int:
        """Move DEAD jobs back to READY with a fresh attempt budget: job
        ``id``, or (without it) every dead job of ``queue`` (None: all
        queues).  Returns how many moved."""
        n = c_uint64(0)
        self._check(lib.at_requeue(byref(n), self._handle(), _lib.cstr(queue), _lib.cstr(id)))
        return n.value

    def purge(self, older_than: Duration | None = None) -> int:
        """Delete terminal jobs that finished more than ``older_than`` ago
        (None: the store's retention).  Returns how many."""
        n = c_uint64(0)
        ms = -1 if older_than is None else to_ms(older_than, "older_than")
        self._check(lib.at_purge(byref(n), self._handle(), ms))
        return n.value

    def stats(self) -> dict[str, dict[str, int]]:
        """Job counts per queue and state: ``{queue: {state: count}}``."""
        s = c_void_p()
        self._check(lib.at_stats_get(byref(s), self._handle()))
        try:
            out: dict[str, dict[str, int]] = {}
            for i in range(lib.at_stats_queue_count(s.value)):
                name = _lib.text(lib.at_stats_queue_name(s.value, i)) or ""
                out[name] = {nm: lib.at_stats_count(s.value, i, v) for v, nm in STATES.items()}
            return out
        finally:
            lib.at_stats_free(s.value)

    def next_due(self, queue: str) -> datetime | None:
        """When the earliest SCHEDULED job of ``queue`` is due, or None."""
        s = c_void_p()
        self._check(lib.at_stats_get(byref(s), self._handle()))
        try:
            for i in range(lib.at_stats_queue_count(s.value)):
                if _lib.text(lib.at_stats_queue_name(s.value, i)) == queue:
                    return to_datetime(lib.at_stats_next_due(s.value, i))
            return None
        finally:
            lib.at_stats_free(s.value)

    # -------------------------------------------------------------- queues
    def pause(self, queue: str) -> None:
        """Stop claims from ``queue`` for every process sharing the store."""
        self._check(lib.at_queue_pause(self._handle(), _lib.cstr(queue)))

    def resume(self, queue: str) -> None:
        """Restart claims from a paused ``queue``."""
        self._check(lib.at_queue_resume(self._handle(), _lib.cstr(queue)))

    def is_paused(self, queue: str) -> bool:
        """True if ``queue`` is paused."""
        p = c_int32(0)
        self._check(lib.at_queue_is_paused(byref(p), self._handle(), _lib.cstr(queue)))
        return bool(p.value)

    # ----------------------------------------------------------- workflows
    def workflow(self) -> Workflow:
        """A new, empty workflow to be submitted to this store."""
        return Workflow(self)

    def spawn(self, job_id: str, token: int, workflow: Workflow) -> dict[str, str]:
        """Add ``workflow``'s nodes to the workflow of the running job
        ``job_id`` (claimed under ``token``), each also waiting for that job
        (``at_workflow_spawn``).  Returns node -> job id."""
        workflow._resolve()
        self._check(lib.at_workflow_spawn(self._handle(), _lib.cstr(job_id), token, workflow._handle()))
        return workflow.job_ids()

    def workflow_status(self, workflow_id: str) -> WorkflowStatus:
        """The progress of a workflow; NotFound for an unknown id."""
        done, failed = c_int32(0), c_int32(0)
        counts = (c_uint64 * _lib.STATE_COUNT)()
        self._check(lib.at_workflow_status(byref(done), byref(failed), counts, self._handle(),
                                           _lib.cstr(workflow_id)))
        return WorkflowStatus(bool(done.value), bool(failed.value),
                              {nm: counts[v] for v, nm in STATES.items()})

    def workflow_jobs(self, workflow_id: str, *, page_size: int = 100) -> Iterator[Job]:
        """The jobs of a workflow in id order, read lazily by pages."""
        wf = _lib.cstr(workflow_id)
        return self._pages(lambda arr, n, cur_out, cur: lib.at_workflow_jobs(
            arr, n, cur_out, self._handle(), wf, cur, page_size), page_size)

    def cancel_workflow(self, workflow_id: str) -> int:
        """Cancel every unfinished job of a workflow; returns how many changed."""
        n = c_uint64(0)
        self._check(lib.at_workflow_cancel(byref(n), self._handle(), _lib.cstr(workflow_id)))
        return n.value

    # ----------------------------------------------------------- schedules
    def add_schedule(self, name: str, expr: str, type: str, payload: bytes | str = b"", *,
                     tz: str | None = None, queue: str | None = None, priority: int | None = None,
                     max_attempts: int | None = None, lease: Duration | None = None,
                     misfire: str = "once", grace: Duration | None = None,
                     cap: int | None = None) -> bool:
        """Store the schedule ``name``: the cron ``expr`` in time zone ``tz``
        (None: UTC) enqueues a job of ``type`` with ``payload`` at each tick.
        ``misfire`` is "skip", "once" or "all" (``cap``: the most ticks
        "all" catches up; ``grace``: how late a tick may fire normally).
        An existing schedule of that name is replaced, keeping its paused
        flag and history.  Returns True when it was created."""
        return _schedules.add(self, name, expr, type, payload, tz=tz, queue=queue, priority=priority,
                              max_attempts=max_attempts, lease=lease, misfire=misfire, grace=grace,
                              cap=cap)

    def remove_schedule(self, name: str) -> None:
        """Delete a schedule (the jobs it made stay); NotFound if none."""
        self._check(lib.at_schedule_remove(self._handle(), _lib.cstr(name)))

    def pause_schedule(self, name: str) -> None:
        """Stop firing the schedule, for every process sharing the store."""
        self._check(lib.at_schedule_pause(self._handle(), _lib.cstr(name)))

    def resume_schedule(self, name: str) -> None:
        """Restart a paused schedule (missed ticks follow its misfire policy)."""
        self._check(lib.at_schedule_resume(self._handle(), _lib.cstr(name)))

    def schedule(self, name: str) -> Schedule:
        """A snapshot of the stored schedule ``name``; NotFound if none."""
        return _schedules.get(self, name)

    def schedules(self) -> list[Schedule]:
        """Snapshots of every stored schedule, by name."""
        return _schedules.list_all(self)

    def scheduler(self) -> Scheduler:
        """Start a scheduler on this store (use it as a context manager;
        leaving it stops the scheduler)."""
        return Scheduler(self)

    # -------------------------------------------------------------- workers
    def worker(self, queues: Sequence[str | tuple[str, int, int]] = ("default",), *, threads: int = 4,
               timeout: Duration | None = None, grace: Duration | None = None,
               weighted: bool = False) -> Worker:
        """A worker running handlers on ``threads`` library threads for the
        jobs of ``queues`` (names, or ``(name, weight, concurrency)``)."""
        return Worker(self, queues, threads=threads, timeout=timeout, grace=grace, weighted=weighted)


def max_(a: int, b: int) -> int:
    return a if a > b else b


def _store_option(name: str | int) -> int:
    if isinstance(name, int):
        return name
    try:
        return STORE_OPTIONS[name]
    except KeyError:
        raise ValueError(f"unknown store option {name!r}; one of {', '.join(STORE_OPTIONS)}") from None


def _set_int(o: int, option: int, what: str, value: int) -> None:
    rc = lib.at_opts_set_int(o, option, value)
    if rc < 0:
        raise error(rc, None)


@contextmanager
def _opts(*, queue: str | None = None, priority: int | None = None, delay: Duration | None = None,
          run_at: datetime | None = None, max_attempts: int | None = None,
          backoff_base: Duration | None = None, backoff_cap: Duration | None = None,
          backoff_jitter: int | None = None, lease: Duration | None = None, key: str | None = None,
          key_ttl: Duration | None = None) -> Iterator[int | None]:
    """An ``at_opts`` handle for the given options (NULL when all are
    defaults), freed when the block ends."""
    values = (queue, priority, delay, run_at, max_attempts, backoff_base, backoff_cap, backoff_jitter,
              lease, key, key_ttl)
    if all(v is None for v in values):
        yield None
        return
    if delay is not None and run_at is not None:
        raise InvalidArgument(-1, "give delay or run_at, not both")
    h = c_void_p()
    check(lib.at_opts_new(byref(h)))
    o = h.value
    try:
        if queue is not None:
            rc = lib.at_opts_set_str(o, _lib.OPT_QUEUE, _lib.cstr(queue))
            if rc < 0:
                raise error(rc, None)
        if key is not None:
            rc = lib.at_opts_set_str(o, _lib.OPT_IDEMPOTENCY_KEY, _lib.cstr(key))
            if rc < 0:
                raise error(rc, None)
        ints = ((_lib.OPT_PRIORITY, "priority", priority),
                (_lib.OPT_MAX_ATTEMPTS, "max_attempts", max_attempts),
                (_lib.OPT_BACKOFF_JITTER, "backoff_jitter", backoff_jitter))
        for option, what, v in ints:
            if v is not None:
                if isinstance(v, bool) or not isinstance(v, int):
                    raise TypeError(f"{what} must be an int")
                _set_int(o, option, what, v)
        durations = ((_lib.OPT_DELAY_MS, "delay", delay),
                     (_lib.OPT_BACKOFF_BASE_MS, "backoff_base", backoff_base),
                     (_lib.OPT_BACKOFF_CAP_MS, "backoff_cap", backoff_cap),
                     (_lib.OPT_LEASE_MS, "lease", lease),
                     (_lib.OPT_IDEMPOTENCY_TTL_MS, "key_ttl", key_ttl))
        for option, what, v in durations:
            if v is not None:
                _set_int(o, option, what, to_ms(v, what))
        if run_at is not None:
            _set_int(o, _lib.OPT_RUN_AT, "run_at", from_datetime(run_at, "run_at"))
        yield o
    finally:
        lib.at_opts_free(o)


from . import schedule as _schedules  # noqa: E402  (the modules below import Store's helpers)
from .schedule import Schedule, Scheduler  # noqa: E402
from .worker import Worker  # noqa: E402
from .workflow import Workflow  # noqa: E402

__all__ = ["Store", "ManualClock", "EnqueueResult", "WorkflowStatus", "STORE_OPTIONS", "Duplicate"]
