/*
 * asynctask/store.h - the JobStore vtable, for backend authors.
 *
 * Users include <asynctask.h> only.  A backend (in tree: memory, SQLite,
 * Redis; or one of the user's own) fills an at_store_vtable and registers it
 * under a URI scheme with at_store_register(); at_store_open("scheme:...")
 * then routes every call through it.  The split of work (ADR/0003):
 *
 *   the core   validates every argument, fills defaults, makes job ids,
 *              computes retry backoff, blocks pollers and wakes them;
 *   a backend  stores jobs and performs each transition atomically.
 *
 * Versioning follows SQLite's VFS: `version` and `size` come first, methods
 * are only ever appended, each block is marked with the version that added
 * it, and the core calls every method through a wrapper that checks the
 * version and a NULL slot (a missing optional method gives
 * AT_ERR_UNSUPPORTED).  A backend compiled against an older header keeps
 * working with a newer library.
 *
 * Ownership: every pointer the core passes in is borrowed for the duration
 * of the call; backends copy what they keep.  Objects handed back to the core
 * (at_job) are made with at_job_create(), never with the backend's own
 * allocator ("do not mix allocators").
 *
 * Thread safety: the core calls a backend's methods from any thread, at the
 * same time, on one at_backend; backends do their own locking.
 */
#ifndef ASYNCTASK_STORE_H
#define ASYNCTASK_STORE_H

#include <stdarg.h>

#include "../asynctask.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A backend's own per-store state; the core never looks inside. */
typedef struct at_backend at_backend;

/*
 * Everything about one job, as backends read and write it.  `size` is
 * sizeof(at_job_info) as the writer compiled it: fields are only appended.
 * Strings are NUL-terminated; NULL means "not set".
 */
typedef struct at_job_info {
    uint32_t size;
    char id[AT_ID_SIZE];
    const char *type;
    const char *queue;
    const void *payload;
    size_t payload_len;
    int32_t state;
    int32_t priority;
    uint32_t attempts;
    uint32_t max_attempts;
    uint64_t token;         /* fencing token of the current/last claim; 0 none */
    int64_t created_at;
    int64_t run_at;         /* AT_TIME_NONE at enqueue: store now + delay_ms */
    int64_t delay_ms;       /* enqueue input only */
    int64_t started_at;
    int64_t lease_until;
    int64_t finished_at;
    int64_t updated_at;
    int64_t lease_ms;
    int64_t backoff_base_ms;
    int64_t backoff_cap_ms;
    int32_t backoff_jitter; /* permille */
    int32_t cancel_requested;
    const char *idempotency_key;
    int64_t idempotency_ttl_ms;
    const char *last_error;
    const void *result;
    size_t result_len;
    /* ---- added with vtable version 2: workflows (ADR/0014) ---- */
    const char *workflow_id;    /* the job's workflow (an id), NULL if none */
    const char *node;           /* its node name in the workflow, NULL if none */
    size_t nparents;
    const char *const *parents; /* ids of the jobs it waits for */
    int32_t on_parent_failure;  /* AT_PARENT_FAIL_* */
    uint32_t parents_left;      /* read only: parents not yet finished */
    /* ---- also version 2: trace context ---- */
    const char *traceparent;    /* W3C traceparent (55 characters), NULL if none */
} at_job_info;

/* Zero every field and set the times to AT_TIME_NONE and `size`. */
AT_EXTERN void at_job_info_init(at_job_info *info);

/* A new at_job snapshot holding copies of everything `info` points to. */
AT_EXTERN int at_job_create(at_job **out, const at_job_info *info);

/* One job of an enqueue call, as the core hands it to a backend. */
typedef struct at_enqueue_item {
    at_job_info job;          /* validated, defaults filled, id made */
    int32_t status;           /* out: 0 created, AT_ERR_DUPLICATE */
    char result_id[AT_ID_SIZE]; /* out: the created or the existing job's id */
} at_enqueue_item;

/* Flags of a vtable. */
#define AT_STORE_F_HOST_CLOCK 0x1u /* judged by the host clock: at_store_set_clock works */

