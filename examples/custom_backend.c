/*
 * custom_backend.c - an out-of-tree JobStore backend, registered under the
 * URI scheme "example:" with at_store_register(), and a short scenario that
 * drives it through the public API.
 *
 * It is written to be read by backend authors.  Every method of the vtable
 * in <asynctask/store.h> is implemented, with the simplest data structure
 * that is still correct: one mutex per store and a dynamic array of job
 * records kept in id order.  Every lookup is a linear scan.  That is
 * deliberate: the point is the semantics (docs/SEMANTICS.md), not speed.
 * backends/memory.c is the fast reference (heaps, timing wheels, hashes) and
 * the authority when this file and it seem to disagree.
 *
 * What the core does for us, so we never do it here (ADR/0003): validating
 * arguments, filling defaults, making job ids, computing retry backoff,
 * blocking pollers and waking them.  What we do: store jobs and make each
 * transition atomically (here: under the store's mutex).
 *
 * Time is lazy.  There is no timer thread: every method first "sweeps" the
 * store, applying what the passing of time has done since the last call (due
 * SCHEDULED jobs become READY, expired leases end).  Observers can only see
 * the store through these methods, so they never notice the difference.
 *
 *   ./examples/custom_backend        prints the scenario, exit 0 when all is well
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <asynctask.h>
#include <asynctask/store.h>

/* ================================================================ backend */

/* One job.  at_job_info is the exchange format of the vtable; we reuse it as
 * our record so at_job_create() can snapshot it directly.  The record owns
 * every string and buffer it points to, except `queue`, which points at the
 * store's interned queue name.  A real backend would keep rows or documents. */
struct rec {
    at_job_info info;
    int64_t key_expires; /* wall ms: the idempotency key is free again from then */
};

struct at_backend {
    at_store *store;     /* for at_store_error() and the clock */
    pthread_mutex_t mu;  /* the core calls us from many threads at once */
    struct rec **jobs;   /* sorted by id, i.e. by enqueue order */
    size_t n, cap;
    char **queues;       /* every queue that ever held a job (for stats) */
    size_t nqueues;
    uint64_t next_token; /* fencing tokens: never reused within the store */
    int64_t now;         /* wall time of the call in progress (see begin) */
};

static char *dupmem(const void *p, size_t len)
{
    char *c = malloc(len + 1); /* +1: never malloc(0), and strings get their NUL */
    if (c) {
        memcpy(c, p, len);
        c[len] = '\0';
    }
    return c;
}

static char *dupstr(const char *s)
{
    return dupmem(s, strlen(s));
}

static void rec_free(struct rec *r)
{
    /* The casts drop the const of at_job_info's fields: we own these copies. */
    free((void *)r->info.type);
    free((void *)r->info.payload);
    free((void *)r->info.idempotency_key);
    free((void *)r->info.last_error);
    free((void *)r->info.result);
    free(r);
}

static int is_terminal(int32_t state)
{
    return state == AT_STATE_SUCCEEDED || state == AT_STATE_DEAD || state == AT_STATE_CANCELLED;
}

/* Replace the job's last error.  Best effort: on out-of-memory the old text
 * stays, because the state transition matters more than its explanation. */
static void set_error(struct rec *r, const char *text)
{
    char *t = text ? dupstr(text) : NULL;
    if (t) {
        free((void *)r->info.last_error);
        r->info.last_error = t;
    }
}

/* Enter a terminal state.  A finished job has no lease deadline. */
static void finish(at_backend *be, struct rec *r, int32_t state)
{
    r->info.state = state;
    r->info.finished_at = be->now;
    r->info.updated_at = be->now;
    r->info.lease_until = AT_TIME_NONE;
}

/* Apply what time did since the last call.  A lease ends when now reaches its
 * deadline; the job then goes back to READY, unless it was marked for
 * cancellation or that was its last attempt. */
static void sweep(at_backend *be)
{
    int64_t now = be->now;
    for (size_t i = 0; i < be->n; i++) {
        struct rec *r = be->jobs[i];
        if (r->info.state == AT_STATE_SCHEDULED && r->info.run_at <= now) {
            r->info.state = AT_STATE_READY;
            r->info.updated_at = now;
        } else if (r->info.state == AT_STATE_RUNNING && r->info.lease_until <= now) {
            if (r->info.cancel_requested) {
                set_error(r, "cancelled; the holder's lease expired");
                finish(be, r, AT_STATE_CANCELLED);
            } else if (r->info.attempts >= r->info.max_attempts) {
                set_error(r, "lease expired on the last attempt");
                finish(be, r, AT_STATE_DEAD);
            } else {
                set_error(r, "lease expired");
                r->info.state = AT_STATE_READY;
                r->info.lease_until = AT_TIME_NONE;
                r->info.updated_at = now;
            }
        }
    }
}

