/*
 * asynctask.h - public API of libasynctask, an embeddable job queue.
 *
 * Everything a C program or an FFI binding needs: open a store from a URI,
 * enqueue jobs (now, at a time, after a delay), claim them with leases, and
 * finish them (ack, fail with retry/backoff, dead-letter, cancel).  The
 * lifecycle every backend implements is docs/SEMANTICS.md; man pages in
 * man/ describe each function.
 *
 * ABI rules (see ADR/0002-public-abi.md): opaque handles only, no struct is
 * passed by value, integers are fixed-width, times are int64_t milliseconds
 * since the Unix epoch, options grow through setter functions keyed by
 * AT_OPT_* numbers, and every function returns 0 or a negative AT_ERR_* code
 * unless its comment says otherwise.  Output parameters come first.
 *
 * Ownership: every input is copied before the call returns.  Every object
 * the library hands out is freed by the caller with the named at_*_free()
 * function; strings returned by accessors belong to the object they came
 * from and live as long as it does.
 *
 * Thread safety (docs/THREADS.md): an at_store may be used from any number
 * of threads at once.  at_opts, at_batch, at_job and at_stats objects are
 * plain values: use one from one thread at a time (reading a job from several
 * threads is fine).
 */
#ifndef ASYNCTASK_H
#define ASYNCTASK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(AT_BUILDING_LIBRARY) && defined(__GNUC__)
#define AT_EXTERN __attribute__((visibility("default")))
#else
#define AT_EXTERN
#endif

/* ---------------------------------------------------------------- version */

#define AT_VERSION_MAJOR 0
#define AT_VERSION_MINOR 1
#define AT_VERSION_PATCH 0
/* MAJOR * 10000 + MINOR * 100 + PATCH, comparable with at_version_number() */
#define AT_VERSION_NUMBER 100

/* The library's version string ("0.1.0"); static storage, never freed. */
AT_EXTERN const char *at_version(void);
/* The library's version as MAJOR * 10000 + MINOR * 100 + PATCH. */
AT_EXTERN uint32_t at_version_number(void);

/* ----------------------------------------------------------------- errors */

/*
 * X(NAME, value, message).  Values are never reused: a removed error keeps
 * its number retired.  New errors are appended with the next number.
 */
#define AT_ERR_MAP(X)                                                              \
    X(INVAL, -1, "invalid argument")                                               \
    X(NOMEM, -2, "out of memory")                                                  \
    X(NOTFOUND, -3, "no such job")                                                 \
    X(STALE, -4, "lease token is not the job's current lease")                     \
    X(CANCELLED, -5, "job was cancelled")                                          \
    X(TERMINAL, -6, "job is already in a terminal state")                          \
    X(STATE, -7, "operation not allowed in the job's current state")               \
    X(DUPLICATE, -8, "idempotency key already held by another job")                \
    X(TOOBIG, -9, "payload or result larger than the store's limit")               \
    X(NAME, -10, "invalid queue, type or key name")                                \
    X(URI, -11, "malformed store URI")                                             \
    X(NOBACKEND, -12, "no backend for this URI scheme is compiled in or registered") \
    X(UNSUPPORTED, -13, "operation not supported by this backend")                 \
    X(MISUSE, -14, "handle misused (closed, wrong type, or wrong order of calls)") \
    X(FORK, -15, "store handle used in a child process after fork()")              \
    X(IO, -16, "store I/O error")                                                  \
    X(CONN, -17, "connection to the store failed or was lost")                     \
    X(TIMEOUT, -18, "store did not answer in time")                                \
    X(BUSY, -19, "store is locked or busy")                                        \
    X(AUTH, -20, "authentication with the store failed")                           \
    X(FULL, -21, "store is full")                                                  \
    X(CORRUPT, -22, "store data is corrupt or not a store")                        \
    X(RANGE, -23, "value out of range")                                            \
    X(EXISTS, -24, "already exists")                                               \
    X(INTERNAL, -25, "internal error (a bug in libasynctask)")                    \
    X(CYCLE, -26, "workflow dependencies form a cycle")

#define AT__ERR_ENUM(name, value, msg) AT_ERR_##name = (value),
enum at_error { AT_OK = 0, AT_ERR_MAP(AT__ERR_ENUM) };
#undef AT__ERR_ENUM

/* A static English sentence for an AT_ERR_* code ("unknown error" otherwise). */
AT_EXTERN const char *at_strerror(int code);
/* The symbolic name ("AT_ERR_STALE") for a code, or "AT_ERR_UNKNOWN". */
AT_EXTERN const char *at_err_name(int code);

/* ------------------------------------------------------------- job states */

/* WAITING is for jobs whose parents have not all succeeded (workflows). */
#define AT_STATE_MAP(X)                                                        \
    X(WAITING, 1, "waiting")                                                   \
    X(SCHEDULED, 2, "scheduled")                                               \
    X(READY, 3, "ready")                                                       \
    X(RUNNING, 4, "running")                                                   \
    X(SUCCEEDED, 5, "succeeded")                                               \
    X(DEAD, 6, "dead")                                                         \
    X(CANCELLED, 7, "cancelled")

#define AT__STATE_ENUM(name, value, text) AT_STATE_##name = (value),
enum at_state { AT_STATE_ANY = 0, AT_STATE_MAP(AT__STATE_ENUM) AT_STATE_COUNT__ = 8 };
#undef AT__STATE_ENUM

/* "ready", "dead", ...; NULL for a value that is not a state. */
AT_EXTERN const char *at_state_name(int32_t state);
/* The state whose name is `name`, or AT_ERR_INVAL. */
AT_EXTERN int32_t at_state_from_name(const char *name);

/* --------------------------------------------------------------- limits */

/* A job id: 26 characters of Crockford base32 (a 128-bit, time-sortable id:
 * 48 bits of milliseconds, then 80 bits that make it unique) plus NUL. */
#define AT_ID_LEN 26
#define AT_ID_SIZE 27
/* Queue names, job types and idempotency keys: 1..AT_NAME_MAX bytes of
 * [A-Za-z0-9._:-] (keys also allow '/', '@', '+', '=' and '#'). */
