"""The worker runtime: Python handlers on the library's threads, every backend."""

from __future__ import annotations

import os
import signal
import threading
import time
import unittest
from datetime import timedelta

from helpers import BackendCase, for_each_backend

import asynctask
from asynctask import Permanent, Release


@for_each_backend
class WorkerTest(BackendCase):
    def run_until(self, worker: asynctask.Worker, done, timeout: float = 10.0) -> None:
        """Run ``worker`` in a thread until ``done()``, then stop it."""
        t = threading.Thread(target=worker.run)
        t.start()
        try:
            self.wait_for(done, timeout, "the worker's jobs")
        finally:
            worker.stop()
            t.join(15)
        self.assertFalse(t.is_alive())

    def state(self, jid: str) -> str:
        return self.store.get(jid).state

    def test_returned_bytes_are_the_result(self) -> None:
        w = self.store.worker(queues=["q"], threads=2)
        seen = []

        @w.handler("echo")
        def echo(ctx: asynctask.JobContext) -> bytes:
            seen.append((ctx.type, ctx.queue, ctx.attempts, ctx.job.state, threading.current_thread()))
            return b"got:" + ctx.payload

        jid = self.store.enqueue("echo", b"hi", queue="q")
        self.run_until(w, lambda: self.state(jid) == "succeeded")
        self.assertEqual(self.store.get(jid).result, b"got:hi")
        self.assertEqual(seen[0][:4], ("echo", "q", 1, "running"))
        self.assertIsNot(seen[0][4], threading.main_thread())
        # Counters move after the store call returns: the state can show first.
        self.wait_for(lambda: w.counters()["succeeded"] == 1, what="the succeeded counter")

    def test_none_and_str_answers_succeed(self) -> None:
        w = self.store.worker(queues=["q"])
        w.add_handler("none", lambda ctx: None)
        w.add_handler("str", lambda ctx: "é")
        a = self.store.enqueue("none", queue="q")
        b = self.store.enqueue("str", queue="q")
        self.run_until(w, lambda: self.state(a) == self.state(b) == "succeeded")
        self.assertIsNone(self.store.get(a).result)
        self.assertEqual(self.store.get(b).result, "é".encode())

    def test_an_exception_retries_with_its_text(self) -> None:
        w = self.store.worker(queues=["q"])

        @w.handler("flaky")
        def flaky(ctx: asynctask.JobContext) -> None:
            if ctx.attempts == 1:
                raise ValueError("boom")

        jid = self.store.enqueue("flaky", queue="q", backoff_base=0.01, backoff_cap=0.02)
        self.run_until(w, lambda: self.state(jid) == "succeeded")
        job = self.store.get(jid)
        self.assertEqual(job.attempts, 2)
        self.assertEqual(job.last_error, "ValueError: boom")
        self.wait_for(lambda: w.counters()["failed"] >= 1, what="the failed counter")

    def test_the_last_attempt_failing_is_dead(self) -> None:
        w = self.store.worker(queues=["q"])
        w.add_handler("bad", lambda ctx: 1 / 0)
        jid = self.store.enqueue("bad", queue="q", max_attempts=1)
        self.run_until(w, lambda: self.state(jid) == "dead")
        self.assertEqual(self.store.get(jid).last_error, "ZeroDivisionError: division by zero")

    def test_permanent_dead_letters_at_once(self) -> None:
        w = self.store.worker(queues=["q"])

        @w.handler("bad")
        def bad(ctx: asynctask.JobContext) -> None:
            raise Permanent("malformed payload")

        jid = self.store.enqueue("bad", queue="q", max_attempts=10)
        self.run_until(w, lambda: self.state(jid) == "dead")
        job = self.store.get(jid)
        self.assertEqual((job.attempts, job.last_error), (1, "malformed payload"))

    def test_a_wrong_answer_type_is_a_retry(self) -> None:
        w = self.store.worker(queues=["q"])
        w.add_handler("odd", lambda ctx: 42)
        jid = self.store.enqueue("odd", queue="q", max_attempts=1)
        self.run_until(w, lambda: self.state(jid) == "dead")
        self.assertIn("TypeError: the handler returned int", self.store.get(jid).last_error)

    def test_release_gives_the_job_back_without_an_attempt(self) -> None:
        w = self.store.worker(queues=["q"])
        calls = []

        @w.handler("later")
        def later(ctx: asynctask.JobContext) -> None:
            calls.append(ctx.attempts)
            if len(calls) == 1:
                raise Release()

        jid = self.store.enqueue("later", queue="q", max_attempts=1)
        self.run_until(w, lambda: self.state(jid) == "succeeded")
        self.assertEqual(len(calls), 2)
        self.wait_for(lambda: w.counters()["released"] >= 1, what="the released counter")

    def test_star_handler_takes_other_types(self) -> None:
        w = self.store.worker(queues=["q"])
        w.add_handler("own", lambda ctx: b"own")
        w.add_handler("*", lambda ctx: b"star:" + ctx.type.encode())
        a = self.store.enqueue("own", queue="q")
        b = self.store.enqueue("other", queue="q")
        self.run_until(w, lambda: self.state(a) == self.state(b) == "succeeded")
        self.assertEqual((self.store.get(a).result, self.store.get(b).result), (b"own", b"star:other"))

    def test_many_jobs_run_on_several_threads(self) -> None:
        w = self.store.worker(queues=["q"], threads=4)
        threads = set()
        lock = threading.Lock()

        @w.handler("n")
        def n(ctx: asynctask.JobContext) -> bytes:
            with lock:
                threads.add(threading.get_ident())
            time.sleep(0.01)
            return ctx.payload

        ids = [self.store.enqueue("n", str(i), queue="q") for i in range(24)]
        self.run_until(w, lambda: all(self.state(i) == "succeeded" for i in ids))
        self.assertEqual([self.store.get(i).result for i in ids], [str(i).encode() for i in range(24)])
        self.assertGreater(len(threads), 1)

    def test_stop_from_a_handler_ends_run(self) -> None:
        w = self.store.worker(queues=["q"])

        @w.handler("stop")
        def stop(ctx: asynctask.JobContext) -> None:
            w.stop()

        jid = self.store.enqueue("stop", queue="q")
        w.run()  # returns once the handler stopped the worker
        self.assertEqual(self.state(jid), "succeeded")

    def test_stop_before_run_makes_run_return(self) -> None:
        w = self.store.worker(queues=["q"])
        w.add_handler("t", lambda ctx: None)
        w.stop()
        w.run()
        self.assertEqual(w.counters()["started"], 0)

    def test_stop_asks_running_handlers_to_finish(self) -> None:
        w = self.store.worker(queues=["q"], grace=5)
        started = threading.Event()

        @w.handler("long")
        def long(ctx: asynctask.JobContext) -> None:
            started.set()
            while not ctx.cancelled:
                time.sleep(0.005)
            raise Release()

        jid = self.store.enqueue("long", queue="q")
        t = threading.Thread(target=w.run)
        t.start()
        self.assertTrue(started.wait(10))
        w.stop()
        t.join(10)
        self.assertFalse(t.is_alive())
        self.assertEqual(self.state(jid), "ready")

    def test_progress_events_and_deadline(self) -> None:
        w = self.store.worker(queues=["q"], timeout=timedelta(minutes=5))
        events = []
        w.on_event(lambda ev, job, detail: events.append((ev, job.type, detail)))
        deadlines = []

        @w.handler("p")
        def p(ctx: asynctask.JobContext) -> None:
            deadlines.append(ctx.deadline)
            ctx.progress(0.425, "parsing")

        jid = self.store.enqueue("p", queue="q")
        self.run_until(w, lambda: self.state(jid) == "succeeded" and any(e[0] == "succeeded" for e in events))
        self.assertIn(("progress", "p", "42.5% parsing"), events)
        self.assertIn("started", [e[0] for e in events])
        self.assertAlmostEqual((deadlines[0] - self.store.now()).total_seconds(), 300, delta=10)

    def test_no_timeout_means_no_deadline(self) -> None:
        w = self.store.worker(queues=["q"])
        deadlines = []
        w.add_handler("t", lambda ctx: deadlines.append(ctx.deadline))
        jid = self.store.enqueue("t", queue="q")
        self.run_until(w, lambda: self.state(jid) == "succeeded")
        self.assertEqual(deadlines, [None])

    def test_context_is_invalid_after_the_handler(self) -> None:
        w = self.store.worker(queues=["q"])
        kept = []
        w.add_handler("t", lambda ctx: kept.append(ctx))
        jid = self.store.enqueue("t", queue="q")
        self.run_until(w, lambda: self.state(jid) == "succeeded")
        with self.assertRaises(asynctask.Misuse):
            kept[0].cancelled
        self.assertEqual(kept[0].id, jid)  # the snapshot stays readable

    def test_worker_needs_a_handler_and_runs_once(self) -> None:
        w = self.store.worker(queues=["q"])
        with self.assertRaises(asynctask.InvalidArgument):
            w.start()
        w.add_handler("t", lambda ctx: None)
        w.start()
        with self.assertRaises(asynctask.Misuse):
            w.start()
        w.stop()
        self.assertTrue(w.wait(10))
        w.close()
        with self.assertRaises(asynctask.Misuse):
            w.counters()

    def test_bad_queue_name_is_refused(self) -> None:
        with self.assertRaises(asynctask.InvalidName):
            self.store.worker(queues=["no good"])

    def test_rate_limit_and_weighted_queues_are_accepted(self) -> None:
        w = self.store.worker(queues=[("a", 3, 2), ("b", 1, 0)], weighted=True)
        w.set_rate("a", 1000, 1.0)
        w.add_handler("t", lambda ctx: None)
        a = self.store.enqueue("t", queue="a")
        b = self.store.enqueue("t", queue="b")
        self.run_until(w, lambda: self.state(a) == self.state(b) == "succeeded")
        with self.assertRaises(asynctask.AsynctaskError):
            w.set_rate("a", 1, 1)  # configuration after start

    def test_closing_the_store_closes_its_running_worker(self) -> None:
        store = self.open_store()
        w = store.worker(queues=["q"])
        w.add_handler("t", lambda ctx: None)
        w.start()
        store.close()
        with self.assertRaises(asynctask.Misuse):
            w.counters()