/* Every method starts here: lock, read the store's clock once (so one call
 * sees one "now"), catch up with time.  The caller unlocks. */
static void begin(at_backend *be)
{
    pthread_mutex_lock(&be->mu);
    be->now = at_store_clock_wall(be->store);
    sweep(be);
}

static void end(at_backend *be)
{
    pthread_mutex_unlock(&be->mu);
}

/* Ids may reach us in lower case (at_id_parse accepts both), so compare
 * canonical forms: parse and format again.  The core validated the id. */
static struct rec *find(at_backend *be, const char *id)
{
    uint8_t bytes[16];
    char canon[AT_ID_SIZE];
    if (at_id_parse(bytes, id))
        return NULL;
    at_id_format(canon, bytes);
    for (size_t i = 0; i < be->n; i++)
        if (strcmp(be->jobs[i]->info.id, canon) == 0)
            return be->jobs[i];
    return NULL;
}

/* ------------------------------------------------------------ open/close */

static void ex_close(at_backend *be)
{
    for (size_t i = 0; i < be->n; i++)
        rec_free(be->jobs[i]);
    for (size_t i = 0; i < be->nqueues; i++)
        free(be->queues[i]);
    free(be->jobs);
    free(be->queues);
    pthread_mutex_destroy(&be->mu);
    free(be);
}

static int ex_open(at_backend **out, at_store *store, const char *uri)
{
    if (strcmp(uri, "example:") != 0)
        return at_store_error(store, AT_ERR_URI, 0, "the example backend takes no path: use \"example:\"");
    at_backend *be = calloc(1, sizeof *be);
    if (!be)
        return at_store_error(store, AT_ERR_NOMEM, 0, "out of memory opening %s", uri);
    be->store = store;
    be->next_token = 1; /* 0 means "no token" */
    pthread_mutex_init(&be->mu, NULL);
    *out = be;
    return 0;
}

/* --------------------------------------------------------------- enqueue */

/* The store's copy of a queue name, added on first use.  Queues are never
 * removed: stats lists every queue that holds or held jobs. */
static const char *intern_queue(at_backend *be, const char *name)
{
    for (size_t i = 0; i < be->nqueues; i++)
        if (strcmp(be->queues[i], name) == 0)
            return be->queues[i];
    char **q = realloc(be->queues, (be->nqueues + 1) * sizeof *q);
    if (!q)
        return NULL;
    be->queues = q;
    if (!(q[be->nqueues] = dupstr(name)))
        return NULL;
    return q[be->nqueues++];
}

/* Build a record from the core's validated input, without linking it. */
static int rec_new(struct rec **out, at_backend *be, const at_job_info *in)
{
    struct rec *r = calloc(1, sizeof *r);
    if (!r)
        return AT_ERR_NOMEM;
    r->info = *in; /* id, priority, max_attempts, lease and backoff settings */
    r->info.size = sizeof r->info; /* ours, not the core's: at_job_create reads this much */
    r->info.type = dupstr(in->type);
    r->info.queue = intern_queue(be, in->queue);
    r->info.payload = dupmem(in->payload ? in->payload : "", in->payload_len);
    r->info.idempotency_key = in->idempotency_key ? dupstr(in->idempotency_key) : NULL;
    r->info.last_error = NULL;
    r->info.result = NULL;
    r->info.result_len = 0;
    if (!r->info.type || !r->info.queue || !r->info.payload || (in->idempotency_key && !r->info.idempotency_key)) {
        rec_free(r); /* frees what was copied; the queue name stays interned */
        return AT_ERR_NOMEM;
    }
    int64_t now = be->now;
    r->info.run_at = in->run_at != AT_TIME_NONE ? in->run_at : now + in->delay_ms;
    r->info.state = r->info.run_at > now ? AT_STATE_SCHEDULED : AT_STATE_READY;
    r->info.created_at = r->info.updated_at = now;
    r->info.started_at = r->info.lease_until = r->info.finished_at = AT_TIME_NONE;
    r->info.attempts = 0;
    r->info.token = 0;
    r->info.cancel_requested = 0;
    r->key_expires = now + in->idempotency_ttl_ms;
    *out = r;
    return 0;
}

