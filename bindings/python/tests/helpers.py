"""Shared fixtures of the binding's tests: one store per test, on every backend.

A test class written against ``self.store`` (and ``self.open_store()`` for a
second handle on the same store) derives from :class:`BackendCase`;
:func:`for_each_backend` makes a concrete subclass of it per backend:
memory:, a SQLite file in a temporary directory, and the Redis server named
by ASYNCTASK_TEST_REDIS ("redis://127.0.0.1:PORT"), each test with a key
prefix of its own.  Without ASYNCTASK_TEST_REDIS the Redis classes are skipped
(run_tests.sh always sets it).
"""

from __future__ import annotations

import itertools
import os
import shutil
import sys
import tempfile
import time
import unittest
from typing import Callable

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import asynctask  # noqa: E402

REDIS = os.environ.get("ASYNCTASK_TEST_REDIS", "")
_prefix_seq = itertools.count(1)


class BackendCase(unittest.TestCase):
    """A test case with a fresh store in ``self.store``."""

    backend = ""  # set by for_each_backend

    def setUp(self) -> None:
        if self.backend == "redis" and not REDIS:
            self.skipTest("ASYNCTASK_TEST_REDIS is not set")
        self.tmp = tempfile.mkdtemp(prefix="at-py-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        if self.backend == "memory":
            self.uri = "memory:"
        elif self.backend == "sqlite":
            self.uri = "sqlite:" + os.path.join(self.tmp, "jobs.db")
        else:
            self.uri = f"{REDIS}?prefix=py{os.getpid()}-{next(_prefix_seq)}"
        self.store = self.open_store()

    def open_store(self, **kw: object) -> asynctask.Store:
        """A new handle on this test's store (memory: a separate store), closed at cleanup."""
        s = asynctask.Store(self.uri, **kw)  # type: ignore[arg-type]
        self.addCleanup(s.close)
        return s

    @property
    def shared(self) -> bool:
        """Whether a second handle (or process) sees the same jobs."""
        return self.backend != "memory"

    def wait_for(self, cond: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> object:
        """Poll ``cond`` until it is true; fail after ``timeout`` seconds."""
        end = time.monotonic() + timeout
        while True:
            v = cond()
            if v:
                return v
            if time.monotonic() > end:
                self.fail(f"timed out waiting for {what}")
            time.sleep(0.01)


def for_each_backend(cls: type[BackendCase]) -> type[BackendCase]:
    """Class decorator: define ``<Name>Memory``, ``<Name>Sqlite`` and
    ``<Name>Redis`` in the class's module, and hide the base from discovery."""
    module = sys.modules[cls.__module__]
    for backend in ("memory", "sqlite", "redis"):
        name = f"{cls.__name__}{backend.capitalize()}"
        sub = type(name, (cls, unittest.TestCase), {"backend": backend, "__module__": cls.__module__,
                                                     "__qualname__": name})
        setattr(module, name, sub)
    # unittest's loader collects the TestCase classes bound to module names:
    # the backend-less class itself must not run, so its name gets a stand-in.
    return type(cls.__name__, (), {"__doc__": cls.__doc__})  # type: ignore[return-value]
