/*
 * store.c - store handles and the job operations' front door.
 *
 * Every public job operation enters here: the handle is checked (magic,
 * fork), arguments are validated and defaults filled *before* the backend
 * is called, then the call goes through the vtable.  Backends therefore see
 * only well-formed input, and a bad argument never touches a store.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define STORE_MAGIC 0x6173746fu /* "asto" */

static atomic_uint g_fork_gen;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
    atomic_fetch_add(&g_fork_gen, 1);
    at__id_after_fork();
}

static void init_once(void)
{
    pthread_atfork(NULL, NULL, on_fork_child);
}

static const int64_t k_defaults[AT__SOPT_COUNT] = {
    [AT__SOPT_MAX_PAYLOAD] = 1048576,
    [AT__SOPT_RETENTION] = 7 * AT__DAY_MS,
    [AT__SOPT_LEASE] = 30000,
    [AT__SOPT_MAX_ATTEMPTS] = 25,
    [AT__SOPT_BACKOFF_BASE] = 1000,
    [AT__SOPT_BACKOFF_CAP] = 3600000,
    [AT__SOPT_BACKOFF_JITTER] = 200,
    [AT__SOPT_IDEM_TTL] = AT__DAY_MS,
    [AT__SOPT_MAX_RESULT] = 1048576,
    [AT__SOPT_WATCH_INTERVAL] = 20,
    [AT__SOPT_SCHED_LEASE] = 5000,
    [AT__SOPT_SCHED_REFRESH] = 1000,
};

int at__store_enter(at_store *s)
{
    at__err_clear();
    if (!s)
        return AT_ERR_INVAL;
    if (s->magic != STORE_MAGIC)
        return AT_ERR_MISUSE;
    if (s->fork_gen != atomic_load_explicit(&g_fork_gen, memory_order_relaxed))
        return at__err_set(s, AT_ERR_FORK, 0,
                           "this store was opened before fork(); open a new one in the child process");
    return 0;
}

/* A job operation: from now on the store's clock is fixed. */
int at__store_enter_job(at_store *s)
{
    int rc = at__store_enter(s);
    if (rc == 0 && !atomic_load_explicit(&s->used, memory_order_relaxed))
        atomic_store(&s->used, true);
    return rc;
}
#define ENTER_JOB(s)                                                                                         \
    do {                                                                                                     \
        int e_rc_ = at__store_enter_job(s);                                                                            \
        if (e_rc_)                                                                                           \
            return e_rc_;                                                                                    \
    } while (0)

int64_t at__store_opt(const at_store *s, int which)
{
    return atomic_load_explicit(&((at_store *)s)->opt[which], memory_order_relaxed);
}

AT_EXTERN int at_store_open(at_store **out, const char *uri)
{
    at__err_clear();
    if (!out)
        return AT_ERR_INVAL;
    *out = NULL;
    if (!uri)
        return at__err_set(NULL, AT_ERR_INVAL, 0, "store URI is NULL");
    pthread_once(&g_once, init_once);
    const char *colon = strchr(uri, ':');
    size_t n = colon ? (size_t)(colon - uri) : 0;
    bool ok = n > 0 && n < 32 && uri[0] >= 'a' && uri[0] <= 'z';
    for (size_t i = 0; ok && i < n; i++) {
        char c = uri[i];
        ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '.' || c == '-';
    }
    if (!ok)
        return at__err_set(NULL, AT_ERR_URI, 0, "'%.64s' is not a store URI (expected scheme:..., e.g. memory:)",
                           uri);
    const at_store_vtable *vt = at__registry_find(uri, n);
    if (!vt) {
        bool known = (n == 6 && memcmp(uri, "sqlite", 6) == 0) || (n == 5 && memcmp(uri, "redis", 5) == 0) ||
                     (n == 14 && memcmp(uri, "redis-sentinel", 14) == 0);
        return at__err_set(NULL, AT_ERR_NOBACKEND, 0,
                           known ? "the %.*s backend is not compiled into this libasynctask"
                                 : "no backend is registered for the URI scheme '%.*s'",
                           (int)n, uri);
    }
    at_store *s = at__calloc(1, sizeof *s);
    if (!s || at__metrics_new(&s->metrics) != 0) {
        at__free(s);
        return AT_ERR_NOMEM;
    }
    s->magic = STORE_MAGIC;
    s->vt = vt;
    s->fork_gen = atomic_load(&g_fork_gen);
    for (int i = 0; i < AT__SOPT_COUNT; i++)
        atomic_store(&s->opt[i], k_defaults[i]);
    pthread_mutex_init(&s->wmu, NULL);
    pthread_mutex_init(&s->schmu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wcv, &ca);
    pthread_condattr_destroy(&ca);
    int rc = vt->open(&s->be, s, uri);
    if (rc) {
        /* The backend's detail message was recorded against s; keep it for
         * at_last_error(), which reads messages of store-less calls. */
        char msg[512];
        at_store_errmsg(s, msg, sizeof msg, NULL);
        pthread_cond_destroy(&s->wcv);
        pthread_mutex_destroy(&s->wmu);
        pthread_mutex_destroy(&s->schmu);
        at__metrics_free(s->metrics);
        s->magic = 0;
        at__free(s);
        return at__err_set(NULL, rc, 0, "%s", msg[0] ? msg : at_strerror(rc));
    }
    *out = s;
    return 0;
}