#define AT_NAME_MAX 128
#define AT_KEY_MAX 255
/* Length of an at_list() cursor string, NUL included. */
#define AT_CURSOR_SIZE 64
/* "No time": a time field that is not set. */
#define AT_TIME_NONE INT64_C(-1)

/* Maximal priority magnitude: priorities are -1000..1000, higher first. */
#define AT_PRIORITY_MAX 1000

/* ----------------------------------------------------------------- clock */

/*
 * A clock judges when jobs are due.  By default a store uses the host's
 * real-time clock; a manual clock lets a host application's tests move time
 * by hand (fast-forward a 30 minute delay in a microsecond).  Only backends
 * judged by the host clock accept one (memory, SQLite); Redis is judged by
 * the server's TIME and refuses with AT_ERR_UNSUPPORTED.
 */
typedef struct at_clock at_clock;

/* A manual clock that reads `start_ms` until moved.  Free with at_clock_free. */
AT_EXTERN int at_clock_new_manual(at_clock **out, int64_t start_ms);
/* Move a manual clock forward by `delta_ms` (>= 0) and wake every poller of
 * every store using it.  AT_ERR_INVAL on a negative delta. */
AT_EXTERN int at_clock_advance(at_clock *clock, int64_t delta_ms);
/* Set the wall time of a manual clock, forward or backward, as a wall-clock
 * jump would: jobs never run before their run_at on the new reading.  Wakes
 * the stores' pollers like at_clock_advance.  Clock functions are
 * thread-safe. */
AT_EXTERN int at_clock_set(at_clock *clock, int64_t now_ms);
/* The clock's current wall time in ms since the epoch (real or manual). */
AT_EXTERN int64_t at_clock_now(const at_clock *clock);
/* Free a manual clock.  AT_ERR_BUSY while a store still uses it (close the
 * stores first); NULL is accepted. */
AT_EXTERN int at_clock_free(at_clock *clock);

/* ------------------------------------------------------------------ store */

typedef struct at_store at_store;

/*
 * Open a store.  URIs:
 *   memory:                          process-local, lost at close; every
 *                                    open makes a new, separate store
 *   sqlite:PATH[?sync=full|normal]   durable file (see at_store_open(3))
 *   redis://[user:password@]host:port[/db][?prefix=P]
 * On success *out is a new handle the caller closes with at_store_close().
 * On failure *out is NULL and the return value says why; at_store_open()
 * keeps a per-thread detail message readable with at_last_error().
 */
AT_EXTERN int at_store_open(at_store **out, const char *uri);
/* Close a store and free it.  Blocked pollers must have returned first.
 * NULL is accepted. */
AT_EXTERN void at_store_close(at_store *store);

/* The URI scheme the store was opened with ("memory", "sqlite", ...). */
AT_EXTERN const char *at_store_backend(const at_store *store);

/*
 * Copy the detail message of the calling thread's last failed call on this
 * store (or "" if none) into buf (NUL-terminated, truncated to len; buf may
 * be NULL with len 0 to ask for the length).  Returns the full message
 * length without the NUL.  Also gives the backend's native error code
 * (SQLite result code, errno, ...) through *native_out when not NULL.
 */
AT_EXTERN size_t at_store_errmsg(const at_store *store, char *buf, size_t len, int32_t *native_out);
/* The calling thread's detail message of the last failure of a call that
 * has no store yet (at_store_open) or a NULL store; static thread storage. */
AT_EXTERN const char *at_last_error(void);

/* Store options, set with at_store_set_option(), read with _get_option(). */
#define AT_OPT_STORE_MAX_PAYLOAD 100        /* bytes, default 1048576 (1 MiB) */
#define AT_OPT_STORE_RETENTION_MS 101       /* terminal jobs kept, default 7 days */
#define AT_OPT_STORE_DEFAULT_LEASE_MS 102   /* default 30000 */
#define AT_OPT_STORE_DEFAULT_MAX_ATTEMPTS 103 /* default 25 */
#define AT_OPT_STORE_DEFAULT_BACKOFF_BASE_MS 104 /* default 1000 */
#define AT_OPT_STORE_DEFAULT_BACKOFF_CAP_MS 105  /* default 3600000 */
#define AT_OPT_STORE_DEFAULT_BACKOFF_JITTER 106  /* permille 0..1000, default 200 */
#define AT_OPT_STORE_IDEMPOTENCY_TTL_MS 107 /* default 86400000 (24 h) */
#define AT_OPT_STORE_MAX_RESULT 108         /* bytes, default 1048576 */
#define AT_OPT_STORE_WATCH_INTERVAL_MS 109  /* 1..1000, default 20: how often a blocked
                                               poller checks for other processes' changes */
#define AT_OPT_STORE_SCHEDULER_LEASE_MS 110 /* 500..600000, default 5000: scheduler
                                               leadership lease, renewed every third */
#define AT_OPT_STORE_SCHEDULER_REFRESH_MS 111 /* 10..60000, default 1000: how often the
                                               leader rereads the schedules */

AT_EXTERN int at_store_set_option(at_store *store, int32_t option, int64_t value);
AT_EXTERN int at_store_get_option(int64_t *value_out, const at_store *store, int32_t option);

/* Make the store judge time by `clock` (see at_clock_new_manual).  Must be
 * called before the store's first job operation (AT_ERR_MISUSE after);
 * the clock must outlive the store. */
AT_EXTERN int at_store_set_clock(at_store *store, at_clock *clock);
/* The store's current time in ms since the epoch (its own clock). */
AT_EXTERN int at_store_now(int64_t *now_out, at_store *store);

/* A backend-specific operation (see the backend's documentation), passed
 * through to the backend.  AT_ERR_UNSUPPORTED for an op it does not know. */
AT_EXTERN int at_store_control(at_store *store, int32_t op, void *arg);

/* -------------------------------------------------------- enqueue options */

/*
 * Per-job options.  A NULL at_opts means all defaults.  One at_opts may be
 * reused for many enqueues; it is copied by each call.
 */
typedef struct at_opts at_opts;

