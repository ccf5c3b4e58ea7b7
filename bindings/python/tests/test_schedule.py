"""Cron schedules and the scheduler, every backend."""

from __future__ import annotations

import unittest
from datetime import datetime, timezone

from helpers import BackendCase, for_each_backend

import asynctask


@for_each_backend
class ScheduleTest(BackendCase):
    def test_add_stores_a_schedule_and_replaces_it(self) -> None:
        self.assertTrue(self.store.add_schedule("nightly", "0 3 * * *", "report.build", b"p",
                                                tz="Europe/Berlin", queue="reports", misfire="all",
                                                grace=30, cap=5))
        s = self.store.schedule("nightly")
        self.assertEqual((s.name, s.expr, s.tz, s.type, s.payload, s.queue),
                         ("nightly", "0 3 * * *", "Europe/Berlin", "report.build", b"p", "reports"))
        self.assertEqual((s.misfire, s.grace_ms, s.cap, s.paused), ("all", 30000, 5, False))
        self.assertIsNotNone(s.created_at)
        self.assertIsNone(s.last_fire)
        self.assertIsNone(s.last_job_id)
        self.assertGreater(s.next_fire, self.store.now())
        self.assertFalse(self.store.add_schedule("nightly", "0 4 * * *", "report.build"))
        s2 = self.store.schedule("nightly")
        self.assertEqual((s2.expr, s2.tz, s2.queue, s2.misfire), ("0 4 * * *", "UTC", "default", "once"))

    def test_schedules_lists_them_by_name(self) -> None:
        self.store.add_schedule("b", "@hourly", "t")
        self.store.add_schedule("a", "*/5 * * * *", "t")
        self.assertEqual([s.name for s in self.store.schedules()], ["a", "b"])

    def test_pause_resume_and_remove(self) -> None:
        self.store.add_schedule("s", "@daily", "t")
        self.store.pause_schedule("s")
        self.assertTrue(self.store.schedule("s").paused)
        self.store.resume_schedule("s")
        self.assertFalse(self.store.schedule("s").paused)
        self.store.remove_schedule("s")
        self.assertEqual(self.store.schedules(), [])
        with self.assertRaises(asynctask.NotFound):
            self.store.remove_schedule("s")
        with self.assertRaises(asynctask.NotFound):
            self.store.schedule("s")

    def test_bad_definitions_are_refused(self) -> None:
        with self.assertRaises(asynctask.InvalidArgument) as cm:
            self.store.add_schedule("s", "61 * * * *", "t")
        self.assertTrue(cm.exception.detail)
        with self.assertRaises(asynctask.NotFound):
            self.store.add_schedule("s", "@daily", "t", tz="Mars/Olympus_Mons")
        with self.assertRaises(asynctask.InvalidName):
            self.store.add_schedule("bad name", "@daily", "t")
        with self.assertRaises(ValueError):
            self.store.add_schedule("s", "@daily", "t", misfire="sometimes")
        self.assertEqual(self.store.schedules(), [])

    def test_scheduler_fires_due_ticks_as_jobs(self) -> None:
        self.store.add_schedule("fast", "@every 200ms", "tick", b"payload", queue="cron")
        with self.store.scheduler() as sched:
            jobs = self.store.poll("cron", timeout=10)
            self.assertEqual(len(jobs), 1)
            self.assertTrue(sched.is_leader)
            # The counter moves after the store call returns, so the job can
            # be polled a moment before it counts.
            self.wait_for(lambda: sched.counters()["fired"] >= 1, what="the fired counter")
            self.assertEqual(sched.counters()["elected"], 1)
        job = jobs[0]
        self.assertEqual((job.type, job.payload), ("tick", b"payload"))
        self.assertTrue(job.key.startswith("at:cron:fast:"))
        self.assertEqual(self.store.schedule("fast").last_job_id is not None, True)
        with self.assertRaises(asynctask.Misuse):
            sched.is_leader  # stopped

    def test_paused_schedule_does_not_fire(self) -> None:
        self.store.add_schedule("fast", "@every 100ms", "tick", queue="cron")
        self.store.pause_schedule("fast")
        with self.store.scheduler():
            self.assertEqual(self.store.poll("cron", timeout=0.5), [])


class CronTest(unittest.TestCase):
    def test_cron_next_in_a_zone(self) -> None:
        after = datetime(2026, 3, 28, 12, 0, tzinfo=timezone.utc)
        self.assertEqual(asynctask.cron_next("0 3 * * *", after, "Europe/Berlin"),
                         datetime(2026, 3, 29, 1, 0, tzinfo=timezone.utc))  # CEST starts that night
        self.assertEqual(asynctask.cron_next("@hourly", after), datetime(2026, 3, 28, 13, 0, tzinfo=timezone.utc))
        with self.assertRaises(asynctask.InvalidArgument):
            asynctask.cron_next("nonsense", after)


if __name__ == "__main__":
    unittest.main()