AT_EXTERN void at_store_close(at_store *s)
{
    if (!s || s->magic != STORE_MAGIC)
        return;
    at__clock_detach(s);
    s->magic = 0;
    /* After fork() the backend's resources belong to the parent: a child
     * closing its copy must not send a QUIT or checkpoint a shared file. */
    if (s->fork_gen == atomic_load(&g_fork_gen))
        s->vt->close(s->be);
    pthread_cond_destroy(&s->wcv);
    pthread_mutex_destroy(&s->wmu);
    pthread_mutex_destroy(&s->schmu);
    at__metrics_free(s->metrics);
    at__free(s);
}

AT_EXTERN const char *at_store_backend(const at_store *s)
{
    return s && s->magic == STORE_MAGIC ? s->vt->scheme : NULL;
}

static int opt_index(int32_t option)
{
    /* In 64 bits: any int32_t may arrive, INT32_MIN included. */
    int64_t i = (int64_t)option - AT_OPT_STORE_MAX_PAYLOAD;
    return (i >= 0 && i < AT__SOPT_COUNT) ? (int)i : -1;
}

AT_EXTERN int at_store_set_option(at_store *s, int32_t option, int64_t v)
{
    AT__ENTER(s);
    int i = opt_index(option);
    if (i < 0)
        return at__err_set(s, AT_ERR_INVAL, 0, "unknown store option %d", (int)option);
    int64_t lo = 0, hi = 100 * AT__YEAR_MS;
    switch (i) {
    case AT__SOPT_MAX_PAYLOAD:
    case AT__SOPT_MAX_RESULT:
        hi = INT64_C(1) << 30; /* 1 GiB: beyond that a job queue is the wrong tool */
        break;
    case AT__SOPT_LEASE:
        lo = 1, hi = AT__DAY_MS;
        break;
    case AT__SOPT_MAX_ATTEMPTS:
        lo = 1, hi = AT__MAX_ATTEMPTS_LIMIT;
        break;
    case AT__SOPT_BACKOFF_BASE:
    case AT__SOPT_BACKOFF_CAP:
        hi = AT__YEAR_MS;
        break;
    case AT__SOPT_BACKOFF_JITTER:
        hi = 1000;
        break;
    case AT__SOPT_IDEM_TTL:
        lo = 1;
        break;
    case AT__SOPT_WATCH_INTERVAL:
        lo = 1, hi = 1000;
        break;
    case AT__SOPT_SCHED_LEASE:
        lo = 500, hi = 600000;
        break;
    case AT__SOPT_SCHED_REFRESH:
        lo = 10, hi = 60000;
        break;
    }
    if (v < lo || v > hi)
        return at__err_set(s, AT_ERR_RANGE, 0, "store option %d value %lld is outside %lld..%lld", (int)option,
                           (long long)v, (long long)lo, (long long)hi);
    atomic_store(&s->opt[i], v);
    return 0;
}