#define AT_OPT_QUEUE 1              /* str, default "default" */
#define AT_OPT_PRIORITY 2           /* int -1000..1000, default 0, higher first */
#define AT_OPT_RUN_AT 3             /* int ms since epoch; exclusive with DELAY */
#define AT_OPT_DELAY_MS 4           /* int >= 0, measured by the store's clock */
#define AT_OPT_MAX_ATTEMPTS 5       /* int 1..1000000 */
#define AT_OPT_BACKOFF_BASE_MS 6    /* int 0..(1 year) */
#define AT_OPT_BACKOFF_CAP_MS 7     /* int >= base, <= 1 year */
#define AT_OPT_BACKOFF_JITTER 8     /* int permille 0..1000 */
#define AT_OPT_LEASE_MS 9           /* int 1..(1 day): visibility timeout */
#define AT_OPT_IDEMPOTENCY_KEY 10   /* str, default none */
#define AT_OPT_IDEMPOTENCY_TTL_MS 11 /* int > 0, default the store's */
#define AT_OPT_TRACEPARENT 12       /* str, W3C trace context "00-<32 hex>-<16 hex>-<2 hex>",
                                       stored with the job for its handler (at_job_traceparent) */

AT_EXTERN int at_opts_new(at_opts **out);
/* NULL is accepted by every at_*_free function. */
AT_EXTERN void at_opts_free(at_opts *opts);
/* Back to all defaults. */
AT_EXTERN void at_opts_reset(at_opts *opts);
/* AT_ERR_INVAL for an unknown option or one of the other type, AT_ERR_RANGE
 * for a value out of range, AT_ERR_NAME for a bad name; opts unchanged then. */
AT_EXTERN int at_opts_set_int(at_opts *opts, int32_t option, int64_t value);
/* value NULL clears the option (back to its default). */
AT_EXTERN int at_opts_set_str(at_opts *opts, int32_t option, const char *value);

/* ---------------------------------------------------------------- enqueue */

/*
 * Enqueue one job of `type` with `payload_len` bytes of `payload` (may be NULL
 * when payload_len is 0).  The new job's id is written to id_out
 * (AT_ID_SIZE bytes; may be NULL).
 * With an idempotency key already held by a job (in any state, for the key's
 * lifetime AT_OPT_IDEMPOTENCY_TTL_MS), nothing is created, id_out receives
 * that job's id and AT_ERR_DUPLICATE is returned.
 */
AT_EXTERN int at_enqueue(char *id_out, at_store *store, const char *type, const void *payload,
                         size_t payload_len, const at_opts *opts);

/* A batch of jobs enqueued all-or-nothing by at_enqueue_batch(). */
typedef struct at_batch at_batch;

AT_EXTERN int at_batch_new(at_batch **out);
AT_EXTERN void at_batch_free(at_batch *batch);
/* Empty the batch for reuse. */
AT_EXTERN void at_batch_clear(at_batch *batch);
/* Append a job (arguments as at_enqueue; copied).  The type and payload
 * pointer are checked here (AT_ERR_NAME, AT_ERR_INVAL) and the options were
 * checked by their setters; what depends on the store (its payload limit,
 * a backoff cap below the store's default base) is checked by
 * at_enqueue_batch, which then creates none of the batch's jobs. */
AT_EXTERN int at_batch_add(at_batch *batch, const char *type, const void *payload, size_t payload_len,
                           const at_opts *opts);
/* Number of jobs in the batch. */
AT_EXTERN size_t at_batch_count(const at_batch *batch);
/* After a successful at_enqueue_batch: the id of job i (the existing job's id
 * when its key was a duplicate); NULL before, or for i out of range. */
AT_EXTERN const char *at_batch_id(const at_batch *batch, size_t i);
/* After a successful at_enqueue_batch: 0 if job i was created, AT_ERR_DUPLICATE
 * if its idempotency key resolved to an existing job. */
AT_EXTERN int at_batch_status(const at_batch *batch, size_t i);

/* Enqueue every job of the batch in one atomic step: on failure none exists.
 * Duplicate idempotency keys do not fail the batch (see at_batch_status). */
AT_EXTERN int at_enqueue_batch(at_store *store, at_batch *batch);

/* ------------------------------------------------------------------- jobs */

/* A snapshot of one job, returned by at_poll, at_get and at_list. */
typedef struct at_job at_job;

AT_EXTERN void at_job_free(at_job *job);
AT_EXTERN const char *at_job_id(const at_job *job);
AT_EXTERN const char *at_job_type(const at_job *job);
AT_EXTERN const char *at_job_queue(const at_job *job);
/* The payload bytes; *len_out (may be NULL) receives the length.  Never NULL
 * for a valid job (points at an empty buffer when the length is 0). */
AT_EXTERN const void *at_job_payload(const at_job *job, size_t *len_out);
AT_EXTERN int32_t at_job_state(const at_job *job);
AT_EXTERN int32_t at_job_priority(const at_job *job);
/* Claims so far, including the current one. */
AT_EXTERN uint32_t at_job_attempts(const at_job *job);
AT_EXTERN uint32_t at_job_max_attempts(const at_job *job);
/* The fencing token of the job's current or last claim (0 if never claimed).
 * Whoever holds it may ack, fail or touch the job, so snapshots from at_get
 * and at_list of a RUNNING job carry it too: operator tools can finish a
 * job on a crashed worker's behalf. */
AT_EXTERN uint64_t at_job_token(const at_job *job);
/* Times in ms since the epoch, AT_TIME_NONE when not applicable. */
#define AT_JOB_TIME_CREATED 1  /* enqueued */
#define AT_JOB_TIME_RUN_AT 2   /* due (latest schedule, after retries) */
#define AT_JOB_TIME_STARTED 3  /* last claim */
#define AT_JOB_TIME_LEASE 4    /* lease deadline while RUNNING */
#define AT_JOB_TIME_FINISHED 5 /* entered its terminal state */
#define AT_JOB_TIME_UPDATED 6  /* last state change */
AT_EXTERN int64_t at_job_time(const at_job *job, int32_t which);
/* The last error given to at_fail (or by lease expiry), or NULL. */
AT_EXTERN const char *at_job_last_error(const at_job *job);
/* Result bytes given to at_ack, or NULL (and *len_out 0) if none. */
AT_EXTERN const void *at_job_result(const at_job *job, size_t *len_out);
/* The idempotency key, or NULL. */
AT_EXTERN const char *at_job_idempotency_key(const at_job *job);
/* 1 when cancellation was requested while the job was RUNNING. */
AT_EXTERN int32_t at_job_cancel_requested(const at_job *job);
/* The W3C traceparent given at enqueue (AT_OPT_TRACEPARENT), or NULL: a
 * handler starts its span as a child of the producer's. */
