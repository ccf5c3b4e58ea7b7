/*
 * fuzz_record.c - libFuzzer target for the stored forms the library decodes:
 * the Redis job record and schedule record (ADR 0008; decode_job() and
 * sched_decode() in backends/redis.c, reached through fake_redis.c) and the
 * schedule spec every backend stores (at__sched_encode/decode, lib/schedule.c).
 *
 * The first byte picks the form:
 *   'J' job record: u8 class length, the class, then the record; the
 *       library's decoder must agree with a reference decoder written here
 *       from ADR 0008 (same verdict, same fields), and the reference encoder
 *       must give back exactly the bytes it decoded, so the reference itself
 *       is checked.  'j': the same, but the record is built by the reference
 *       encoder from fields taken from the input (reaches every part).
 *   'S' schedule spec: decode is 0 or AT_ERR_CORRUPT; what decodes encodes to
 *       bytes that decode to the same schedule and encode to the same bytes.
 *   'R' Redis schedule record: 0 or AT_ERR_CORRUPT, the row inside the record;
 *       its spec then goes through 'S'.
 * Strings in records are taken up to their first NUL (the API's strings are C
 * strings), which the reference applies too.
 *
 * Build and run: `make fuzz`, or as fuzz_redis_reply.c says with
 * tests/fuzz/fuzz_record.c in place of fuzz_redis_reply.c, then
 *   ./fuzz_record -max_total_time=60 -max_len=1024 corpus/ tests/fuzz/record/
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_redis.h"
#include "internal.h"
#include "schedule.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...)                                                                                            \
    do {                                                                                                     \
        fprintf(stderr, "fuzz_record: " __VA_ARGS__);                                                        \
        fputc('\n', stderr);                                                                                 \
        abort();                                                                                             \
    } while (0)

/* ------------------------------------------------- reference job record */

#define CLASS_HEAD 32
#define REC_HEAD 24
#define REC_EXT 36

/* Every part of a record as ADR 0008 lays it out, kept whole. */
struct ref {
    uint8_t state, flags;
    uint32_t class_no;
    int16_t priority;
    int64_t created, run_at;
    uint32_t attempts;
    int64_t token, started, lf, updated;
    uint8_t wl, policy, nl;
    const uint8_t *wf, *node, *parents, *others;
    uint32_t npar;
    uint16_t nothers;
    const uint8_t *tp;
    uint16_t klen;
    const uint8_t *key;
    uint32_t elen, reslen;
    const uint8_t *err, *res, *payload;
    size_t plen;
};

static uint64_t le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

struct rd {
    const uint8_t *p, *end;
    bool bad;
};

static const uint8_t *take(struct rd *r, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *q = r->p;
    r->p += n;
    return q;
}

static uint64_t take_le(struct rd *r, int n)
{
    const uint8_t *q = take(r, (size_t)n);
    return q ? le(q, n) : 0;
}

