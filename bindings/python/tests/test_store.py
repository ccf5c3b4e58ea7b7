"""Store, enqueue, poll and job control, on every backend."""

from __future__ import annotations

import threading
import time
import unittest
from datetime import datetime, timedelta, timezone

from helpers import BackendCase, for_each_backend

import asynctask
from asynctask import Store


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@for_each_backend
class StoreTest(BackendCase):
    # ------------------------------------------------------------ the store
    def test_store_reports_its_backend_and_time(self) -> None:
        self.assertEqual(self.store.backend, self.backend)
        now = self.store.now()
        self.assertIsNotNone(now.tzinfo)
        self.assertLess(abs((now - utcnow()).total_seconds()), 5)

    def test_context_manager_closes_the_store(self) -> None:
        with Store(self.uri) as s:
            self.assertFalse(s.closed)
        self.assertTrue(s.closed)
        with self.assertRaises(asynctask.Misuse):
            s.enqueue("t")
        s.close()  # again: nothing happens

    def test_store_options_are_set_and_read(self) -> None:
        self.store.set_option("default_max_attempts", 7)
        self.assertEqual(self.store.get_option("default_max_attempts"), 7)
        self.assertEqual(self.store.get(self.store.enqueue("t")).max_attempts, 7)
        with self.assertRaises(ValueError):
            self.store.set_option("no_such_option", 1)

    # -------------------------------------------------------------- enqueue
    def test_enqueued_job_has_every_field(self) -> None:
        before = utcnow() - timedelta(seconds=2)
        jid = self.store.enqueue("mail.send", b"a\0b", queue="mail", priority=5, max_attempts=3, key="k-1")
        self.assertEqual(len(jid), 26)
        job = self.store.get(jid)
        self.assertEqual((job.id, job.type, job.queue, job.payload), (jid, "mail.send", "mail", b"a\0b"))
        self.assertEqual((job.state, job.priority, job.attempts, job.max_attempts), ("ready", 5, 0, 3))
        self.assertEqual(job.key, "k-1")
        self.assertEqual(job.token, 0)
        self.assertIsNone(job.result)
        self.assertIsNone(job.last_error)
        self.assertIsNone(job.started_at)
        self.assertIsNone(job.finished_at)
        self.assertIsNone(job.workflow_id)
        self.assertEqual(job.parents, ())
        self.assertEqual(job.created_at.tzinfo, timezone.utc)
        self.assertGreater(job.created_at, before)
        self.assertLessEqual(job.run_at, job.created_at + timedelta(seconds=1))

    def test_str_payload_is_utf8(self) -> None:
        self.assertEqual(self.store.get(self.store.enqueue("t", "é")).payload, "é".encode())

    def test_delay_makes_a_job_scheduled_that_long(self) -> None:
        job = self.store.get(self.store.enqueue("t", delay=timedelta(minutes=30)))
        self.assertEqual(job.state, "scheduled")
        self.assertAlmostEqual((job.run_at - job.created_at).total_seconds(), 1800, delta=1)
        job2 = self.store.get(self.store.enqueue("t", delay=90.5))
        self.assertAlmostEqual((job2.run_at - job2.created_at).total_seconds(), 90.5, delta=1)

    def test_run_at_is_kept_to_the_millisecond(self) -> None:
        when = (utcnow() + timedelta(hours=2)).replace(microsecond=123000)
        job = self.store.get(self.store.enqueue("t", run_at=when))
        self.assertEqual(job.run_at, when)
        self.assertEqual(job.state, "scheduled")
        berlin = timezone(timedelta(hours=1))
        self.assertEqual(self.store.get(self.store.enqueue("t", run_at=when.astimezone(berlin))).run_at, when)

    def test_naive_run_at_is_refused(self) -> None:
        with self.assertRaises(ValueError):
            self.store.enqueue("t", run_at=datetime.now())

    def test_delay_and_run_at_together_are_refused(self) -> None:
        with self.assertRaises(asynctask.InvalidArgument):
            self.store.enqueue("t", delay=1, run_at=utcnow())

    def test_bad_names_and_ranges_raise_their_errors(self) -> None:
        with self.assertRaises(asynctask.InvalidName) as cm:
            self.store.enqueue("bad type!")
        self.assertEqual(cm.exception.code, -10)
        self.assertEqual(cm.exception.name, "AT_ERR_NAME")
        with self.assertRaises(asynctask.InvalidName):
            self.store.enqueue("t", queue="")
        with self.assertRaises(asynctask.OutOfRange):
            self.store.enqueue("t", priority=1001)
        with self.assertRaises(TypeError):
            self.store.enqueue("t", priority="high")  # type: ignore[arg-type]

    def test_payload_over_the_limit_is_too_big(self) -> None:
        self.store.set_option("max_payload", 16)
        with self.assertRaises(asynctask.TooBig) as cm:
            self.store.enqueue("t", b"x" * 17)
        self.assertIn("larger than the store's limit", str(cm.exception))

    def test_duplicate_key_raises_with_the_existing_id(self) -> None:
        first = self.store.enqueue("t", key="order-42")
        with self.assertRaises(asynctask.Duplicate) as cm:
            self.store.enqueue("t", key="order-42")
        self.assertEqual(cm.exception.existing_id, first)
        self.assertEqual(cm.exception.code, -8)
        self.assertEqual(len(list(self.store.list())), 1)

    def test_key_ttl_lets_a_key_be_reused_after_it(self) -> None:
        self.store.enqueue("t", key="short", key_ttl=0.05)
        time.sleep(0.2)
        self.store.enqueue("t", key="short")  # no Duplicate
        self.assertEqual(len(list(self.store.list())), 2)

    def test_batch_enqueues_all_and_reports_duplicates(self) -> None:
        held = self.store.enqueue("t", key="held")
        res = self.store.enqueue_batch([
            "plain",
            ("with.payload", b"p"),
            {"type": "opts", "payload": b"q", "queue": "other", "priority": 3, "delay": 60},
            {"type": "dup", "key": "held"},
        ])
        self.assertEqual([r.duplicate for r in res], [False, False, False, True])
        self.assertEqual(res[3].id, held)
        self.assertEqual(self.store.get(res[1].id).payload, b"p")
        j = self.store.get(res[2].id)
        self.assertEqual((j.queue, j.priority, j.state), ("other", 3, "scheduled"))
        self.assertEqual(self.store.enqueue_batch([]), [])

    def test_batch_is_all_or_nothing(self) -> None:
        self.store.set_option("max_payload", 8)
        with self.assertRaises(asynctask.TooBig):
            self.store.enqueue_batch([("a", b"ok"), ("b", b"far too long a payload")])
        self.assertEqual(list(self.store.list()), [])
        with self.assertRaises(asynctask.InvalidName):
            self.store.enqueue_batch(["ok", "not ok!"])
        with self.assertRaises(ValueError):
            self.store.enqueue_batch([{"payload": b"no type"}])

    # ----------------------------------------------------------------- poll
    def test_poll_claims_due_jobs_by_priority(self) -> None:
        low = self.store.enqueue("t", priority=-1)
        high = self.store.enqueue("t", priority=10)
        jobs = self.store.poll(["default"], max=5, timeout=0)
        self.assertEqual([j.id for j in jobs], [high, low])
        self.assertTrue(all(j.state == "running" and j.attempts == 1 and j.token for j in jobs))
        self.assertIsNotNone(jobs[0].lease_until)
        self.assertEqual(self.store.poll("default", timeout=0), [])

    def test_poll_takes_earlier_queues_first(self) -> None:
        self.store.enqueue("t", queue="b")
        a = self.store.enqueue("t", queue="a")
        self.assertEqual(self.store.poll(["a", "b"], timeout=0)[0].id, a)

    def test_poll_without_due_job_times_out_empty(self) -> None:
        self.store.enqueue("t", delay=3600)
        t0 = time.monotonic()
        self.assertEqual(self.store.poll("default", timeout=0.2), [])
        self.assertGreaterEqual(time.monotonic() - t0, 0.15)

    def test_blocked_poll_wakes_when_a_job_is_enqueued(self) -> None:
        timer = threading.Timer(0.2, lambda: self.store.enqueue("late"))
        timer.start()
        self.addCleanup(timer.join)
        t0 = time.monotonic()
        jobs = self.store.poll("default", timeout=None)
        self.assertEqual(jobs[0].type, "late")
        self.assertLess(time.monotonic() - t0, 5)

    def test_poll_wakes_when_a_delayed_job_becomes_due(self) -> None:
        self.store.enqueue("t", delay=0.3)
        jobs = self.store.poll("default", timeout=5)
        self.assertEqual(len(jobs), 1)

    def test_poll_of_a_paused_queue_claims_nothing(self) -> None:
        self.store.enqueue("t", queue="p")
        self.assertFalse(self.store.is_paused("p"))
        self.store.pause("p")
        self.assertTrue(self.store.is_paused("p"))
        self.assertEqual(self.store.poll("p", timeout=0), [])
        self.store.resume("p")
        self.assertFalse(self.store.is_paused("p"))
        self.assertEqual(len(self.store.poll("p", timeout=1)), 1)

    def test_poll_max_must_be_positive(self) -> None:
        with self.assertRaises(asynctask.InvalidArgument):
            self.store.poll("default", max=0, timeout=0)

    # ------------------------------------------------------- finishing jobs
    def test_ack_stores_the_result(self) -> None:
        jid = self.store.enqueue("t")
        self.store.poll("default", timeout=1)[0].ack(b"done\0!")
        job = self.store.get(jid)
        self.assertEqual((job.state, job.result), ("succeeded", b"done\0!"))
        self.assertIsNotNone(job.finished_at)

    def test_ack_with_a_stale_token_is_refused(self) -> None:
        self.store.enqueue("t", lease=0.05)
        first = self.store.poll("default", timeout=1)[0]
        time.sleep(0.1)
        second = self.store.poll("default", timeout=5)[0]  # the lease expired: claimed again
        self.assertEqual(second.id, first.id)
        self.assertEqual(second.attempts, 2)
        with self.assertRaises(asynctask.Stale):
            first.ack()
        second.ack()

    def test_fail_retries_with_backoff_then_dead_letters(self) -> None:
        jid = self.store.enqueue("t", max_attempts=2, backoff_base=0.05, backoff_cap=0.1)
        self.assertEqual(self.store.poll("default", timeout=1)[0].fail("first"), "scheduled")
        self.assertEqual(self.store.get(jid).last_error, "first")
        job = self.store.poll("default", timeout=5)[0]
        self.assertEqual(job.attempts, 2)
        self.assertEqual(job.fail("second"), "dead")
        dead = self.store.get(jid)
        self.assertEqual((dead.state, dead.last_error), ("dead", "second"))

    def test_permanent_fail_is_dead_at_once(self) -> None:
        jid = self.store.enqueue("t", max_attempts=5)
        self.assertEqual(self.store.poll("default", timeout=1)[0].fail("bad input", permanent=True), "dead")
        self.assertEqual(self.store.get(jid).attempts, 1)

    def test_touch_extends_the_lease(self) -> None:
        self.store.enqueue("t", lease=1)
        job = self.store.poll("default", timeout=1)[0]
        job.touch(timedelta(minutes=10))
        self.assertGreater(job.refresh().lease_until, utcnow() + timedelta(minutes=9))

    def test_release_gives_the_job_back_and_voids_the_token(self) -> None:
        jid = self.store.enqueue("t")
        job = self.store.poll("default", timeout=1)[0]
        job.release()
        self.assertEqual(self.store.get(jid).state, "ready")
        with self.assertRaises(asynctask.Stale):
            job.ack()
        again = self.store.poll("default", timeout=1)[0]
        again.release(delay=60)
        self.assertEqual(self.store.get(jid).state, "scheduled")

    # ----------------------------------------------------------- inspecting
    def test_get_of_an_unknown_job_is_not_found(self) -> None:
        with self.assertRaises(asynctask.NotFound) as cm:
            self.store.get("0" * 26)
        self.assertIsInstance(cm.exception, LookupError)
        self.assertEqual(cm.exception.name, "AT_ERR_NOTFOUND")
        self.assertTrue(str(cm.exception).startswith("no such job"))

    def test_cancel_of_waiting_running_and_finished_jobs(self) -> None:
        ready = self.store.enqueue("t")
        self.assertFalse(self.store.cancel(ready))
        self.assertEqual(self.store.get(ready).state, "cancelled")
        with self.assertRaises(asynctask.Terminal):
            self.store.cancel(ready)
        self.store.enqueue("t")
        running = self.store.poll("default", timeout=1)[0]
        self.assertTrue(self.store.cancel(running.id))
        self.assertTrue(running.refresh().cancel_requested)
        with self.assertRaises(asynctask.Cancelled):
            running.ack()
        self.assertEqual(running.refresh().state, "cancelled")

    def test_list_pages_through_every_job(self) -> None:
        ids = [self.store.enqueue("t", queue="q" if i % 2 else "r") for i in range(7)]
        self.assertEqual([j.id for j in self.store.list(page_size=2)], ids)
        self.assertEqual([j.id for j in self.store.list(queue="q", page_size=3)], ids[1::2])
        self.store.poll("r", timeout=1)[0].ack()
        self.assertEqual([j.id for j in self.store.list(state="succeeded")], [ids[0]])
        self.assertEqual(len(list(self.store.list(state="any"))), 7)
        with self.assertRaises(ValueError):
            list(self.store.list(state="sleeping"))
        with self.assertRaises(asynctask.InvalidArgument):
            list(self.store.list(page_size=0))

    def test_list_is_lazy(self) -> None:
        for _ in range(3):
            self.store.enqueue("t")
        it = self.store.list(page_size=1)
        first = next(it)
        self.assertEqual(first.type, "t")
        it.close()

    def test_requeue_moves_dead_jobs_back(self) -> None:
        a = self.store.enqueue("t", queue="x")
        b = self.store.enqueue("t", queue="y")
        for q in ("x", "y"):
            self.store.poll(q, timeout=1)[0].fail("no", permanent=True)
        with self.assertRaises(asynctask.InvalidState):
            self.store.requeue(self.store.enqueue("t"))
        self.assertEqual(self.store.requeue(a), 1)
        self.assertEqual(self.store.get(a).state, "ready")
        self.assertEqual(self.store.requeue(queue="y"), 1)
        self.assertEqual(self.store.get(b).state, "ready")
        self.assertEqual(self.store.requeue(), 0)

    def test_purge_deletes_old_finished_jobs(self) -> None:
        done = self.store.enqueue("t")
        kept = self.store.enqueue("t", queue="other")
        self.store.poll("default", timeout=1)[0].ack()
        self.assertEqual(self.store.purge(older_than=timedelta(hours=1)), 0)
        time.sleep(0.05)
        self.assertEqual(self.store.purge(older_than=0.01), 1)
        with self.assertRaises(asynctask.NotFound):
            self.store.get(done)
        self.assertEqual(self.store.get(kept).state, "ready")
        self.assertEqual(self.store.purge(), 0)

    def test_stats_count_jobs_per_queue_and_state(self) -> None:
        self.store.enqueue("t", queue="a")
        self.store.enqueue("t", queue="a", delay=60)
        self.store.enqueue("t", queue="b")
        self.store.poll("b", timeout=1)[0].ack()
        stats = self.store.stats()
        self.assertEqual(set(stats), {"a", "b"})
        self.assertEqual(stats["a"]["ready"], 1)
        self.assertEqual(stats["a"]["scheduled"], 1)
        self.assertEqual(stats["b"]["succeeded"], 1)
        self.assertEqual(set(stats["a"]), set(asynctask.STATES.values()))
        self.assertAlmostEqual((self.store.next_due("a") - utcnow()).total_seconds(), 60, delta=5)
        self.assertIsNone(self.store.next_due("b"))

    def test_a_second_handle_sees_the_same_jobs_except_memory(self) -> None:
        other = self.open_store()
        jid = self.store.enqueue("t")
        if self.shared:
            self.assertEqual(other.poll("default", timeout=2)[0].id, jid)
        else:  # every memory: open is a new, separate store
            self.assertEqual(other.poll("default", timeout=0), [])