/* One stored schedule as a backend keeps it (ADR/0012).  The core encodes
 * the definition (expression, zone, job template, misfire policy) into
 * `spec`; backends store those bytes as they are and never parse them. */
typedef struct at_sched_row {
    uint32_t size;                /* sizeof(at_sched_row) as the writer compiled it */
    const char *name;
    const void *spec;
    size_t spec_len;
    int32_t paused;
    int64_t created_at;           /* store wall ms of the first put under the name */
    int64_t updated_at;           /* store wall ms of the last put that changed spec */
    int64_t last_fire_at;         /* tick time of the last recorded firing, or AT_TIME_NONE */
    char last_job_id[AT_ID_SIZE]; /* the job of that firing, "" if none */
} at_sched_row;

/* Zero every field, times AT_TIME_NONE, `size` set. */
AT_EXTERN void at_sched_row_init(at_sched_row *row);

/* Called by a backend's sched_list once per schedule.  The row and what it
 * points to are valid during the call only.  A nonzero return stops the
 * listing, and sched_list returns it. */
typedef int (*at_sched_row_fn)(void *ud, const at_sched_row *row);

#define AT_STORE_VTABLE_VERSION 2

typedef struct at_store_vtable {
    uint32_t version;   /* AT_STORE_VTABLE_VERSION the backend was written for */
    uint32_t size;      /* sizeof(at_store_vtable) as the backend compiled it */
    const char *scheme; /* URI scheme, [a-z0-9+.-]{1,31}: "memory", "sqlite" */
    uint32_t flags;     /* AT_STORE_F_* */

    /* ---- valid for version 1 ---- */

    /* Open the store named by `uri` (the whole URI, scheme included).  Keep
     * `store` to report errors (at_store_error) and read the clock and
     * options (at_store_clock_*, at_store_get_option).  Required. */
    int (*open)(at_backend **out, at_store *store, const char *uri);
    /* Free everything.  Required. */
    void (*close)(at_backend *be);

    /* Create the n jobs atomically: all or none.  For each item: when its
     * idempotency key is held by a job whose key has not expired (or by an
     * earlier item of the same call) set status AT_ERR_DUPLICATE and
     * result_id to that job's id and create nothing for it; otherwise create
     * it (run_at = now + delay_ms when run_at is AT_TIME_NONE; SCHEDULED when
     * run_at > now, else READY), status 0, result_id = job.id.  Required. */
    int (*enqueue)(at_backend *be, at_enqueue_item *items, size_t n);

    /* Claim up to max due jobs, queues in the given order, within a queue by
     * priority desc, run_at asc, enqueue order.  Each claimed job: RUNNING,
     * attempts + 1, a token no claim of this job had before, lease_until =
     * now + its lease_ms.  A lease that expires (by the store's clock, never
     * early) returns its job to READY, or to DEAD with attempts exhausted, or
     * to CANCELLED when cancellation was requested; each with a last_error
     * text.  Never blocks.  *wake_out: the store-monotonic time
     * (at_store_clock_mono) at which a job of these queues, or an expiring
     * lease, is next known to make work; AT_TIME_NONE if none is known.
     * Required. */
    int (*claim)(at_job **jobs_out, size_t *n_out, int64_t *wake_out, at_backend *be,
                 const char *const *queues, size_t nqueues, size_t max);

    /* RUNNING + current token -> SUCCEEDED with the result.  A job marked for
     * cancellation -> CANCELLED and AT_ERR_CANCELLED.  Other token or state:
     * AT_ERR_STALE (AT_ERR_CANCELLED if it is CANCELLED and token was its
     * last).  Unknown id: AT_ERR_NOTFOUND.  Required. */
    int (*ack)(at_backend *be, const char *id, uint64_t token, const void *result, size_t result_len);

    /* RUNNING + current token: permanent flag or no attempts left -> DEAD;
     * else SCHEDULED at now + retry_delay_ms (READY if 0).  Keeps `error`.
     * Token/cancel rules as ack.  Required. */
    int (*fail)(int32_t *state_out, at_backend *be, const char *id, uint64_t token, const char *error,
                uint32_t flags, int64_t retry_delay_ms);

    /* RUNNING + current token: lease_until = now + extend_ms (0: the job's
     * lease_ms).  Marked for cancellation: CANCELLED + AT_ERR_CANCELLED.
     * Required. */
    int (*touch)(at_backend *be, const char *id, uint64_t token, int64_t extend_ms);

    /* As at_cancel().  Required. */
    int (*cancel)(int32_t *pending_out, at_backend *be, const char *id);
    /* As at_get().  Required. */
    int (*get)(at_job **out, at_backend *be, const char *id);
    /* As at_list(); cursor strings are the backend's own (< AT_CURSOR_SIZE).
     * Required. */
    int (*list)(at_job **jobs_out, size_t *n_out, char *cursor_out, at_backend *be, const char *queue,
                int32_t state, const char *cursor, size_t limit);
    /* As at_requeue().  Required. */
    int (*requeue)(uint64_t *n_out, at_backend *be, const char *queue, const char *id);
    /* Delete terminal jobs with finished_at < now - older_than_ms, and
     * expired idempotency keys.  Required. */
    int (*purge)(uint64_t *n_out, at_backend *be, int64_t older_than_ms);
    /* Report every queue with at_stats_add_queue().  O(queues).  Required. */
    int (*stats)(at_stats *stats, at_backend *be);
    /* Escape hatch for backend-specific operations; unknown ops must return
     * AT_ERR_UNSUPPORTED.  Optional. */
    int (*control)(at_backend *be, int32_t op, void *arg);
    /* For stores that other processes write to.  Return 1 if the store may
     * have changed since this backend last looked (SQLite: PRAGMA
     * data_version moved), 0 if not, a negative AT_ERR_* on failure.  A
     * blocked at_poll calls it every AT_OPT_STORE_WATCH_INTERVAL_MS and
     * claims again when it says 1.  Cheap and non-blocking.  Backends told of
     * changes by push (a subscriber thread) call at_store_notify() instead
     * and leave this NULL; so does a process-local store.  Optional. */
    int (*changed)(at_backend *be);
    /* As ack without result bytes, for n jobs at once, atomically as a
     * whole: results[i] gets job i's outcome (0, AT_ERR_STALE,
     * AT_ERR_CANCELLED, AT_ERR_NOTFOUND); a negative return means nothing
     * changed.  Optional: without it the core calls ack n times. */
    int (*ack_many)(at_backend *be, size_t n, const char *const *ids, const uint64_t *tokens,
                    int32_t *results);

    /* ---- added in version 2: schedules and leases (ADR/0012, ADR/0013).
     * Optional as a group: without them the at_schedule_* and
     * at_scheduler_* calls give AT_ERR_UNSUPPORTED.  Names are checked by
     * the core (the queue-name charset).  Times are the store's clock. ---- */

    /* Create schedule `name` (paused 0, never fired, created_at = updated_at
     * = now, *created_out = 1) or replace the spec of an existing one
     * atomically, keeping paused, created_at and the last firing, and
     * setting updated_at = now only when the bytes differ
     * (*created_out = 0). */
    int (*sched_put)(int32_t *created_out, at_backend *be, const char *name, const void *spec,
                     size_t spec_len);
    /* Delete schedule `name`; AT_ERR_NOTFOUND if there is none. */
    int (*sched_remove)(at_backend *be, const char *name);
    /* Set the paused flag (0 or 1); AT_ERR_NOTFOUND if there is none. */
    int (*sched_pause)(at_backend *be, const char *name, int32_t paused);
    /* Call fn for every schedule in name order (bytewise), or for `name`
     * only when not NULL (AT_ERR_NOTFOUND if there is none).  Takes one
     * consistent snapshot; fn must not call back into the store. */
    int (*sched_list)(at_backend *be, const char *name, at_sched_row_fn fn, void *ud);
    /* Record that tick `fire_at` of schedule `name` made job `job_id`:
     * last_fire_at = fire_at and last_job_id = job_id when fire_at is later
     * than last_fire_at (else change nothing and return 0).  Fenced, in
     * the same atomic step: unless lease `lease` is held, unexpired, with
     * token `token`, return AT_ERR_STALE and change nothing.
     * AT_ERR_NOTFOUND when the schedule is gone. */
    int (*sched_fired)(at_backend *be, const char *name, int64_t fire_at, const char *job_id,
                       const char *lease, uint64_t token);
    /* Take or renew lease `name` for `owner` (an opaque string of up to
     * AT_KEY_MAX bytes) for ttl_ms.  Free, expired, or held by `owner`: 0;
     * the lease now expires at now + ttl_ms; *token_out is its fencing
     * token: the same as before when `owner` held it last, else one more
     * than the lease's previous token (1 for a new lease), so tokens only
     * grow; *ttl_left_out = ttl_ms.  Held unexpired by another owner:
     * AT_ERR_BUSY, *token_out = the holder's token, *ttl_left_out = ms until
     * it expires. */
    int (*lease_acquire)(uint64_t *token_out, int64_t *ttl_left_out, at_backend *be, const char *name,
                         const char *owner, int64_t ttl_ms);
    /* If `owner` holds lease `name` with `token`, let it expire now (the
     * token counter is kept) and return 0; else AT_ERR_STALE. */
    int (*lease_release)(at_backend *be, const char *name, const char *owner, uint64_t token);

    /* ---- also version 2: workflows (ADR/0014).  Optional as a group:
     * without them the at_workflow_* calls give AT_ERR_UNSUPPORTED.  Plain
     * enqueue never carries parents; these methods do. ---- */

    /* Create the n jobs atomically, as enqueue does (idempotency keys
     * included), plus dependencies.  Items come in an order where every
     * parent that is an item of this call comes before its children; other
     * parents are existing jobs (AT_ERR_NOTFOUND for one that does not
     * exist: nothing is created).  For each item, each parent is
     *   SUCCEEDED            satisfied;
     *   DEAD or CANCELLED    resolved now by the item's on_parent_failure
     *                        (below);
     *   anything else        pending: the item waits for it.
     * An item with pending parents is WAITING with parents_left = their
     * number (run_at kept); else it starts as a plain enqueue would.
     * Whenever a job becomes SUCCEEDED (ack, ack_many), each WAITING child
     * counts it done, and a child with none left becomes SCHEDULED or READY
     * by its run_at, in the same atomic step.  Whenever a job becomes DEAD or
     * CANCELLED (fail, lease expiry, cancel, wf_cancel, or this very rule),
     * each WAITING child applies its on_parent_failure in the same atomic
     * step: AT_PARENT_FAIL_CANCEL -> CANCELLED, AT_PARENT_FAIL_DEAD -> DEAD
     * (each with last_error naming the parent, and the rule applies again to
     * its own children), AT_PARENT_FAIL_RUN -> counted as done.
     * Guard: when guard_id is not NULL, create nothing and return
     * AT_ERR_STALE unless job guard_id is RUNNING under guard_token
     * (AT_ERR_CANCELLED if it is marked for cancellation), checked in the
     * same atomic step (a spawning job that lost its lease adds nothing). */
    int (*wf_submit)(at_backend *be, at_enqueue_item *items, size_t n, const char *guard_id,
                     uint64_t guard_token);
    /* Counts of the workflow's jobs per state (counts_out indexed by
     * AT_STATE_*, entry 0 unused), kept incrementally: O(1) or O(states),
     * never O(jobs).  AT_ERR_NOTFOUND if it has no job. */
    int (*wf_status)(at_backend *be, const char *wf_id, uint64_t counts_out[AT_STATE_COUNT__]);
    /* Cancel every job of the workflow as cancel would (RUNNING ones are
     * marked), atomically, with the propagation rule; *n_out: how many of
     * its jobs changed (marked, cancelled, or cancelled by propagation).
     * AT_ERR_NOTFOUND if it has no job. */
    int (*wf_cancel)(uint64_t *n_out, at_backend *be, const char *wf_id);
    /* As list, for the jobs of one workflow in id order. */
    int (*wf_jobs)(at_job **jobs_out, size_t *n_out, char *cursor_out, at_backend *be, const char *wf_id,
                   const char *cursor, size_t limit);

    /* ---- also version 2: worker support (ADR/0015).  Each optional:
     * without it the matching call gives AT_ERR_UNSUPPORTED. ---- */

    /* Give a claim back: RUNNING under `token` -> READY now (SCHEDULED at
     * now + delay_ms when delay_ms > 0), attempts - 1 (that attempt did not
     * happen), token no longer current (a later ack with it: AT_ERR_STALE).
     * Marked for cancellation: CANCELLED and AT_ERR_CANCELLED.  Other token
     * or state errors as ack. */
    int (*release)(at_backend *be, const char *id, uint64_t token, int64_t delay_ms);
    /* Set (1) or clear (0) the paused flag of `queue`, for every process on
     * the store; claim skips paused queues.  Any valid queue name, with or
     * without jobs.  Changes to the flag wake blocked pollers as enqueues
     * do. */
    int (*queue_pause)(at_backend *be, const char *queue, int32_t paused);
    /* *paused_out = the flag of `queue` (0 for a queue never paused). */
    int (*queue_is_paused)(int32_t *paused_out, at_backend *be, const char *queue);
    /* A token bucket per queue shared by every process on the store:
     * capacity `limit`, refilled continuously at limit per period_ms by the
     * store's clock.  Take up to `want` tokens: *granted_out = how many
     * (0..want); when 0, *wait_ms_out = ms until one is there (else 0).
     * Atomic: two processes never get the same token. */
    int (*rate_take)(uint32_t *granted_out, int64_t *wait_ms_out, at_backend *be, const char *queue,
                     uint32_t limit, int64_t period_ms, uint32_t want);
} at_store_vtable;

