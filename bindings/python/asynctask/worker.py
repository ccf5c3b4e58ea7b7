"""The worker runtime: Python handlers run by the library's threads.

A :class:`Worker` owns one C ``at_worker``.  Each handler is wrapped in a
ctypes ``CFUNCTYPE`` callback; the library calls it on its own handler
threads, and ctypes takes the GIL for the duration of the call.  The
callbacks are kept referenced by the worker until the C worker is freed, so
the library never calls freed trampolines.

A handler gets a :class:`JobContext` and answers by how it ends:

* returns None, bytes or str: the job succeeded (the bytes are its result);
* raises :class:`Permanent`: the job is DEAD now, with the message as error;
* raises :class:`Release`: the job is given back without using an attempt;
* raises anything else: the job is retried after its backoff while attempts
  remain, with ``"ExceptionType: message"`` as its last error.

No exception ever crosses back into C: an exception escaping a ctypes
callback would be printed and the callback would answer 0, which the library
reads as success.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from ctypes import byref, c_uint64
from datetime import datetime
from typing import TYPE_CHECKING, Callable, Sequence

from . import _lib
from ._lib import lib
from ._util import Duration, Owned, to_datetime, to_ms
from .errors import InvalidArgument, Misuse
from .job import Job

if TYPE_CHECKING:
    from .store import Store
    from .workflow import Workflow

log = logging.getLogger("asynctask")

#: Worker event names (AT_EVENT_*), by value.
EVENTS: dict[int, str] = {1: "started", 2: "succeeded", 3: "retried", 4: "dead", 5: "cancelled",
                          6: "released", 7: "progress", 8: "timeout", 9: "enqueued", 10: "failed"}

_WAIT_SLICE_MS = 200  # run() waits in slices so that Python signal handlers run


class Permanent(Exception):
    """Raised by a handler: the job failed for good and becomes DEAD now."""


class Release(Exception):
    """Raised by a handler: give the job back (READY at once) without using
    an attempt, for work this process cannot do now."""


Handler = Callable[["JobContext"], "bytes | str | None"]


class JobContext:
    """What a handler gets: the job, and ways to report on it.

    Valid only during the handler's call and on its thread; afterwards its
    methods raise Misuse.
    """

    def __init__(self, ptr: int, store: Store, job: Job) -> None:
        self._ptr: int | None = ptr
        self.store = store
        self.job = job

    def _handle(self) -> int:
        if not self._ptr:
            raise Misuse(-14, "the job context is used after its handler returned")
        return self._ptr

    # The job's fields, for brevity in handlers.
    @property
    def id(self) -> str:
        """The job's id."""
        return self.job.id

    @property
    def type(self) -> str:
        """The job's type."""
        return self.job.type

    @property
    def queue(self) -> str:
        """The job's queue."""
        return self.job.queue

    @property
    def payload(self) -> bytes:
        """The job's payload bytes."""
        return self.job.payload

    @property
    def attempts(self) -> int:
        """Claims so far, this one included (1 on the first run)."""
        return self.job.attempts

    @property
    def cancelled(self) -> bool:
        """True once the handler should stop: the job was cancelled, its
        lease was lost, it ran past its timeout, or the worker is stopping."""
        return bool(lib.at_ctx_cancelled(self._handle()))

    @property
    def deadline(self) -> datetime | None:
        """When the job times out (the worker's timeout), or None."""
        return to_datetime(lib.at_ctx_deadline(self._handle()))

    def progress(self, fraction: float, note: str | None = None) -> None:
        """Report progress (0.0 .. 1.0, kept to the permille) with an
        optional note: a "progress" event, and the lease is renewed."""
        rc = lib.at_ctx_progress(self._handle(), round(fraction * 1000), _lib.cstr(note))
        self.store._check(rc)

    def set_result(self, result: bytes | str | None) -> None:
        """Set the result stored with the ack (returning bytes does the same)."""
        data = _lib.blob(result)
        self.store._check(lib.at_ctx_set_result(self._handle(), data or None, len(data)))

    def spawn(self, workflow: Workflow) -> dict[str, str]:
        """Add ``workflow``'s nodes to this job's workflow, each waiting for
        this job to succeed; returns node -> job id."""
        self._handle()
        return self.store.spawn(self.job.id, self.job.token, workflow)

    def __repr__(self) -> str:
        return f"<JobContext {self.job!r}>"