class ManualClockTest(unittest.TestCase):
    """A manual clock moves due times by hand (memory: and SQLite only)."""

    def test_manual_clock_makes_a_delayed_job_due(self) -> None:
        clock = asynctask.ManualClock(datetime(2030, 1, 1, tzinfo=timezone.utc))
        with Store("memory:", clock=clock) as s:
            self.assertEqual(s.now(), datetime(2030, 1, 1, tzinfo=timezone.utc))
            s.enqueue("t", delay=timedelta(minutes=30))
            self.assertEqual(s.poll("default", timeout=0), [])
            with self.assertRaises(asynctask.Busy):
                clock.close()  # still used by the store
            clock.advance(timedelta(minutes=30))
            self.assertEqual(clock.now(), datetime(2030, 1, 1, 0, 30, tzinfo=timezone.utc))
            self.assertEqual(len(s.poll("default", timeout=0)), 1)
            clock.set(datetime(2031, 1, 1, tzinfo=timezone.utc))
            self.assertEqual(s.now().year, 2031)
        clock.close()
        with self.assertRaises(asynctask.Misuse):
            clock.now()


class OpenErrorsTest(unittest.TestCase):
    """Opening a store: errors carry the library's code, name and detail."""

    def test_malformed_uri(self) -> None:
        with self.assertRaises(asynctask.AsynctaskError) as cm:
            Store("nonsense")
        self.assertIn(cm.exception.name, ("AT_ERR_URI", "AT_ERR_NOBACKEND"))
        self.assertLess(cm.exception.code, 0)

    def test_unknown_scheme_has_no_backend(self) -> None:
        with self.assertRaises(asynctask.NoBackend) as cm:
            Store("ftp://example.org/")
        self.assertEqual(cm.exception.code, -12)

    def test_unreachable_sqlite_path_reports_the_detail(self) -> None:
        with self.assertRaises(asynctask.AsynctaskError) as cm:
            Store("sqlite:/nonexistent-dir/sub/jobs.db")
        self.assertTrue(cm.exception.detail)
        self.assertIn(cm.exception.detail, str(cm.exception))


if __name__ == "__main__":
    unittest.main()