AT_EXTERN int at_store_get_option(int64_t *out, const at_store *s, int32_t option)
{
    if (!out)
        return AT_ERR_INVAL;
    AT__ENTER((at_store *)s);
    int i = opt_index(option);
    if (i < 0)
        return at__err_set(s, AT_ERR_INVAL, 0, "unknown store option %d", (int)option);
    *out = at__store_opt(s, i);
    return 0;
}

AT_EXTERN int at_store_now(int64_t *out, at_store *s)
{
    if (!out)
        return AT_ERR_INVAL;
    AT__ENTER(s);
    *out = at_store_clock_wall(s);
    return 0;
}

AT_EXTERN int at_store_control(at_store *s, int32_t op, void *arg)
{
    AT__ENTER(s);
    /* The optional method, through its wrapper: absent in an old or minimal
     * vtable means "unsupported", never a crash. */
    if (s->vt->size < offsetof(at_store_vtable, control) + sizeof s->vt->control || !s->vt->control)
        return at__err_set(s, AT_ERR_UNSUPPORTED, 0, "the %s backend has no control operations", s->vt->scheme);
    return s->vt->control(s->be, op, arg);
}

AT_EXTERN void at_store_notify(at_store *s)
{
    if (!s)
        return;
    atomic_fetch_add(&s->wgen, 1);
    if (atomic_load(&s->nwaiters) > 0) {
        pthread_mutex_lock(&s->wmu);
        pthread_cond_broadcast(&s->wcv);
        pthread_mutex_unlock(&s->wmu);
    }
}

static int check_id(at_store *s, const char *id, char canon[AT_ID_SIZE])
{
    if (!id)
        return at__err_set(s, AT_ERR_INVAL, 0, "job id is NULL");
    if (at__id_canon(canon, id))
        return at__err_set(s, AT_ERR_INVAL, 0, "'%.40s' is not a job id (26 characters of Crockford base32)", id);
    return 0;
}

/* Replace `id` by its canonical form in a local buffer, or return the error. */
#define CANON_ID(s, id)                                                                                      \
    char canon_[AT_ID_SIZE];                                                                                 \
    do {                                                                                                     \
        int c_rc_ = check_id((s), (id), canon_);                                                             \
        if (c_rc_)                                                                                           \
            return c_rc_;                                                                                    \
        (id) = canon_;                                                                                       \
    } while (0)

static int64_t pick(int64_t v, const at_store *s, int which)
{
    return v != AT__UNSET ? v : at__store_opt(s, which);
}

int at__store_fill_job(at_store *s, at_job_info *j, const char *type, const void *payload, size_t len,
                       const at_opts *o)
{
    if (at__check_name(type))
        return at__err_set(s, AT_ERR_NAME, 0, "job type must be 1..%d of [A-Za-z0-9._:-]", AT_NAME_MAX);
    if (!payload && len)
        return at__err_set(s, AT_ERR_INVAL, 0, "payload is NULL but its length is %zu", len);
    int64_t max = at__store_opt(s, AT__SOPT_MAX_PAYLOAD);
    if ((uint64_t)len > (uint64_t)max)
        return at__err_set(s, AT_ERR_TOOBIG, 0, "payload of %zu bytes exceeds the store's limit of %lld", len,
                           (long long)max);
    static const at_opts none = {.priority = AT__UNSET,
                                 .run_at = AT__UNSET,
                                 .delay_ms = AT__UNSET,
                                 .max_attempts = AT__UNSET,
                                 .backoff_base_ms = AT__UNSET,
                                 .backoff_cap_ms = AT__UNSET,
                                 .backoff_jitter = AT__UNSET,
                                 .lease_ms = AT__UNSET,
                                 .idem_ttl_ms = AT__UNSET,
                                 .traceparent = ""};
    if (!o)
        o = &none;
    at_job_info_init(j);
    j->type = type;
    j->queue = o->queue[0] ? o->queue : "default";
    j->payload = payload;
    j->payload_len = len;
    j->state = 0;
    j->priority = (int32_t)(o->priority != AT__UNSET ? o->priority : 0);
    j->run_at = o->run_at != AT__UNSET ? o->run_at : AT_TIME_NONE;
    j->delay_ms = o->delay_ms != AT__UNSET ? o->delay_ms : 0;
    j->max_attempts = (uint32_t)pick(o->max_attempts, s, AT__SOPT_MAX_ATTEMPTS);
    j->backoff_base_ms = pick(o->backoff_base_ms, s, AT__SOPT_BACKOFF_BASE);
    j->backoff_cap_ms = pick(o->backoff_cap_ms, s, AT__SOPT_BACKOFF_CAP);
    j->backoff_jitter = (int32_t)pick(o->backoff_jitter, s, AT__SOPT_BACKOFF_JITTER);
    j->lease_ms = pick(o->lease_ms, s, AT__SOPT_LEASE);
    j->idempotency_key = o->idem_key;
    j->traceparent = o->traceparent[0] ? o->traceparent : NULL;
    j->idempotency_ttl_ms = o->idem_key ? pick(o->idem_ttl_ms, s, AT__SOPT_IDEM_TTL) : 0;
    if (j->backoff_cap_ms < j->backoff_base_ms)
        return at__err_set(s, AT_ERR_RANGE, 0, "backoff cap %lld ms is below its base %lld ms",
                           (long long)j->backoff_cap_ms, (long long)j->backoff_base_ms);
    at__id_new(j->id);
    return 0;
}

