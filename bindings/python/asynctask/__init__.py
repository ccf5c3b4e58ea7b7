"""asynctask: Python binding of libasynctask, an embeddable job queue.

Built on ctypes over the C library only.  The library is loaded from the
path in the environment variable ``ASYNCTASK_LIB``, else found by
``ctypes.util.find_library("asynctask")``.

    import asynctask

    with asynctask.Store("sqlite:jobs.db") as store:
        store.enqueue("email.send", b'{"to": "a@example.org"}', delay=30)

        worker = store.worker(queues=["default"], threads=4)

        @worker.handler("email.send")
        def send(ctx):
            deliver(ctx.payload)          # raise to retry, Permanent to dead-letter
            return b"sent"                # the job's result

        signal.signal(signal.SIGTERM, lambda *_: worker.stop())
        worker.run()

See docs/python.md for the whole API.
"""

from __future__ import annotations

from ._lib import LIBRARY_PATH, LibraryNotFound
from ._lib import lib as _clib
from .errors import (AsynctaskError, AuthFailed, Busy, Cancelled, ConnectionFailed, Corrupt, Cycle, Duplicate,
                     Exists, ForkError, Full, InternalError, InvalidArgument, InvalidName, InvalidState,
                     InvalidURI, Misuse, NoBackend, NoMemory, NotFound, OutOfRange, Stale, StoreIOError,
                     StoreTimeout, Terminal, TooBig, Unsupported)
from .job import STATES, Job
from .schedule import MISFIRE, Schedule, Scheduler, cron_next
from .store import STORE_OPTIONS, EnqueueResult, ManualClock, Store, WorkflowStatus
from .worker import EVENTS, JobContext, Permanent, Release, Worker
from .workflow import Workflow

#: The version of the loaded C library ("0.1.0").
library_version: str = (_clib.at_version() or b"").decode()

__version__ = "0.1.0"

__all__ = [
    "Store", "ManualClock", "Job", "Worker", "JobContext", "Permanent", "Release", "Workflow",
    "WorkflowStatus", "Schedule", "Scheduler", "EnqueueResult", "cron_next", "STATES", "EVENTS", "MISFIRE",
    "STORE_OPTIONS", "LIBRARY_PATH", "LibraryNotFound", "library_version",
    "AsynctaskError", "InvalidArgument", "NoMemory", "NotFound", "Stale", "Cancelled", "Terminal",
    "InvalidState", "Duplicate", "TooBig", "InvalidName", "InvalidURI", "NoBackend", "Unsupported", "Misuse",
    "ForkError", "StoreIOError", "ConnectionFailed", "StoreTimeout", "Busy", "AuthFailed", "Full", "Corrupt",
    "OutOfRange", "Exists", "InternalError", "Cycle",
]