/* The id of the job holding `key`: a stored job whose key has not expired,
 * or an item created earlier in this same call.  NULL when the key is free. */
static const char *key_holder(at_backend *be, struct rec *const *made, size_t nmade, const char *key)
{
    for (size_t i = 0; i < be->n; i++) {
        const struct rec *r = be->jobs[i];
        if (r->info.idempotency_key && r->key_expires > be->now && strcmp(r->info.idempotency_key, key) == 0)
            return r->info.id;
    }
    for (size_t i = 0; i < nmade; i++)
        if (made[i] && made[i]->info.idempotency_key && strcmp(made[i]->info.idempotency_key, key) == 0)
            return made[i]->info.id;
    return NULL;
}

/* All or nothing: first build every record and reserve room (the only steps
 * that can fail), then link them all (steps that cannot fail). */
static int ex_enqueue(at_backend *be, at_enqueue_item *items, size_t n)
{
    struct rec **made = calloc(n, sizeof *made);
    if (!made)
        return at_store_error(be->store, AT_ERR_NOMEM, 0, "out of memory while enqueueing");
    begin(be);
    size_t nqueues_before = be->nqueues;
    int rc = 0;
    if (be->cap < be->n + n) {
        struct rec **grown = realloc(be->jobs, (be->n + n) * sizeof *grown);
        if (grown) {
            be->jobs = grown;
            be->cap = be->n + n;
        } else {
            rc = AT_ERR_NOMEM;
        }
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *key = items[i].job.idempotency_key;
        const char *holder = key ? key_holder(be, made, i, key) : NULL;
        if (holder) {
            items[i].status = AT_ERR_DUPLICATE;
            memcpy(items[i].result_id, holder, AT_ID_SIZE);
        } else {
            rc = rec_new(&made[i], be, &items[i].job);
        }
    }
    if (rc) {
        /* Undo: free the records and forget the queue names this call added. */
        for (size_t i = 0; i < n; i++)
            if (made[i])
                rec_free(made[i]);
        while (be->nqueues > nqueues_before)
            free(be->queues[--be->nqueues]);
        end(be);
        free(made);
        return at_store_error(be->store, rc, 0, "out of memory while enqueueing %zu jobs", n);
    }
    for (size_t i = 0; i < n; i++) {
        struct rec *r = made[i];
        if (!r)
            continue;
        /* Keep id order.  Ids grow within a process, so this is an append
         * unless two threads made their ids in one order and locked in the
         * other. */
        size_t at = be->n;
        while (at > 0 && strcmp(be->jobs[at - 1]->info.id, r->info.id) > 0)
            at--;
        memmove(&be->jobs[at + 1], &be->jobs[at], (be->n - at) * sizeof *be->jobs);
        be->jobs[at] = r;
        be->n++;
        items[i].status = 0;
        memcpy(items[i].result_id, r->info.id, AT_ID_SIZE);
    }
    end(be);
    free(made);
    return 0;
}

/* ----------------------------------------------------------------- claim */

/* Claim order: priority desc, then run_at asc.  Ties keep array (= id =
 * enqueue) order because the scan only replaces its pick on "strictly
 * before". */
static int before(const struct rec *a, const struct rec *b)
{
    if (a->info.priority != b->info.priority)
        return a->info.priority > b->info.priority;
    return a->info.run_at < b->info.run_at;
}