/* true when the record is well-formed by the ADR (and the class too). */
static bool ref_decode(struct ref *f, const uint8_t *p, size_t n, size_t cls_len)
{
    memset(f, 0, sizeof *f);
    struct rd r = {p, p + n, false};
    f->state = (uint8_t)take_le(&r, 1);
    f->flags = (uint8_t)take_le(&r, 1);
    f->class_no = (uint32_t)take_le(&r, 4);
    f->priority = (int16_t)take_le(&r, 2);
    f->created = (int64_t)take_le(&r, 8);
    f->run_at = (int64_t)take_le(&r, 8);
    if (f->flags & 2) {
        f->attempts = (uint32_t)take_le(&r, 4);
        f->token = (int64_t)take_le(&r, 8);
        f->started = (int64_t)take_le(&r, 8);
        f->lf = (int64_t)take_le(&r, 8);
        f->updated = (int64_t)take_le(&r, 8);
    }
    if (f->flags & 32) {
        f->wl = (uint8_t)take_le(&r, 1);
        if (f->wl != 0 && f->wl != AT_ID_LEN)
            return false;
        f->wf = take(&r, f->wl);
        f->policy = (uint8_t)take_le(&r, 1);
        f->nl = (uint8_t)take_le(&r, 1);
        f->node = take(&r, f->nl);
        f->npar = (uint32_t)take_le(&r, 4);
        if (!r.bad && (size_t)(r.end - r.p) / 16 < f->npar)
            return false;
        f->parents = take(&r, (size_t)f->npar * 16);
        f->nothers = (uint16_t)take_le(&r, 2);
        f->others = take(&r, (size_t)f->nothers * 26);
    }
    if (f->flags & 64)
        f->tp = take(&r, 26);
    if (f->flags & 4) {
        f->klen = (uint16_t)take_le(&r, 2);
        if (f->klen > AT_KEY_MAX)
            return false;
        f->key = take(&r, f->klen);
    }
    if (f->flags & 8) {
        f->elen = (uint32_t)take_le(&r, 4);
        f->err = take(&r, f->elen);
    }
    if (f->flags & 16) {
        f->reslen = (uint32_t)take_le(&r, 4);
        f->res = take(&r, f->reslen);
    }
    if (r.bad || f->state < AT_STATE_WAITING || f->state > AT_STATE_CANCELLED || cls_len < CLASS_HEAD + 1 ||
        cls_len > CLASS_HEAD + AT_NAME_MAX)
        return false;
    f->payload = r.p;
    f->plen = (size_t)(r.end - r.p);
    return true;
}

struct wb {
    uint8_t *p;
    size_t n, cap;
};

static void put(struct wb *w, const void *p, size_t n)
{
    if (w->n + n > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->n + n)
            cap *= 2;
        uint8_t *q = realloc(w->p, cap);
        if (!q)
            abort();
        w->p = q;
        w->cap = cap;
    }
    if (n)
        memcpy(w->p + w->n, p, n);
    w->n += n;
}

static void put_le(struct wb *w, uint64_t v, int n)
{
    uint8_t b[8];
    for (int i = 0; i < n; i++, v >>= 8)
        b[i] = (uint8_t)v;
    put(w, b, (size_t)n);
}

static void ref_encode(struct wb *w, const struct ref *f)
{
    put_le(w, f->state, 1);
    put_le(w, f->flags, 1);
    put_le(w, f->class_no, 4);
    put_le(w, (uint16_t)f->priority, 2);
    put_le(w, (uint64_t)f->created, 8);
    put_le(w, (uint64_t)f->run_at, 8);
    if (f->flags & 2) {
        put_le(w, f->attempts, 4);
        put_le(w, (uint64_t)f->token, 8);
        put_le(w, (uint64_t)f->started, 8);
        put_le(w, (uint64_t)f->lf, 8);
        put_le(w, (uint64_t)f->updated, 8);
    }
    if (f->flags & 32) {
        put_le(w, f->wl, 1);
        put(w, f->wf, f->wl);
        put_le(w, f->policy, 1);
        put_le(w, f->nl, 1);
        put(w, f->node, f->nl);
        put_le(w, f->npar, 4);
        put(w, f->parents, (size_t)f->npar * 16);
        put_le(w, f->nothers, 2);
        put(w, f->others, (size_t)f->nothers * 26);
    }
    if (f->flags & 64)
        put(w, f->tp, 26);
    if (f->flags & 4) {
        put_le(w, f->klen, 2);
        put(w, f->key, f->klen);
    }
    if (f->flags & 8) {
        put_le(w, f->elen, 4);
        put(w, f->err, f->elen);
    }
    if (f->flags & 16) {
        put_le(w, f->reslen, 4);
        put(w, f->res, f->reslen);
    }
    put(w, f->payload, f->plen);
}

/* The C string a record's bytes make: up to the first NUL. */
static void same_text(const char *what, const char *got, const uint8_t *p, size_t n)
{
    const uint8_t *z = p ? memchr(p, '\0', n) : NULL;
    size_t want = z ? (size_t)(z - p) : n;
    if (!got || strlen(got) != want || (want && memcmp(got, p, want) != 0))
        FAIL("%s differs from the record", what);
}

static void same_i64(const char *what, int64_t got, int64_t want)
{
    if (got != want)
        FAIL("%s: decoded %lld, the record holds %lld", what, (long long)got, (long long)want);
}