AT_EXTERN int at_enqueue(char *id_out, at_store *s, const char *type, const void *payload, size_t len,
                         const at_opts *o)
{
    if (id_out)
        id_out[0] = '\0';
    ENTER_JOB(s);
    at_enqueue_item it;
    int rc = at__store_fill_job(s, &it.job, type, payload, len, o);
    if (rc)
        return rc;
    it.status = 0;
    memcpy(it.result_id, it.job.id, AT_ID_SIZE);
    rc = s->vt->enqueue(s->be, &it, 1);
    if (rc)
        return rc;
    if (id_out)
        memcpy(id_out, it.result_id, AT_ID_SIZE);
    if (it.status == 0) {
        at_store_notify(s);
        at__store_emit_enqueued(s, &it, 1);
    }
    return it.status;
}

AT_EXTERN int at_store_on_event(at_store *s, at_event_fn fn, void *ud)
{
    AT__ENTER(s);
    s->ev_fn = fn;
    s->ev_ud = ud;
    return 0;
}

void at__store_emit_enqueued(at_store *s, const at_enqueue_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (items[i].status == 0)
            at__metrics_enqueued(s->metrics, items[i].job.queue, 1);
    if (!s->ev_fn)
        return;
    for (size_t i = 0; i < n; i++) {
        if (items[i].status != 0)
            continue;
        /* A snapshot of what was asked for: the hook sees the id, type,
         * queue and payload without a store round trip. */
        at_job_info info = items[i].job;
        info.state = info.run_at != AT_TIME_NONE || info.delay_ms > 0 ? AT_STATE_SCHEDULED : AT_STATE_READY;
        if (info.nparents)
            info.state = AT_STATE_WAITING;
        at_job *j = NULL;
        if (at_job_create(&j, &info) == 0) {
            s->ev_fn(s->ev_ud, AT_EVENT_ENQUEUED, j, NULL);
            at_job_free(j);
        }
    }
}

AT_EXTERN int at_ack(at_store *s, const char *id, uint64_t token, const void *result, size_t len)
{
    ENTER_JOB(s);
    CANON_ID(s, id);
    if (!result && len)
        return at__err_set(s, AT_ERR_INVAL, 0, "result is NULL but its length is %zu", len);
    int64_t max = at__store_opt(s, AT__SOPT_MAX_RESULT);
    if ((uint64_t)len > (uint64_t)max)
        return at__err_set(s, AT_ERR_TOOBIG, 0, "result of %zu bytes exceeds the store's limit of %lld", len,
                           (long long)max);
    int rc = s->vt->ack(s->be, id, token, result, len);
    if (rc == 0)
        at__metrics_acked(s->metrics, id, at_store_clock_wall(s));
    else if (rc == AT_ERR_CANCELLED)
        at__metrics_cancelled(s->metrics, id);
    return rc;
}