static int ex_claim(at_job **jobs_out, size_t *n_out, int64_t *wake_out, at_backend *be, const char *const *queues,
                    size_t nqueues, size_t max)
{
    begin(be);
    int64_t now = be->now;
    size_t n = 0;
    int rc = 0;
    for (size_t q = 0; q < nqueues && n < max && rc == 0; q++) {
        while (n < max) {
            struct rec *best = NULL;
            for (size_t i = 0; i < be->n; i++) {
                struct rec *r = be->jobs[i];
                /* READY with run_at in the future happens after the wall clock
                 * stepped back: never run a job before its run_at. */
                if (r->info.state == AT_STATE_READY && r->info.run_at <= now &&
                    strcmp(r->info.queue, queues[q]) == 0 && (!best || before(r, best)))
                    best = r;
            }
            if (!best)
                break;
            /* Change a copy and snapshot it first: if at_job_create fails the
             * job simply stays READY, as if never claimed. */
            at_job_info next = best->info;
            next.state = AT_STATE_RUNNING;
            next.attempts++;
            next.token = be->next_token++;
            next.started_at = next.updated_at = now;
            next.lease_until = now + next.lease_ms;
            if ((rc = at_job_create(&jobs_out[n], &next)) != 0)
                break;
            best->info = next;
            n++;
        }
    }
    /* When may these queues have work next?  The earliest future run_at of
     * their jobs or lease deadline of their RUNNING jobs.  The core sleeps on
     * the store's monotonic clock, so convert: mono now + (t - wall now). */
    int64_t wake = AT_TIME_NONE;
    for (size_t i = 0; i < be->n; i++) {
        const struct rec *r = be->jobs[i];
        int64_t t = AT_TIME_NONE;
        if (r->info.state == AT_STATE_RUNNING)
            t = r->info.lease_until;
        else if ((r->info.state == AT_STATE_SCHEDULED || r->info.state == AT_STATE_READY) && r->info.run_at > now)
            t = r->info.run_at;
        if (t == AT_TIME_NONE || (wake != AT_TIME_NONE && t >= wake))
            continue;
        for (size_t q = 0; q < nqueues; q++)
            if (strcmp(r->info.queue, queues[q]) == 0)
                wake = t;
    }
    *wake_out = wake == AT_TIME_NONE ? AT_TIME_NONE : at_store_clock_mono(be->store) + (wake - now);
    end(be);
    *n_out = n;
    if (rc && n == 0) /* jobs already claimed are delivered; the error can wait */
        return at_store_error(be->store, rc, 0, "out of memory while claiming");
    return 0;
}

/* --------------------------------------------------------- lease holders */

/* The job that `token` holds, or why there is none.  The token is checked
 * before the state: a stale token is STALE even when the job is CANCELLED
 * since; the holder of the last token learns of its cancellation. */
static int held(struct rec **out, at_backend *be, const char *id, uint64_t token)
{
    struct rec *r = find(be, id);
    if (!r)
        return at_store_error(be->store, AT_ERR_NOTFOUND, 0, "no job %s", id);
    if (token == 0 || r->info.token != token)
        return at_store_error(be->store, AT_ERR_STALE, 0, "job %s: token %llu is not its current lease", id,
                              (unsigned long long)token);
    if (r->info.state == AT_STATE_CANCELLED)
        return at_store_error(be->store, AT_ERR_CANCELLED, 0, "job %s was cancelled", id);
    if (r->info.state != AT_STATE_RUNNING)
        return at_store_error(be->store, AT_ERR_STALE, 0, "job %s is %s: the lease is over", id,
                              at_state_name(r->info.state));
    *out = r;
    return 0;
}

/* A holder presents its token after at_cancel marked the job: now it ends. */
static int cancel_holder(at_backend *be, struct rec *r)
{
    finish(be, r, AT_STATE_CANCELLED);
    return at_store_error(be->store, AT_ERR_CANCELLED, 0, "job %s was cancelled while running", r->info.id);
}

static int ex_ack(at_backend *be, const char *id, uint64_t token, const void *result, size_t result_len)
{
    struct rec *r;
    begin(be);
    int rc = held(&r, be, id, token);
    if (rc == 0 && r->info.cancel_requested) {
        rc = cancel_holder(be, r);
    } else if (rc == 0) {
        char *copy = result ? dupmem(result, result_len) : NULL;
        if (result && !copy) {
            rc = at_store_error(be->store, AT_ERR_NOMEM, 0, "out of memory storing the result of %s", id);
        } else {
            free((void *)r->info.result);
            r->info.result = copy;
            r->info.result_len = copy ? result_len : 0;
            finish(be, r, AT_STATE_SUCCEEDED);
        }
    }
    end(be);
    return rc;
}

/* retry_delay_ms is the backoff the core computed; we only apply it. */
static int ex_fail(int32_t *state_out, at_backend *be, const char *id, uint64_t token, const char *error,
                   uint32_t flags, int64_t retry_delay_ms)
{
    struct rec *r;
    begin(be);
    int rc = held(&r, be, id, token);
    if (rc == 0 && r->info.cancel_requested) {
        rc = cancel_holder(be, r);
        *state_out = AT_STATE_CANCELLED;
    } else if (rc == 0) {
        set_error(r, error); /* NULL keeps the previous text */
        if ((flags & AT_FAIL_PERMANENT) || r->info.attempts >= r->info.max_attempts) {
            finish(be, r, AT_STATE_DEAD);
        } else {
            r->info.run_at = be->now + retry_delay_ms;
            r->info.state = retry_delay_ms > 0 ? AT_STATE_SCHEDULED : AT_STATE_READY;
            r->info.lease_until = AT_TIME_NONE;
            r->info.updated_at = be->now;
        }
        *state_out = r->info.state;
    }
    end(be);
    return rc;
}