static void check_job_record(const uint8_t *cls, size_t cls_len, const uint8_t *rec, size_t rec_len, int64_t left)
{
    static const uint8_t bid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    /* Exact-size copies: ASan sees any read past either. */
    uint8_t *c = malloc(cls_len ? cls_len : 1), *r = malloc(rec_len ? rec_len : 1);
    if (!c || !r)
        abort();
    memcpy(c, cls, cls_len);
    memcpy(r, rec, rec_len);
    at_job *j = NULL;
    int rc = fz_redis_decode_job(&j, bid, "q1", r, rec_len, c, cls_len, left);
    struct ref f;
    bool ok = ref_decode(&f, r, rec_len, cls_len);
    if (rc != 0 && rc != AT_ERR_CORRUPT && rc != AT_ERR_NOMEM)
        FAIL("decode_job returned %d", rc);
    if ((rc == AT_ERR_CORRUPT) == ok)
        FAIL("decode_job says %d, the ADR's layout says %s", rc, ok ? "well-formed" : "malformed");
    if (ok) {
        /* The reference reproduces its input exactly. */
        struct wb w = {0};
        ref_encode(&w, &f);
        if (w.n != rec_len || memcmp(w.p, r, rec_len) != 0)
            FAIL("reference encode(decode(x)) != x");
        free(w.p);
    }
    if (rc == 0) {
        char id[AT_ID_SIZE];
        at_id_format(id, bid);
        if (strcmp(at_job_id(j), id) != 0 || strcmp(at_job_queue(j), "q1") != 0)
            FAIL("id or queue");
        same_text("type", at_job_type(j), c + CLASS_HEAD, cls_len - CLASS_HEAD);
        same_i64("max_attempts", at_job_max_attempts(j), (int64_t)le(c, 4));
        same_i64("state", at_job_state(j), f.state);
        same_i64("priority", at_job_priority(j), f.priority);
        same_i64("created", at_job_time(j, AT_JOB_TIME_CREATED), f.created);
        same_i64("run_at", at_job_time(j, AT_JOB_TIME_RUN_AT), f.run_at);
        same_i64("cancel", at_job_cancel_requested(j), f.flags & 1);
        bool ext = f.flags & 2;
        same_i64("attempts", at_job_attempts(j), ext ? f.attempts : 0);
        same_i64("token", (int64_t)at_job_token(j), ext ? f.token : 0);
        same_i64("started", at_job_time(j, AT_JOB_TIME_STARTED), ext ? f.started : AT_TIME_NONE);
        same_i64("updated", at_job_time(j, AT_JOB_TIME_UPDATED), ext ? f.updated : f.created);
        int64_t lf = ext ? f.lf : AT_TIME_NONE;
        same_i64("lease", at_job_time(j, AT_JOB_TIME_LEASE), f.state == AT_STATE_RUNNING ? lf : AT_TIME_NONE);
        same_i64("finished", at_job_time(j, AT_JOB_TIME_FINISHED),
                 f.state >= AT_STATE_SUCCEEDED ? lf : AT_TIME_NONE);
        bool wf = f.flags & 32;
        if (wf && f.wl)
            same_text("workflow id", at_job_workflow_id(j), f.wf, f.wl);
        else if (at_job_workflow_id(j))
            FAIL("a workflow id from nowhere");
        if (wf && f.nl)
            same_text("node", at_job_node(j), f.node, f.nl);
        else if (at_job_node(j))
            FAIL("a node from nowhere");
        same_i64("policy", at_job_parent_policy(j), wf ? f.policy : 0);
        same_i64("parents left", at_job_parents_left(j), wf && left > 0 ? left : 0);
        same_i64("parents", (int64_t)at_job_parent_count(j), wf ? f.npar : 0);
        for (size_t k = 0; wf && k < f.npar; k++) {
            char pid[AT_ID_SIZE];
            at_id_format(pid, f.parents + 16 * k);
            if (strcmp(at_job_parent_id(j, k), pid) != 0)
                FAIL("parent %zu", k);
        }
        const char *tp = at_job_traceparent(j);
        if (f.flags & 64) {
            static const char hex[] = "0123456789abcdef";
            char want[56], *o = want;
            for (int k = 0; k < 26; k++) {
                if (k == 1 || k == 17 || k == 25)
                    *o++ = '-';
                *o++ = hex[f.tp[k] >> 4];
                *o++ = hex[f.tp[k] & 15];
            }
            *o = '\0';
            if (!tp || strcmp(tp, want) != 0)
                FAIL("traceparent");
        } else if (tp) {
            FAIL("a traceparent from nowhere");
        }
        if (f.flags & 4)
            same_text("key", at_job_idempotency_key(j), f.key, f.klen);
        else if (at_job_idempotency_key(j))
            FAIL("a key from nowhere");
        if (f.flags & 8)
            same_text("last error", at_job_last_error(j), f.err, f.elen);
        else if (at_job_last_error(j))
            FAIL("an error from nowhere");
        size_t n = 0;
        const void *res = at_job_result(j, &n);
        if ((f.flags & 16) ? (!res || n != f.reslen || (n && memcmp(res, f.res, n) != 0)) : (res || n))
            FAIL("result");
        const void *pl = at_job_payload(j, &n);
        if (n != f.plen || (n && memcmp(pl, f.payload, n) != 0))
            FAIL("payload");
        at_job_free(j);
    }
    free(c);
    free(r);
}

