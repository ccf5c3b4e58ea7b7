"""Child process of test_leaks.py: counts the library's live allocations.

Installs a counting allocator with at_set_allocator before anything else
uses the library, runs every kind of binding call on a store (the URI is the
first argument) several rounds, and prints the number of live allocations
after each round, one per line.  A binding that forgets an at_*_free leaves
more allocations live after every round.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from datetime import datetime, timezone
from ctypes import CFUNCTYPE, c_size_t, c_void_p

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

libc = ctypes.CDLL(None)
libc.malloc.restype = c_void_p
libc.malloc.argtypes = [c_size_t]
libc.realloc.restype = c_void_p
libc.realloc.argtypes = [c_void_p, c_size_t]
libc.free.restype = None
libc.free.argtypes = [c_void_p]

MALLOC = CFUNCTYPE(c_void_p, c_size_t)
REALLOC = CFUNCTYPE(c_void_p, c_void_p, c_size_t)
FREE = CFUNCTYPE(None, c_void_p)
live: set[int] = set()
lock = threading.Lock()


def _malloc(n: int) -> int | None:
    p = libc.malloc(n)
    if p:
        with lock:
            live.add(p)
    return p


def _realloc(p: int | None, n: int) -> int | None:
    q = libc.realloc(p, n)
    if q or n == 0:
        with lock:
            live.discard(p)
            if q:
                live.add(q)
    return q


def _free(p: int | None) -> None:
    if p:
        with lock:
            live.discard(p)
    libc.free(p)


callbacks = (MALLOC(_malloc), REALLOC(_realloc), FREE(_free))
at = ctypes.CDLL(os.environ["ASYNCTASK_LIB"])
at.at_set_allocator.argtypes = [MALLOC, REALLOC, FREE, c_void_p, c_void_p, c_void_p]
assert at.at_set_allocator(*callbacks, None, None, None) == 0

import asynctask  # noqa: E402  (after the allocator, as at_set_allocator requires)


def one_round(uri: str) -> None:
    with asynctask.Store(uri) as s:
        s.enqueue("t", b"x", queue="q", priority=1, delay=0.0, max_attempts=3, lease=5, key="k1", key_ttl=60)
        try:
            s.enqueue("t", key="k1")
        except asynctask.Duplicate:
            pass
        s.enqueue_batch([("t", b"a"), {"type": "t", "queue": "q", "key": "k1"}])
        for job in s.poll("q", max=10, timeout=1):
            job.touch(1)
            job.ack(b"r")
        for job in s.poll("default", max=1, timeout=1):
            job.fail("e", permanent=True)
        s.requeue(queue="default")
        for job in s.poll("default", max=1, timeout=1):
            job.release()
        list(s.list(page_size=1))
        s.stats()
        s.next_due("q")
        s.purge(0)
        try:
            s.get("0" * 26)
        except asynctask.NotFound:
            pass
        s.cancel(s.enqueue("t", queue="c"))
        s.pause("p")
        s.resume("p")
        s.is_paused("p")
        s.add_schedule("sch", "@every 1h", "t", b"p", queue="q", priority=1, misfire="all", cap=3)
        s.schedules()
        s.schedule("sch")
        s.pause_schedule("sch")
        s.resume_schedule("sch")
        s.remove_schedule("sch")
        with s.scheduler() as sc:
            sc.counters()
        with s.workflow() as wf:
            wf.add("a", "w", queue="wf").add("b", "w", queue="wf", after=["a"]).add_completion("z", "w", queue="wf")
            wid = wf.submit()
        w = s.worker(queues=["wf"], threads=2)
        spawned = threading.Event()

        @w.handler("w")
        def handle(ctx: asynctask.JobContext) -> bytes:
            if ctx.job.node == "a":
                with asynctask.Workflow() as more:
                    more.add("s", "w", queue="wf")
                    ctx.spawn(more)
            if ctx.job.node == "z":
                spawned.set()
            ctx.progress(0.5)
            return b"ok"

        w.on_event(lambda *a: None)
        w.start()
        spawned.wait(10)
        w.stop()
        w.wait()
        w.close()
        s.workflow_status(wid)
        list(s.workflow_jobs(wid))
        s.cancel_workflow(wid)
        try:
            with s.workflow() as bad:
                bad.add("a", "t", after=["b"]).add("b", "t", after=["a"]).submit()
        except asynctask.Cycle:
            pass
    asynctask.cron_next("@daily", datetime(2026, 1, 1, tzinfo=timezone.utc), "Europe/Berlin")
    clock = asynctask.ManualClock()
    with asynctask.Store("memory:", clock=clock):
        clock.advance(1)
    clock.close()


if os.environ.get("LEAK_WORKLOAD_SELFTEST"):  # show that a forgotten free is counted
    _orig = asynctask.job.lib.at_job_free
    asynctask.job.lib.at_job_free = lambda h: None  # type: ignore[attr-defined]

uri = sys.argv[1]
for _ in range(int(sys.argv[2]) if len(sys.argv) > 2 else 4):
    one_round(uri.replace("ROUND", str(_)))
    print(len(live), flush=True)