static int ex_touch(at_backend *be, const char *id, uint64_t token, int64_t extend_ms)
{
    struct rec *r;
    begin(be);
    int rc = held(&r, be, id, token);
    if (rc == 0 && r->info.cancel_requested)
        rc = cancel_holder(be, r);
    else if (rc == 0)
        r->info.lease_until = be->now + (extend_ms > 0 ? extend_ms : r->info.lease_ms);
    end(be);
    return rc;
}

/* ------------------------------------------------------------ inspection */

static int ex_cancel(int32_t *pending_out, at_backend *be, const char *id)
{
    begin(be);
    struct rec *r = find(be, id);
    int rc = 0;
    *pending_out = 0;
    if (!r) {
        rc = at_store_error(be->store, AT_ERR_NOTFOUND, 0, "no job %s", id);
    } else if (is_terminal(r->info.state)) {
        rc = at_store_error(be->store, AT_ERR_TERMINAL, 0, "job %s is already %s", id, at_state_name(r->info.state));
    } else if (r->info.state == AT_STATE_RUNNING) {
        /* Only mark it: the holder learns at its next touch, ack or fail. */
        r->info.cancel_requested = 1;
        r->info.updated_at = be->now;
        *pending_out = 1;
    } else {
        finish(be, r, AT_STATE_CANCELLED);
    }
    end(be);
    return rc;
}

static int ex_get(at_job **out, at_backend *be, const char *id)
{
    begin(be);
    struct rec *r = find(be, id);
    int rc = r ? at_job_create(out, &r->info) : at_store_error(be->store, AT_ERR_NOTFOUND, 0, "no job %s", id);
    end(be);
    return rc;
}

/* Our cursor is the id of the last job returned: the array is in id order,
 * so the next page starts at the first id above it, even if that job was
 * purged in between.  Read `cursor` before writing `cursor_out`: a caller may
 * pass one buffer as both. */
static int ex_list(at_job **jobs_out, size_t *n_out, char *cursor_out, at_backend *be, const char *queue,
                   int32_t state, const char *cursor, size_t limit)
{
    uint8_t bytes[16];
    char after[AT_ID_SIZE] = "";
    if (cursor && at_id_parse(bytes, cursor))
        return at_store_error(be->store, AT_ERR_INVAL, 0, "'%s' is not a cursor of this store", cursor);
    if (cursor)
        at_id_format(after, bytes);
    begin(be);
    size_t n = 0;
    int rc = 0;
    cursor_out[0] = '\0'; /* "" after the last page */
    for (size_t i = 0; i < be->n && rc == 0; i++) {
        const struct rec *r = be->jobs[i];
        if (strcmp(r->info.id, after) <= 0 || (queue && strcmp(r->info.queue, queue) != 0) ||
            (state != AT_STATE_ANY && r->info.state != state))
            continue;
        if (n == limit) { /* one more match exists: there is a next page */
            memcpy(cursor_out, at_job_id(jobs_out[n - 1]), AT_ID_SIZE);
            break;
        }
        if ((rc = at_job_create(&jobs_out[n], &r->info)) == 0)
            n++;
    }
    if (rc) {
        while (n > 0)
            at_job_free(jobs_out[--n]);
        cursor_out[0] = '\0';
        rc = at_store_error(be->store, rc, 0, "out of memory while listing");
    }
    end(be);
    *n_out = n;
    return rc;
}

static void requeue_one(at_backend *be, struct rec *r)
{
    r->info.state = AT_STATE_READY;
    r->info.attempts = 0; /* a fresh attempt budget */
    r->info.cancel_requested = 0;
    r->info.run_at = r->info.updated_at = be->now;
    r->info.finished_at = r->info.lease_until = AT_TIME_NONE;
}

