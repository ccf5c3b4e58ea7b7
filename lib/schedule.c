/*
 * schedule.c - schedule definitions, their stored form, and the at_schedule_*
 * calls that keep them in the store.
 *
 * Backends store a schedule as opaque bytes (ADR/0012): the core alone knows
 * the encoding, so a new template field (a new job option) needs no change in
 * any backend and no schema migration.  The encoding is a magic word and
 * tagged fields; a reader skips tags it does not know, so a schedule written
 * by a newer library still fires under an older one sharing the store.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "schedule.h"

#define SCHED_MAGIC 0x61736368u /* "asch" */
#define SPEC_MAGIC "ATS1"
#define MAX_EXPR 256
#define DEFAULT_GRACE_MS 10000
#define DEFAULT_CAP 100
#define MAX_CAP 10000

enum {
    TAG_EXPR = 1,
    TAG_TZ,
    TAG_TYPE,
    TAG_PAYLOAD,
    TAG_QUEUE,
    TAG_PRIORITY,
    TAG_MAX_ATTEMPTS,
    TAG_BACKOFF_BASE,
    TAG_BACKOFF_CAP,
    TAG_BACKOFF_JITTER,
    TAG_LEASE,
    TAG_MISFIRE,
    TAG_GRACE,
    TAG_CAP,
    TAG_IDEM_TTL,
};

AT_EXTERN void at_sched_row_init(at_sched_row *row)
{
    if (!row)
        return;
    memset(row, 0, sizeof *row);
    row->size = sizeof *row;
    row->created_at = row->updated_at = row->last_fire_at = AT_TIME_NONE;
}

static at_schedule *sched_alloc(void)
{
    at_schedule *s = at__calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->magic = SCHED_MAGIC;
    at__opts_init(&s->opts);
    s->misfire = AT_MISFIRE_ONCE;
    s->grace_ms = DEFAULT_GRACE_MS;
    s->cap = DEFAULT_CAP;
    s->created_at = s->updated_at = s->last_fire_at = AT_TIME_NONE;
    return s;
}

static bool valid(const at_schedule *s)
{
    return s && s->magic == SCHED_MAGIC;
}

AT_EXTERN void at_schedule_free(at_schedule *s)
{
    if (!valid(s))
        return;
    at__free(s->expr);
    at__free(s->tz);
    at__free(s->type);
    at__free(s->payload);
    at__cron_free(s->cron);
    s->magic = 0;
    at__free(s);
}

/* Parse the expression and load the zone once, so every tick computation
 * later is a pure function with nothing left to fail but the range. */
static int compile(at_schedule *s)
{
    int rc = at__cron_parse(&s->cron, s->expr);
    if (rc)
        return rc;
    return at__tz_load(&s->zone, s->tz);
}