AT_EXTERN int at_ack_many(int32_t *results_out, at_store *s, size_t n, const char *const *ids,
                          const uint64_t *tokens)
{
    ENTER_JOB(s);
    if (!results_out || !ids || !tokens)
        return at__err_set(s, AT_ERR_INVAL, 0, "at_ack_many needs results_out, ids and tokens");
    if (n < 1 || n > AT__MAX_POLL_BATCH)
        return at__err_set(s, AT_ERR_INVAL, 0, "n %zu is outside 1..%d", n, AT__MAX_POLL_BATCH);
    /* Every id is checked before the store is touched: a bad one fails the
     * whole call with nothing changed. */
    char(*canon)[AT_ID_SIZE] = at__malloc(n * sizeof *canon);
    const char **cids = at__malloc(n * sizeof *cids);
    int rc = canon && cids ? 0 : AT_ERR_NOMEM;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if ((rc = check_id(s, ids[i], canon[i])) != 0)
            rc = at__err_set(s, rc, 0, "id %zu is not a job id", i);
        else
            cids[i] = canon[i];
    }
    if (rc == 0) {
        int (*many)(at_backend *, size_t, const char *const *, const uint64_t *, int32_t *) =
            s->vt->size >= offsetof(at_store_vtable, ack_many) + sizeof s->vt->ack_many ? s->vt->ack_many : NULL;
        if (many) {
            rc = many(s->be, n, cids, tokens, results_out);
        } else {
            for (size_t i = 0; i < n; i++) {
                int r = s->vt->ack(s->be, cids[i], tokens[i], NULL, 0);
                if (r < 0 && r != AT_ERR_STALE && r != AT_ERR_CANCELLED && r != AT_ERR_NOTFOUND) {
                    /* A store failure part-way: the earlier acks stand, so
                     * say which did not happen. */
                    for (size_t k = i; k < n; k++)
                        results_out[k] = r;
                    rc = r;
                    break;
                }
                results_out[i] = r;
            }
        }
        int64_t now = at_store_clock_wall(s);
        for (size_t i = 0; i < n; i++) {
            if (results_out[i] == 0)
                at__metrics_acked(s->metrics, cids[i], now);
            else if (results_out[i] == AT_ERR_CANCELLED)
                at__metrics_cancelled(s->metrics, cids[i]);
        }
    }
    at__free(canon);
    at__free(cids);
    return rc;
}

AT_EXTERN int at_fail(int32_t *state_out, at_store *s, const char *id, uint64_t token, const char *error,
                      uint32_t flags)
{
    if (state_out)
        *state_out = 0;
    ENTER_JOB(s);
    CANON_ID(s, id);
    int rc;
    if (flags & ~(uint32_t)AT_FAIL_PERMANENT)
        return at__err_set(s, AT_ERR_INVAL, 0, "unknown at_fail flags 0x%x", (unsigned)flags);
    /* Long error texts (a whole stack trace) are cut, on a UTF-8 boundary. */
    char cut[AT__MAX_ERROR_TEXT + 1];
    if (error && strlen(error) > AT__MAX_ERROR_TEXT) {
        size_t n = AT__MAX_ERROR_TEXT;
        while (n > 0 && ((unsigned char)error[n] & 0xC0) == 0x80)
            n--;
        memcpy(cut, error, n);
        cut[n] = '\0';
        error = cut;
    }
    /* The backoff needs the attempt count and the job's policy.  Reading
     * first is race-free: the token pins the claim, and if it went stale in
     * between, the backend's fail refuses it (ADR/0003). */
    int64_t delay = 0;
    if (!(flags & AT_FAIL_PERMANENT)) {
        at_job *j = NULL;
        rc = s->vt->get(&j, s->be, id);
        if (rc)
            return rc;
        if (j->info.state == AT_STATE_RUNNING && j->info.token == token)
            delay = at__backoff_ms(j->info.attempts, j->info.backoff_base_ms, j->info.backoff_cap_ms,
                                   j->info.backoff_jitter, at__random64());
        at_job_free(j);
    }
    int32_t st = 0;
    rc = s->vt->fail(&st, s->be, id, token, error, flags, delay);
    if (state_out)
        *state_out = st;
    if (rc == 0)
        at__metrics_failed(s->metrics, id, st, at_store_clock_wall(s));
    else if (rc == AT_ERR_CANCELLED)
        at__metrics_cancelled(s->metrics, id);
    if (rc == 0 && st == AT_STATE_READY)
        at_store_notify(s);
    return rc;
}