AT_EXTERN const char *at_job_traceparent(const at_job *job);
/* The job's workflow id and node name, or NULL. */
AT_EXTERN const char *at_job_workflow_id(const at_job *job);
AT_EXTERN const char *at_job_node(const at_job *job);
/* Its parents (the jobs it waits or waited for): how many, and the id of
 * parent i (NULL out of range); their results are at_get + at_job_result. */
AT_EXTERN size_t at_job_parent_count(const at_job *job);
AT_EXTERN const char *at_job_parent_id(const at_job *job, size_t i);
/* Parents not yet finished (WAITING jobs), and the AT_PARENT_FAIL_* policy. */
AT_EXTERN uint32_t at_job_parents_left(const at_job *job);
AT_EXTERN int32_t at_job_parent_policy(const at_job *job);

/* ------------------------------------------------------------ job control */

/*
 * Claim up to `max` due jobs from the `nqueues` queues named in `queues`
 * (strict order: earlier queues first), blocking up to `timeout_ms`
 * (0: do not block, -1: forever; measured in real time, also on a manual
 * clock) until at least one is due.  Wakes at the millisecond a job becomes
 * due, and at once when one is enqueued, retried or requeued through the same
 * store handle; changes made by other processes are noticed at once (Redis)
 * or within AT_OPT_STORE_WATCH_INTERVAL_MS (SQLite).  No timer ticks while
 * nothing is due.  On return *n_out jobs were written to jobs_out (each
 * freed by the caller with at_job_free); 0 jobs after the timeout is a
 * success.  The snapshots carry the claim's token (at_job_token).
 * jobs_out is the caller's array with room for `max` pointers.
 */
AT_EXTERN int at_poll(at_job **jobs_out, size_t *n_out, at_store *store, const char *const *queues,
                      size_t nqueues, size_t max, int64_t timeout_ms);

/* Make every at_poll blocked on this store handle return now with 0 jobs
 * (those not yet blocked are not affected): for bindings whose threads must
 * not sleep in C past a shutdown, and before at_store_close.  Thread-safe. */
AT_EXTERN int at_store_interrupt(at_store *store);

/* Finish a claimed job successfully, storing optional result bytes.
 * AT_ERR_STALE for a token that is not the current lease, AT_ERR_CANCELLED
 * when cancellation was requested (the job becomes CANCELLED). */
AT_EXTERN int at_ack(at_store *store, const char *id, uint64_t token, const void *result,
                     size_t result_len);

/* Acknowledge n claimed jobs (ids[i] under tokens[i]) in one store
 * operation: one transaction (SQLite), one script (Redis).  results_out[i]
 * (n entries) receives what at_ack would have returned for job i (0,
 * AT_ERR_STALE, AT_ERR_CANCELLED, AT_ERR_NOTFOUND); those outcomes do not
 * make the call fail.  Returns 0, or a negative code when the store could
 * not be updated (then no job changed) or an argument is bad: n outside
 * 1..1000 or a malformed id (AT_ERR_INVAL, nothing changed).  No result
 * bytes: use at_ack for those. */
AT_EXTERN int at_ack_many(int32_t *results_out, at_store *store, size_t n, const char *const *ids,
                          const uint64_t *tokens);

/* Flags for at_fail(). */
#define AT_FAIL_RETRY 0        /* retry with backoff while attempts remain */
#define AT_FAIL_PERMANENT 1    /* skip the remaining attempts: DEAD now */

/* Fail a claimed job with an error text (may be NULL).  With attempts left it
 * is SCHEDULED again at now + backoff(attempt), else it becomes DEAD.
 * *state_out (may be NULL) receives the job's new state. */
AT_EXTERN int at_fail(int32_t *state_out, at_store *store, const char *id, uint64_t token,
                      const char *error, uint32_t flags);

/* Extend the lease of a claimed job to now + extend_ms (0: the job's lease
 * timeout).  AT_ERR_CANCELLED when cancellation was requested: the job is
 * CANCELLED now and the holder should stop. */
AT_EXTERN int at_touch(at_store *store, const char *id, uint64_t token, int64_t extend_ms);

/* Cancel a job.  WAITING, SCHEDULED and READY jobs become CANCELLED at once;
 * a RUNNING job is marked and *pending_out (may be NULL) is set to 1.
 * AT_ERR_TERMINAL for a job already SUCCEEDED, DEAD or CANCELLED. */
AT_EXTERN int at_cancel(int32_t *pending_out, at_store *store, const char *id);

/* A snapshot of one job.  AT_ERR_NOTFOUND if there is none (or it was purged). */
AT_EXTERN int at_get(at_job **out, at_store *store, const char *id);

/*
 * List jobs of one queue (NULL: all queues) in one state (AT_STATE_ANY: all),
 * oldest id first, `limit` (1..10000) at a time.  Pass cursor NULL or "" for the
 * first page, then the cursor_out of the previous page; cursor_out
 * (AT_CURSOR_SIZE bytes) receives "" after the last page.
 */
AT_EXTERN int at_list(at_job **jobs_out, size_t *n_out, char *cursor_out, at_store *store, const char *queue,
                      int32_t state, const char *cursor, size_t limit);

/* Move DEAD jobs back to READY with a fresh attempt budget: the job `id`, or
 * (id NULL) every dead job of `queue` (NULL: every queue).  *n_out (may be
 * NULL) receives how many moved.  AT_ERR_STATE if job `id` is not DEAD. */
AT_EXTERN int at_requeue(uint64_t *n_out, at_store *store, const char *queue, const char *id);

/* Delete terminal jobs that finished more than `older_than_ms` ago (-1: the
 * store's retention).  *n_out (may be NULL) receives how many. */
AT_EXTERN int at_purge(uint64_t *n_out, at_store *store, int64_t older_than_ms);

/* ------------------------------------------------------------------ stats */

/* Counts per state per queue, kept as jobs move: O(queues), never O(jobs). */
typedef struct at_stats at_stats;