static int ex_requeue(uint64_t *n_out, at_backend *be, const char *queue, const char *id)
{
    begin(be);
    int rc = 0;
    uint64_t n = 0;
    if (id) {
        struct rec *r = find(be, id);
        if (!r || (queue && strcmp(r->info.queue, queue) != 0))
            rc = at_store_error(be->store, AT_ERR_NOTFOUND, 0, "no job %s%s%s", id, queue ? " in queue " : "",
                                queue ? queue : "");
        else if (r->info.state != AT_STATE_DEAD)
            rc = at_store_error(be->store, AT_ERR_STATE, 0, "job %s is %s, not dead", id,
                                at_state_name(r->info.state));
        else
            requeue_one(be, r), n = 1;
    } else {
        for (size_t i = 0; i < be->n; i++) {
            struct rec *r = be->jobs[i];
            if (r->info.state == AT_STATE_DEAD && (!queue || strcmp(r->info.queue, queue) == 0))
                requeue_one(be, r), n++;
        }
    }
    end(be);
    *n_out = n;
    return rc;
}

/* Idempotency keys live in their job's record and stop counting when they
 * expire (key_holder checks key_expires), so there is nothing separate to
 * delete here: purging a job releases its key with it. */
static int ex_purge(uint64_t *n_out, at_backend *be, int64_t older_than_ms)
{
    begin(be);
    int64_t cutoff = be->now - older_than_ms;
    size_t kept = 0;
    uint64_t n = 0;
    for (size_t i = 0; i < be->n; i++) { /* compact in place, keeping id order */
        struct rec *r = be->jobs[i];
        if (is_terminal(r->info.state) && r->info.finished_at < cutoff) {
            rec_free(r);
            n++;
        } else {
            be->jobs[kept++] = r;
        }
    }
    be->n = kept;
    end(be);
    *n_out = n;
    return 0;
}

/* The vtable asks for O(queues): a production backend keeps per-queue
 * counters up to date on every transition.  This example recounts instead,
 * O(queues x jobs), to keep every transition a plain assignment. */
static int ex_stats(at_stats *stats, at_backend *be)
{
    begin(be);
    int rc = 0;
    for (size_t q = 0; q < be->nqueues && rc == 0; q++) {
        uint64_t counts[AT_STATE_COUNT__] = {0};
        int64_t next_due = AT_TIME_NONE;
        for (size_t i = 0; i < be->n; i++) {
            const struct rec *r = be->jobs[i];
            if (strcmp(r->info.queue, be->queues[q]) != 0)
                continue;
            counts[r->info.state]++;
            if (r->info.state == AT_STATE_SCHEDULED && (next_due == AT_TIME_NONE || r->info.run_at < next_due))
                next_due = r->info.run_at;
        }
        rc = at_stats_add_queue(stats, be->queues[q], counts, next_due);
    }
    end(be);
    return rc ? at_store_error(be->store, rc, 0, "out of memory while reporting stats") : 0;
}

static const at_store_vtable example_vtable = {
    .version = AT_STORE_VTABLE_VERSION,
    .size = sizeof(at_store_vtable),
    .scheme = "example",
    .flags = AT_STORE_F_HOST_CLOCK, /* we read time only via at_store_clock_*: a manual clock works */
    .open = ex_open,
    .close = ex_close,
    .enqueue = ex_enqueue,
    .claim = ex_claim,
    .ack = ex_ack,
    .fail = ex_fail,
    .touch = ex_touch,
    .cancel = ex_cancel,
    .get = ex_get,
    .list = ex_list,
    .requeue = ex_requeue,
    .purge = ex_purge,
    .stats = ex_stats,
    .control = NULL, /* optional: the core answers AT_ERR_UNSUPPORTED */
};

/* =============================================================== scenario */

static at_store *g_store;

