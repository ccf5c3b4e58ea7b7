"""Loading of libasynctask and the ctypes prototypes of the C API.

Every function the binding calls is declared here with its exact argument
and result types from include/asynctask.h: handles are ``c_void_p``, times
``c_int64``, lease tokens ``c_uint64``, lengths ``c_size_t``, and the
``at_*_free`` functions are the only way the binding releases C objects.
Nothing else in the package touches ``ctypes.CDLL`` directly.

The library is found through the environment variable ``ASYNCTASK_LIB`` (a
path to ``libasynctask.so``), else ``ctypes.util.find_library``.
``ctypes.CDLL`` releases the GIL during every call, so a blocking ``at_poll``
or ``at_worker_wait`` never stops other Python threads, and the library's
worker threads can take the GIL to run Python handlers meanwhile.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from ctypes import (CFUNCTYPE, POINTER, c_char_p, c_int, c_int32, c_int64, c_size_t, c_uint32,
                    c_uint64, c_void_p)

# Sizes and sentinels of include/asynctask.h.
ID_SIZE = 27  # AT_ID_SIZE: 26 characters and the NUL
CURSOR_SIZE = 64  # AT_CURSOR_SIZE
TIME_NONE = -1  # AT_TIME_NONE
STATE_COUNT = 8  # AT_STATE_COUNT__: entries of at_workflow_status's counts
LIST_LIMIT_MAX = 10000

# at_opts keys (AT_OPT_*).
OPT_QUEUE = 1
OPT_PRIORITY = 2
OPT_RUN_AT = 3
OPT_DELAY_MS = 4
OPT_MAX_ATTEMPTS = 5
OPT_BACKOFF_BASE_MS = 6
OPT_BACKOFF_CAP_MS = 7
OPT_BACKOFF_JITTER = 8
OPT_LEASE_MS = 9
OPT_IDEMPOTENCY_KEY = 10
OPT_IDEMPOTENCY_TTL_MS = 11

# at_job_time selectors (AT_JOB_TIME_*).
JOB_TIME_CREATED = 1
JOB_TIME_RUN_AT = 2
JOB_TIME_STARTED = 3
JOB_TIME_LEASE = 4
JOB_TIME_FINISHED = 5
JOB_TIME_UPDATED = 6

# at_schedule_time selectors (AT_SCHEDULE_TIME_*).
SCHEDULE_TIME_CREATED = 1
SCHEDULE_TIME_UPDATED = 2
SCHEDULE_TIME_LAST_FIRE = 3

FAIL_RETRY = 0
FAIL_PERMANENT = 1

HANDLER_OK = 0
HANDLER_RETRY = 1
HANDLER_PERMANENT = 2
HANDLER_RELEASE = 3

WORKER_THREADS = 1
WORKER_TIMEOUT_MS = 2
WORKER_GRACE_MS = 3
WORKER_WEIGHTED = 4

# int32_t (*at_handler_fn)(at_ctx *ctx, void *ud)
HANDLER_FN = CFUNCTYPE(c_int32, c_void_p, c_void_p)
# void (*at_event_fn)(void *ud, int32_t event, const at_job *job, const char *detail)
EVENT_FN = CFUNCTYPE(None, c_void_p, c_int32, c_void_p, c_char_p)

_P = c_void_p  # every opaque handle: at_store *, at_job *, at_opts *, ...
_PP = POINTER(c_void_p)  # an output handle: at_store **out, ...
_PU64 = POINTER(c_uint64)
_PI32 = POINTER(c_int32)
_PI64 = POINTER(c_int64)
_PSZ = POINTER(c_size_t)

# name: (restype, argtypes)
_PROTOTYPES: dict[str, tuple[object, list[object]]] = {
    "at_version": (c_char_p, []),
    "at_version_number": (c_uint32, []),
    "at_strerror": (c_char_p, [c_int]),
    "at_err_name": (c_char_p, [c_int]),
    "at_state_name": (c_char_p, [c_int32]),
    "at_state_from_name": (c_int32, [c_char_p]),
    # clock
    "at_clock_new_manual": (c_int, [_PP, c_int64]),
    "at_clock_advance": (c_int, [_P, c_int64]),
    "at_clock_set": (c_int, [_P, c_int64]),
    "at_clock_now": (c_int64, [_P]),
    "at_clock_free": (c_int, [_P]),
    # store
    "at_store_open": (c_int, [_PP, c_char_p]),
    "at_store_close": (None, [_P]),
    "at_store_backend": (c_char_p, [_P]),
    "at_store_errmsg": (c_size_t, [_P, c_char_p, c_size_t, _PI32]),
    "at_last_error": (c_char_p, []),
    "at_store_set_option": (c_int, [_P, c_int32, c_int64]),
    "at_store_get_option": (c_int, [_PI64, _P, c_int32]),
    "at_store_set_clock": (c_int, [_P, _P]),
    "at_store_now": (c_int, [_PI64, _P]),
    # options
    "at_opts_new": (c_int, [_PP]),
    "at_opts_free": (None, [_P]),
    "at_opts_set_int": (c_int, [_P, c_int32, c_int64]),
    "at_opts_set_str": (c_int, [_P, c_int32, c_char_p]),
    # enqueue
    "at_enqueue": (c_int, [c_char_p, _P, c_char_p, c_char_p, c_size_t, _P]),
    "at_batch_new": (c_int, [_PP]),
    "at_batch_free": (None, [_P]),
    "at_batch_add": (c_int, [_P, c_char_p, c_char_p, c_size_t, _P]),
    "at_batch_count": (c_size_t, [_P]),
    "at_batch_id": (c_char_p, [_P, c_size_t]),
    "at_batch_status": (c_int, [_P, c_size_t]),
    "at_enqueue_batch": (c_int, [_P, _P]),
    # jobs
    "at_job_free": (None, [_P]),
    "at_job_id": (c_char_p, [_P]),
    "at_job_type": (c_char_p, [_P]),
    "at_job_queue": (c_char_p, [_P]),
    "at_job_payload": (c_void_p, [_P, _PSZ]),
    "at_job_state": (c_int32, [_P]),
    "at_job_priority": (c_int32, [_P]),
    "at_job_attempts": (c_uint32, [_P]),
    "at_job_max_attempts": (c_uint32, [_P]),
    "at_job_token": (c_uint64, [_P]),
    "at_job_time": (c_int64, [_P, c_int32]),
    "at_job_last_error": (c_char_p, [_P]),
    "at_job_result": (c_void_p, [_P, _PSZ]),
    "at_job_idempotency_key": (c_char_p, [_P]),
    "at_job_cancel_requested": (c_int32, [_P]),
    "at_job_workflow_id": (c_char_p, [_P]),
    "at_job_node": (c_char_p, [_P]),
    "at_job_parent_count": (c_size_t, [_P]),
    "at_job_parent_id": (c_char_p, [_P, c_size_t]),
    "at_job_parents_left": (c_uint32, [_P]),
    "at_job_parent_policy": (c_int32, [_P]),
    # job control
    "at_poll": (c_int, [_PP, _PSZ, _P, POINTER(c_char_p), c_size_t, c_size_t, c_int64]),
    "at_ack": (c_int, [_P, c_char_p, c_uint64, c_char_p, c_size_t]),
    "at_fail": (c_int, [_PI32, _P, c_char_p, c_uint64, c_char_p, c_uint32]),
    "at_touch": (c_int, [_P, c_char_p, c_uint64, c_int64]),
    "at_release": (c_int, [_P, c_char_p, c_uint64, c_int64]),
    "at_cancel": (c_int, [_PI32, _P, c_char_p]),
    "at_get": (c_int, [_PP, _P, c_char_p]),
    "at_list": (c_int, [_PP, _PSZ, c_char_p, _P, c_char_p, c_int32, c_char_p, c_size_t]),
    "at_requeue": (c_int, [_PU64, _P, c_char_p, c_char_p]),
    "at_purge": (c_int, [_PU64, _P, c_int64]),
    # stats
    "at_stats_get": (c_int, [_PP, _P]),
    "at_stats_free": (None, [_P]),
    "at_stats_queue_count": (c_size_t, [_P]),
    "at_stats_queue_name": (c_char_p, [_P, c_size_t]),
    "at_stats_count": (c_uint64, [_P, c_size_t, c_int32]),
    "at_stats_next_due": (c_int64, [_P, c_size_t]),
    # queues
    "at_queue_pause": (c_int, [_P, c_char_p]),
    "at_queue_resume": (c_int, [_P, c_char_p]),
    "at_queue_is_paused": (c_int, [_PI32, _P, c_char_p]),
    # cron
    "at_cron_next": (c_int, [_PI64, c_char_p, c_char_p, c_int64]),
    "at_cron_check": (c_int, [_PI32, c_char_p]),
    # workflows
    "at_workflow_new": (c_int, [_PP]),
    "at_workflow_free": (None, [_P]),
    "at_workflow_add": (c_int, [_P, c_char_p, c_char_p, c_char_p, c_size_t, _P]),
    "at_workflow_depend": (c_int, [_P, c_char_p, c_char_p]),
    "at_workflow_depend_on_job": (c_int, [_P, c_char_p, c_char_p]),
    "at_workflow_set_policy": (c_int, [_P, c_char_p, c_int32]),
    "at_workflow_add_completion": (c_int, [_P, c_char_p, c_char_p, c_char_p, c_size_t, _P]),
    "at_workflow_count": (c_size_t, [_P]),
    "at_workflow_submit": (c_int, [c_char_p, _P, _P]),
    "at_workflow_spawn": (c_int, [_P, c_char_p, c_uint64, _P]),
    "at_workflow_job_id": (c_char_p, [_P, c_char_p]),
    "at_workflow_status": (c_int, [_PI32, _PI32, _PU64, _P, c_char_p]),
    "at_workflow_jobs": (c_int, [_PP, _PSZ, c_char_p, _P, c_char_p, c_char_p, c_size_t]),
    "at_workflow_cancel": (c_int, [_PU64, _P, c_char_p]),
    # schedules
    "at_schedule_new": (c_int, [_PP, c_char_p, c_char_p, c_char_p, c_char_p]),
    "at_schedule_free": (None, [_P]),
    "at_schedule_set_payload": (c_int, [_P, c_char_p, c_size_t]),
    "at_schedule_set_opts": (c_int, [_P, _P]),
    "at_schedule_set_misfire": (c_int, [_P, c_int32, c_int64, c_int32]),
    "at_schedule_name": (c_char_p, [_P]),
    "at_schedule_expr": (c_char_p, [_P]),
    "at_schedule_tz": (c_char_p, [_P]),
    "at_schedule_type": (c_char_p, [_P]),
    "at_schedule_payload": (c_void_p, [_P, _PSZ]),
    "at_schedule_queue": (c_char_p, [_P]),
    "at_schedule_misfire": (c_int32, [_P, _PI64, _PI32]),
    "at_schedule_paused": (c_int32, [_P]),
    "at_schedule_time": (c_int64, [_P, c_int32]),
    "at_schedule_last_job_id": (c_char_p, [_P]),
    "at_schedule_next": (c_int, [_PI64, _P, c_int64]),
    "at_schedule_add": (c_int, [_PI32, _P, _P]),
    "at_schedule_remove": (c_int, [_P, c_char_p]),
    "at_schedule_pause": (c_int, [_P, c_char_p]),
    "at_schedule_resume": (c_int, [_P, c_char_p]),
    "at_schedule_get": (c_int, [_PP, _P, c_char_p]),
    "at_schedule_list": (c_int, [POINTER(_PP), _PSZ, _P]),
    "at_schedule_list_free": (None, [_PP, c_size_t]),
    "at_scheduler_start": (c_int, [_PP, _P]),
    "at_scheduler_stop": (None, [_P]),
    "at_scheduler_is_leader": (c_int32, [_P]),
    "at_scheduler_counters": (None, [_P, _PU64, _PU64, _PU64, _PU64]),
    # workers
    "at_worker_new": (c_int, [_PP, _P]),
    "at_worker_handle": (c_int, [_P, c_char_p, HANDLER_FN, c_void_p]),
    "at_worker_add_queue": (c_int, [_P, c_char_p, c_int32, c_int32]),
    "at_worker_set_rate": (c_int, [_P, c_char_p, c_uint32, c_int64]),
    "at_worker_set_int": (c_int, [_P, c_int32, c_int64]),
    "at_worker_on_event": (c_int, [_P, EVENT_FN, c_void_p]),
    "at_worker_start": (c_int, [_P]),
    "at_worker_stop": (None, [_P]),
    "at_worker_wait": (c_int, [_P, c_int64]),
    "at_worker_free": (None, [_P]),
    "at_worker_counters": (None, [_P, _PU64, _PU64, _PU64, _PU64]),
    "at_ctx_job": (c_void_p, [_P]),
    "at_ctx_store": (c_void_p, [_P]),
    "at_ctx_set_result": (c_int, [_P, c_char_p, c_size_t]),
    "at_ctx_set_error": (c_int, [_P, c_char_p]),
    "at_ctx_progress": (c_int, [_P, c_int32, c_char_p]),
    "at_ctx_cancelled": (c_int32, [_P]),
    "at_ctx_deadline": (c_int64, [_P]),
}


class LibraryNotFound(ImportError):
    """libasynctask could not be located or loaded."""


def _locate() -> str:
    path = os.environ.get("ASYNCTASK_LIB")
    if path:
        if not os.path.exists(path):
            raise LibraryNotFound(f"ASYNCTASK_LIB={path!r} does not exist; point it at libasynctask.so "
                                  "(for a build tree: BUILDDIR/.libs/libasynctask.so)")
        return path
    found = ctypes.util.find_library("asynctask")
    if found:
        return found
    raise LibraryNotFound("libasynctask was not found: install it (make install, then ldconfig) "
                          "or set ASYNCTASK_LIB to the path of libasynctask.so")


def _load() -> ctypes.CDLL:
    path = _locate()
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        raise LibraryNotFound(f"cannot load libasynctask from {path!r}: {e}") from e
    for name, (restype, argtypes) in _PROTOTYPES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError as e:
            raise LibraryNotFound(f"{path!r} has no function {name}: not a compatible libasynctask") from e
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


lib = _load()
LIBRARY_PATH: str = lib._name


def text(b: bytes | None) -> str | None:
    """A C string returned by the library, as str (None stays None)."""
    return None if b is None else b.decode("utf-8", "surrogateescape")


def cstr(s: str | None) -> bytes | None:
    """A str argument as the UTF-8 bytes of a C string (None stays NULL)."""
    if s is None:
        return None
    if not isinstance(s, str):
        raise TypeError(f"expected str, got {type(s).__name__}")
    if "\0" in s:
        raise ValueError("string contains a NUL character")
    return s.encode("utf-8", "surrogateescape")


def blob(data: bytes | bytearray | memoryview | str | None) -> bytes:
    """Payload or result bytes (a str is encoded as UTF-8)."""
    if data is None:
        return b""
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, str):
        return data.encode("utf-8")
    raise TypeError(f"expected bytes, got {type(data).__name__}")


def read_bytes(fn, handle: int) -> bytes | None:
    """Bytes from an accessor ``const void *fn(handle, size_t *len_out)``."""
    n = c_size_t(0)
    p = fn(handle, ctypes.byref(n))
    if not p:
        return None
    return ctypes.string_at(p, n.value) if n.value else b""
