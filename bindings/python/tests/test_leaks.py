"""The binding frees every C object it gets: live allocations of the library
(counted by an allocator installed with at_set_allocator in a child process,
see leak_workload.py) do not grow from one round of every call to the next."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import unittest

from helpers import REDIS

HERE = os.path.dirname(os.path.abspath(__file__))


class LeakTest(unittest.TestCase):
    def rounds(self, uri: str, **env: str) -> list[int]:
        out = subprocess.run([sys.executable, os.path.join(HERE, "leak_workload.py"), uri, "4"],
                             capture_output=True, text=True, timeout=60,
                             env=dict(os.environ, AT_REDIS_WARN="0", **env))
        self.assertEqual(out.returncode, 0, out.stderr)
        counts = [int(x) for x in out.stdout.split()]
        self.assertEqual(len(counts), 4, out.stdout)
        return counts

    def assert_no_growth(self, counts: list[int]) -> None:
        # Round 1 may fill caches that live as long as the process (time
        # zones, registries); every later round must end where it started.
        self.assertEqual(counts[1:], [counts[1]] * 3, f"live allocations per round: {counts}")

    def test_the_count_sees_a_forgotten_free(self) -> None:
        counts = self.rounds("memory:", LEAK_WORKLOAD_SELFTEST="1")  # at_job_free made a no-op
        self.assertLess(counts[1], counts[2])
        self.assertLess(counts[2], counts[3])

    def test_memory_store_calls_leak_nothing(self) -> None:
        self.assert_no_growth(self.rounds("memory:"))

    def test_sqlite_store_calls_leak_nothing(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            self.assert_no_growth(self.rounds("sqlite:" + os.path.join(d, "ROUND.db")))

    @unittest.skipUnless(REDIS, "ASYNCTASK_TEST_REDIS is not set")
    def test_redis_store_calls_leak_nothing(self) -> None:
        self.assert_no_growth(self.rounds(f"{REDIS}?prefix=pyleak{os.getpid()}-ROUND"))


if __name__ == "__main__":
    unittest.main()