AT_EXTERN int at_stats_get(at_stats **out, at_store *store);
AT_EXTERN void at_stats_free(at_stats *stats);
/* Number of queues that hold or held jobs. */
AT_EXTERN size_t at_stats_queue_count(const at_stats *stats);
/* Name of queue i (sorted by name), NULL out of range. */
AT_EXTERN const char *at_stats_queue_name(const at_stats *stats, size_t i);
/* Jobs of queue i in `state`; AT_STATE_ANY gives the total.  0 out of range. */
AT_EXTERN uint64_t at_stats_count(const at_stats *stats, size_t i, int32_t state);
/* Earliest run_at of a SCHEDULED job of queue i, or AT_TIME_NONE. */
AT_EXTERN int64_t at_stats_next_due(const at_stats *stats, size_t i);

/* ------------------------------------------------------------------ cron */

/*
 * The first fire time of the cron expression `expr` strictly after
 * `after_ms` (ms since the epoch), with `expr` read in the IANA time zone
 * `tz` ("Europe/Berlin"; NULL or "UTC": UTC) from the system tz database
 * ($TZDIR or /usr/share/zoneinfo), written to *next_out (AT_TIME_NONE on
 * failure).  5 fields (minute hour day-of-month month day-of-week) or 6 with
 * leading seconds; lists, ranges, steps, JAN..DEC, SUN..SAT, @yearly,
 * @annually, @monthly, @weekly, @daily, @midnight, @hourly and
 * "@every <duration>" (90s, 1h30m, 500ms: the multiples of the duration since
 * the epoch).  DST: a wall time skipped by a forward change fires once at the
 * end of the gap; a repeated wall time fires once, at its first occurrence.
 * AT_ERR_INVAL for a bad expression or zone name (at_last_error() names the
 * field and byte position), AT_ERR_NOTFOUND for an unknown zone, AT_ERR_RANGE
 * when it never fires before the year 10000; AT_ERR_CORRUPT, AT_ERR_IO,
 * AT_ERR_NOMEM.  Thread-safe; never reads or sets TZ.  See at_cron_next(3).
 */
AT_EXTERN int at_cron_next(int64_t *next_out, const char *expr, const char *tz, int64_t after_ms);
/* Validate a cron expression only: 0, or AT_ERR_INVAL with the 0-based byte
 * offset of the first error in *pos_out (may be NULL; -1 on success). */
AT_EXTERN int at_cron_check(int32_t *pos_out, const char *expr);

/* ------------------------------------------------------------- workflows */

/*
 * A workflow: jobs (nodes, each named within the workflow) and dependencies
 * between them, submitted atomically under one workflow id.  A job with
 * parents is WAITING until every parent SUCCEEDED, then READY (or SCHEDULED
 * until its run_at), atomically with the last parent's ack.  When a parent
 * ends DEAD or CANCELLED the child applies its policy (AT_PARENT_FAIL_*),
 * and so on down the graph, atomically.  A running job can add nodes to its
 * own workflow (at_workflow_spawn).  See at_workflow_new(3), ADR/0014.
 */
typedef struct at_workflow at_workflow;

/* What a job does when a parent ends DEAD or CANCELLED. */
#define AT_PARENT_FAIL_CANCEL 0 /* become CANCELLED, and so its descendants (default) */
#define AT_PARENT_FAIL_RUN 1    /* run anyway: the parent counts as done */
#define AT_PARENT_FAIL_DEAD 2   /* become DEAD (dead-letter: at_requeue runs it) */

/* Limits of one workflow submission or spawn. */
#define AT_WORKFLOW_MAX_NODES 100000

AT_EXTERN int at_workflow_new(at_workflow **out);
AT_EXTERN void at_workflow_free(at_workflow *wf);
/* Add node `node` (queue-name charset, unique in the workflow: AT_ERR_EXISTS)
 * whose job is `type` with the payload (copied) and options (copied; an
 * idempotency key is allowed, RUN_AT and DELAY_MS too). */
AT_EXTERN int at_workflow_add(at_workflow *wf, const char *node, const char *type, const void *payload,
                              size_t payload_len, const at_opts *opts);
/* `child` waits for `parent` (both nodes of wf: AT_ERR_NOTFOUND otherwise;
 * the same node twice: AT_ERR_INVAL; a repeated edge is kept once).  Cycles
 * are found at submit. */
AT_EXTERN int at_workflow_depend(at_workflow *wf, const char *child, const char *parent);
/* `child` waits for the existing job `job_id` (of any workflow or none). */
AT_EXTERN int at_workflow_depend_on_job(at_workflow *wf, const char *child, const char *job_id);
/* The policy of `node` when a parent ends DEAD or CANCELLED. */
AT_EXTERN int at_workflow_set_policy(at_workflow *wf, const char *node, int32_t on_parent_failure);
/* A Sidekiq-style batch callback / Celery chord: add node `node` that waits
 * for every node added before it with AT_PARENT_FAIL_RUN, so it runs once
 * all of them finished, whatever their outcome (at_workflow_status gives it
 * the counts). */
AT_EXTERN int at_workflow_add_completion(at_workflow *wf, const char *node, const char *type,
                                         const void *payload, size_t payload_len, const at_opts *opts);
/* Number of nodes. */
AT_EXTERN size_t at_workflow_count(const at_workflow *wf);

/* Create every job of wf atomically (all or nothing) under a new workflow id
 * written to wf_id_out (AT_ID_SIZE bytes).  AT_ERR_CYCLE when dependencies
 * form a cycle (at_store_errmsg names a node on it), AT_ERR_NOTFOUND for an
 * existing-job parent that does not exist, AT_ERR_INVAL for an empty
 * workflow or more than AT_WORKFLOW_MAX_NODES nodes.  Afterwards
 * at_workflow_job_id gives each node's job id; wf may be submitted again (a
 * new workflow with new ids). */
AT_EXTERN int at_workflow_submit(char *wf_id_out, at_store *store, at_workflow *wf);
/* From a running job (`job_id` claimed under `token`): add the nodes of wf to
 * the job's workflow (its own id if it has none), each also waiting for the
 * job itself, so they run only once it SUCCEEDED.  Atomic with a check that
 * the claim is still current (AT_ERR_STALE otherwise: nothing is added).
 * Nodes get the idempotency key "at:spawn:JOB_ID:NODE" unless they have
 * one, so a retry of the job that spawns the same nodes again gets the same
 * jobs, not copies.  at_workflow_job_id gives the ids. */