/* 'j': a record built from fields the input chooses (so every part is
 * reached without the fuzzer learning the layout first). */
static void structured_job(const uint8_t *d, size_t n)
{
    struct rd r = {d, d + n, false};
    uint8_t cls[CLASS_HEAD + 8];
    const uint8_t *ch = take(&r, CLASS_HEAD);
    if (!ch)
        return;
    memcpy(cls, ch, CLASS_HEAD);
    memcpy(cls + CLASS_HEAD, "t.type", 6);
    struct ref f;
    memset(&f, 0, sizeof f);
    f.state = (uint8_t)(1 + take_le(&r, 1) % 7);
    f.flags = (uint8_t)(take_le(&r, 1) & 127);
    f.class_no = (uint32_t)take_le(&r, 4);
    f.priority = (int16_t)take_le(&r, 2);
    f.created = (int64_t)take_le(&r, 8);
    f.run_at = (int64_t)take_le(&r, 8);
    f.attempts = (uint32_t)take_le(&r, 4);
    f.token = (int64_t)take_le(&r, 8);
    f.started = (int64_t)take_le(&r, 8);
    f.lf = (int64_t)take_le(&r, 8);
    f.updated = (int64_t)take_le(&r, 8);
    f.wl = take_le(&r, 1) & 1 ? AT_ID_LEN : 0;
    f.wf = (const uint8_t *)"01J5Q8X0000000000000000WFA";
    f.policy = (uint8_t)take_le(&r, 1);
    f.nl = (uint8_t)(take_le(&r, 1) % 8);
    f.node = (const uint8_t *)"node-abc";
    f.npar = (uint32_t)(take_le(&r, 1) % 4);
    f.nothers = (uint16_t)(take_le(&r, 1) % 3);
    uint8_t ids[4 * 26];
    const uint8_t *idb = take(&r, sizeof ids);
    if (!idb)
        return;
    memcpy(ids, idb, sizeof ids);
    f.parents = f.others = ids;
    f.tp = ids;
    f.klen = (uint16_t)(take_le(&r, 1) % 40);
    f.key = ids;
    f.elen = (uint32_t)(take_le(&r, 1) % 40);
    f.err = ids + 40;
    f.reslen = (uint32_t)(take_le(&r, 1) % 40);
    f.res = ids + 20;
    if (r.bad)
        return;
    f.payload = r.p;
    f.plen = (size_t)(r.end - r.p);
    struct wb w = {0};
    ref_encode(&w, &f);
    check_job_record(cls, sizeof cls - 2, w.p, w.n, (int64_t)(f.class_no % 5) - 1);
    free(w.p);
}

/* ------------------------------------------------------ schedule specs */