AT_EXTERN int at_schedule_new(at_schedule **out, const char *name, const char *expr, const char *tz,
                              const char *type)
{
    at__err_clear();
    if (!out)
        return at__err_set(NULL, AT_ERR_INVAL, 0, "out is NULL");
    *out = NULL;
    if (at__check_name(name))
        return at__err_set(NULL, AT_ERR_NAME, 0, "schedule name must be 1..%d of [A-Za-z0-9._:-]", AT_NAME_MAX);
    if (at__check_name(type))
        return at__err_set(NULL, AT_ERR_NAME, 0, "job type must be 1..%d of [A-Za-z0-9._:-]", AT_NAME_MAX);
    if (!expr || strlen(expr) > MAX_EXPR)
        return at__err_set(NULL, AT_ERR_INVAL, 0, "cron expression must be 1..%d bytes", MAX_EXPR);
    if (tz && strcmp(tz, "UTC") == 0)
        tz = NULL;
    at_schedule *s = sched_alloc();
    if (!s)
        return at__err_set(NULL, AT_ERR_NOMEM, 0, "out of memory");
    snprintf(s->name, sizeof s->name, "%s", name);
    s->expr = at__strdup(expr);
    s->type = at__strdup(type);
    s->tz = tz ? at__strdup(tz) : NULL;
    int rc = (!s->expr || !s->type || (tz && !s->tz)) ? at__err_set(NULL, AT_ERR_NOMEM, 0, "out of memory")
                                                      : compile(s);
    /* A schedule that can never fire is a mistake worth reporting now. */
    int64_t next;
    if (rc == 0)
        rc = at__cron_next(s->cron, s->zone, 0, &next);
    if (rc) {
        at_schedule_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

AT_EXTERN int at_schedule_set_payload(at_schedule *s, const void *payload, size_t len)
{
    at__err_clear();
    if (!valid(s) || (!payload && len > 0))
        return at__err_set(NULL, AT_ERR_INVAL, 0, "bad schedule or payload");
    if (len > ((size_t)1 << 30)) /* as at_batch_add: refused before any copy */
        return at__err_set(NULL, AT_ERR_TOOBIG, 0, "payload of %zu bytes exceeds any store's limit", len);
    void *p = NULL;
    if (len > 0 && !(p = at__memdup(payload, len)))
        return at__err_set(NULL, AT_ERR_NOMEM, 0, "out of memory");
    at__free(s->payload);
    s->payload = p;
    s->payload_len = len;
    return 0;
}

AT_EXTERN int at_schedule_set_opts(at_schedule *s, const at_opts *o)
{
    at__err_clear();
    if (!valid(s))
        return at__err_set(NULL, AT_ERR_INVAL, 0, "bad schedule");
    if (!o) {
        at__opts_init(&s->opts);
        return 0;
    }
    if (o->run_at != AT__UNSET || o->delay_ms != AT__UNSET || o->idem_key)
        return at__err_set(NULL, AT_ERR_INVAL, 0,
                           "a schedule's options cannot set RUN_AT, DELAY_MS or an idempotency key: "
                           "the scheduler sets them per tick");
    at_opts copy = *o;
    copy.idem_key = NULL;
    s->opts = copy;
    return 0;
}

AT_EXTERN int at_schedule_set_misfire(at_schedule *s, int32_t policy, int64_t grace_ms, int32_t cap)
{
    at__err_clear();
    if (!valid(s))
        return at__err_set(NULL, AT_ERR_INVAL, 0, "bad schedule");
    if (policy != AT_MISFIRE_SKIP && policy != AT_MISFIRE_ONCE && policy != AT_MISFIRE_ALL)
        return at__err_set(NULL, AT_ERR_INVAL, 0, "unknown misfire policy %d", (int)policy);
    if (grace_ms < 0 || grace_ms > AT__DAY_MS)
        return at__err_set(NULL, AT_ERR_RANGE, 0, "misfire grace %lld ms is outside 0..%lld", (long long)grace_ms,
                           (long long)AT__DAY_MS);
    if (cap < 1 || cap > MAX_CAP)
        return at__err_set(NULL, AT_ERR_RANGE, 0, "misfire cap %d is outside 1..%d", (int)cap, MAX_CAP);
    s->misfire = policy;
    s->grace_ms = grace_ms;
    s->cap = cap;
    return 0;
}

AT_EXTERN const char *at_schedule_name(const at_schedule *s)
{
    return valid(s) ? s->name : NULL;
}

AT_EXTERN const char *at_schedule_expr(const at_schedule *s)
{
    return valid(s) ? s->expr : NULL;
}

AT_EXTERN const char *at_schedule_tz(const at_schedule *s)
{
    return valid(s) ? (s->tz ? s->tz : "UTC") : NULL;
}

AT_EXTERN const char *at_schedule_type(const at_schedule *s)
{
    return valid(s) ? s->type : NULL;
}

AT_EXTERN const void *at_schedule_payload(const at_schedule *s, size_t *len_out)
{
    static const char empty[1];
    if (len_out)
        *len_out = valid(s) ? s->payload_len : 0;
    if (!valid(s))
        return NULL;
    return s->payload ? s->payload : empty;
}

AT_EXTERN const char *at_schedule_queue(const at_schedule *s)
{
    if (!valid(s))
        return NULL;
    return s->opts.queue[0] ? s->opts.queue : "default";
}

AT_EXTERN int32_t at_schedule_misfire(const at_schedule *s, int64_t *grace_ms_out, int32_t *cap_out)
{
    if (!valid(s))
        return AT_ERR_INVAL;
    if (grace_ms_out)
        *grace_ms_out = s->grace_ms;
    if (cap_out)
        *cap_out = s->cap;
    return s->misfire;
}

AT_EXTERN int32_t at_schedule_paused(const at_schedule *s)
{
    return valid(s) ? s->paused : 0;
}

AT_EXTERN int64_t at_schedule_time(const at_schedule *s, int32_t which)
{
    if (!valid(s))
        return AT_TIME_NONE;
    switch (which) {
    case AT_SCHEDULE_TIME_CREATED:
        return s->created_at;
    case AT_SCHEDULE_TIME_UPDATED:
        return s->updated_at;
    case AT_SCHEDULE_TIME_LAST_FIRE:
        return s->last_fire_at;
    default:
        return AT_TIME_NONE;
    }
}

AT_EXTERN const char *at_schedule_last_job_id(const at_schedule *s)
{
    return valid(s) && s->last_job_id[0] ? s->last_job_id : NULL;
}

AT_EXTERN int at_schedule_next(int64_t *next_out, const at_schedule *s, int64_t after_ms)
{
    at__err_clear();
    if (!next_out || !valid(s))
        return at__err_set(NULL, AT_ERR_INVAL, 0, "bad schedule or next_out");
    *next_out = AT_TIME_NONE; /* what a failure leaves, as documented */
    return at__cron_next(s->cron, s->zone, after_ms, next_out);
}

/* ------------------------------------------------------------- encoding */

struct buf {
    unsigned char *p;
    size_t n, cap;
    bool oom;
};

static void put(struct buf *b, const void *p, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 128;
        while (cap < b->n + n)
            cap *= 2;
        unsigned char *q = at__realloc(b->p, cap);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void put_field(struct buf *b, unsigned tag, const void *p, size_t n)
{
    unsigned char h[5] = {(unsigned char)tag, (unsigned char)(n >> 24), (unsigned char)(n >> 16),
                          (unsigned char)(n >> 8), (unsigned char)n};
    put(b, h, sizeof h);
    put(b, p, n);
}

static void put_int(struct buf *b, unsigned tag, int64_t v)
{
    unsigned char x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (unsigned char)((uint64_t)v >> (56 - 8 * i));
    put_field(b, tag, x, sizeof x);
}

int at__sched_encode(const at_schedule *s, void **out, size_t *len_out)
{
    struct buf b = {0};
    put(&b, SPEC_MAGIC, 4);
    put_field(&b, TAG_EXPR, s->expr, strlen(s->expr));
    if (s->tz)
        put_field(&b, TAG_TZ, s->tz, strlen(s->tz));
    put_field(&b, TAG_TYPE, s->type, strlen(s->type));
    put_field(&b, TAG_PAYLOAD, s->payload, s->payload_len);
    if (s->opts.queue[0])
        put_field(&b, TAG_QUEUE, s->opts.queue, strlen(s->opts.queue));
    const struct {
        unsigned tag;
        int64_t v;
    } ints[] = {
        {TAG_PRIORITY, s->opts.priority},       {TAG_MAX_ATTEMPTS, s->opts.max_attempts},
        {TAG_BACKOFF_BASE, s->opts.backoff_base_ms}, {TAG_BACKOFF_CAP, s->opts.backoff_cap_ms},
        {TAG_BACKOFF_JITTER, s->opts.backoff_jitter}, {TAG_LEASE, s->opts.lease_ms},
        {TAG_MISFIRE, s->misfire},               {TAG_GRACE, s->grace_ms},
        {TAG_CAP, s->cap},                      {TAG_IDEM_TTL, s->opts.idem_ttl_ms},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (ints[i].v != AT__UNSET)
            put_int(&b, ints[i].tag, ints[i].v);
    if (b.oom) {
        at__free(b.p);
        return AT_ERR_NOMEM;
    }
    *out = b.p;
    *len_out = b.n;
    return 0;
}

static char *dup_text(const unsigned char *p, size_t n)
{
    char *s = at__malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

static int64_t get_int(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return (int64_t)v;
}

/* The ranges at_opts_set_int enforces, for a template read back from a
 * store: the scheduler hands it to enqueue, which trusts the setters. */
static bool opt_in(int64_t v, int64_t lo, int64_t hi)
{
    return v == AT__UNSET || (v >= lo && v <= hi);
}

static bool template_in_range(const at_opts *o)
{
    return opt_in(o->priority, -AT_PRIORITY_MAX, AT_PRIORITY_MAX) &&
           opt_in(o->max_attempts, 1, AT__MAX_ATTEMPTS_LIMIT) && opt_in(o->backoff_base_ms, 0, AT__YEAR_MS) &&
           opt_in(o->backoff_cap_ms, 0, AT__YEAR_MS) && opt_in(o->backoff_jitter, 0, 1000) &&
           opt_in(o->lease_ms, 1, AT__DAY_MS) && opt_in(o->idem_ttl_ms, 1, 100 * AT__YEAR_MS);
}

/* Decode a stored schedule.  Anything malformed is AT_ERR_CORRUPT naming the
 * schedule: a store's bytes are not trusted to be what this library wrote. */
int at__sched_decode(at_schedule **out, const at_sched_row *row)
{
    *out = NULL;
    const unsigned char *p = row->spec, *end = p + row->spec_len;
    if (row->spec_len < 4 || memcmp(p, SPEC_MAGIC, 4) != 0)
        return at__err_set(NULL, AT_ERR_CORRUPT, 0, "schedule '%s' was not written by this library", row->name);
    at_schedule *s = sched_alloc();
    if (!s)
        return at__err_set(NULL, AT_ERR_NOMEM, 0, "out of memory");
    snprintf(s->name, sizeof s->name, "%s", row->name);
    int rc = 0;
    for (p += 4; p < end && rc == 0;) {
        if (end - p < 5) {
            rc = AT_ERR_CORRUPT;
            break;
        }
        unsigned tag = p[0];
        size_t n = (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4];
        p += 5;
        if ((size_t)(end - p) < n) {
            rc = AT_ERR_CORRUPT;
            break;
        }
        bool is_int = tag >= TAG_PRIORITY && tag <= TAG_IDEM_TTL;
        if (is_int && n != 8) {
            rc = AT_ERR_CORRUPT;
            break;
        }
        int64_t v = is_int ? get_int(p) : 0;
        /* A repeated tag (a foreign writer's) replaces the earlier value,
         * which is freed, not leaked. */
        switch (tag) {
        case TAG_EXPR:
            at__free(s->expr);
            rc = (s->expr = dup_text(p, n)) ? 0 : AT_ERR_NOMEM;
            break;
        case TAG_TZ:
            at__free(s->tz);
            rc = (s->tz = dup_text(p, n)) ? 0 : AT_ERR_NOMEM;
            break;
        case TAG_TYPE:
            at__free(s->type);
            rc = (s->type = dup_text(p, n)) ? 0 : AT_ERR_NOMEM;
            break;
        case TAG_PAYLOAD:
            at__free(s->payload);
            s->payload = NULL;
            if (n > 0 && !(s->payload = at__memdup(p, n)))
                rc = AT_ERR_NOMEM;
            s->payload_len = n;
            break;
        case TAG_QUEUE:
            if (n == 0 || n > AT_NAME_MAX)
                rc = AT_ERR_CORRUPT;
            else
                memcpy(s->opts.queue, p, n), s->opts.queue[n] = '\0';
            break;
        case TAG_PRIORITY:
            s->opts.priority = v;
            break;
        case TAG_MAX_ATTEMPTS:
            s->opts.max_attempts = v;
            break;
        case TAG_BACKOFF_BASE:
            s->opts.backoff_base_ms = v;
            break;
        case TAG_BACKOFF_CAP:
            s->opts.backoff_cap_ms = v;
            break;
        case TAG_BACKOFF_JITTER:
            s->opts.backoff_jitter = v;
            break;
        case TAG_LEASE:
            s->opts.lease_ms = v;
            break;
        case TAG_MISFIRE:
            s->misfire = (int32_t)v;
            break;
        case TAG_GRACE:
            s->grace_ms = v;
            break;
        case TAG_CAP:
            s->cap = (int32_t)v;
            break;
        case TAG_IDEM_TTL:
            s->opts.idem_ttl_ms = v;
            break;
        default: /* written by a newer library: not ours to judge */
            break;
        }
        p += n;
    }
    if (rc == 0 && (!s->expr || !s->type || at__check_name(s->type) || s->misfire < AT_MISFIRE_SKIP ||
                    s->misfire > AT_MISFIRE_ALL || s->cap < 1 || s->cap > MAX_CAP || s->grace_ms < 0 ||
                    s->grace_ms > AT__DAY_MS || !template_in_range(&s->opts)))
        rc = AT_ERR_CORRUPT;
    if (rc == 0 && (rc = compile(s)) != 0)
        rc = AT_ERR_CORRUPT;
    if (rc) {
        at_schedule_free(s);
        if (rc == AT_ERR_NOMEM)
            return at__err_set(NULL, rc, 0, "out of memory");
        return at__err_set(NULL, AT_ERR_CORRUPT, 0, "schedule '%s' has a malformed stored definition", row->name);
    }
    s->paused = row->paused ? 1 : 0;
    s->created_at = row->created_at;
    s->updated_at = row->updated_at;
    s->last_fire_at = row->last_fire_at;
    snprintf(s->last_job_id, sizeof s->last_job_id, "%s", row->last_job_id);
    *out = s;
    return 0;
}

/* --------------------------------------------------------- store calls */

bool at__store_has_sched(const at_store *st)
{
    const at_store_vtable *vt = st->vt;
    return vt->version >= 2 && vt->size >= offsetof(at_store_vtable, lease_release) + sizeof vt->lease_release &&
           vt->sched_put && vt->sched_remove && vt->sched_pause && vt->sched_list && vt->sched_fired &&
           vt->lease_acquire && vt->lease_release;
}

static int enter(at_store *st, const char *name)
{
    int rc = at__store_enter_job(st);
    if (rc)
        return rc;
    if (!at__store_has_sched(st))
        return at__err_set(st, AT_ERR_UNSUPPORTED, 0, "the %s backend does not store schedules", st->vt->scheme);
    if (name && at__check_name(name))
        return at__err_set(st, AT_ERR_NAME, 0, "schedule name must be 1..%d of [A-Za-z0-9._:-]", AT_NAME_MAX);
    return 0;
}

AT_EXTERN int at_schedule_add(int32_t *created_out, at_store *st, const at_schedule *s)
{
    if (created_out)
        *created_out = 0;
    int rc = enter(st, NULL);
    if (rc)
        return rc;
    if (!valid(s))
        return at__err_set(st, AT_ERR_INVAL, 0, "bad schedule");
    /* The template must make valid jobs with this store's limits; finding
     * out at the first tick, in a thread nobody watches, is too late. */
    at_job_info probe;
    rc = at__store_fill_job(st, &probe, s->type, s->payload, s->payload_len, &s->opts);
    if (rc)
        return rc;
    void *spec;
    size_t len;
    if ((rc = at__sched_encode(s, &spec, &len)) != 0)
        return at__err_set(st, rc, 0, "out of memory");
    int32_t created = 0;
    rc = st->vt->sched_put(&created, st->be, s->name, spec, len);
    at__free(spec);
    if (rc == 0) {
        if (created_out)
            *created_out = created;
        at__sched_changed(st);
    }
    return rc;
}

AT_EXTERN int at_schedule_remove(at_store *st, const char *name)
{
    int rc = enter(st, name ? name : ""); /* NULL here is a bad name, not "every schedule" */
    if (rc == 0 && (rc = st->vt->sched_remove(st->be, name)) == 0)
        at__sched_changed(st);
    return rc;
}

static int set_paused(at_store *st, const char *name, int32_t paused)
{
    int rc = enter(st, name ? name : ""); /* NULL here is a bad name, not "every schedule" */
    if (rc == 0 && (rc = st->vt->sched_pause(st->be, name, paused)) == 0)
        at__sched_changed(st);
    return rc;
}

AT_EXTERN int at_schedule_pause(at_store *st, const char *name)
{
    return set_paused(st, name, 1);
}

AT_EXTERN int at_schedule_resume(at_store *st, const char *name)
{
    return set_paused(st, name, 0);
}

struct collect {
    at_schedule **v;
    size_t n, cap;
    int err;
    bool skip_bad;  /* the scheduler: one unreadable schedule must not stop the others */
    size_t skipped;
};

static int collect_row(void *ud, const at_sched_row *row)
{
    struct collect *c = ud;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        at_schedule **v = at__realloc(c->v, cap * sizeof *v);
        if (!v)
            return c->err = AT_ERR_NOMEM;
        c->v = v;
        c->cap = cap;
    }
    int rc = at__sched_decode(&c->v[c->n], row);
    if (rc == AT_ERR_CORRUPT && c->skip_bad) {
        c->skipped++;
        return 0;
    }
    if (rc)
        return c->err = rc;
    c->n++;
    return 0;
}

int at__sched_load(at_schedule ***list_out, size_t *n_out, size_t *skipped_out, at_store *st, const char *name)
{
    struct collect c = {.skip_bad = skipped_out != NULL};
    int rc = st->vt->sched_list(st->be, name, collect_row, &c);
    if (rc == 0 && c.err)
        rc = c.err;
    if (rc) {
        at_schedule_list_free(c.v, c.n);
        /* The decode error's detail was set without a store: repeat it on
         * the store so at_store_errmsg explains the failure. */
        if (c.err && c.err != AT_ERR_NOMEM) {
            /* A copy: at_last_error() is the buffer at__err_set writes. */
            char msg[512];
            snprintf(msg, sizeof msg, "%s", at_last_error());
            return at__err_set(st, rc, 0, "%s", msg);
        }
        return rc == AT_ERR_NOMEM ? at__err_set(st, rc, 0, "out of memory") : rc;
    }
    *list_out = c.v;
    *n_out = c.n;
    if (skipped_out)
        *skipped_out = c.skipped;
    return 0;
}

AT_EXTERN int at_schedule_get(at_schedule **out, at_store *st, const char *name)
{
    if (out)
        *out = NULL;
    int rc = enter(st, name ? name : ""); /* NULL here is a bad name, not "every schedule" */
    if (rc)
        return rc;
    if (!out)
        return at__err_set(st, AT_ERR_INVAL, 0, "out is NULL");
    at_schedule **v;
    size_t n;
    if ((rc = at__sched_load(&v, &n, NULL, st, name)) != 0)
        return rc;
    if (n != 1) {
        at_schedule_list_free(v, n);
        return at__err_set(st, AT_ERR_INTERNAL, 0, "the %s backend listed %zu schedules for one name",
                           st->vt->scheme, n);
    }
    *out = v[0];
    at__free(v);
    return 0;
}

AT_EXTERN int at_schedule_list(at_schedule ***list_out, size_t *n_out, at_store *st)
{
    if (list_out)
        *list_out = NULL;
    if (n_out)
        *n_out = 0;
    int rc = enter(st, NULL);
    if (rc)
        return rc;
    if (!list_out || !n_out)
        return at__err_set(st, AT_ERR_INVAL, 0, "list_out and n_out are required");
    return at__sched_load(list_out, n_out, NULL, st, NULL);
}

AT_EXTERN void at_schedule_list_free(at_schedule **list, size_t n)
{
    if (!list)
        return;
    for (size_t i = 0; i < n; i++)
        at_schedule_free(list[i]);
    at__free(list);
}