AT_EXTERN int at_workflow_spawn(at_store *store, const char *job_id, uint64_t token, at_workflow *wf);
/* After a submit or spawn: the job id of `node`, or NULL. */
AT_EXTERN const char *at_workflow_job_id(const at_workflow *wf, const char *node);

/* A workflow's progress: *done_out 1 when none of its jobs is WAITING,
 * SCHEDULED, READY or RUNNING; *failed_out 1 when any is DEAD or CANCELLED;
 * counts_out (may be NULL, else AT_STATE_COUNT__ entries indexed by
 * AT_STATE_*) the jobs per state.  AT_ERR_NOTFOUND for an unknown id. */
AT_EXTERN int at_workflow_status(int32_t *done_out, int32_t *failed_out, uint64_t *counts_out, at_store *store,
                                 const char *wf_id);
/* The workflow's jobs in id order, paged as at_list. */
AT_EXTERN int at_workflow_jobs(at_job **jobs_out, size_t *n_out, char *cursor_out, at_store *store,
                               const char *wf_id, const char *cursor, size_t limit);
/* Cancel every unfinished job of the workflow (RUNNING ones are marked, as
 * at_cancel does).  *n_out (may be NULL): how many of its jobs changed
 * (marked or cancelled, also those cancelled by propagation). */
AT_EXTERN int at_workflow_cancel(uint64_t *n_out, at_store *store, const char *wf_id);

/* ------------------------------------------------------------- schedules */

/*
 * A schedule: a cron expression in a time zone and the template of the job
 * each tick enqueues.  Schedules live in the store, so every process sharing
 * it sees the same ones and they survive restarts; one leader per store
 * (at_scheduler_start) fires them, and each tick's job carries the
 * idempotency key "at:cron:NAME:FIRE_MS", so even racing schedulers make one
 * job per tick (see at_schedule_add(3), ADR/0012, ADR/0013).
 */
typedef struct at_schedule at_schedule;

/* Misfire policies: what the leader does with ticks it reaches later than
 * the schedule's grace (after downtime, or a store nobody scheduled for).
 * Ticks within the grace always fire, each with its own job. */
#define AT_MISFIRE_SKIP 0 /* drop them */
#define AT_MISFIRE_ONCE 1 /* one job, for the latest missed tick (default) */
#define AT_MISFIRE_ALL 2  /* one job per missed tick, the latest `cap` of them */

/* A new schedule definition `name` (queue-name charset) firing `expr` (as
 * at_cron_next) in zone `tz` (NULL: UTC) that enqueues jobs of `type`, with
 * an empty payload, default options and AT_MISFIRE_ONCE, grace 10 s, cap
 * 100.  Nothing is stored until at_schedule_add.  AT_ERR_NAME for a bad name
 * or type, AT_ERR_INVAL for a bad expression (at_last_error() names the
 * field and position), AT_ERR_NOTFOUND for an unknown zone. */
AT_EXTERN int at_schedule_new(at_schedule **out, const char *name, const char *expr, const char *tz,
                              const char *type);
AT_EXTERN void at_schedule_free(at_schedule *sched);
/* The payload of every tick's job (copied; payload may be NULL when len is 0). */
AT_EXTERN int at_schedule_set_payload(at_schedule *sched, const void *payload, size_t payload_len);
/* The options of every tick's job (copied): queue, priority, attempts,
 * backoff, lease.  AT_ERR_INVAL if opts sets RUN_AT, DELAY_MS or an
 * idempotency key, which the scheduler sets per tick. */
AT_EXTERN int at_schedule_set_opts(at_schedule *sched, const at_opts *opts);
/* Misfire policy (AT_MISFIRE_*), grace in ms (0..1 day) and cap (1..10000,
 * used by AT_MISFIRE_ALL).  AT_ERR_INVAL / AT_ERR_RANGE otherwise. */
AT_EXTERN int at_schedule_set_misfire(at_schedule *sched, int32_t policy, int64_t grace_ms, int32_t cap);

/* Read a definition or a stored schedule (strings owned by `sched`). */
AT_EXTERN const char *at_schedule_name(const at_schedule *sched);
AT_EXTERN const char *at_schedule_expr(const at_schedule *sched);
/* The zone name ("UTC" when none was given). */
AT_EXTERN const char *at_schedule_tz(const at_schedule *sched);
AT_EXTERN const char *at_schedule_type(const at_schedule *sched);
AT_EXTERN const void *at_schedule_payload(const at_schedule *sched, size_t *len_out);
/* The queue of the tick's jobs ("default" unless set). */
AT_EXTERN const char *at_schedule_queue(const at_schedule *sched);
AT_EXTERN int32_t at_schedule_misfire(const at_schedule *sched, int64_t *grace_ms_out, int32_t *cap_out);
/* 1 if paused (stored schedules only; definitions read 0). */
AT_EXTERN int32_t at_schedule_paused(const at_schedule *sched);
#define AT_SCHEDULE_TIME_CREATED 1   /* first stored */
#define AT_SCHEDULE_TIME_UPDATED 2   /* definition last changed */
#define AT_SCHEDULE_TIME_LAST_FIRE 3 /* tick time of the last firing */
/* A stored schedule's time (ms since the epoch) or AT_TIME_NONE. */
AT_EXTERN int64_t at_schedule_time(const at_schedule *sched, int32_t which);
/* The id of the job made by the last firing, or NULL. */
AT_EXTERN const char *at_schedule_last_job_id(const at_schedule *sched);
/* The first tick strictly after after_ms (as at_cron_next). */
AT_EXTERN int at_schedule_next(int64_t *next_out, const at_schedule *sched, int64_t after_ms);

/* Store `sched` under its name: a new schedule, or atomically replacing
 * the definition of an existing one while keeping its paused flag and its
 * firing history (so applications may declare their schedules at every
 * start).  *created_out (may be NULL): 1 new, 0 replaced. */
