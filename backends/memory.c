/*
 * memory.c - the in-memory backend ("memory:"): the complete reference
 * implementation of the JobStore vtable and the unit-test double.
 *
 * One mutex per store guards everything; each operation is a few pointer
 * moves under it, so the lock is held for well under a microsecond.
 *
 * Where a job lives, by state:
 *   SCHEDULED  its queue's timing wheel, keyed by run_at
 *   READY      its queue's binary heap (priority desc, run_at asc, id asc)
 *   RUNNING    the store's lease wheel, keyed by lease deadline
 *   terminal   its queue's finish-order list (so purge pops from the head)
 * and always in the id hash and its queue's id-ordered list (for at_list).
 * The timer node, heap index and finish-list links are never needed at the
 * same time, so they share one union: 40 bytes serve all three.
 *
 * Time: wheels run on the store's monotonic milliseconds.  A wall time t is
 * armed at t - off, where off = wall - mono (ms) is re-read on every
 * operation.  When a timer fires the wall clock is checked again and the
 * timer re-armed for the remaining time if the wall clock went back, so no
 * job is released before its run_at and no lease is taken before its
 * deadline.  A forward step of more than JUMP_MS re-arms every timer at once
 * (ADR/0005-clock-and-time.md).
 *
 * Per-job fields that rarely vary (type, max attempts, lease, backoff) are
 * interned as a "class" shared by all jobs with the same values, which keeps
 * a delayed job under 200 bytes beyond its payload (bench suite `memory`).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "memory_sched.h"
#include "wheel.h"

#define JUMP_MS 10

struct mjob;
struct mq;

/* Shared per-job settings, queue included; interned, freed with the store. */
struct mclass {
    struct mclass *next;
    struct mq *q;
    int64_t lease_ms, base_ms, cap_ms;
    uint32_t max_attempts;
    int32_t jitter;
    uint64_t hash;
    char type[];
};

struct mdep;

/* Rarely present per-job data. */
struct mextra {
    char *last_error;
    void *result;
    size_t result_len;
    char *idem_key;
    struct mdep *dep; /* workflow membership and dependencies */
    char *traceparent;
};

/* A workflow: counts per state kept as its jobs move, and its jobs' ids in
 * id order (ids, not pointers: purge frees jobs). */
struct mwf {
    struct mwf *hnext;
    uint64_t counts[AT_STATE_COUNT__];
    char (*ids)[AT_ID_LEN];
    size_t n, cap;
    uint64_t hash;
    char id[AT_ID_LEN];
};

/* Dependencies of a job (and, for a parent, its children).  Children are
 * ids looked up when the parent finishes, so a child purged or cancelled
 * meanwhile is simply not found or not WAITING. */
struct mdep {
    struct mwf *wf; /* NULL: a plain job that is some job's parent */
    char *node;
    char (*parents)[AT_ID_LEN];
    uint32_t nparents, left;
    char (*children)[AT_ID_LEN];
    uint32_t nchild, capchild;
    int32_t policy;
    struct mjob *prop_next; /* the propagation worklist */
};

struct mjob {
    union {
        at_timer timer;                       /* SCHEDULED, RUNNING */
        struct { struct mjob *next, *prev; } fin; /* terminal */
        uint32_t heap_idx;                    /* READY */
    } u;
    struct mjob *hnext;          /* id hash chain */
    struct mjob *lprev, *lnext;  /* queue's list, id order */
    const struct mclass *cls;    /* also names the job's queue */
    struct mextra *x;
    int64_t created_at, run_at, started_at, updated_at;
    int64_t lease_or_fin;        /* lease deadline while RUNNING, finish time when terminal */
    uint64_t token;
    int32_t priority;
    uint32_t attempts;
    uint32_t payload_len;
    uint8_t state;
    uint8_t cancel_req;
    char id[AT_ID_LEN]; /* canonical upper case, no NUL: the core checked it */
    unsigned char payload[];
};

struct mq {
    struct mq *hnext; /* name hash chain */
    struct mq *next;  /* all queues */
    at_wheel *wheel;  /* SCHEDULED jobs by run_at */
    struct mjob **heap;
    uint32_t hn, hcap;
    struct mjob *lhead, *ltail;
    struct mjob *fhead, *ftail;
    uint64_t counts[AT_STATE_COUNT__];
    bool paused;
    /* Token bucket (rate_take): units of 1/period_ms token, so refilling
     * `limit` units per ms is exact integer arithmetic. */
    int64_t bucket_units, bucket_at;
    uint32_t bucket_limit;
    int64_t bucket_period;
    char name[];
};

/* An idempotency key held by a job until its TTL passes. */
struct midem {
    at_timer timer;
    struct midem *hnext;
    int64_t expires; /* wall ms */
    char id[AT_ID_LEN]; /* canonical upper case, no NUL: the core checked it */
    uint64_t hash;
    char key[];
};

struct at_backend {
    at_store *store;
    struct at__msched *sched; /* schedules and leases (memory_sched.c) */
    pthread_mutex_t mu;
    struct mjob **jt; /* job hash */
    size_t jmask, jn;
    struct mq **qt;   /* queue hash */
    size_t qmask, qn;
    struct mq *queues;
    struct midem **it; /* idempotency hash */
    size_t imask, in;
    struct mclass **ct;
    size_t cmask, cn;
    struct mwf **wt;  /* workflow hash */
    size_t wmask, wn;
    at_wheel *leases; /* RUNNING jobs by lease deadline */
    at_wheel *idems;  /* keys by expiry */
    int64_t off;      /* wall - mono, ms, as of the last re-arm */
    uint64_t next_token;
    /* Time of the operation in progress (set by sync_clock). */
    int64_t now, mono;
};

/* ------------------------------------------------------------------ util */

static uint64_t hash_bytes(const void *p, size_t n)
{
    /* FNV-1a then a final mix: names are short, distribution matters more
     * than speed here. */
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211ull;
    h ^= h >> 31;
    return h * 0x9E3779B97F4A7C15ull;
}

static uint64_t hash_id(const char *id)
{
    /* The last characters carry the random/counter part of the id; a full
     * avalanche (MurmurHash3's fmix64) spreads it over the bucket bits. */
    uint64_t a, b;
    memcpy(&a, id + 10, 8);
    memcpy(&b, id + AT_ID_LEN - 8, 8);
    uint64_t h = a ^ (b * 0x9E3779B97F4A7C15ull) ^ b;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static int64_t floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* Grow a power-of-two chained table when its load passes 1. */
#define GROW(tab, mask, count, type, hashof)                                                                 \
    do {                                                                                                     \
        if ((count) <= (mask))                                                                               \
            break;                                                                                           \
        size_t nm_ = (mask) * 2 + 1;                                                                         \
        type **nt_ = at__calloc(nm_ + 1, sizeof *nt_);                                                      \
        if (!nt_)                                                                                            \
            break; /* keep the old table: slower chains, still correct */                                    \
        for (size_t i_ = 0; i_ <= (mask); i_++)                                                              \
            for (type *e_ = (tab)[i_], *n_; e_; e_ = n_) {                                                   \
                n_ = e_->hnext;                                                                              \
                size_t b_ = (size_t)(hashof(e_)) & nm_;                                                      \
                e_->hnext = nt_[b_];                                                                         \
                nt_[b_] = e_;                                                                                \
            }                                                                                                \
        at__free(tab);                                                                                       \
        (tab) = nt_;                                                                                         \
        (mask) = nm_;                                                                                        \
    } while (0)

#define JOB_HASH(j) hash_id((j)->id)
#define Q_HASH(q) hash_bytes((q)->name, strlen((q)->name))
#define I_HASH(e) ((e)->hash)
#define C_HASH(c) ((c)->hash)
#define W_HASH(w) ((w)->hash)

/* ----------------------------------------------------------------- clock */

static void arm_job(at_backend *m, struct mjob *j);
static void arm_idem(at_backend *m, struct midem *e);

/* Read the store's clocks for this operation and notice wall-clock steps. */
static void sync_clock(at_backend *m)
{
    int64_t wall_ns, mono_ns;
    at__store_clock_ns(m->store, &wall_ns, &mono_ns);
    m->now = floordiv(wall_ns, 1000000);
    m->mono = floordiv(mono_ns, 1000000);
    int64_t off = floordiv(wall_ns - mono_ns, 1000000);
    /* A manual clock's monotonic time stands still between advances, so a
     * timer left a few ms late by a small forward at_clock_set would never
     * fire: there, every forward step re-arms (steps are rare there). */
    if (off > m->off + (at_store_clock_is_manual(m->store) ? 0 : JUMP_MS)) {
        /* The wall clock stepped forward: deadlines armed with the old
         * offset would be late, so re-arm everything with the new one. */
        m->off = off;
        for (struct mq *q = m->queues; q; q = q->next)
            for (struct mjob *j = q->lhead; j; j = j->lnext)
                if (j->state == AT_STATE_SCHEDULED || j->state == AT_STATE_RUNNING)
                    arm_job(m, j);
        for (size_t i = 0; i <= m->imask; i++)
            for (struct midem *e = m->it[i]; e; e = e->hnext)
                arm_idem(m, e);
    } else if (off != m->off) {
        /* Stepped back, or slewed a little: early timers are caught when
         * they fire; new timers use the current offset. */
        m->off = off;
    }
}

static uint64_t wheel_time(const at_backend *m, int64_t wall)
{
    int64_t t = wall - m->off;
    return t < 0 ? 0 : (uint64_t)t;
}

/* ----------------------------------------------------------------- heap */

static bool before(const struct mjob *a, const struct mjob *b)
{
    if (a->priority != b->priority)
        return a->priority > b->priority;
    if (a->run_at != b->run_at)
        return a->run_at < b->run_at;
    return memcmp(a->id, b->id, AT_ID_LEN) < 0;
}

static void heap_set(struct mq *q, uint32_t i, struct mjob *j)
{
    q->heap[i] = j;
    j->u.heap_idx = i;
}

static void heap_up(struct mq *q, uint32_t i)
{
    struct mjob *j = q->heap[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!before(j, q->heap[p]))
            break;
        heap_set(q, i, q->heap[p]);
        i = p;
    }
    heap_set(q, i, j);
}

