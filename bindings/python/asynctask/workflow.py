"""Workflows: jobs with dependencies, submitted atomically.

A :class:`Workflow` owns one C ``at_workflow`` (freed by :meth:`close`, by
leaving its ``with`` block, or when garbage-collected).  Nodes are added with
:meth:`Workflow.add` and :meth:`Workflow.add_completion`; :meth:`submit`
creates every job at once under a new workflow id, and a running job adds
nodes to its own workflow with ``job.spawn(wf)`` or ``ctx.spawn(wf)``.
"""

from __future__ import annotations

from ctypes import byref, c_void_p, create_string_buffer
from datetime import datetime
from typing import TYPE_CHECKING, Iterable

from . import _lib
from ._lib import lib
from ._util import Duration, Owned
from .errors import InvalidArgument, Misuse, error
from .job import PARENT_POLICIES

if TYPE_CHECKING:
    from .store import Store


class Workflow(Owned):
    """A set of nodes (named jobs) and the dependencies between them."""

    def __init__(self, store: Store | None = None) -> None:
        """An empty workflow, to be submitted to ``store`` (or spawned from a
        running job, which needs no store here)."""
        h = c_void_p()
        rc = lib.at_workflow_new(byref(h))
        if rc < 0:
            raise error(rc, None)
        self._h: int | None = h.value
        self._store = store
        self._nodes: list[str] = []
        self._deferred: list[tuple[str, str]] = []  # (child, parent) edges to nodes added later

    def _handle(self) -> int:
        if not self._h:
            raise Misuse(-14, "the workflow is closed")
        return self._h

    def _raise(self, rc: int) -> None:
        if rc < 0:
            raise error(rc, None)

    def add(self, node: str, type: str, payload: bytes | str = b"", *, after: Iterable[str] = (),
            after_jobs: Iterable[str] = (), on_parent_failure: str = "cancel", queue: str | None = None,
            priority: int | None = None, delay: Duration | None = None, run_at: datetime | None = None,
            max_attempts: int | None = None, backoff_base: Duration | None = None,
            backoff_cap: Duration | None = None, lease: Duration | None = None,
            key: str | None = None) -> Workflow:
        """Add node ``node``, a job of ``type``, that runs once every node in
        ``after`` (added earlier or later) and every existing job in
        ``after_jobs`` succeeded.  ``on_parent_failure``: "cancel" (the
        default; and its descendants), "run" (anyway) or "dead" (dead-letter,
        requeue runs it).  The other options are those of
        :meth:`Store.enqueue`.  Returns the workflow, for chaining."""
        from .store import _opts

        if on_parent_failure not in PARENT_POLICIES:
            raise ValueError(f"on_parent_failure must be one of {', '.join(PARENT_POLICIES)}")
        after = [after] if isinstance(after, str) else list(after)
        after_jobs = [after_jobs] if isinstance(after_jobs, str) else list(after_jobs)
        h = self._handle()
        data = _lib.blob(payload)
        n = _lib.cstr(node)
        with _opts(queue=queue, priority=priority, delay=delay, run_at=run_at, max_attempts=max_attempts,
                   backoff_base=backoff_base, backoff_cap=backoff_cap, lease=lease, key=key) as o:
            self._raise(lib.at_workflow_add(h, n, _lib.cstr(type), data, len(data), o))
        self._nodes.append(node)
        self._raise(lib.at_workflow_set_policy(h, n, PARENT_POLICIES[on_parent_failure]))
        self._pending_edges(node, after)
        for job_id in after_jobs:
            self._raise(lib.at_workflow_depend_on_job(h, n, _lib.cstr(job_id)))
        return self

    def _pending_edges(self, node: str, after: list[str]) -> None:
        # Parents may be added after their children: edges to nodes not yet
        # added wait until submit.
        for parent in after:
            if parent in self._nodes:
                self.depend(node, parent)
            else:
                self._deferred.append((node, parent))

    def depend(self, child: str, parent: str) -> Workflow:
        """Make node ``child`` wait for node ``parent``."""
        self._raise(lib.at_workflow_depend(self._handle(), _lib.cstr(child), _lib.cstr(parent)))
        return self

    def add_completion(self, node: str, type: str, payload: bytes | str = b"", *, queue: str | None = None,
                       priority: int | None = None, max_attempts: int | None = None,
                       lease: Duration | None = None) -> Workflow:
        """Add a completion node: it waits for every node added before it and
        runs once all of them finished, whatever their outcome."""
        from .store import _opts

        data = _lib.blob(payload)
        with _opts(queue=queue, priority=priority, max_attempts=max_attempts, lease=lease) as o:
            self._raise(lib.at_workflow_add_completion(self._handle(), _lib.cstr(node), _lib.cstr(type),
                                                       data, len(data), o))
        self._nodes.append(node)
        return self

    def __len__(self) -> int:
        return lib.at_workflow_count(self._handle())

    @property
    def nodes(self) -> list[str]:
        """The node names, in the order they were added."""
        return list(self._nodes)

    def _resolve(self) -> None:
        while self._deferred:
            child, parent = self._deferred[0]
            self.depend(child, parent)
            self._deferred.pop(0)

    def submit(self, store: Store | None = None) -> str:
        """Create every job of the workflow atomically and return the new
        workflow id (Cycle for a dependency cycle).  May be called again:
        each submit makes a new workflow."""
        st = store or self._store
        if st is None:
            raise InvalidArgument(-1, "no store to submit the workflow to")
        self._resolve()
        out = create_string_buffer(_lib.ID_SIZE)
        st._check(lib.at_workflow_submit(out, st._handle(), self._handle()))
        return _lib.text(out.value) or ""

    def job_id(self, node: str) -> str | None:
        """After a submit or spawn: the job id of ``node``, else None."""
        return _lib.text(lib.at_workflow_job_id(self._handle(), _lib.cstr(node)))

    def job_ids(self) -> dict[str, str]:
        """After a submit or spawn: node -> job id."""
        return {n: self.job_id(n) or "" for n in self._nodes}

    def close(self) -> None:
        """Free the C workflow (idempotent)."""
        if self._h:
            h, self._h = self._h, None
            lib.at_workflow_free(h)