AT_EXTERN int at_schedule_add(int32_t *created_out, at_store *store, const at_schedule *sched);
/* Delete a schedule (jobs it made stay).  AT_ERR_NOTFOUND if none. */
AT_EXTERN int at_schedule_remove(at_store *store, const char *name);
/* Stop / restart firing, for every process sharing the store.  Resuming
 * treats the ticks missed while paused by the misfire policy. */
AT_EXTERN int at_schedule_pause(at_store *store, const char *name);
AT_EXTERN int at_schedule_resume(at_store *store, const char *name);
/* A snapshot of one stored schedule, freed with at_schedule_free. */
AT_EXTERN int at_schedule_get(at_schedule **out, at_store *store, const char *name);
/* Every stored schedule, by name: *list_out is an array of *n_out
 * snapshots, freed with at_schedule_list_free. */
AT_EXTERN int at_schedule_list(at_schedule ***list_out, size_t *n_out, at_store *store);
AT_EXTERN void at_schedule_list_free(at_schedule **list, size_t n);

/*
 * A scheduler: a thread that competes for the store's scheduler lease
 * (AT_OPT_STORE_SCHEDULER_LEASE_MS) and, while it leads, fires every
 * unpaused schedule's ticks from a timing wheel.  Run one in each process
 * that should be able to take over; exactly one leads at a time, a dead
 * leader is replaced within one lease period, and a leader that lost its
 * lease is fenced out of the store's schedule records.
 */
typedef struct at_scheduler at_scheduler;

/* Start a scheduler on `store` (which must outlive it). */
AT_EXTERN int at_scheduler_start(at_scheduler **out, at_store *store);
/* Stop the thread, give the lease back so another process leads at once,
 * and free.  NULL is accepted. */
AT_EXTERN void at_scheduler_stop(at_scheduler *sched);
/* 1 while this scheduler holds the lease. */
AT_EXTERN int32_t at_scheduler_is_leader(const at_scheduler *sched);
/* Counters since start: jobs this scheduler created for ticks; catch-ups
 * that found ticks past their grace (the misfire policy applied); ticks
 * given up or retried because the store refused or failed the enqueue; times
 * it became leader.  Any pointer may be NULL. */
AT_EXTERN void at_scheduler_counters(const at_scheduler *sched, uint64_t *fired_out, uint64_t *misfires_out,
                                     uint64_t *errors_out, uint64_t *elected_out);

/* ---------------------------------------------------------------- queues */

/* Stop / restart claims from `queue` for every process sharing the store
 * (running jobs finish; enqueues still work; a queue may be paused before it
 * has jobs).  See at_queue_pause(3). */
AT_EXTERN int at_queue_pause(at_store *store, const char *queue);
AT_EXTERN int at_queue_resume(at_store *store, const char *queue);
/* *paused_out: 1 if `queue` is paused. */
AT_EXTERN int at_queue_is_paused(int32_t *paused_out, at_store *store, const char *queue);

/* Give a claimed job back without using an attempt: READY again at once (or
 * SCHEDULED after delay_ms), the token no longer valid.  For shutdown and
 * for work a process cannot do right now.  AT_ERR_STALE / AT_ERR_CANCELLED
 * as at_ack. */
AT_EXTERN int at_release(at_store *store, const char *id, uint64_t token, int64_t delay_ms);

/* --------------------------------------------------------------- workers */

/*
 * A worker runs handlers for job types on a pool of threads over a set of
 * queues: it claims, renews leases while handlers run, acks or fails by the
 * handler's answer, enforces per-queue concurrency, per-queue rate limits
 * shared by every process on the store, and per-job timeouts, and shuts down
 * gracefully (at_worker_stop is async-signal-safe).  See at_worker_new(3),
 * ADR/0015.
 */
typedef struct at_worker at_worker;
/* What a handler gets: the job, and ways to report and to listen. */
typedef struct at_ctx at_ctx;

/* A handler's answer. */
#define AT_HANDLER_OK 0        /* ack, with the result set by at_ctx_set_result */
#define AT_HANDLER_RETRY 1     /* at_fail: retried with backoff while attempts remain */
#define AT_HANDLER_PERMANENT 2 /* at_fail with AT_FAIL_PERMANENT: DEAD now */
#define AT_HANDLER_RELEASE 3   /* at_release: give it back, no attempt used */
typedef int32_t (*at_handler_fn)(at_ctx *ctx, void *ud);

/* Events, for logging and metrics hooks. */
#define AT_EVENT_STARTED 1   /* a handler starts a job */
#define AT_EVENT_SUCCEEDED 2 /* acked */
#define AT_EVENT_RETRIED 3   /* failed, will run again */
#define AT_EVENT_DEAD 4      /* failed for good */
#define AT_EVENT_CANCELLED 5 /* cancellation reached the job */
#define AT_EVENT_RELEASED 6  /* given back (shutdown, rate limit, handler) */
#define AT_EVENT_PROGRESS 7  /* at_ctx_progress */
#define AT_EVENT_TIMEOUT 8   /* the job ran past its timeout */
#define AT_EVENT_ENQUEUED 9  /* created through this store handle (at_store_on_event) */
#define AT_EVENT_FAILED 10   /* a handler run failed (RETRIED or DEAD follows) */
/* Called on the thread where the event happens; `job` and `detail` (an error
 * text, a progress note, or NULL) are valid during the call only.  Must not
 * block for long. */
typedef void (*at_event_fn)(void *ud, int32_t event, const at_job *job, const char *detail);

/* Every event of this store handle: jobs it creates (AT_EVENT_ENQUEUED, from
 * at_enqueue, at_enqueue_batch and workflow submits) and the events of every
 * worker running on it, for one logging or metrics hook per store.  Set it
 * before other threads use the store (NULL removes it); the same calling
 * rules as a worker's hook. */
AT_EXTERN int at_store_on_event(at_store *store, at_event_fn fn, void *ud);

/* Worker options (at_worker_set_int), before at_worker_start. */
#define AT_WORKER_THREADS 1      /* 1..1024 handler threads, default 4 */
#define AT_WORKER_TIMEOUT_MS 2   /* per-job run time limit, 0 = none (default) */
#define AT_WORKER_GRACE_MS 3     /* at stop: wait this long for handlers, default 10000 */
#define AT_WORKER_WEIGHTED 4     /* 0: strict queue order (default); 1: weighted random */