static void heap_down(struct mq *q, uint32_t i)
{
    struct mjob *j = q->heap[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= q->hn)
            break;
        if (c + 1 < q->hn && before(q->heap[c + 1], q->heap[c]))
            c++;
        if (!before(q->heap[c], j))
            break;
        heap_set(q, i, q->heap[c]);
        i = c;
    }
    heap_set(q, i, j);
}

static int heap_reserve(struct mq *q, size_t extra)
{
    if (q->hn + extra <= q->hcap)
        return 0;
    size_t nc = q->hcap ? q->hcap : 16;
    while (nc < q->hn + extra)
        nc *= 2;
    if (nc > UINT32_MAX)
        return AT_ERR_FULL;
    struct mjob **h = at__realloc(q->heap, nc * sizeof *h);
    if (!h)
        return AT_ERR_NOMEM;
    q->heap = h;
    q->hcap = (uint32_t)nc;
    return 0;
}

/* Callers reserve space first, so pushing cannot fail mid-transition. */
static void heap_push(struct mq *q, struct mjob *j)
{
    heap_set(q, q->hn++, j);
    heap_up(q, q->hn - 1);
}

static void heap_remove(struct mq *q, struct mjob *j)
{
    uint32_t i = j->u.heap_idx;
    struct mjob *last = q->heap[--q->hn];
    if (i < q->hn) {
        heap_set(q, i, last);
        heap_up(q, i);
        heap_down(q, last->u.heap_idx);
    }
}

/* ----------------------------------------------------------- transitions */

static void fin_append(struct mq *q, struct mjob *j)
{
    j->u.fin.next = NULL;
    j->u.fin.prev = q->ftail;
    if (q->ftail)
        q->ftail->u.fin.next = j;
    else
        q->fhead = j;
    q->ftail = j;
}

static void fin_remove(struct mq *q, struct mjob *j)
{
    if (j->u.fin.prev)
        j->u.fin.prev->u.fin.next = j->u.fin.next;
    else
        q->fhead = j->u.fin.next;
    if (j->u.fin.next)
        j->u.fin.next->u.fin.prev = j->u.fin.prev;
    else
        q->ftail = j->u.fin.prev;
}

/* Take j out of whatever structure its state keeps it in. */
static void leave_state(at_backend *m, struct mjob *j)
{
    switch (j->state) {
    case AT_STATE_SCHEDULED:
        at__wheel_del(j->cls->q->wheel, &j->u.timer);
        break;
    case AT_STATE_RUNNING:
        at__wheel_del(m->leases, &j->u.timer);
        break;
    case AT_STATE_READY:
        heap_remove(j->cls->q, j);
        break;
    case AT_STATE_SUCCEEDED:
    case AT_STATE_DEAD:
    case AT_STATE_CANCELLED:
        fin_remove(j->cls->q, j);
        break;
    default: /* WAITING: held by nothing but its parents' counters */
        break;
    }
    j->cls->q->counts[j->state]--;
    if (j->x && j->x->dep && j->x->dep->wf)
        j->x->dep->wf->counts[j->state]--;
}

static void propagate(at_backend *m, struct mjob *j);
static struct mjob *find_job(at_backend *m, const char *id);
static int set_error(struct mjob *j, const char *text);

/* Put j into `state` (it must have left its old one).  READY needs heap room
 * reserved by the caller. */
static void enter_state_raw(at_backend *m, struct mjob *j, int state)
{
    j->state = (uint8_t)state;
    j->updated_at = m->now;
    j->cls->q->counts[state]++;
    if (j->x && j->x->dep && j->x->dep->wf)
        j->x->dep->wf->counts[state]++;
    switch (state) {
    case AT_STATE_WAITING:
        break;
    case AT_STATE_SCHEDULED:
    case AT_STATE_RUNNING:
        at__timer_init(&j->u.timer);
        arm_job(m, j);
        break;
    case AT_STATE_READY:
        heap_push(j->cls->q, j);
        break;
    default:
        j->lease_or_fin = m->now;
        fin_append(j->cls->q, j);
        break;
    }
}

/* As enter_state_raw, and a job that finished resolves its WAITING
 * children in the same step (ADR/0014). */
static void enter_state(at_backend *m, struct mjob *j, int state)
{
    enter_state_raw(m, j, state);
    if (state >= AT_STATE_SUCCEEDED && j->x && j->x->dep && j->x->dep->nchild)
        propagate(m, j);
}

/* Move a WAITING job whose parents are all done to where its run_at says.
 * Without heap room it goes SCHEDULED at its (past) run_at: the wheel fires
 * it at once and on_due retries, so a release never fails. */
static void release(at_backend *m, struct mjob *j)
{
    leave_state(m, j);
    bool ready = j->run_at <= m->now && heap_reserve(j->cls->q, 1) == 0;
    enter_state_raw(m, j, ready ? AT_STATE_READY : AT_STATE_SCHEDULED);
    /* Pollers blocked on its queue learn of it now, not at their timeout
     * (the wake-up lock nests inside the store lock, never the reverse). */
    at_store_notify(m->store);
}

/* The rule of store.h's wf_submit, applied from `root` down with an
 * intrusive worklist (no recursion: a 100,000-step chain cancels in a loop,
 * no allocation: it cannot fail half-way). */
static void propagate(at_backend *m, struct mjob *root)
{
    struct mjob *work = root;
    root->x->dep->prop_next = NULL;
    while (work) {
        struct mjob *p = work;
        struct mdep *pd = p->x->dep;
        work = pd->prop_next;
        for (uint32_t i = 0; i < pd->nchild; i++) {
            struct mjob *c = find_job(m, pd->children[i]);
            if (!c || c->state != AT_STATE_WAITING)
                continue;
            struct mdep *cd = c->x->dep;
            if (p->state == AT_STATE_SUCCEEDED || cd->policy == AT_PARENT_FAIL_RUN) {
                if (--cd->left == 0)
                    release(m, c);
                continue;
            }
            char why[96];
            snprintf(why, sizeof why, "parent %.*s is %s", AT_ID_LEN, p->id, at_state_name(p->state));
            set_error(c, why); /* best effort: the transition matters more than the text */
            leave_state(m, c);
            enter_state_raw(m, c, cd->policy == AT_PARENT_FAIL_DEAD ? AT_STATE_DEAD : AT_STATE_CANCELLED);
            if (cd->nchild) {
                cd->prop_next = work;
                work = c;
            }
        }
    }
}

static void arm_job(at_backend *m, struct mjob *j)
{
    if (j->state == AT_STATE_SCHEDULED)
        at__wheel_add(j->cls->q->wheel, &j->u.timer, wheel_time(m, j->run_at));
    else
        at__wheel_add(m->leases, &j->u.timer, wheel_time(m, j->lease_or_fin));
}

static int set_error(struct mjob *j, const char *text)
{
    if (!text)
        return 0;
    if (!j->x) {
        j->x = at__calloc(1, sizeof *j->x);
        if (!j->x)
            return AT_ERR_NOMEM;
    }
    char *t = at__strdup(text);
    if (!t)
        return AT_ERR_NOMEM;
    at__free(j->x->last_error);
    j->x->last_error = t;
    return 0;
}

/* Fire callbacks: the wheel already unlinked the timer. */
struct fire_ctx {
    at_backend *m;
    at_wheel *w;
};

static void rearm_remaining(at_backend *m, at_wheel *w, at_timer *t, int64_t due_wall)
{
    /* The wall clock is behind the deadline (it stepped back): wait for the
     * remaining wall time, measured on the monotonic clock. */
    at__wheel_add(w, t, (uint64_t)(m->mono + (due_wall - m->now)));
}