_live_workers: weakref.WeakSet[Worker] = weakref.WeakSet()


@atexit.register
def _close_live_workers() -> None:
    # Handler threads must not call into an interpreter that is finalising.
    for w in list(_live_workers):
        w.close()


class Worker(Owned):
    """Runs handlers for job types on a pool of library threads.

    Make it with :meth:`Store.worker`, register handlers with
    :meth:`handler`, then :meth:`run` (blocking until :meth:`stop`) or
    :meth:`start` and later :meth:`stop` and :meth:`wait`.  A worker runs
    once; :meth:`close` frees it (closing the store does too).
    """

    def __init__(self, store: Store, queues: Sequence[str | tuple[str, int, int]] = ("default",), *,
                 threads: int = 4, timeout: Duration | None = None, grace: Duration | None = None,
                 weighted: bool = False) -> None:
        from ctypes import c_void_p

        h = c_void_p()
        store._check(lib.at_worker_new(byref(h), store._handle()))
        self._h: int | None = h.value
        self._store = store
        self._callbacks: list[object] = []  # CFUNCTYPE objects the C worker points at
        self._handlers: dict[str, Handler] = {}
        self._started = False
        self._stop_requested = False
        self._lock = threading.Lock()
        store._children.add(self)
        _live_workers.add(self)
        try:
            if isinstance(queues, str):
                queues = [queues]
            for q in queues:
                name, weight, conc = (q, 1, 0) if isinstance(q, str) else q
                self._check(lib.at_worker_add_queue(self._h, _lib.cstr(name), weight, conc))
            self._check(lib.at_worker_set_int(self._h, _lib.WORKER_THREADS, threads))
            if timeout is not None:
                self._check(lib.at_worker_set_int(self._h, _lib.WORKER_TIMEOUT_MS, to_ms(timeout, "timeout")))
            if grace is not None:
                self._check(lib.at_worker_set_int(self._h, _lib.WORKER_GRACE_MS, to_ms(grace, "grace")))
            if weighted:
                self._check(lib.at_worker_set_int(self._h, _lib.WORKER_WEIGHTED, 1))
        except BaseException:
            self.close()
            raise

    def _handle(self) -> int:
        if not self._h:
            raise Misuse(-14, "the worker is closed")
        return self._h

    def _check(self, rc: int) -> int:
        return self._store._check(rc)

    @property
    def store(self) -> Store:
        """The worker's store."""
        return self._store

    # ------------------------------------------------------- configuration
    def handler(self, type: str) -> Callable[[Handler], Handler]:
        """Decorator: run the function for jobs of ``type`` ("*": every type
        without a handler of its own)."""

        def register(fn: Handler) -> Handler:
            self.add_handler(type, fn)
            return fn

        return register

    def add_handler(self, type: str, fn: Handler) -> None:
        """Register ``fn`` for jobs of ``type`` (replacing an earlier one)."""
        if not callable(fn):
            raise TypeError("a handler must be callable")
        store = self._store

        def trampoline(ctx_ptr: int, ud: int) -> int:
            return _run_handler(fn, store, ctx_ptr)

        cb = _lib.HANDLER_FN(trampoline)
        self._check(lib.at_worker_handle(self._handle(), _lib.cstr(type), cb, None))
        self._callbacks.append(cb)
        self._handlers[type] = fn

    def set_rate(self, queue: str, limit: int, period: Duration) -> None:
        """At most ``limit`` job starts of ``queue`` per ``period``, shared by
        every process on the store."""
        self._check(lib.at_worker_set_rate(self._handle(), _lib.cstr(queue), limit, to_ms(period, "period")))

    def on_event(self, fn: Callable[[str, Job, str | None], None] | None) -> None:
        """Call ``fn(event, job, detail)`` for each worker event ("started",
        "succeeded", "retried", "dead", "cancelled", "released", "progress",
        "timeout"), on the thread where it happens.  It must be quick: some
        events come from the keeper thread while it holds the worker's lock.
        None removes it."""
        if fn is None:
            self._check(lib.at_worker_on_event(self._handle(), _lib.EVENT_FN(), None))
            return
        store = self._store

        def trampoline(ud: int, event: int, job_ptr: int, detail: bytes | None) -> None:
            try:
                fn(EVENTS.get(event, str(event)), Job(store, job_ptr), _lib.text(detail))
            except BaseException:  # never into C
                log.exception("asynctask worker event hook failed")

        cb = _lib.EVENT_FN(trampoline)
        self._check(lib.at_worker_on_event(self._handle(), cb, None))
        self._callbacks.append(cb)

    # -------------------------------------------------------------- running
    def start(self) -> None:
        """Start the handler threads and return."""
        with self._lock:
            h = self._handle()
            if self._started:
                raise Misuse(-14, "the worker was started already")
            if not self._handlers:
                raise InvalidArgument(-1, "register at least one handler before starting the worker")
            self._check(lib.at_worker_start(h))
            self._started = True
            if self._stop_requested:
                lib.at_worker_stop(h)

    def stop(self) -> None:
        """Ask the worker to stop: no new claims, running handlers see
        ``ctx.cancelled`` and get the grace period.  Returns at once; safe in
        a signal handler (it only calls the async-signal-safe
        ``at_worker_stop``) and from handlers."""
        self._stop_requested = True
        h = self._h
        if h and self._started:
            lib.at_worker_stop(h)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the worker stopped; False if ``timeout`` seconds passed."""
        h = self._handle()
        if timeout is not None:
            rc = lib.at_worker_wait(h, max(0, round(timeout * 1000)))
            return rc == 0
        while lib.at_worker_wait(h, _WAIT_SLICE_MS) != 0:
            pass
        return True

    def run(self) -> None:
        """Start the worker and block until it has stopped (after
        :meth:`stop`, from a signal handler, a handler or another thread).
        A KeyboardInterrupt (or any exception raised by a signal handler)
        stops the worker gracefully, then propagates."""
        if self._stop_requested and not self._started:
            return
        self.start()
        try:
            self.wait()
        except BaseException:
            self.stop()
            while lib.at_worker_wait(self._handle(), _WAIT_SLICE_MS) != 0:
                pass
            raise

    def counters(self) -> dict[str, int]:
        """Jobs ``started``, ``succeeded``, ``failed`` and ``released`` by this worker."""
        v = [c_uint64(0) for _ in range(4)]
        lib.at_worker_counters(self._handle(), *[byref(x) for x in v])
        return dict(zip(("started", "succeeded", "failed", "released"), (x.value for x in v)))

    def close(self) -> None:
        """Stop the worker, wait for its handlers to return, and free it."""
        if self._h:
            h, self._h = self._h, None
            lib.at_worker_free(h)  # releases the GIL: handlers can finish
        self._callbacks.clear()
        self._store._children.discard(self)
        _live_workers.discard(self)



def _run_handler(fn: Handler, store: Store, ctx_ptr: int) -> int:
    """The body of every handler trampoline: never raises."""
    try:
        job = Job(store, lib.at_ctx_job(ctx_ptr))  # borrowed from ctx: not freed
        ctx = JobContext(ctx_ptr, store, job)
        try:
            result = fn(ctx)
            if result is not None:
                if not isinstance(result, (bytes, bytearray, memoryview, str)):
                    raise TypeError(f"the handler returned {type(result).__name__}; "
                                    "expected bytes, str or None")
                ctx.set_result(result)
            return _lib.HANDLER_OK
        finally:
            ctx._ptr = None
    except Permanent as e:
        lib.at_ctx_set_error(ctx_ptr, _error_text(e))
        return _lib.HANDLER_PERMANENT
    except Release:
        return _lib.HANDLER_RELEASE
    except BaseException as e:  # anything else: retry, and never let it reach C
        log.info("asynctask handler failed; the job will be retried", exc_info=True)
        try:
            lib.at_ctx_set_error(ctx_ptr, _error_text(e))
        except BaseException:
            pass
        return _lib.HANDLER_RETRY


def _error_text(e: BaseException) -> bytes:
    msg = str(e)
    text = msg if isinstance(e, Permanent) and msg else f"{type(e).__name__}: {msg}" if msg else type(e).__name__
    return text.encode("utf-8", "replace").replace(b"\0", b"\\0")