AT_EXTERN int at_worker_new(at_worker **out, at_store *store);
/* Run `fn` for jobs of `type` ("*": every type without its own handler). */
AT_EXTERN int at_worker_handle(at_worker *w, const char *type, at_handler_fn fn, void *ud);
/* Take jobs from `queue`.  Strict mode: queues in the order added; weighted
 * mode: each claim picks the order at random by weight (1..1000).
 * concurrency: at most that many of its jobs at once in this worker (0: no
 * limit). */
AT_EXTERN int at_worker_add_queue(at_worker *w, const char *queue, int32_t weight, int32_t concurrency);
/* A token bucket for `queue`, shared by every process on the store: at most
 * `limit` job starts per `period_ms` (and bursts up to `limit`). */
AT_EXTERN int at_worker_set_rate(at_worker *w, const char *queue, uint32_t limit, int64_t period_ms);
AT_EXTERN int at_worker_set_int(at_worker *w, int32_t option, int64_t value);
AT_EXTERN int at_worker_on_event(at_worker *w, at_event_fn fn, void *ud);
/* Start the threads. */
AT_EXTERN int at_worker_start(at_worker *w);
/* Ask the worker to stop: no new claims; running handlers see
 * at_ctx_cancelled() = 1 and get the grace period; jobs unfinished after it
 * are released to run again at once elsewhere.  Async-signal-safe; returns at
 * once.  Then at_worker_wait. */
AT_EXTERN void at_worker_stop(at_worker *w);
/* Wait until the worker has stopped (after at_worker_stop, or forever):
 * 0, or AT_ERR_TIMEOUT after timeout_ms (-1: no limit). */
AT_EXTERN int at_worker_wait(at_worker *w, int64_t timeout_ms);
/* Stop, wait and free.  NULL is accepted. */
AT_EXTERN void at_worker_free(at_worker *w);
/* Counters: jobs started, succeeded, failed (retry or dead), released. */
AT_EXTERN void at_worker_counters(const at_worker *w, uint64_t *started_out, uint64_t *succeeded_out,
                                  uint64_t *failed_out, uint64_t *released_out);

/* For host event loops (libuv, libev) instead of threads: a file descriptor
 * that becomes readable when jobs may be ready, and a call that runs what is
 * ready now in the caller's thread, up to `max` jobs, never blocking for a
 * claim.  Use either these or at_worker_start, not both. */
AT_EXTERN int at_worker_fd(at_worker *w);
AT_EXTERN int at_worker_run_ready(size_t *ran_out, at_worker *w, size_t max);

/* The handler's view. */
AT_EXTERN const at_job *at_ctx_job(const at_ctx *ctx);
AT_EXTERN at_store *at_ctx_store(const at_ctx *ctx);
/* Result bytes for the ack (copied). */
AT_EXTERN int at_ctx_set_result(at_ctx *ctx, const void *result, size_t len);
/* The error text for a fail (copied). */
AT_EXTERN int at_ctx_set_error(at_ctx *ctx, const char *error);
/* Progress in permille (0..1000) with an optional note: an AT_EVENT_PROGRESS
 * event, and the lease is renewed. */
AT_EXTERN int at_ctx_progress(at_ctx *ctx, int32_t permille, const char *note);
/* 1 once the handler should stop: the job was cancelled, it ran past its
 * timeout, or the worker is shutting down. */
AT_EXTERN int32_t at_ctx_cancelled(const at_ctx *ctx);
/* The job's deadline (ms since the epoch) or AT_TIME_NONE. */
AT_EXTERN int64_t at_ctx_deadline(const at_ctx *ctx);

/* ----------------------------------------------------------- observability */

/* Log levels (lower is more severe). */
#define AT_LOG_ERROR 1
#define AT_LOG_WARN 2
#define AT_LOG_INFO 3
#define AT_LOG_DEBUG 4

/* One log event, by pointer (fields are only appended; check `size`).
 * Strings are valid during the callback only; NULL when not applicable. */
typedef struct at_log_record {
    uint32_t size;
    int32_t level;         /* AT_LOG_* */
    int64_t time_ms;       /* host wall clock */
    const char *component; /* "scheduler", "worker", "redis", ... */
    const char *message;
    const char *job_id;    /* structured fields of the job concerned */
    const char *queue;
    const char *type;
    uint32_t attempt;
    int32_t code;          /* an AT_ERR_* code, or 0 */
} at_log_record;
typedef void (*at_log_fn)(void *ud, const at_log_record *record);

/* Send the library's log events at `min_level` or more severe to fn, from
 * any thread (fn must be thread-safe and quick).  fn NULL: silent, the
 * default.  Process-wide; may be called at any time. */
AT_EXTERN int at_set_log(at_log_fn fn, void *ud, int32_t min_level);

/* The store handle's metrics as Prometheus text exposition (format 0.0.4):
 * counters kept in this process per queue (jobs enqueued, started,
 * succeeded, failed, retried, dead, released through this handle) and
 * histograms of wait time (claim - run_at) and run time (finish - claim,
 * measured by workers), plus the store's current counts per queue and state
 * (at_stats_get).  Writes at most len bytes with a NUL to buf (buf may be
 * NULL with len 0 to ask); returns the full length without the NUL, or a
 * negative AT_ERR_* code.  See at_metrics_prometheus(3). */
AT_EXTERN int64_t at_metrics_prometheus(char *buf, size_t len, at_store *store);

/* ------------------------------------------------------------- allocator */

/*
 * Replace the allocator for every later allocation by the library (not by
 * sqlite3 or hiredis).  Call before opening any store; the functions must be
 * thread-safe.  All three NULL restore the C library's.  The previous set is
 * written to the *_old pointers when those are not NULL.
 */
typedef void *(*at_malloc_fn)(size_t size);
typedef void *(*at_realloc_fn)(void *ptr, size_t size);
typedef void (*at_free_fn)(void *ptr);
AT_EXTERN int at_set_allocator(at_malloc_fn m, at_realloc_fn r, at_free_fn f, at_malloc_fn *m_old,
                               at_realloc_fn *r_old, at_free_fn *f_old);

#ifdef __cplusplus
}
#endif
#endif /* ASYNCTASK_H */