AT_EXTERN int at_touch(at_store *s, const char *id, uint64_t token, int64_t extend_ms)
{
    ENTER_JOB(s);
    CANON_ID(s, id);
    if (extend_ms < 0 || extend_ms > AT__DAY_MS)
        return at__err_set(s, AT_ERR_RANGE, 0, "lease extension %lld ms is outside 0..%lld",
                           (long long)extend_ms, (long long)AT__DAY_MS);
    return s->vt->touch(s->be, id, token, extend_ms);
}

AT_EXTERN int at_cancel(int32_t *pending_out, at_store *s, const char *id)
{
    if (pending_out)
        *pending_out = 0;
    ENTER_JOB(s);
    CANON_ID(s, id);
    int rc;
    int32_t pending = 0;
    rc = s->vt->cancel(&pending, s->be, id);
    if (pending_out)
        *pending_out = pending;
    return rc;
}

AT_EXTERN int at_get(at_job **out, at_store *s, const char *id)
{
    if (!out)
        return AT_ERR_INVAL;
    *out = NULL;
    ENTER_JOB(s);
    CANON_ID(s, id);
    return s->vt->get(out, s->be, id);
}

AT_EXTERN int at_list(at_job **jobs_out, size_t *n_out, char *cursor_out, at_store *s, const char *queue,
                      int32_t state, const char *cursor, size_t limit)
{
    /* cursor and cursor_out may be the same buffer (the natural paging
     * loop), so the cursor is copied before cursor_out is cleared. */
    char cur[AT_CURSOR_SIZE] = "";
    if (cursor && strnlen(cursor, AT_CURSOR_SIZE) < AT_CURSOR_SIZE)
        strcpy(cur, cursor);
    else if (cursor)
        cur[0] = '\1'; /* too long: refused below */
    if (n_out)
        *n_out = 0;
    if (cursor_out)
        cursor_out[0] = '\0';
    ENTER_JOB(s);
    if (!jobs_out || !n_out || !cursor_out)
        return at__err_set(s, AT_ERR_INVAL, 0, "at_list needs jobs_out, n_out and cursor_out");
    if (limit < 1 || limit > AT__MAX_LIST_LIMIT)
        return at__err_set(s, AT_ERR_INVAL, 0, "limit %zu is outside 1..%d", limit, AT__MAX_LIST_LIMIT);
    if (state < AT_STATE_ANY || state >= AT_STATE_COUNT__)
        return at__err_set(s, AT_ERR_INVAL, 0, "%d is not a job state", (int)state);
    if (queue && at__check_name(queue))
        return at__err_set(s, AT_ERR_NAME, 0, "queue name must be 1..%d of [A-Za-z0-9._:-]", AT_NAME_MAX);
    if (cur[0] == '\1')
        return at__err_set(s, AT_ERR_INVAL, 0, "cursor is longer than a cursor can be");
    return s->vt->list(jobs_out, n_out, cursor_out, s->be, queue, state, cur[0] ? cur : NULL, limit);
}

AT_EXTERN int at_requeue(uint64_t *n_out, at_store *s, const char *queue, const char *id)
{
    if (n_out)
        *n_out = 0;
    ENTER_JOB(s);
    if (queue && at__check_name(queue))
        return at__err_set(s, AT_ERR_NAME, 0, "queue name must be 1..%d of [A-Za-z0-9._:-]", AT_NAME_MAX);
    char canon[AT_ID_SIZE];
    if (id) {
        int rc = check_id(s, id, canon);
        if (rc)
            return rc;
        id = canon;
    }
    uint64_t n = 0;
    int rc = s->vt->requeue(&n, s->be, queue, id);
    if (n_out)
        *n_out = n;
    if (rc == 0 && n > 0)
        at_store_notify(s);
    return rc;
}