/* Register a backend under vt->scheme.  `vt` must stay valid for the life of
 * the process.  AT_ERR_EXISTS if the scheme is taken, AT_ERR_INVAL for a
 * vtable with a bad version, size, scheme or a required method missing. */
AT_EXTERN int at_store_register(const at_store_vtable *vt);

/* Record a detail message for the calling thread's current call on `store`
 * and return `code`, so backends can write `return at_store_error(...)`.
 * `native` is the backend's own code (SQLite result code, errno) or 0. */
AT_EXTERN int at_store_error(at_store *store, int code, int32_t native, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* The store's wall time (real or manual clock), ms since the epoch. */
AT_EXTERN int64_t at_store_clock_wall(const at_store *store);
/* The store's monotonic time in ms: never goes back, unaffected by wall
 * jumps.  Timing wheels of backends run on it. */
AT_EXTERN int64_t at_store_clock_mono(const at_store *store);
/* 1 if the store runs on a manual clock (time moves only by hand). */
AT_EXTERN int32_t at_store_clock_is_manual(const at_store *store);

/* Tell the core that jobs may have become claimable without a call through
 * the core (for example a backend's own timer): blocked pollers re-check. */
AT_EXTERN void at_store_notify(at_store *store);

/* Used by a backend's stats method: one line per queue.  counts is indexed
 * by AT_STATE_* (entry 0 unused). */
AT_EXTERN int at_stats_add_queue(at_stats *stats, const char *queue, const uint64_t counts[AT_STATE_COUNT__],
                                 int64_t next_due);

/* A 128-bit id as 16 big-endian bytes <-> its 26-character string.  For
 * backends that store ids compactly.  at_id_parse: AT_ERR_INVAL if `id` is
 * not a well-formed id. */
AT_EXTERN int at_id_parse(uint8_t bytes_out[16], const char *id);
AT_EXTERN void at_id_format(char id_out[AT_ID_SIZE], const uint8_t bytes[16]);

#ifdef __cplusplus
}
#endif
#endif /* ASYNCTASK_STORE_H */
