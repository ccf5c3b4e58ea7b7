"""Job snapshots: what ``at_poll``, ``at_get`` and ``at_list`` return.

A :class:`Job` copies every field of the C ``at_job`` when it is made, and
the C object is freed at once (``at_job_free``), so Python never holds C
memory for a job.  A job claimed by :meth:`Store.poll` keeps the claim's
lease token and can be finished with :meth:`Job.ack`, :meth:`Job.fail`,
:meth:`Job.touch` or :meth:`Job.release`.
"""

from __future__ import annotations

import ctypes
from datetime import datetime
from typing import TYPE_CHECKING

from . import _lib
from ._lib import lib
from ._util import Duration, to_datetime, to_ms

if TYPE_CHECKING:
    from .store import Store
    from .workflow import Workflow

#: Names of the job states (AT_STATE_*), by value.
STATES: dict[int, str] = {v: _lib.text(lib.at_state_name(v)) or "" for v in range(1, _lib.STATE_COUNT)}
#: Parent-failure policies (AT_PARENT_FAIL_*), by name.
PARENT_POLICIES: dict[str, int] = {"cancel": 0, "run": 1, "dead": 2}


def state_value(state: str | None) -> int:
    """The AT_STATE_* value of a state name ("ready", ...); None or "any" is 0."""
    if state is None or state == "any":
        return 0
    v = lib.at_state_from_name(_lib.cstr(state))
    if v < 0:
        raise ValueError(f"unknown job state {state!r}; one of {', '.join(STATES.values())} or 'any'")
    return v


class Job:
    """A snapshot of one job.

    Times are timezone-aware UTC datetimes, or None when not applicable.  The
    snapshot does not follow later changes of the store: :meth:`refresh`
    reads the job again.
    """

    __slots__ = ("_store", "id", "type", "queue", "payload", "state", "priority", "attempts",
                 "max_attempts", "token", "created_at", "run_at", "started_at", "lease_until",
                 "finished_at", "updated_at", "last_error", "result", "key", "cancel_requested",
                 "workflow_id", "node", "parents", "parents_left", "parent_policy")

    id: str
    type: str
    queue: str
    payload: bytes
    state: str
    priority: int
    attempts: int
    max_attempts: int
    token: int
    created_at: datetime | None
    run_at: datetime | None
    started_at: datetime | None
    lease_until: datetime | None
    finished_at: datetime | None
    updated_at: datetime | None
    last_error: str | None
    result: bytes | None
    key: str | None
    cancel_requested: bool
    workflow_id: str | None
    node: str | None
    parents: tuple[str, ...]
    parents_left: int
    parent_policy: str

    def __init__(self, store: Store, handle: int) -> None:
        """Copy the C job ``handle`` (which the caller still frees)."""
        self._store = store
        t = _lib.text
        self.id = t(lib.at_job_id(handle)) or ""
        self.type = t(lib.at_job_type(handle)) or ""
        self.queue = t(lib.at_job_queue(handle)) or ""
        self.payload = _lib.read_bytes(lib.at_job_payload, handle) or b""
        self.state = STATES.get(lib.at_job_state(handle), "unknown")
        self.priority = lib.at_job_priority(handle)
        self.attempts = lib.at_job_attempts(handle)
        self.max_attempts = lib.at_job_max_attempts(handle)
        self.token = lib.at_job_token(handle)
        tm = lib.at_job_time
        self.created_at = to_datetime(tm(handle, _lib.JOB_TIME_CREATED))
        self.run_at = to_datetime(tm(handle, _lib.JOB_TIME_RUN_AT))
        self.started_at = to_datetime(tm(handle, _lib.JOB_TIME_STARTED))
        self.lease_until = to_datetime(tm(handle, _lib.JOB_TIME_LEASE))
        self.finished_at = to_datetime(tm(handle, _lib.JOB_TIME_FINISHED))
        self.updated_at = to_datetime(tm(handle, _lib.JOB_TIME_UPDATED))
        self.last_error = t(lib.at_job_last_error(handle))
        self.result = _lib.read_bytes(lib.at_job_result, handle)
        self.key = t(lib.at_job_idempotency_key(handle))
        self.cancel_requested = bool(lib.at_job_cancel_requested(handle))
        self.workflow_id = t(lib.at_job_workflow_id(handle))
        self.node = t(lib.at_job_node(handle))
        self.parents = tuple(t(lib.at_job_parent_id(handle, i)) or ""
                             for i in range(lib.at_job_parent_count(handle)))
        self.parents_left = lib.at_job_parents_left(handle)
        policy = lib.at_job_parent_policy(handle)
        self.parent_policy = next((k for k, v in PARENT_POLICIES.items() if v == policy), str(policy))

    @classmethod
    def _take(cls, store: Store, handle: int) -> Job:
        """Copy and free a C job owned by the caller."""
        try:
            return cls(store, handle)
        finally:
            lib.at_job_free(handle)

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.type} queue={self.queue} state={self.state} attempts={self.attempts}>"

    @property
    def store(self) -> Store:
        """The store the job was read from."""
        return self._store

    def ack(self, result: bytes | str = b"") -> None:
        """Finish the claimed job successfully, storing ``result``.

        Raises Stale if the claim is no longer current, Cancelled if the job
        was cancelled meanwhile (it is CANCELLED now).
        """
        self._store.ack(self.id, self.token, result)

    def fail(self, error: str | None, permanent: bool = False) -> str:
        """Fail the claimed job: retried after its backoff while attempts
        remain (unless ``permanent``), else DEAD.  Returns the new state name."""
        return self._store.fail(self.id, self.token, error, permanent=permanent)

    def touch(self, extend: Duration = 0) -> None:
        """Renew the lease to now + ``extend`` (0: the job's lease timeout)."""
        self._store.touch(self.id, self.token, extend)

    def release(self, delay: Duration = 0) -> None:
        """Give the claimed job back without using an attempt (READY, or
        SCHEDULED after ``delay``)."""
        self._store.release(self.id, self.token, delay)

    def spawn(self, workflow: Workflow) -> dict[str, str]:
        """Add the nodes of ``workflow`` to this running job's workflow, each
        also waiting for this job; returns node -> job id."""
        return self._store.spawn(self.id, self.token, workflow)

    def refresh(self) -> Job:
        """A new snapshot of this job from the store."""
        return self._store.get(self.id)


def take_array(store: Store, arr: ctypes.Array, n: int) -> list[Job]:
    """Copy and free the first ``n`` C jobs of ``arr``; all are freed even if
    a copy fails."""
    jobs: list[Job] = []
    try:
        for i in range(n):
            jobs.append(Job(store, arr[i]))
    finally:
        for i in range(n):
            lib.at_job_free(arr[i])
    return jobs