class WorkerSignalTest(BackendCase):
    """run() in the main thread, stopped by a signal handler (memory: store)."""

    backend = "memory"

    def test_signal_handler_stop_ends_run(self) -> None:
        w = self.store.worker(queues=["q"])
        done = threading.Event()

        @w.handler("t")
        def t(ctx: asynctask.JobContext) -> None:
            done.set()

        old = signal.signal(signal.SIGUSR1, lambda *_: w.stop())
        self.addCleanup(signal.signal, signal.SIGUSR1, old)
        jid = self.store.enqueue("t", queue="q")
        killer = threading.Thread(target=lambda: (done.wait(10), time.sleep(0.1),
                                                  os.kill(os.getpid(), signal.SIGUSR1)))
        killer.start()
        t0 = time.monotonic()
        w.run()
        killer.join()
        self.assertLess(time.monotonic() - t0, 10)
        self.assertEqual(self.store.get(jid).state, "succeeded")

    def test_keyboard_interrupt_stops_the_worker_and_propagates(self) -> None:
        w = self.store.worker(queues=["q"])
        w.add_handler("t", lambda ctx: None)

        def interrupt(*_: object) -> None:
            raise KeyboardInterrupt

        old = signal.signal(signal.SIGUSR1, interrupt)
        self.addCleanup(signal.signal, signal.SIGUSR1, old)
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGUSR1)).start()
        with self.assertRaises(KeyboardInterrupt):
            w.run()
        self.assertTrue(w.wait(0))


if __name__ == "__main__":
    unittest.main()