static void on_due(at_timer *t, void *ud)
{
    struct fire_ctx *c = ud;
    struct mjob *j = (struct mjob *)t;
    if (c->m->now < j->run_at) {
        rearm_remaining(c->m, c->w, t, j->run_at);
        return;
    }
    if (heap_reserve(j->cls->q, 1)) {
        /* No memory for the heap slot: stay SCHEDULED, try again in 1 ms. */
        at__wheel_add(c->w, t, (uint64_t)c->m->mono + 1);
        return;
    }
    leave_state(c->m, j); /* the timer is idle already: only the count moves */
    enter_state(c->m, j, AT_STATE_READY);
}

static void on_lease(at_timer *t, void *ud)
{
    struct fire_ctx *c = ud;
    at_backend *m = c->m;
    struct mjob *j = (struct mjob *)t;
    if (m->now < j->lease_or_fin) {
        rearm_remaining(m, c->w, t, j->lease_or_fin);
        return;
    }
    int to;
    const char *why;
    if (j->cancel_req) {
        to = AT_STATE_CANCELLED, why = "cancelled; the holder's lease expired";
    } else if (j->attempts >= j->cls->max_attempts) {
        to = AT_STATE_DEAD, why = "lease expired on the last attempt";
    } else {
        to = AT_STATE_READY, why = "lease expired";
    }
    if (to == AT_STATE_READY && heap_reserve(j->cls->q, 1)) {
        at__wheel_add(c->w, t, (uint64_t)m->mono + 1);
        return;
    }
    set_error(j, why); /* best effort: the transition matters more than the text */
    leave_state(m, j);
    enter_state(m, j, to);
}

static void idem_unlink(at_backend *m, struct midem *e)
{
    for (struct midem **pp = &m->it[e->hash & m->imask]; *pp; pp = &(*pp)->hnext)
        if (*pp == e) {
            *pp = e->hnext;
            break;
        }
    m->in--;
}

static void on_idem(at_timer *t, void *ud)
{
    struct fire_ctx *c = ud;
    struct midem *e = (struct midem *)t;
    if (c->m->now < e->expires) {
        rearm_remaining(c->m, c->w, t, e->expires);
        return;
    }
    idem_unlink(c->m, e);
    at__free(e);
}

static void arm_idem(at_backend *m, struct midem *e)
{
    at__wheel_add(m->idems, &e->timer, wheel_time(m, e->expires));
}

static void advance_queue(at_backend *m, struct mq *q)
{
    struct fire_ctx c = {m, q->wheel};
    at__wheel_advance(q->wheel, (uint64_t)m->mono, on_due, &c);
}

static void advance_common(at_backend *m)
{
    struct fire_ctx c = {m, m->leases};
    at__wheel_advance(m->leases, (uint64_t)m->mono, on_lease, &c);
    c.w = m->idems;
    at__wheel_advance(m->idems, (uint64_t)m->mono, on_idem, &c);
}

/* ---------------------------------------------------------------- lookup */

static struct mq *find_queue(at_backend *m, const char *name)
{
    uint64_t h = hash_bytes(name, strlen(name));
    for (struct mq *q = m->qt[h & m->qmask]; q; q = q->hnext)
        if (strcmp(q->name, name) == 0)
            return q;
    return NULL;
}

static struct mq *get_queue(at_backend *m, const char *name)
{
    struct mq *q = find_queue(m, name);
    if (q)
        return q;
    size_t n = strlen(name);
    q = at__calloc(1, sizeof *q + n + 1);
    if (!q)
        return NULL;
    memcpy(q->name, name, n + 1);
    q->wheel = at__wheel_new((uint64_t)m->mono);
    if (!q->wheel) {
        at__free(q);
        return NULL;
    }
    uint64_t h = hash_bytes(name, n);
    q->hnext = m->qt[h & m->qmask];
    m->qt[h & m->qmask] = q;
    q->next = m->queues;
    m->queues = q;
    m->qn++;
    GROW(m->qt, m->qmask, m->qn, struct mq, Q_HASH);
    return q;
}

static struct mjob *find_job(at_backend *m, const char *id)
{
    for (struct mjob *j = m->jt[hash_id(id) & m->jmask]; j; j = j->hnext)
        if (memcmp(j->id, id, AT_ID_LEN) == 0)
            return j;
    return NULL;
}