static bool same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void check_spec(const void *spec, size_t len, const char *name)
{
    at_sched_row row;
    at_sched_row_init(&row);
    row.name = name;
    row.spec = spec;
    row.spec_len = len;
    at_schedule *s = NULL;
    int rc = at__sched_decode(&s, &row);
    if (rc != 0 && rc != AT_ERR_CORRUPT && rc != AT_ERR_NOMEM)
        FAIL("at__sched_decode returned %d", rc);
    if (rc != 0)
        return;
    void *y = NULL, *z = NULL;
    size_t ny = 0, nz = 0;
    if (at__sched_encode(s, &y, &ny) != 0)
        abort();
    row.spec = y;
    row.spec_len = ny;
    at_schedule *s2 = NULL;
    if ((rc = at__sched_decode(&s2, &row)) != 0)
        FAIL("a decoded schedule encodes to bytes that do not decode (%d)", rc);
    size_t p1 = 0, p2 = 0;
    const void *pl1 = at_schedule_payload(s, &p1), *pl2 = at_schedule_payload(s2, &p2);
    int64_t g1 = 0, g2 = 0;
    int32_t c1 = 0, c2 = 0;
    if (strcmp(s->name, s2->name) != 0 || !same_str(s->expr, s2->expr) || !same_str(s->tz, s2->tz) ||
        !same_str(s->type, s2->type) || p1 != p2 || (p1 && memcmp(pl1, pl2, p1) != 0) ||
        strcmp(at_schedule_queue(s), at_schedule_queue(s2)) != 0 || s->opts.priority != s2->opts.priority ||
        s->opts.max_attempts != s2->opts.max_attempts || s->opts.backoff_base_ms != s2->opts.backoff_base_ms ||
        s->opts.backoff_cap_ms != s2->opts.backoff_cap_ms || s->opts.backoff_jitter != s2->opts.backoff_jitter ||
        s->opts.lease_ms != s2->opts.lease_ms || s->opts.idem_ttl_ms != s2->opts.idem_ttl_ms ||
        at_schedule_misfire(s, &g1, &c1) != at_schedule_misfire(s2, &g2, &c2) || g1 != g2 || c1 != c2)
        FAIL("decode(encode(decode(x))) differs from decode(x)");
    if (at__sched_encode(s2, &z, &nz) != 0)
        abort();
    if (ny != nz || memcmp(y, z, ny) != 0)
        FAIL("encode is not stable across a round trip");
    /* A decoded schedule can say when it fires. */
    int64_t next;
    rc = at_schedule_next(&next, s, INT64_C(1775347200000));
    if (rc != 0 && rc != AT_ERR_RANGE)
        FAIL("at_schedule_next of a decoded schedule: %d", rc);
    at__free(y);
    at__free(z);
    at_schedule_free(s);
    at_schedule_free(s2);
}

static void check_sched_record(const uint8_t *d, size_t n)
{
    uint8_t *r = malloc(n ? n : 1);
    if (!r)
        abort();
    memcpy(r, d, n);
    at_sched_row row;
    int rc = fz_redis_decode_sched(&row, "s1", r, n);
    if (rc != 0 && rc != AT_ERR_CORRUPT && rc != AT_ERR_IO)
        FAIL("sched_decode returned %d", rc);
    if (rc == 0) {
        const uint8_t *sp = row.spec;
        if (row.paused != (r[0] & 1) || strlen(row.last_job_id) > r[25] || sp < r || sp + row.spec_len != r + n)
            FAIL("the schedule row does not match its record");
        check_spec(row.spec, row.spec_len, row.name);
    }
    free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    const uint8_t *d = data + 1;
    size_t n = size - 1;
    switch (data[0]) {
    case 'J':
        if (n >= 1 && (size_t)d[0] + 1 <= n)
            check_job_record(d + 1, d[0], d + 1 + d[0], n - 1 - d[0], -1);
        break;
    case 'j':
        structured_job(d, n);
        break;
    case 'S': {
        uint8_t *copy = malloc(n ? n : 1);
        if (!copy)
            abort();
        memcpy(copy, d, n);
        check_spec(copy, n, "s1");
        free(copy);
        break;
    }
    case 'R':
        check_sched_record(d, n);
        break;
    default:
        break;
    }
    return 0;
}
