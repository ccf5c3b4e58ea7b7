"""Interoperation with C: jobs enqueued by Python run by the C tool atctl's
worker, and jobs enqueued by atctl run by a Python worker, sharing a SQLite
file (and the Redis server when ASYNCTASK_TEST_REDIS is set).

atctl is found in the build tree of the library under test: ASYNCTASK_LIB
is BUILDDIR/.libs/libasynctask.so, the tool BUILDDIR/tools/atctl.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import unittest

from helpers import BackendCase

import asynctask

BUILDDIR = os.path.dirname(os.path.dirname(os.path.abspath(asynctask.LIBRARY_PATH)))
ATCTL = os.path.join(BUILDDIR, "tools", "atctl")


class InteropBase(BackendCase):
    def setUp(self) -> None:
        if not os.access(ATCTL, os.X_OK):
            self.skipTest(f"{ATCTL} is not built (configure --with-atctl)")
        super().setUp()
        self.env = dict(os.environ, AT_REDIS_WARN="0")

    def atctl(self, *args: str) -> str:
        out = subprocess.run([ATCTL, "--store", self.uri, *args], env=self.env, capture_output=True,
                             text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout

    def test_c_worker_runs_python_jobs(self) -> None:
        ids = [self.store.enqueue("interop.cat", f"payload {i}\0bytes".encode(), queue="interop")
               for i in range(5)]
        fail_id = self.store.enqueue("interop.fail", b"", queue="interop", max_attempts=1)
        proc = subprocess.Popen([ATCTL, "--store", self.uri, "worker", "--quiet", "--queue", "interop",
                                 "--exec", "interop.cat=cat", "--exec", "interop.fail=echo nope >&2; exit 3"],
                                env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            self.wait_for(lambda: all(self.store.get(i).state == "succeeded" for i in ids)
                          and self.store.get(fail_id).state == "dead", 20, "atctl to run the jobs")
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 0, err)
        for i, jid in enumerate(ids):
            self.assertEqual(self.store.get(jid).result, f"payload {i}\0bytes".encode())
        self.assertIn("nope", self.store.get(fail_id).last_error)

    def test_python_worker_runs_c_jobs(self) -> None:
        jid = self.atctl("enqueue", "interop.upper", "--payload", "from atctl", "--queue", "interop").strip()
        self.assertEqual(len(jid), 26)
        w = self.store.worker(queues=["interop"])
        w.add_handler("interop.upper", lambda ctx: ctx.payload.upper())
        t = threading.Thread(target=w.run)
        t.start()
        try:
            self.wait_for(lambda: self.store.get(jid).state == "succeeded", 20, "the Python worker")
        finally:
            w.stop()
            t.join(15)
        self.assertEqual(self.store.get(jid).result, b"FROM ATCTL")
        self.assertIn("succeeded", self.atctl("show", jid))


class InteropSqlite(InteropBase):
    backend = "sqlite"


class InteropRedis(InteropBase):
    backend = "redis"


del InteropBase  # a base without a backend: not a test of its own

if __name__ == "__main__":
    unittest.main()