AT_EXTERN int at_purge(uint64_t *n_out, at_store *s, int64_t older_than_ms)
{
    if (n_out)
        *n_out = 0;
    ENTER_JOB(s);
    if (older_than_ms == -1)
        older_than_ms = at__store_opt(s, AT__SOPT_RETENTION);
    if (older_than_ms < 0)
        return at__err_set(s, AT_ERR_RANGE, 0, "older_than_ms %lld is negative (use -1 for the retention)",
                           (long long)older_than_ms);
    uint64_t n = 0;
    int rc = s->vt->purge(&n, s->be, older_than_ms);
    if (n_out)
        *n_out = n;
    return rc;
}

/* ------------------------------------------------ queues and releases */

/* A version-2 optional method, or NULL when the backend's vtable predates it
 * or leaves it out. */
#define OPTIONAL_METHOD(s, m) ((s)->vt->size >= offsetof(at_store_vtable, m) + sizeof(s)->vt->m ? (s)->vt->m : NULL)

static int unsupported(at_store *s, const char *what)
{
    return at__err_set(s, AT_ERR_UNSUPPORTED, 0, "the %s backend does not support %s", s->vt->scheme, what);
}

static int queue_flag(at_store *s, const char *queue, int32_t paused)
{
    ENTER_JOB(s);
    if (at__check_name(queue))
        return at__err_set(s, AT_ERR_NAME, 0, "queue name must be 1..%d of [A-Za-z0-9._:-]", AT_NAME_MAX);
    int (*m)(at_backend *, const char *, int32_t) = OPTIONAL_METHOD(s, queue_pause);
    if (!m)
        return unsupported(s, "pausing queues");
    int rc = m(s->be, queue, paused);
    if (rc == 0 && !paused)
        at_store_notify(s); /* its READY jobs are claimable again */
    return rc;
}

AT_EXTERN int at_queue_pause(at_store *s, const char *queue)
{
    return queue_flag(s, queue, 1);
}

AT_EXTERN int at_queue_resume(at_store *s, const char *queue)
{
    return queue_flag(s, queue, 0);
}

AT_EXTERN int at_queue_is_paused(int32_t *paused_out, at_store *s, const char *queue)
{
    if (paused_out)
        *paused_out = 0;
    ENTER_JOB(s);
    if (!paused_out)
        return at__err_set(s, AT_ERR_INVAL, 0, "paused_out is NULL");
    if (at__check_name(queue))
        return at__err_set(s, AT_ERR_NAME, 0, "queue name must be 1..%d of [A-Za-z0-9._:-]", AT_NAME_MAX);
    int (*m)(int32_t *, at_backend *, const char *) = OPTIONAL_METHOD(s, queue_is_paused);
    if (!m)
        return unsupported(s, "pausing queues");
    return m(paused_out, s->be, queue);
}

AT_EXTERN int at_release(at_store *s, const char *id, uint64_t token, int64_t delay_ms)
{
    ENTER_JOB(s);
    CANON_ID(s, id);
    if (delay_ms < 0 || delay_ms > AT__YEAR_MS)
        return at__err_set(s, AT_ERR_RANGE, 0, "delay %lld ms is outside 0..%lld", (long long)delay_ms,
                           (long long)AT__YEAR_MS);
    int (*m)(at_backend *, const char *, uint64_t, int64_t) = OPTIONAL_METHOD(s, release);
    if (!m)
        return unsupported(s, "releasing jobs");
    int rc = m(s->be, id, token, delay_ms);
    if (rc == 0)
        at__metrics_released(s->metrics, id);
    else if (rc == AT_ERR_CANCELLED)
        at__metrics_cancelled(s->metrics, id);
    if (rc == 0 && delay_ms == 0)
        at_store_notify(s);
    return rc;
}

int at__store_rate_take(uint32_t *granted_out, int64_t *wait_ms_out, at_store *s, const char *queue, uint32_t limit,
                        int64_t period_ms, uint32_t want)
{
    *granted_out = 0;
    *wait_ms_out = 0;
    int (*m)(uint32_t *, int64_t *, at_backend *, const char *, uint32_t, int64_t, uint32_t) =
        OPTIONAL_METHOD(s, rate_take);
    if (!m)
        return unsupported(s, "rate limits");
    return m(granted_out, wait_ms_out, s->be, queue, limit, period_ms, want);
}

bool at__store_has_rate(const at_store *s)
{
    return OPTIONAL_METHOD(s, rate_take) != NULL;
}