static struct midem *find_idem(at_backend *m, const char *key, uint64_t h)
{
    for (struct midem *e = m->it[h & m->imask]; e; e = e->hnext)
        if (e->hash == h && strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

static const struct mclass *get_class(at_backend *m, struct mq *q, const at_job_info *ji)
{
    size_t tn = strlen(ji->type);
    uint64_t h = hash_bytes(ji->type, tn) ^ ((uint64_t)(uintptr_t)q * 0x9E3779B97F4A7C15ull);
    h ^= hash_bytes(&ji->lease_ms, sizeof ji->lease_ms) + (uint64_t)ji->max_attempts * 31 +
         (uint64_t)ji->backoff_base_ms * 131 + (uint64_t)ji->backoff_cap_ms * 65599 + (uint64_t)ji->backoff_jitter;
    for (struct mclass *c = m->ct[h & m->cmask]; c; c = c->next)
        if (c->hash == h && c->q == q && c->lease_ms == ji->lease_ms && c->max_attempts == ji->max_attempts &&
            c->base_ms == ji->backoff_base_ms && c->cap_ms == ji->backoff_cap_ms &&
            c->jitter == ji->backoff_jitter && strcmp(c->type, ji->type) == 0)
            return c;
    struct mclass *c = at__malloc(sizeof *c + tn + 1);
    if (!c)
        return NULL;
    c->q = q;
    c->lease_ms = ji->lease_ms;
    c->max_attempts = ji->max_attempts;
    c->base_ms = ji->backoff_base_ms;
    c->cap_ms = ji->backoff_cap_ms;
    c->jitter = ji->backoff_jitter;
    c->hash = h;
    memcpy(c->type, ji->type, tn + 1);
    c->next = m->ct[h & m->cmask];
    m->ct[h & m->cmask] = c;
    m->cn++;
    /* Classes chain through `next`; rehash by hand (GROW expects hnext). */
    if (m->cn > m->cmask) {
        size_t nm = m->cmask * 2 + 1;
        struct mclass **nt = at__calloc(nm + 1, sizeof *nt);
        if (nt) {
            for (size_t i = 0; i <= m->cmask; i++)
                for (struct mclass *e = m->ct[i], *n; e; e = n) {
                    n = e->next;
                    e->next = nt[e->hash & nm];
                    nt[e->hash & nm] = e;
                }
            at__free(m->ct);
            m->ct = nt;
            m->cmask = nm;
        }
    }
    return c;
}

/* ------------------------------------------------------------- snapshots */

static int snapshot(at_job **out, const struct mjob *j)
{
    at_job_info i;
    at_job_info_init(&i);
    memcpy(i.id, j->id, AT_ID_LEN);
    i.id[AT_ID_LEN] = '\0';
    i.type = j->cls->type;
    i.queue = j->cls->q->name;
    i.payload = j->payload;
    i.payload_len = j->payload_len;
    i.state = j->state;
    i.priority = j->priority;
    i.attempts = j->attempts;
    i.max_attempts = j->cls->max_attempts;
    i.token = j->token;
    i.created_at = j->created_at;
    i.run_at = j->run_at;
    i.started_at = j->started_at;
    i.updated_at = j->updated_at;
    if (j->state == AT_STATE_RUNNING)
        i.lease_until = j->lease_or_fin;
    else if (j->state >= AT_STATE_SUCCEEDED)
        i.finished_at = j->lease_or_fin;
    i.lease_ms = j->cls->lease_ms;
    i.backoff_base_ms = j->cls->base_ms;
    i.backoff_cap_ms = j->cls->cap_ms;
    i.backoff_jitter = j->cls->jitter;
    i.cancel_requested = j->cancel_req;
    char wf[AT_ID_SIZE];
    const char *pv1[1], **pv = pv1;
    if (j->x) {
        i.last_error = j->x->last_error;
        i.result = j->x->result;
        i.result_len = j->x->result_len;
        i.idempotency_key = j->x->idem_key;
        i.traceparent = j->x->traceparent;
        const struct mdep *d = j->x->dep;
        if (d && d->wf) {
            memcpy(wf, d->wf->id, AT_ID_LEN);
            wf[AT_ID_LEN] = '\0';
            i.workflow_id = wf;
            i.node = d->node;
            i.on_parent_failure = d->policy;
            i.parents_left = j->state == AT_STATE_WAITING ? d->left : 0;
            /* Parent ids are stored without NULs: at_job_create wants
             * strings, so each gets a terminated copy on the stack or heap. */
            if (d->nparents > 1 && !(pv = at__malloc(d->nparents * (sizeof *pv + AT_ID_SIZE))))
                return AT_ERR_NOMEM;
            char *ids = (char *)(pv + (d->nparents > 1 ? d->nparents : 0));
            char one[AT_ID_SIZE];
            for (uint32_t k = 0; k < d->nparents; k++) {
                char *dst = d->nparents > 1 ? ids + (size_t)k * AT_ID_SIZE : one;
                memcpy(dst, d->parents[k], AT_ID_LEN);
                dst[AT_ID_LEN] = '\0';
                pv[k] = dst;
            }
            i.parents = pv;
            i.nparents = d->nparents;
            int rc = at_job_create(out, &i);
            if (pv != pv1)
                at__free(pv);
            return rc;
        }
    }
    return at_job_create(out, &i);
}

/* ------------------------------------------------------------ open/close */

static void free_dep(struct mdep *d)
{
    if (!d)
        return;
    at__free(d->node);
    at__free(d->parents);
    at__free(d->children);
    at__free(d);
}

static void free_job(struct mjob *j)
{
    if (j->x) {
        free_dep(j->x->dep);
        at__free(j->x->last_error);
        at__free(j->x->result);
        at__free(j->x->idem_key);
        at__free(j->x->traceparent);
        at__free(j->x);
    }
    at__free(j);
}

static void mem_close(at_backend *m)
{
    if (!m)
        return;
    for (struct mq *q = m->queues, *nq; q; q = nq) {
        nq = q->next;
        for (struct mjob *j = q->lhead, *n; j; j = n) {
            n = j->lnext;
            free_job(j);
        }
        at__wheel_free(q->wheel);
        at__free(q->heap);
        at__free(q);
    }
    for (size_t i = 0; m->it && i <= m->imask; i++)
        for (struct midem *e = m->it[i], *n; e; e = n) {
            n = e->hnext;
            at__free(e);
        }
    for (size_t i = 0; m->ct && i <= m->cmask; i++)
        for (struct mclass *c = m->ct[i], *n; c; c = n) {
            n = c->next;
            at__free(c);
        }
    at__msched_free(m->sched);
    for (size_t i = 0; m->wt && i <= m->wmask; i++)
        for (struct mwf *w = m->wt[i], *n; w; w = n) {
            n = w->hnext;
            at__free(w->ids);
            at__free(w);
        }
    at__free(m->wt);
    at__wheel_free(m->leases);
    at__wheel_free(m->idems);
    at__free(m->jt);
    at__free(m->qt);
    at__free(m->it);
    at__free(m->ct);
    pthread_mutex_destroy(&m->mu);
    at__free(m);
}

static int mem_open(at_backend **out, at_store *store, const char *uri)
{
    if (strcmp(uri, "memory:") != 0)
        return at_store_error(store, AT_ERR_URI, 0, "the memory backend takes no path or options: use \"memory:\"");
    at_backend *m = at__calloc(1, sizeof *m);
    if (!m)
        return AT_ERR_NOMEM;
    m->store = store;
    pthread_mutex_init(&m->mu, NULL);
    m->jmask = 1023;
    m->qmask = 15;
    m->imask = 63;
    m->cmask = 15;
    m->wmask = 15;
    m->wt = at__calloc(m->wmask + 1, sizeof *m->wt);
    m->jt = at__calloc(m->jmask + 1, sizeof *m->jt);
    m->qt = at__calloc(m->qmask + 1, sizeof *m->qt);
    m->it = at__calloc(m->imask + 1, sizeof *m->it);
    m->ct = at__calloc(m->cmask + 1, sizeof *m->ct);
    m->next_token = 1;
    if (!m->jt || !m->qt || !m->it || !m->ct || !m->wt || at__msched_new(&m->sched, store) != 0) {
        mem_close(m);
        return AT_ERR_NOMEM;
    }
    *out = m;
    return 0;
}

/* Lock the store and read the clocks for this operation.  The store-wide
 * wheels are made at the first job operation, when the store's clock is
 * fixed (at_store_set_clock is refused after it), so they start on the right
 * monotonic base.  On failure the lock is not held. */
static int lock_and_sync(at_backend *m)
{
    pthread_mutex_lock(&m->mu);
    sync_clock(m);
    if (!m->leases || !m->idems) {
        if (!m->leases)
            m->leases = at__wheel_new((uint64_t)m->mono);
        if (!m->idems)
            m->idems = at__wheel_new((uint64_t)m->mono);
        if (!m->leases || !m->idems) {
            pthread_mutex_unlock(&m->mu);
            return at_store_error(m->store, AT_ERR_NOMEM, 0, "out of memory for the store's timers");
        }
    }
    return 0;
}
#define LOCK(m)                                                                                              \
    do {                                                                                                     \
        int l_rc_ = lock_and_sync(m);                                                                        \
        if (l_rc_)                                                                                           \
            return l_rc_;                                                                                    \
    } while (0)

/* --------------------------------------------------------------- enqueue */

static void list_insert(struct mq *q, struct mjob *j)
{
    /* Ids grow within a process, so this is an append unless two threads
     * made their ids in one order and took the lock in the other. */
    struct mjob *p = q->ltail;
    while (p && memcmp(p->id, j->id, AT_ID_LEN) > 0)
        p = p->lprev;
    j->lprev = p;
    j->lnext = p ? p->lnext : q->lhead;
    if (j->lnext)
        j->lnext->lprev = j;
    else
        q->ltail = j;
    if (p)
        p->lnext = j;
    else
        q->lhead = j;
}

static void list_remove(struct mq *q, struct mjob *j)
{
    if (j->lprev)
        j->lprev->lnext = j->lnext;
    else
        q->lhead = j->lnext;
    if (j->lnext)
        j->lnext->lprev = j->lprev;
    else
        q->ltail = j->lprev;
}

static void job_unhash(at_backend *m, struct mjob *j)
{
    for (struct mjob **pp = &m->jt[hash_id(j->id) & m->jmask]; *pp; pp = &(*pp)->hnext)
        if (*pp == j) {
            *pp = j->hnext;
            break;
        }
    m->jn--;
}

struct pending {
    struct mjob *job;
    struct midem *idem;
};

/* The workflow `id` (AT_ID_LEN characters), created when absent; NULL
 * when out of memory.  An empty one left behind by a failed submit is
 * harmless: it has no jobs, so it reads as unknown. */
static struct mwf *get_wf(at_backend *m, const char *id)
{
    uint64_t h = hash_bytes(id, AT_ID_LEN);
    for (struct mwf *w = m->wt[h & m->wmask]; w; w = w->hnext)
        if (w->hash == h && memcmp(w->id, id, AT_ID_LEN) == 0)
            return w;
    struct mwf *w = at__calloc(1, sizeof *w);
    if (!w)
        return NULL;
    memcpy(w->id, id, AT_ID_LEN);
    w->hash = h;
    w->hnext = m->wt[h & m->wmask];
    m->wt[h & m->wmask] = w;
    m->wn++;
    GROW(m->wt, m->wmask, m->wn, struct mwf, W_HASH);
    return w;
}

static struct mwf *find_wf(at_backend *m, const char *id)
{
    uint64_t h = hash_bytes(id, AT_ID_LEN);
    for (struct mwf *w = m->wt[h & m->wmask]; w; w = w->hnext)
        if (w->hash == h && memcmp(w->id, id, AT_ID_LEN) == 0)
            return w;
    return NULL;
}

static int held(struct mjob **out, at_backend *m, const char *id, uint64_t token);

static struct mdep *get_dep(struct mjob *j)
{
    if (!j->x && !(j->x = at__calloc(1, sizeof *j->x)))
        return NULL;
    if (!j->x->dep && !(j->x->dep = at__calloc(1, sizeof *j->x->dep)))
        return NULL;
    return j->x->dep;
}

/* Room for one more child id; only capacity changes, so a failed submit
 * leaves the parent as it was. */
static int reserve_child(struct mjob *p)
{
    struct mdep *d = get_dep(p);
    if (!d)
        return AT_ERR_NOMEM;
    if (d->nchild + 1 > d->capchild) {
        uint32_t cap = d->capchild ? d->capchild * 2 : 4;
        void *v = at__realloc(d->children, (size_t)cap * AT_ID_LEN);
        if (!v)
            return AT_ERR_NOMEM;
        d->children = v;
        d->capchild = cap;
    }
    return 0;
}

/* Index of earlier item with generated id `id` (a small open-addressing
 * table built per call), or SIZE_MAX. */
struct idmap {
    size_t *slot;
    size_t mask;
};

static size_t idmap_find(const struct idmap *t, const at_enqueue_item *items, const char *id)
{
    for (size_t i = hash_id(id) & t->mask;; i = (i + 1) & t->mask) {
        if (t->slot[i] == SIZE_MAX)
            return SIZE_MAX;
        if (memcmp(items[t->slot[i]].job.id, id, AT_ID_LEN) == 0)
            return t->slot[i];
    }
}

static void idmap_add(struct idmap *t, const at_enqueue_item *items, size_t k)
{
    size_t i = hash_id(items[k].job.id) & t->mask;
    while (t->slot[i] != SIZE_MAX)
        i = (i + 1) & t->mask;
    t->slot[i] = k;
}

/* The dependency part of building item i (workflow submits only): its dep
 * record, its parents resolved to existing or earlier jobs, room reserved
 * everywhere the linking will write. */
static int build_deps(at_backend *m, at_enqueue_item *items, size_t i, struct pending *pend, struct idmap *map,
                      struct mwf *wf)
{
    const at_job_info *ji = &items[i].job;
    struct mjob *j = pend[i].job;
    struct mdep *d = get_dep(j);
    if (!d || !(d->node = at__strdup(ji->node ? ji->node : "")))
        return AT_ERR_NOMEM;
    d->wf = wf;
    d->policy = ji->on_parent_failure;
    if (ji->nparents > UINT32_MAX / 2)
        return at_store_error(m->store, AT_ERR_INVAL, 0, "too many parents");
    if (ji->nparents && !(d->parents = at__malloc(ji->nparents * AT_ID_LEN)))
        return AT_ERR_NOMEM;
    for (size_t k = 0; k < ji->nparents; k++) {
        const char *pid = ji->parents[k];
        size_t e = idmap_find(map, items, pid);
        struct mjob *p;
        if (e != SIZE_MAX && items[e].status == AT_ERR_DUPLICATE)
            pid = items[e].result_id; /* the duplicate's existing job */
        if (e != SIZE_MAX && items[e].status != AT_ERR_DUPLICATE)
            p = pend[e].job;
        else if (!(p = find_job(m, pid)))
            return at_store_error(m->store, AT_ERR_NOTFOUND, 0, "parent job %.26s of node %s does not exist", pid,
                                  ji->node ? ji->node : "?");
        if (reserve_child(p))
            return AT_ERR_NOMEM;
        /* Reserved once per edge: count it so several edges to one parent
         * in this call get their own room (undone before linking). */
        p->x->dep->nchild++;
        memcpy(d->parents[k], p->id, AT_ID_LEN);
        d->nparents++;
    }
    return 0;
}

/* Link item i's dependencies (everything was reserved): register with
 * pending parents, count them, and pick the starting state. */
static int link_deps(at_backend *m, struct mjob *j, struct mjob **terminal_by)
{
    struct mdep *d = j->x->dep;
    uint32_t left = 0;
    *terminal_by = NULL;
    for (uint32_t k = 0; k < d->nparents; k++) {
        struct mjob *p = find_job(m, d->parents[k]);
        struct mdep *pd = p->x->dep;
        if (p->state == AT_STATE_SUCCEEDED)
            continue;
        if (p->state == AT_STATE_DEAD || p->state == AT_STATE_CANCELLED) {
            if (d->policy != AT_PARENT_FAIL_RUN && !*terminal_by)
                *terminal_by = p;
            continue;
        }
        memcpy(pd->children[pd->nchild++], j->id, AT_ID_LEN);
        left++;
    }
    d->left = left;
    struct mwf *w = d->wf;
    size_t at = w->n;
    while (at > 0 && memcmp(w->ids[at - 1], j->id, AT_ID_LEN) > 0)
        at--;
    memmove(w->ids + at + 1, w->ids + at, (w->n - at) * AT_ID_LEN);
    memcpy(w->ids[at], j->id, AT_ID_LEN);
    w->n++;
    if (*terminal_by)
        return d->policy == AT_PARENT_FAIL_DEAD ? AT_STATE_DEAD : AT_STATE_CANCELLED;
    return left ? AT_STATE_WAITING : 0;
}

/* Caller holds the lock.  With `wf` (workflow submits) items carry parents. */
static int enqueue_locked(at_backend *m, at_enqueue_item *items, size_t n, struct pending *pend, struct mq **qs,
                          struct mwf *wf)
{
    /* Build every record first, then link them all: a failure before the
     * linking leaves the store untouched (all-or-nothing). */
    int rc = 0;
    struct idmap map = {0};
    if (wf) {
        size_t cap = 16;
        while (cap < n * 2)
            cap *= 2;
        map.mask = cap - 1;
        if (!(map.slot = at__malloc(cap * sizeof *map.slot)))
            return AT_ERR_NOMEM;
        memset(map.slot, 0xff, cap * sizeof *map.slot);
        if (wf->n + n > wf->cap) {
            size_t c = wf->cap ? wf->cap : 16;
            while (c < wf->n + n)
                c *= 2;
            void *v = at__realloc(wf->ids, c * AT_ID_LEN);
            if (!v) {
                at__free(map.slot);
                return AT_ERR_NOMEM;
            }
            wf->ids = v;
            wf->cap = c;
        }
    }
    /* Existing parents' child counts were bumped to reserve room; they are
     * put back before linking (which appends for real) or on failure. */
    for (size_t i = 0; i < n && rc == 0; i++) {
        at_job_info *ji = &items[i].job;
        const char *key = ji->idempotency_key;
        if (key) {
            uint64_t h = hash_bytes(key, strlen(key));
            struct midem *e = find_idem(m, key, h);
            if (e && e->expires <= m->now)
                e = NULL; /* expired, its timer just has not run yet */
            const char *dup = e ? e->id : NULL;
            for (size_t k = 0; !dup && k < i; k++)
                if (pend[k].idem && pend[k].idem->hash == h && strcmp(pend[k].idem->key, key) == 0)
                    dup = pend[k].idem->id;
            if (dup) {
                items[i].status = AT_ERR_DUPLICATE;
                memcpy(items[i].result_id, dup, AT_ID_LEN);
                items[i].result_id[AT_ID_LEN] = '\0';
                if (wf)
                    idmap_add(&map, items, i);
                continue;
            }
            size_t kn = strlen(key);
            struct midem *ne = at__malloc(sizeof *ne + kn + 1);
            if (!ne) {
                rc = AT_ERR_NOMEM;
                break;
            }
            at__timer_init(&ne->timer);
            ne->hnext = NULL;
            ne->hash = h;
            memcpy(ne->key, key, kn + 1);
            memcpy(ne->id, ji->id, AT_ID_LEN);
            ne->expires = m->now + ji->idempotency_ttl_ms;
            pend[i].idem = ne;
        }
        items[i].status = 0;
        qs[i] = get_queue(m, ji->queue);
        const struct mclass *cls = qs[i] ? get_class(m, qs[i], ji) : NULL;
        struct mjob *j = cls ? at__malloc(sizeof *j + ji->payload_len) : NULL;
        if (!j) {
            rc = AT_ERR_NOMEM;
            break;
        }
        memset(j, 0, sizeof *j);
        pend[i].job = j;
        j->cls = cls;
        memcpy(j->id, ji->id, AT_ID_LEN);
        if (ji->payload_len)
            memcpy(j->payload, ji->payload, ji->payload_len);
        j->payload_len = (uint32_t)ji->payload_len;
        j->priority = ji->priority;
        j->created_at = m->now;
        j->run_at = ji->run_at != AT_TIME_NONE ? ji->run_at : m->now + ji->delay_ms;
        j->started_at = AT_TIME_NONE;
        j->lease_or_fin = AT_TIME_NONE;
        if (key || ji->traceparent) {
            j->x = at__calloc(1, sizeof *j->x);
            if (!j->x || (key && !(j->x->idem_key = at__strdup(key))) ||
                (ji->traceparent && !(j->x->traceparent = at__strdup(ji->traceparent)))) {
                rc = AT_ERR_NOMEM;
                break;
            }
        }
        if (j->run_at <= m->now && heap_reserve(j->cls->q, 1)) {
            rc = AT_ERR_NOMEM;
            break;
        }
        if (wf) {
            idmap_add(&map, items, i);
            rc = build_deps(m, items, i, pend, &map, wf);
        }
    }
    if (rc == 0) {
        for (size_t i = 0; i < n; i++) {
            struct mjob *j = pend[i].job;
            if (!j)
                continue;
            /* Heap room for READY jobs of one queue in one batch. */
            if (j->run_at <= m->now && heap_reserve(j->cls->q, n)) {
                rc = AT_ERR_NOMEM;
                break;
            }
        }
    }
    /* Undo the reservation counts (see build_deps). */
    for (size_t i = 0; wf && i < n; i++) {
        struct mjob *j = pend[i].job;
        if (!j || !j->x || !j->x->dep)
            continue;
        for (uint32_t k = 0; k < j->x->dep->nparents; k++) {
            size_t e = idmap_find(&map, items, j->x->dep->parents[k]);
            struct mjob *p = e != SIZE_MAX && items[e].status == 0 ? pend[e].job : find_job(m, j->x->dep->parents[k]);
            if (p && p->x && p->x->dep)
                p->x->dep->nchild--;
        }
    }
    at__free(map.slot);
    if (rc) {
        for (size_t i = 0; i < n; i++) {
            if (pend[i].job)
                free_job(pend[i].job);
            at__free(pend[i].idem);
        }
        return rc == AT_ERR_NOMEM ? at_store_error(m->store, rc, 0, "out of memory while enqueueing") : rc;
    }
    for (size_t i = 0; i < n; i++) {
        struct mjob *j = pend[i].job;
        if (!j)
            continue;
        size_t b = hash_id(j->id) & m->jmask;
        j->hnext = m->jt[b];
        m->jt[b] = j;
        m->jn++;
        list_insert(j->cls->q, j);
        int state = 0;
        struct mjob *by = NULL;
        if (wf)
            state = link_deps(m, j, &by);
        if (state == AT_STATE_DEAD || state == AT_STATE_CANCELLED) {
            char why[96];
            snprintf(why, sizeof why, "parent %.*s is %s", AT_ID_LEN, by->id, at_state_name(by->state));
            set_error(j, why);
        } else if (state == 0) {
            state = j->run_at > m->now ? AT_STATE_SCHEDULED : AT_STATE_READY;
        }
        enter_state(m, j, state);
        if (pend[i].idem) {
            struct midem *e = pend[i].idem;
            struct midem *old = find_idem(m, e->key, e->hash);
            if (old) { /* an expired holder: the new job takes the key */
                at__wheel_del(m->idems, &old->timer);
                idem_unlink(m, old);
                at__free(old);
            }
            e->hnext = m->it[e->hash & m->imask];
            m->it[e->hash & m->imask] = e;
            m->in++;
            arm_idem(m, e);
        }
        items[i].status = 0;
        memcpy(items[i].result_id, items[i].job.id, AT_ID_SIZE);
    }
    GROW(m->jt, m->jmask, m->jn, struct mjob, JOB_HASH);
    GROW(m->it, m->imask, m->in, struct midem, I_HASH);
    return 0;
}

static int enqueue_common(at_backend *m, at_enqueue_item *items, size_t n, const char *wf_id, const char *guard,
                          uint64_t token)
{
    /* One job (the common case) needs no bookkeeping allocations. */
    struct pending pend1 = {0};
    struct mq *qs1 = NULL;
    struct pending *pend = n == 1 ? &pend1 : at__calloc(n, sizeof *pend);
    struct mq **qs = n == 1 ? &qs1 : at__calloc(n, sizeof *qs);
    int rc = (!pend || !qs) ? AT_ERR_NOMEM : lock_and_sync(m);
    if (rc == 0) {
        struct mwf *wf = NULL;
        if (guard) {
            advance_common(m);
            struct mjob *g;
            rc = held(&g, m, guard, token);
            if (rc == 0 && g->cancel_req)
                rc = at_store_error(m->store, AT_ERR_CANCELLED, 0, "job %s is marked for cancellation", guard);
        }
        if (rc == 0 && wf_id && !(wf = get_wf(m, wf_id)))
            rc = at_store_error(m->store, AT_ERR_NOMEM, 0, "out of memory");
        if (rc == 0)
            rc = enqueue_locked(m, items, n, pend, qs, wf);
        pthread_mutex_unlock(&m->mu);
    }
    if (n != 1) {
        at__free(pend);
        at__free(qs);
    }
    return rc;
}

static int mem_enqueue(at_backend *m, at_enqueue_item *items, size_t n)
{
    return enqueue_common(m, items, n, NULL, NULL, 0);
}

/* ----------------------------------------------------------------- claim */

static int mem_claim(at_job **jobs, size_t *n_out, int64_t *wake, at_backend *m, const char *const *queues,
                     size_t nq, size_t max)
{
    LOCK(m);
    advance_common(m);
    size_t n = 0;
    uint64_t next = at__wheel_next(m->leases);
    int rc = 0;
    for (size_t qi = 0; qi < nq; qi++) {
        struct mq *q = find_queue(m, queues[qi]);
        if (!q || q->paused)
            continue;
        advance_queue(m, q);
        while (n < max && q->hn > 0 && rc == 0) {
            struct mjob *j = q->heap[0];
            /* Snapshot first: if it fails the job simply stays READY. */
            heap_remove(q, j);
            q->counts[AT_STATE_READY]--;
            if (j->x && j->x->dep && j->x->dep->wf)
                j->x->dep->wf->counts[AT_STATE_READY]--;
            j->attempts++;
            j->token = m->next_token++;
            j->started_at = m->now;
            j->lease_or_fin = m->now + j->cls->lease_ms;
            enter_state(m, j, AT_STATE_RUNNING);
            rc = snapshot(&jobs[n], j);
            if (rc) {
                /* Undo: back to READY, as if never claimed. */
                leave_state(m, j);
                j->attempts--;
                j->started_at = AT_TIME_NONE;
                j->lease_or_fin = AT_TIME_NONE;
                enter_state(m, j, AT_STATE_READY);
                break;
            }
            n++;
        }
        uint64_t qn = at__wheel_next(q->wheel);
        if (qn < next)
            next = qn;
    }
    *wake = next == AT_WHEEL_NEVER ? AT_TIME_NONE : (int64_t)next;
    pthread_mutex_unlock(&m->mu);
    *n_out = n;
    if (rc && n == 0)
        return at_store_error(m->store, rc, 0, "out of memory while claiming");
    return 0;
}

/* --------------------------------------------------------- lease holders */

/* Find the job held under `token`, or say why it is not. */
static int held(struct mjob **out, at_backend *m, const char *id, uint64_t token)
{
    const char *b = id;
    struct mjob *j = find_job(m, b);
    if (!j)
        return at_store_error(m->store, AT_ERR_NOTFOUND, 0, "no job %s", id);
    advance_queue(m, j->cls->q);
    if (j->token != token || token == 0)
        return at_store_error(m->store, AT_ERR_STALE, 0, "job %s: token %llu is not its current lease", id,
                              (unsigned long long)token);
    if (j->state == AT_STATE_CANCELLED)
        return at_store_error(m->store, AT_ERR_CANCELLED, 0, "job %s was cancelled", id);
    if (j->state != AT_STATE_RUNNING)
        return at_store_error(m->store, AT_ERR_STALE, 0, "job %s is %s: the lease is over", id,
                              at_state_name(j->state));
    *out = j;
    return 0;
}

static int cancel_holder(at_backend *m, struct mjob *j, const char *id)
{
    leave_state(m, j);
    enter_state(m, j, AT_STATE_CANCELLED);
    return at_store_error(m->store, AT_ERR_CANCELLED, 0, "job %s was cancelled while running", id);
}

/* Caller holds the lock and advanced the common wheels. */
static int ack_locked(at_backend *m, const char *id, uint64_t token, const void *result, size_t len)
{
    struct mjob *j;
    int rc = held(&j, m, id, token);
    if (rc)
        return rc;
    if (j->cancel_req)
        return cancel_holder(m, j, id);
    void *copy = result ? at__memdup(result, len) : NULL;
    if (result && !copy)
        return AT_ERR_NOMEM;
    if (copy && !j->x && !(j->x = at__calloc(1, sizeof *j->x))) {
        at__free(copy);
        return AT_ERR_NOMEM;
    }
    if (copy) {
        at__free(j->x->result);
        j->x->result = copy;
        j->x->result_len = len;
    }
    leave_state(m, j);
    enter_state(m, j, AT_STATE_SUCCEEDED);
    return 0;
}

static int mem_ack(at_backend *m, const char *id, uint64_t token, const void *result, size_t len)
{
    LOCK(m);
    advance_common(m);
    int rc = ack_locked(m, id, token, result, len);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int mem_ack_many(at_backend *m, size_t n, const char *const *ids, const uint64_t *tokens, int32_t *results)
{
    /* Without result bytes an ack allocates nothing, so it cannot fail
     * part-way: every outcome is the job's own. */
    LOCK(m);
    advance_common(m);
    for (size_t i = 0; i < n; i++)
        results[i] = ack_locked(m, ids[i], tokens[i], NULL, 0);
    pthread_mutex_unlock(&m->mu);
    return 0;
}

static int mem_fail(int32_t *state_out, at_backend *m, const char *id, uint64_t token, const char *error,
                    uint32_t flags, int64_t delay)
{
    LOCK(m);
    advance_common(m);
    struct mjob *j;
    int rc = held(&j, m, id, token);
    if (rc == 0 && j->cancel_req) {
        rc = cancel_holder(m, j, id);
        *state_out = AT_STATE_CANCELLED;
    } else if (rc == 0) {
        int to;
        if ((flags & AT_FAIL_PERMANENT) || j->attempts >= j->cls->max_attempts)
            to = AT_STATE_DEAD;
        else
            to = delay > 0 ? AT_STATE_SCHEDULED : AT_STATE_READY;
        if ((error && (rc = set_error(j, error))) || (to == AT_STATE_READY && (rc = heap_reserve(j->cls->q, 1)))) {
            pthread_mutex_unlock(&m->mu);
            return at_store_error(m->store, rc, 0, "out of memory while failing job %s", id);
        }
        leave_state(m, j);
        if (to != AT_STATE_DEAD)
            j->run_at = m->now + delay;
        enter_state(m, j, to);
        *state_out = to;
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int mem_touch(at_backend *m, const char *id, uint64_t token, int64_t extend)
{
    LOCK(m);
    advance_common(m);
    struct mjob *j;
    int rc = held(&j, m, id, token);
    if (rc == 0 && j->cancel_req)
        rc = cancel_holder(m, j, id);
    else if (rc == 0) {
        j->lease_or_fin = m->now + (extend > 0 ? extend : j->cls->lease_ms);
        arm_job(m, j);
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

/* ------------------------------------------------------------ inspection */

static int mem_cancel(int32_t *pending, at_backend *m, const char *id)
{
    const char *b = id;
    LOCK(m);
    advance_common(m);
    struct mjob *j = find_job(m, b);
    int rc = 0;
    if (!j) {
        rc = at_store_error(m->store, AT_ERR_NOTFOUND, 0, "no job %s", id);
    } else {
        advance_queue(m, j->cls->q);
        if (j->state >= AT_STATE_SUCCEEDED) {
            rc = at_store_error(m->store, AT_ERR_TERMINAL, 0, "job %s is already %s", id, at_state_name(j->state));
        } else if (j->state == AT_STATE_RUNNING) {
            j->cancel_req = 1;
            j->updated_at = m->now;
            *pending = 1;
        } else {
            leave_state(m, j);
            enter_state(m, j, AT_STATE_CANCELLED);
        }
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int mem_get(at_job **out, at_backend *m, const char *id)
{
    const char *b = id;
    LOCK(m);
    advance_common(m);
    struct mjob *j = find_job(m, b);
    int rc;
    if (!j) {
        rc = at_store_error(m->store, AT_ERR_NOTFOUND, 0, "no job %s", id);
    } else {
        advance_queue(m, j->cls->q);
        rc = snapshot(out, j);
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

/* The first job of q after `after` (NULL: from the start) in id order. */
static struct mjob *list_from(at_backend *m, struct mq *q, const char *after)
{
    if (!after)
        return q->lhead;
    struct mjob *c = find_job(m, after);
    if (c && c->cls->q == q)
        return c->lnext;
    /* The cursor job is gone or in another queue: walk back from the tail,
     * which is where recent ids live. */
    struct mjob *j = q->ltail;
    while (j && memcmp(j->id, after, AT_ID_LEN) > 0)
        j = j->lprev;
    return j ? j->lnext : q->lhead;
}

static int mem_list(at_job **jobs, size_t *n_out, char *cursor_out, at_backend *m, const char *queue,
                    int32_t state, const char *cursor, size_t limit)
{
    uint8_t bin[16];
    char after[AT_ID_LEN];
    if (cursor && at_id_parse(bin, cursor))
        return at_store_error(m->store, AT_ERR_INVAL, 0, "'%s' is not a cursor of this store", cursor);
    if (cursor) {
        char canon[AT_ID_SIZE];
        at_id_format(canon, bin);
        memcpy(after, canon, AT_ID_LEN);
    }
    LOCK(m);
    advance_common(m);
    /* One cursor per queue in play; merged by id. */
    size_t nq = 0;
    for (struct mq *q = m->queues; q; q = q->next)
        if (!queue || strcmp(q->name, queue) == 0)
            nq++;
    struct mjob **pos = at__calloc(nq ? nq : 1, sizeof *pos);
    if (!pos) {
        pthread_mutex_unlock(&m->mu);
        return AT_ERR_NOMEM;
    }
    size_t k = 0;
    for (struct mq *q = m->queues; q; q = q->next)
        if (!queue || strcmp(q->name, queue) == 0) {
            advance_queue(m, q);
            pos[k++] = list_from(m, q, cursor ? after : NULL);
        }
    size_t n = 0;
    int rc = 0;
    bool more = false;
    for (;;) {
        size_t best = nq;
        for (size_t i = 0; i < nq; i++) {
            while (pos[i] && state != AT_STATE_ANY && pos[i]->state != state)
                pos[i] = pos[i]->lnext;
            if (pos[i] && (best == nq || memcmp(pos[i]->id, pos[best]->id, AT_ID_LEN) < 0))
                best = i;
        }
        if (best == nq)
            break;
        if (n == limit) {
            more = true;
            break;
        }
        rc = snapshot(&jobs[n], pos[best]);
        if (rc)
            break;
        n++;
        pos[best] = pos[best]->lnext;
    }
    if (rc) {
        while (n > 0)
            at_job_free(jobs[--n]);
    } else if (more) {
        memcpy(cursor_out, at_job_id(jobs[n - 1]), AT_ID_SIZE);
    }
    pthread_mutex_unlock(&m->mu);
    at__free(pos);
    *n_out = n;
    return rc;
}

static void requeue_one(at_backend *m, struct mjob *j)
{
    leave_state(m, j);
    j->attempts = 0;
    j->cancel_req = 0;
    j->lease_or_fin = AT_TIME_NONE;
    j->run_at = m->now;
    enter_state(m, j, AT_STATE_READY);
}

static int mem_requeue(uint64_t *n_out, at_backend *m, const char *queue, const char *id)
{
    LOCK(m);
    advance_common(m);
    int rc = 0;
    uint64_t n = 0;
    if (id) {
        const char *b = id;
        struct mjob *j = find_job(m, b);
        if (!j || (queue && strcmp(j->cls->q->name, queue) != 0))
            rc = at_store_error(m->store, AT_ERR_NOTFOUND, 0, "no job %s%s%s", id, queue ? " in queue " : "",
                                queue ? queue : "");
        else if (j->state != AT_STATE_DEAD)
            rc = at_store_error(m->store, AT_ERR_STATE, 0, "job %s is %s, not dead", id, at_state_name(j->state));
        else if ((rc = heap_reserve(j->cls->q, 1)) == 0) {
            requeue_one(m, j);
            n = 1;
        }
    } else {
        for (struct mq *q = m->queues; q && rc == 0; q = q->next) {
            if (queue && strcmp(q->name, queue) != 0)
                continue;
            if ((rc = heap_reserve(q, q->counts[AT_STATE_DEAD])))
                break;
            for (struct mjob *j = q->fhead, *nx; j; j = nx) {
                nx = j->u.fin.next;
                if (j->state == AT_STATE_DEAD) {
                    requeue_one(m, j);
                    n++;
                }
            }
        }
    }
    pthread_mutex_unlock(&m->mu);
    *n_out = n;
    return rc;
}

static int mem_purge(uint64_t *n_out, at_backend *m, int64_t older_than)
{
    LOCK(m);
    advance_common(m);
    int64_t cutoff = m->now - older_than;
    uint64_t n = 0;
    for (struct mq *q = m->queues; q; q = q->next) {
        /* Finish order is append order, so the old ones are at the head. */
        while (q->fhead && q->fhead->lease_or_fin < cutoff) {
            struct mjob *j = q->fhead;
            leave_state(m, j);
            list_remove(q, j);
            job_unhash(m, j);
            free_job(j);
            n++;
        }
    }
    pthread_mutex_unlock(&m->mu);
    *n_out = n;
    return 0;
}

static int mem_stats(at_stats *st, at_backend *m)
{
    LOCK(m);
    advance_common(m);
    int rc = 0;
    for (struct mq *q = m->queues; q && rc == 0; q = q->next) {
        advance_queue(m, q);
        uint64_t e = at__wheel_earliest(q->wheel);
        int64_t due = e == AT_WHEEL_NEVER ? AT_TIME_NONE : (int64_t)e + m->off;
        rc = at_stats_add_queue(st, q->name, q->counts, due);
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

/* -------------------------------------------------------- worker support */

static int mem_release(at_backend *m, const char *id, uint64_t token, int64_t delay)
{
    LOCK(m);
    advance_common(m);
    struct mjob *j;
    int rc = held(&j, m, id, token);
    if (rc == 0 && j->cancel_req) {
        rc = cancel_holder(m, j, id);
    } else if (rc == 0) {
        int to = delay > 0 ? AT_STATE_SCHEDULED : AT_STATE_READY;
        if (to == AT_STATE_READY && heap_reserve(j->cls->q, 1)) {
            pthread_mutex_unlock(&m->mu);
            return at_store_error(m->store, AT_ERR_NOMEM, 0, "out of memory while releasing job %s", id);
        }
        leave_state(m, j);
        j->attempts--;
        j->run_at = m->now + delay;
        j->lease_or_fin = AT_TIME_NONE;
        enter_state(m, j, to);
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int mem_queue_pause(at_backend *m, const char *queue, int32_t paused)
{
    LOCK(m);
    struct mq *q = get_queue(m, queue);
    if (q)
        q->paused = paused != 0;
    pthread_mutex_unlock(&m->mu);
    return q ? 0 : at_store_error(m->store, AT_ERR_NOMEM, 0, "out of memory");
}

static int mem_queue_is_paused(int32_t *paused_out, at_backend *m, const char *queue)
{
    LOCK(m);
    struct mq *q = find_queue(m, queue);
    *paused_out = q && q->paused;
    pthread_mutex_unlock(&m->mu);
    return 0;
}

static int mem_rate_take(uint32_t *granted, int64_t *wait_ms, at_backend *m, const char *queue, uint32_t limit,
                         int64_t period, uint32_t want)
{
    LOCK(m);
    struct mq *q = get_queue(m, queue);
    if (!q) {
        pthread_mutex_unlock(&m->mu);
        return at_store_error(m->store, AT_ERR_NOMEM, 0, "out of memory");
    }
    int64_t cap = (int64_t)limit * period;
    if (q->bucket_limit != limit || q->bucket_period != period || q->bucket_at == 0) {
        /* A new or reconfigured bucket starts full. */
        q->bucket_limit = limit;
        q->bucket_period = period;
        q->bucket_units = cap;
        q->bucket_at = m->now;
    }
    if (m->now > q->bucket_at) {
        int64_t add = (m->now - q->bucket_at) * (int64_t)limit;
        q->bucket_units = add >= cap - q->bucket_units ? cap : q->bucket_units + add;
        q->bucket_at = m->now;
    }
    int64_t have = q->bucket_units / period;
    uint32_t g = have >= (int64_t)want ? want : (uint32_t)have;
    q->bucket_units -= (int64_t)g * period;
    *granted = g;
    *wait_ms = g ? 0 : (period - q->bucket_units + limit - 1) / limit;
    pthread_mutex_unlock(&m->mu);
    return 0;
}

/* ------------------------------------------------------------- workflows */

static int mem_wf_submit(at_backend *m, at_enqueue_item *items, size_t n, const char *guard, uint64_t token)
{
    return enqueue_common(m, items, n, items[0].job.workflow_id, guard, token);
}

static int mem_wf_status(at_backend *m, const char *wf_id, uint64_t counts[AT_STATE_COUNT__])
{
    LOCK(m);
    advance_common(m);
    struct mwf *w = find_wf(m, wf_id);
    if (w)
        for (struct mq *q = m->queues; q; q = q->next)
            advance_queue(m, q); /* due timers move counts */
    uint64_t total = 0;
    for (int i = 0; w && i < AT_STATE_COUNT__; i++)
        total += counts[i] = w->counts[i];
    pthread_mutex_unlock(&m->mu);
    return total ? 0 : at_store_error(m->store, AT_ERR_NOTFOUND, 0, "no workflow %s", wf_id);
}

static int mem_wf_cancel(uint64_t *n_out, at_backend *m, const char *wf_id)
{
    LOCK(m);
    advance_common(m);
    struct mwf *w = find_wf(m, wf_id);
    uint64_t total = 0, n = 0, fin0 = 0;
    for (int i = 0; w && i < AT_STATE_COUNT__; i++)
        total += w->counts[i];
    if (w)
        fin0 = w->counts[AT_STATE_SUCCEEDED] + w->counts[AT_STATE_DEAD] + w->counts[AT_STATE_CANCELLED];
    for (size_t i = 0; total && i < w->n; i++) {
        struct mjob *j = find_job(m, w->ids[i]);
        if (!j)
            continue;
        advance_queue(m, j->cls->q);
        if (j->state >= AT_STATE_SUCCEEDED)
            continue; /* also the ones an earlier cancel of this loop propagated to */
        if (j->state == AT_STATE_RUNNING) {
            if (!j->cancel_req) {
                j->cancel_req = 1;
                j->updated_at = m->now;
                n++;
            }
            continue;
        }
        leave_state(m, j);
        enter_state(m, j, AT_STATE_CANCELLED);
    }
    /* Cancelled here or by propagation from here: the finished count grew
     * by exactly those. */
    if (w)
        n += w->counts[AT_STATE_SUCCEEDED] + w->counts[AT_STATE_DEAD] + w->counts[AT_STATE_CANCELLED] - fin0;
    pthread_mutex_unlock(&m->mu);
    *n_out = n;
    return total ? 0 : at_store_error(m->store, AT_ERR_NOTFOUND, 0, "no workflow %s", wf_id);
}

static int mem_wf_jobs(at_job **jobs, size_t *n_out, char *cursor_out, at_backend *m, const char *wf_id,
                       const char *cursor, size_t limit)
{
    uint8_t bin[16];
    char after[AT_ID_SIZE] = "";
    if (cursor) {
        if (at_id_parse(bin, cursor))
            return at_store_error(m->store, AT_ERR_INVAL, 0, "'%s' is not a cursor of this store", cursor);
        at_id_format(after, bin);
    }
    LOCK(m);
    advance_common(m);
    struct mwf *w = find_wf(m, wf_id);
    size_t n = 0, i = 0;
    int rc = 0;
    if (w && after[0]) { /* first id after the cursor: binary search */
        size_t lo = 0, hi = w->n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (memcmp(w->ids[mid], after, AT_ID_LEN) <= 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        i = lo;
    }
    for (; w && i < w->n && n < limit && rc == 0; i++) {
        struct mjob *j = find_job(m, w->ids[i]);
        if (!j)
            continue; /* purged */
        advance_queue(m, j->cls->q);
        if ((rc = snapshot(&jobs[n], j)) == 0)
            n++;
    }
    cursor_out[0] = '\0';
    if (rc == 0 && w && i < w->n && n > 0) {
        memcpy(cursor_out, w->ids[i - 1], AT_ID_LEN);
        cursor_out[AT_ID_LEN] = '\0';
    }
    pthread_mutex_unlock(&m->mu);
    if (rc) {
        for (size_t k = 0; k < n; k++)
            at_job_free(jobs[k]);
        n = 0;
    }
    *n_out = n;
    return rc;
}

static int mem_sched_put(int32_t *created_out, at_backend *m, const char *name, const void *spec, size_t len)
{
    return at__msched_put(m->sched, created_out, name, spec, len);
}

static int mem_sched_remove(at_backend *m, const char *name)
{
    return at__msched_remove(m->sched, name);
}

static int mem_sched_pause(at_backend *m, const char *name, int32_t paused)
{
    return at__msched_pause(m->sched, name, paused);
}

static int mem_sched_list(at_backend *m, const char *name, at_sched_row_fn fn, void *ud)
{
    return at__msched_list(m->sched, name, fn, ud);
}

static int mem_sched_fired(at_backend *m, const char *name, int64_t fire_at, const char *job_id, const char *lease,
                           uint64_t token)
{
    return at__msched_fired(m->sched, name, fire_at, job_id, lease, token);
}

static int mem_lease_acquire(uint64_t *token_out, int64_t *ttl_left_out, at_backend *m, const char *name,
                             const char *owner, int64_t ttl_ms)
{
    return at__msched_lease_acquire(m->sched, token_out, ttl_left_out, name, owner, ttl_ms);
}

static int mem_lease_release(at_backend *m, const char *name, const char *owner, uint64_t token)
{
    return at__msched_lease_release(m->sched, name, owner, token);
}

const at_store_vtable at__memory_vtable = {
    .version = AT_STORE_VTABLE_VERSION,
    .size = sizeof(at_store_vtable),
    .scheme = "memory",
    .flags = AT_STORE_F_HOST_CLOCK,
    .open = mem_open,
    .close = mem_close,
    .enqueue = mem_enqueue,
    .claim = mem_claim,
    .ack = mem_ack,
    .fail = mem_fail,
    .touch = mem_touch,
    .cancel = mem_cancel,
    .get = mem_get,
    .list = mem_list,
    .requeue = mem_requeue,
    .purge = mem_purge,
    .stats = mem_stats,
    .control = NULL,
    .changed = NULL,
    .ack_many = mem_ack_many,
    .sched_put = mem_sched_put,
    .sched_remove = mem_sched_remove,
    .sched_pause = mem_sched_pause,
    .sched_list = mem_sched_list,
    .sched_fired = mem_sched_fired,
    .lease_acquire = mem_lease_acquire,
    .lease_release = mem_lease_release,
    .wf_submit = mem_wf_submit,
    .wf_status = mem_wf_status,
    .wf_cancel = mem_wf_cancel,
    .wf_jobs = mem_wf_jobs,
    .release = mem_release,
    .queue_pause = mem_queue_pause,
    .queue_is_paused = mem_queue_is_paused,
    .rate_take = mem_rate_take,
};
