"""Exceptions raised for the library's negative ``AT_ERR_*`` codes.

Every failing call raises a subclass of :class:`AsynctaskError` chosen by the
code.  The exception carries the code (``.code``, negative), its symbolic name
(``.name``, "AT_ERR_STALE") and a message made of the library's sentence for
the code (``at_strerror``) followed by the detail the store recorded for the
calling thread (``at_store_errmsg``), or, for calls without a store, by
``at_last_error``.
"""

from __future__ import annotations

import ctypes

from . import _lib
from ._lib import lib


class AsynctaskError(Exception):
    """A libasynctask call failed.

    Attributes:
        code: the negative AT_ERR_* code.
        name: its symbolic name, such as ``"AT_ERR_NOTFOUND"``.
        detail: the store's (or the thread's) detail message, possibly "".
        native: the backend's native error code (SQLite result code, errno), or 0.
    """

    code: int = 0

    def __init__(self, code: int, detail: str = "", native: int = 0) -> None:
        self.code = code
        self.name = _lib.text(lib.at_err_name(code)) or "AT_ERR_UNKNOWN"
        self.detail = detail
        self.native = native
        sentence = _lib.text(lib.at_strerror(code)) or "unknown error"
        super().__init__(f"{sentence}: {detail}" if detail and detail != sentence else sentence)


class InvalidArgument(AsynctaskError, ValueError):
    """AT_ERR_INVAL: an argument is invalid."""


class NoMemory(AsynctaskError, MemoryError):
    """AT_ERR_NOMEM: the library ran out of memory."""


class NotFound(AsynctaskError, LookupError):
    """AT_ERR_NOTFOUND: no such job, workflow, schedule or time zone."""


class Stale(AsynctaskError):
    """AT_ERR_STALE: the lease token is not the job's current lease."""


class Cancelled(AsynctaskError):
    """AT_ERR_CANCELLED: the job was cancelled (it is CANCELLED now)."""


class Terminal(AsynctaskError):
    """AT_ERR_TERMINAL: the job already succeeded, died or was cancelled."""


class InvalidState(AsynctaskError):
    """AT_ERR_STATE: the operation is not allowed in the job's current state."""


class Duplicate(AsynctaskError):
    """AT_ERR_DUPLICATE: the idempotency key is held by another job.

    Attributes:
        existing_id: the id of the job that holds the key.
    """

    def __init__(self, code: int, detail: str = "", native: int = 0, existing_id: str | None = None) -> None:
        super().__init__(code, detail, native)
        self.existing_id = existing_id


class TooBig(AsynctaskError, ValueError):
    """AT_ERR_TOOBIG: a payload or result is larger than the store's limit."""


class InvalidName(AsynctaskError, ValueError):
    """AT_ERR_NAME: an invalid queue, type, node or key name."""


class InvalidURI(AsynctaskError, ValueError):
    """AT_ERR_URI: a malformed store URI."""


class NoBackend(AsynctaskError):
    """AT_ERR_NOBACKEND: no backend for the URI's scheme."""


class Unsupported(AsynctaskError):
    """AT_ERR_UNSUPPORTED: the backend does not support the operation."""


class Misuse(AsynctaskError):
    """AT_ERR_MISUSE: a handle was used closed, or calls came in the wrong order."""


class ForkError(AsynctaskError):
    """AT_ERR_FORK: a store handle was used in a child process after fork()."""


class StoreIOError(AsynctaskError):
    """AT_ERR_IO: the store could not be read or written."""


class ConnectionFailed(AsynctaskError):
    """AT_ERR_CONN: the connection to the store failed or was lost."""


class StoreTimeout(AsynctaskError):
    """AT_ERR_TIMEOUT: the store did not answer in time."""


class Busy(AsynctaskError):
    """AT_ERR_BUSY: the store is locked or busy."""


class AuthFailed(AsynctaskError):
    """AT_ERR_AUTH: authentication with the store failed."""


class Full(AsynctaskError):
    """AT_ERR_FULL: the store is full."""


class Corrupt(AsynctaskError):
    """AT_ERR_CORRUPT: the store's data is corrupt or not a store."""


class OutOfRange(AsynctaskError, ValueError):
    """AT_ERR_RANGE: a value is out of range."""


class Exists(AsynctaskError):
    """AT_ERR_EXISTS: the thing already exists (a workflow node name, ...)."""


class InternalError(AsynctaskError):
    """AT_ERR_INTERNAL: a bug in libasynctask."""


class Cycle(AsynctaskError, ValueError):
    """AT_ERR_CYCLE: workflow dependencies form a cycle."""


#: AT_ERR_* code -> exception class.
ERRORS: dict[int, type[AsynctaskError]] = {
    -1: InvalidArgument, -2: NoMemory, -3: NotFound, -4: Stale, -5: Cancelled, -6: Terminal,
    -7: InvalidState, -8: Duplicate, -9: TooBig, -10: InvalidName, -11: InvalidURI, -12: NoBackend,
    -13: Unsupported, -14: Misuse, -15: ForkError, -16: StoreIOError, -17: ConnectionFailed,
    -18: StoreTimeout, -19: Busy, -20: AuthFailed, -21: Full, -22: Corrupt, -23: OutOfRange,
    -24: Exists, -25: InternalError, -26: Cycle,
}


def store_detail(store: int | None) -> tuple[str, int]:
    """The calling thread's detail message and native code for ``store``."""
    if not store:
        return _lib.text(lib.at_last_error()) or "", 0
    native = ctypes.c_int32(0)
    n = lib.at_store_errmsg(store, None, 0, ctypes.byref(native))
    buf = ctypes.create_string_buffer(n + 1)
    lib.at_store_errmsg(store, buf, n + 1, None)
    return _lib.text(buf.value) or "", native.value


def error(code: int, store: int | None = None, **extra: object) -> AsynctaskError:
    """The exception for ``code``, with the detail of the failed call.

    Must be called on the thread of the failed call, before any other call
    on ``store``: the detail message is per thread and per store.
    """
    detail, native = store_detail(store)
    cls = ERRORS.get(code, AsynctaskError)
    return cls(code, detail, native, **extra)  # type: ignore[arg-type]


def check(rc: int, store: int | None = None) -> int:
    """Raise the exception for a negative ``rc``; return it otherwise."""
    if rc < 0:
        raise error(rc, store)
    return rc