/* Any unexpected result ends the example with exit status 1. */
#define CHECK(cond)                                                                                          \
    do {                                                                                                     \
        if (!(cond)) {                                                                                       \
            fprintf(stderr, "custom_backend.c:%d: unexpected: %s\n", __LINE__, #cond);                       \
            exit(1);                                                                                         \
        }                                                                                                    \
    } while (0)
#define CHECK_RC(call, want)                                                                                 \
    do {                                                                                                     \
        int rc_ = (call);                                                                                    \
        if (rc_ != (want)) {                                                                                 \
            char msg_[256] = "";                                                                             \
            if (g_store)                                                                                     \
                at_store_errmsg(g_store, msg_, sizeof msg_, NULL);                                           \
            fprintf(stderr, "custom_backend.c:%d: %s gave %s, expected %s (%s)\n", __LINE__, #call,          \
                    at_err_name(rc_), at_err_name(want), msg_[0] ? msg_ : at_last_error());                  \
            exit(1);                                                                                         \
        }                                                                                                    \
    } while (0)

static int32_t state_of(const char *id)
{
    at_job *j;
    CHECK_RC(at_get(&j, g_store, id), 0);
    int32_t s = at_job_state(j);
    at_job_free(j);
    return s;
}

int main(void)
{
    const char *queues[] = {"work"};
    const int64_t t0 = INT64_C(1800000000000);
    char report[AT_ID_SIZE], email[AT_ID_SIZE], again[AT_ID_SIZE], cleanup[AT_ID_SIZE];
    at_job *jobs[4], *j;
    size_t n;
    int32_t st, pending;
    at_opts *o;

    CHECK_RC(at_store_register(&example_vtable), 0);
    CHECK_RC(at_store_register(&example_vtable), AT_ERR_EXISTS);
    CHECK_RC(at_store_open(&g_store, "example:"), 0);
    CHECK(strcmp(at_store_backend(g_store), "example") == 0);
    /* A manual clock: the 500 ms delay below passes in no time at all. */
    at_clock *clock;
    CHECK_RC(at_clock_new_manual(&clock, t0), 0);
    CHECK_RC(at_store_set_clock(g_store, clock), 0);
    printf("opened \"example:\" on a manual clock\n");

    /* Enqueue: one delayed job, one ready job with an idempotency key. */
    CHECK_RC(at_opts_new(&o), 0);
    CHECK_RC(at_opts_set_str(o, AT_OPT_QUEUE, "work"), 0);
    CHECK_RC(at_opts_set_int(o, AT_OPT_DELAY_MS, 500), 0);
    CHECK_RC(at_opts_set_int(o, AT_OPT_PRIORITY, 5), 0);
    CHECK_RC(at_enqueue(report, g_store, "report.build", "q3", 2, o), 0);
    at_opts_reset(o);
    CHECK_RC(at_opts_set_str(o, AT_OPT_QUEUE, "work"), 0);
    CHECK_RC(at_opts_set_str(o, AT_OPT_IDEMPOTENCY_KEY, "welcome-42"), 0);
    CHECK_RC(at_opts_set_int(o, AT_OPT_BACKOFF_BASE_MS, 100), 0);
    CHECK_RC(at_opts_set_int(o, AT_OPT_BACKOFF_JITTER, 0), 0);
    CHECK_RC(at_enqueue(email, g_store, "email.send", "ada", 3, o), 0);
    CHECK_RC(at_enqueue(again, g_store, "email.send", "ada", 3, o), AT_ERR_DUPLICATE);
    CHECK(strcmp(again, email) == 0);
    printf("enqueued report %s (delay 500 ms): %s\n", report, at_state_name(state_of(report)));
    printf("enqueued email  %s: %s; same key again -> AT_ERR_DUPLICATE, same id\n", email,
           at_state_name(state_of(email)));
    CHECK(state_of(report) == AT_STATE_SCHEDULED && state_of(email) == AT_STATE_READY);

    /* Poll: only the email is due.  Fail it: retried after 100 ms. */
    CHECK_RC(at_poll(jobs, &n, g_store, queues, 1, 4, 0), 0);
    CHECK(n == 1 && strcmp(at_job_id(jobs[0]), email) == 0 && at_job_attempts(jobs[0]) == 1);
    uint64_t first_token = at_job_token(jobs[0]);
    CHECK_RC(at_fail(&st, g_store, email, first_token, "smtp timeout", AT_FAIL_RETRY), 0);
    CHECK(st == AT_STATE_SCHEDULED);
    at_job_free(jobs[0]);
    CHECK_RC(at_get(&j, g_store, email), 0);
    CHECK(at_job_time(j, AT_JOB_TIME_RUN_AT) == t0 + 100);
    at_job_free(j);
    printf("polled email, failed it: %s, retry at t0+100 ms\n", at_state_name(st));
    CHECK_RC(at_poll(jobs, &n, g_store, queues, 1, 4, 0), 0);
    CHECK(n == 0);

    /* 500 ms later both are due: the report first (priority 5). */
    CHECK_RC(at_clock_advance(clock, 500), 0);
    CHECK_RC(at_poll(jobs, &n, g_store, queues, 1, 4, 0), 0);
    CHECK(n == 2 && strcmp(at_job_id(jobs[0]), report) == 0 && strcmp(at_job_id(jobs[1]), email) == 0);
    CHECK(at_job_attempts(jobs[1]) == 2 && at_job_token(jobs[1]) != first_token);
    printf("t0+500: polled report then email (attempt %u)\n", at_job_attempts(jobs[1]));
    CHECK_RC(at_ack(g_store, report, at_job_token(jobs[0]), "42 rows", 7), 0);
    CHECK_RC(at_ack(g_store, email, at_job_token(jobs[1]), NULL, 0), 0);
    CHECK_RC(at_ack(g_store, email, first_token, NULL, 0), AT_ERR_STALE);
    printf("acked both; an ack with the first, stale token -> AT_ERR_STALE\n");
    at_job_free(jobs[0]);
    at_job_free(jobs[1]);

    /* Cancel: a waiting job at once, a running one when its holder next calls. */
    at_opts_reset(o);
    CHECK_RC(at_opts_set_str(o, AT_OPT_QUEUE, "work"), 0);
    CHECK_RC(at_opts_set_int(o, AT_OPT_DELAY_MS, 60000), 0);
    CHECK_RC(at_enqueue(cleanup, g_store, "cleanup", NULL, 0, o), 0);
    CHECK_RC(at_cancel(&pending, g_store, cleanup), 0);
    CHECK(pending == 0 && state_of(cleanup) == AT_STATE_CANCELLED);
    CHECK_RC(at_cancel(&pending, g_store, cleanup), AT_ERR_TERMINAL);
    printf("cancelled cleanup %s; cancelling again -> AT_ERR_TERMINAL\n", cleanup);
    at_opts_free(o);

    /* Get: results and errors are kept. */
    size_t len;
    CHECK_RC(at_get(&j, g_store, report), 0);
    const char *res = at_job_result(j, &len);
    CHECK(at_job_state(j) == AT_STATE_SUCCEEDED && len == 7 && memcmp(res, "42 rows", 7) == 0);
    printf("get report: %s, result \"%.*s\"\n", at_state_name(at_job_state(j)), (int)len, res);
    at_job_free(j);
    CHECK_RC(at_get(&j, g_store, email), 0);
    CHECK(at_job_state(j) == AT_STATE_SUCCEEDED && at_job_attempts(j) == 2);
    CHECK(at_job_last_error(j) && strcmp(at_job_last_error(j), "smtp timeout") == 0);
    printf("get email: %s after %u attempts, last error \"%s\"\n", at_state_name(at_job_state(j)),
           at_job_attempts(j), at_job_last_error(j));
    at_job_free(j);

    /* List, two at a time: two pages. */
    char page1[AT_CURSOR_SIZE], page2[AT_CURSOR_SIZE];
    CHECK_RC(at_list(jobs, &n, page1, g_store, "work", AT_STATE_ANY, NULL, 2), 0);
    CHECK(n == 2 && page1[0] != '\0' && strcmp(at_job_id(jobs[0]), report) == 0);
    at_job_free(jobs[0]);
    at_job_free(jobs[1]);
    CHECK_RC(at_list(jobs, &n, page2, g_store, "work", AT_STATE_ANY, page1, 2), 0);
    CHECK(n == 1 && page2[0] == '\0' && strcmp(at_job_id(jobs[0]), cleanup) == 0);
    at_job_free(jobs[0]);
    printf("listed 3 jobs in two pages\n");

    /* Stats: counts per state of each queue. */
    at_stats *stats;
    CHECK_RC(at_stats_get(&stats, g_store), 0);
    CHECK(at_stats_queue_count(stats) == 1 && strcmp(at_stats_queue_name(stats, 0), "work") == 0);
    CHECK(at_stats_count(stats, 0, AT_STATE_SUCCEEDED) == 2 && at_stats_count(stats, 0, AT_STATE_CANCELLED) == 1);
    CHECK(at_stats_count(stats, 0, AT_STATE_ANY) == 3);
    printf("stats: queue work: %llu succeeded, %llu cancelled\n",
           (unsigned long long)at_stats_count(stats, 0, AT_STATE_SUCCEEDED),
           (unsigned long long)at_stats_count(stats, 0, AT_STATE_CANCELLED));
    at_stats_free(stats);

    /* Purge the finished jobs once they are older than 0 ms. */
    uint64_t purged;
    CHECK_RC(at_clock_advance(clock, 1), 0);
    CHECK_RC(at_purge(&purged, g_store, 0), 0);
    CHECK(purged == 3);
    CHECK_RC(at_get(&j, g_store, report), AT_ERR_NOTFOUND);
    printf("purged %llu finished jobs\n", (unsigned long long)purged);

    at_store_close(g_store);
    g_store = NULL;
    CHECK_RC(at_clock_free(clock), 0);
    printf("custom backend example: ok\n");
    return 0;
}
