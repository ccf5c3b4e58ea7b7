/*
 * scheduler.c - the leader that fires stored schedules (ADR/0013).
 *
 * Every process that runs a scheduler competes for one lease per store
 * ("scheduler") with a fencing token.  The holder rereads the schedules every
 * AT_OPT_STORE_SCHEDULER_REFRESH_MS, arms one timer per unpaused schedule on a
 * timing wheel (store-monotonic ms, so a wall-clock jump cannot fire a tick
 * early), and for each tick enqueues the template's job with the idempotency
 * key "at:cron:NAME:FIRE_MS" and records the firing with its token.
 *
 * Three layers keep a tick to one job:
 *  - the lease: only one scheduler acts at a time, and a leader considers
 *    itself one only until ttl - ttl/10 after it asked (before the store can
 *    hand the lease to anyone else, allowing for clock-rate differences);
 *  - the fence: sched_fired refuses a token that is no longer current, so a
 *    paused-and-resumed old leader cannot move a schedule's record;
 *  - the key: a job for a tick that two leaders raced on is created once.
 * The state that matters (last firing per schedule) lives in the store, so a
 * new leader continues where the old one stopped, and ticks it reaches within
 * the grace fire late instead of being lost.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "schedule.h"
#include "wheel.h"

#define SCHEDULER_MAGIC 0x61736372u /* "ascr" */
#define LEASE_NAME "scheduler"
/* Without a real clock to sleep on (a manual clock moves by hand and kicks
 * us), and to notice wall-clock jumps, never sleep longer than this. */
#define MAX_SLEEP_MS 1000
/* After a store error, try again this soon. */
#define RETRY_MS 200

struct entry {
    at_timer timer;
    at_schedule *def;
    int64_t due; /* wall ms of the tick the timer is armed for */
};

struct at_scheduler {
    uint32_t magic;
    at_store *st;
    pthread_t thread;
    pthread_mutex_t mu; /* guards stop and kicks */
    pthread_cond_t cv;
    bool stop;
    uint64_t kicks;
    struct at_scheduler *next; /* in st->scheds */
    char owner[AT_KEY_MAX + 1];

    /* Owned by the thread. */
    _Atomic int leader;
    uint64_t token;
    int64_t valid_until;  /* store mono ms: leadership assumed until then */
    int64_t next_lease;   /* store mono ms of the next acquire or renewal */
    int64_t next_refresh; /* store mono ms */
    int64_t offset;       /* wall - mono when the timers were armed */
    at_wheel *wheel;
    struct entry *e;
    size_t n;
    bool lost;         /* leadership lost during a wheel advance */
    size_t unreadable; /* schedules the last refresh could not decode */

    _Atomic uint64_t fired, misfires, errors, elected;
};

static int64_t mono(const at_scheduler *s)
{
    return at_store_clock_mono(s->st);
}

static int64_t wall(const at_scheduler *s)
{
    return at_store_clock_wall(s->st);
}

void at__sched_kick(at_store *st)
{
    pthread_mutex_lock(&st->schmu);
    for (at_scheduler *s = st->scheds; s; s = s->next) {
        pthread_mutex_lock(&s->mu);
        s->kicks++;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_unlock(&st->schmu);
}

/* ------------------------------------------------------------- entries */

static void clear_entries(at_scheduler *s)
{
    for (size_t i = 0; i < s->n; i++) {
        at__wheel_del(s->wheel, &s->e[i].timer);
        at_schedule_free(s->e[i].def);
    }
    at__free(s->e);
    s->e = NULL;
    s->n = 0;
}

static void step_down(at_scheduler *s)
{
    if (atomic_load(&s->leader))
        at__log(AT_LOG_WARN, "scheduler", NULL, 0, "%s lost the leadership (token %llu)", s->owner,
                (unsigned long long)s->token);
    atomic_store(&s->leader, 0);
    s->lost = true;
    clear_entries(s);
}

static void arm(at_scheduler *s, struct entry *e, int64_t due)
{
    e->due = due;
    int64_t m = due - s->offset;
    at__wheel_add(s->wheel, &e->timer, m < 0 ? 0 : (uint64_t)m);
}

static bool transient(int rc)
{
    return rc == AT_ERR_CONN || rc == AT_ERR_TIMEOUT || rc == AT_ERR_BUSY || rc == AT_ERR_IO ||
           rc == AT_ERR_NOMEM;
}

/* Enqueue tick `t` of `def` and record it.  Returns 0, 1 to try this tick
 * again later (transient store trouble), or -1 when leadership was lost or
 * the schedule is gone (the caller stops using the entry). */
static int fire(at_scheduler *s, const at_schedule *def, int64_t t)
{
    if (!atomic_load(&s->leader) || mono(s) >= s->valid_until) {
        if (atomic_load(&s->leader))
            step_down(s);
        return -1;
    }
    at_opts o = def->opts;
    char key[AT_KEY_MAX + 1];
    snprintf(key, sizeof key, "at:cron:%s:%" PRId64, def->name, t);
    o.idem_key = key;
    o.run_at = t;
    o.delay_ms = AT__UNSET;
    char id[AT_ID_SIZE];
    int rc = at_enqueue(id, s->st, def->type, def->payload, def->payload_len, &o);
    if (rc == 0)
        atomic_fetch_add(&s->fired, 1);
    else if (rc != AT_ERR_DUPLICATE) {
        atomic_fetch_add(&s->errors, 1);
        at__log(transient(rc) ? AT_LOG_WARN : AT_LOG_ERROR, "scheduler", NULL, rc,
                "schedule %s: the job of tick %lld was not created (%s)%s", def->name, (long long)t,
                at_err_name(rc), transient(rc) ? "; trying again" : "; tick given up");
        if (transient(rc))
            return 1;
        /* A template the store now refuses (its payload limit shrank) would
         * fail forever: the tick is recorded as fired with no job, so it is
         * given up once; the next ticks still try. */
        id[0] = '\0';
    }
    rc = s->st->vt->sched_fired(s->st->be, def->name, t, id, LEASE_NAME, s->token);
    if (rc == AT_ERR_STALE) {
        step_down(s);
        return -1;
    }
    if (rc == AT_ERR_NOTFOUND)
        return -1;
    /* Any other failure leaves the record behind; the next refresh fires
     * the tick again and its key resolves to the job just made. */
    return 0;
}

static void reverse(int64_t *a, size_t n)
{
    for (size_t i = 0; i < n / 2; i++) {
        int64_t t = a[i];
        a[i] = a[n - 1 - i];
        a[n - 1 - i] = t;
    }
}

/* The latest `k` ticks in (after, before), oldest first, into out[]; their
 * number.  Searches backwards from `before` in doubling windows, so catching
 * up after a month of downtime does not enumerate a month of seconds. */
static size_t latest_ticks(const at_schedule *def, int64_t after, int64_t before, size_t k, int64_t *out)
{
    for (int64_t d = 1000;; d *= 2) {
        int64_t from = before - d > after ? before - d : after;
        size_t got = 0, head = 0; /* a ring of the last k */
        int64_t t = from;
        while (at__cron_next(def->cron, def->zone, t, &t) == 0 && t < before) {
            out[head] = t;
            head = (head + 1) % k;
            got++;
        }
        if (got >= k || from == after || d > INT64_MAX / 4) {
            if (got < k)
                return got;
            /* Rotate the ring so that its oldest entry, at head, comes first. */
            reverse(out, head);
            reverse(out + head, k - head);
            reverse(out, k);
            return k;
        }
    }
}

/* Bring one schedule up to date: fire or drop the ticks it owes (by its
 * misfire policy) and arm its next tick.  Returns false when leadership
 * was lost. */
static bool catch_up(at_scheduler *s, struct entry *e)
{
    const at_schedule *def = e->def;
    int64_t now = wall(s);
    int64_t anchor = def->last_fire_at;
    if (def->updated_at != AT_TIME_NONE && def->updated_at > anchor)
        anchor = def->updated_at;
    if (anchor == AT_TIME_NONE)
        anchor = now;
    int64_t t;
    if (at__cron_next(def->cron, def->zone, anchor, &t) != 0)
        return true; /* never fires again (end of the range): nothing to arm */
    int64_t cut = now - def->grace_ms;
    if (t < cut) {
        atomic_fetch_add(&s->misfires, 1);
        at__log(AT_LOG_WARN, "scheduler", NULL, 0, "schedule %s missed ticks from %lld (past its %lld ms grace): %s",
                def->name, (long long)t, (long long)def->grace_ms,
                def->misfire == AT_MISFIRE_SKIP ? "skipped" : def->misfire == AT_MISFIRE_ONCE ? "fired once" : "fired");
        size_t k = def->misfire == AT_MISFIRE_ALL ? (size_t)def->cap : def->misfire == AT_MISFIRE_ONCE ? 1 : 0;
        if (k > 0) {
            int64_t *ticks = at__malloc(k * sizeof *ticks);
            if (!ticks) {
                arm(s, e, now + RETRY_MS);
                return true;
            }
            size_t n = latest_ticks(def, anchor, cut, k, ticks);
            for (size_t i = 0; i < n; i++) {
                int r = fire(s, def, ticks[i]);
                if (r != 0) {
                    at__free(ticks);
                    if (r < 0)
                        return atomic_load(&s->leader) != 0;
                    arm(s, e, now + RETRY_MS);
                    return true;
                }
            }
            at__free(ticks);
        }
        if (at__cron_next(def->cron, def->zone, cut - 1, &t) != 0)
            return true;
    }
    /* Ticks within the grace: each one fires, late. */
    while (t <= now) {
        int r = fire(s, def, t);
        if (r < 0)
            return atomic_load(&s->leader) != 0;
        if (r > 0) {
            arm(s, e, t); /* retried from the wheel */
            return true;
        }
        if (at__cron_next(def->cron, def->zone, t, &t) != 0)
            return true;
    }
    arm(s, e, t);
    return true;
}

static void on_timer(at_timer *timer, void *ud)
{
    at_scheduler *s = ud;
    if (s->lost)
        return;
    struct entry *e = (struct entry *)((char *)timer - offsetof(struct entry, timer));
    int64_t now = wall(s);
    if (now < e->due) { /* the wall clock went back: never early */
        arm(s, e, e->due);
        return;
    }
    int r = fire(s, e->def, e->due);
    if (r < 0)
        return;
    if (r > 0) {
        int64_t m = mono(s) + RETRY_MS;
        at__wheel_add(s->wheel, &e->timer, (uint64_t)m);
        return;
    }
    /* The record now says e->due; catch_up arms the tick after it (and
     * fires any that came due meanwhile, within the grace). */
    e->def->last_fire_at = e->due;
    catch_up(s, e);
}

/* Reread every schedule and rebuild the timers from the store's records,
 * which are the truth: another leader may have fired ticks, a schedule may
 * have been added, replaced, paused or removed by any process. */
static void refresh(at_scheduler *s)
{
    at_schedule **v;
    size_t n, skipped = 0;
    if (at__sched_load(&v, &n, &skipped, s->st, NULL) != 0) {
        s->next_refresh = mono(s) + RETRY_MS;
        return;
    }
    if (skipped > s->unreadable) {
        atomic_fetch_add(&s->errors, skipped - s->unreadable);
        at__log(AT_LOG_ERROR, "scheduler", NULL, AT_ERR_CORRUPT,
                "%zu stored schedules cannot be read here (unknown time zone or foreign data); they do not fire",
                skipped);
    }
    s->unreadable = skipped;
    clear_entries(s);
    s->offset = wall(s) - mono(s);
    s->e = n ? at__calloc(n, sizeof *s->e) : NULL;
    if (n && !s->e) {
        at_schedule_list_free(v, n);
        s->next_refresh = mono(s) + RETRY_MS;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (v[i]->paused) {
            at_schedule_free(v[i]);
            continue;
        }
        struct entry *e = &s->e[s->n++];
        at__timer_init(&e->timer);
        e->def = v[i];
        if (!catch_up(s, e)) {
            for (size_t j = i + 1; j < n; j++)
                at_schedule_free(v[j]);
            break;
        }
    }
    at__free(v);
}

/* Take or keep the lease.  Times are measured from before the request, so
 * our idea of when it ends is never later than the store's. */
static void lease_step(at_scheduler *s)
{
    int64_t ttl = at__store_opt(s->st, AT__SOPT_SCHED_LEASE);
    int64_t t0 = mono(s);
    uint64_t token = 0;
    int64_t left = 0;
    int rc = s->st->vt->lease_acquire(&token, &left, s->st->be, LEASE_NAME, s->owner, ttl);
    if (rc == 0) {
        if (!atomic_load(&s->leader) || token != s->token) {
            clear_entries(s);
            s->token = token;
            atomic_store(&s->leader, 1);
            atomic_fetch_add(&s->elected, 1);
            at__log(AT_LOG_INFO, "scheduler", NULL, 0, "%s leads the schedules with fencing token %llu", s->owner,
                    (unsigned long long)token);
            s->next_refresh = t0; /* start from the store's records */
        }
        s->valid_until = t0 + ttl - ttl / 10;
        s->next_lease = t0 + ttl / 3;
        return;
    }
    if (rc == AT_ERR_BUSY) {
        if (atomic_load(&s->leader))
            step_down(s);
        /* Ask again when the holder's lease would run out (a crashed
         * leader), and at least every third of a period (one that let go). */
        s->next_lease = t0 + (left >= 0 && left < ttl / 3 ? left + 1 : ttl / 3);
        return;
    }
    /* Store trouble: keep leading while the lease surely holds. */
    if (atomic_load(&s->leader) && t0 >= s->valid_until)
        step_down(s);
    s->next_lease = t0 + RETRY_MS;
}

/* One round of work; the store-monotonic time of the next one. */
static int64_t step(at_scheduler *s, bool kicked)
{
    int64_t now = mono(s);
    /* A kick may mean a leader in this process let go: followers ask now. */
    if (kicked && !atomic_load(&s->leader))
        s->next_lease = now;
    if (now >= s->next_lease)
        lease_step(s);
    if (!atomic_load(&s->leader))
        return s->next_lease;
    s->lost = false;
    int64_t off = wall(s) - mono(s);
    if (kicked || now >= s->next_refresh || off - s->offset > 1 || s->offset - off > 1) {
        refresh(s);
        if (atomic_load(&s->leader) && now >= s->next_refresh)
            s->next_refresh = now + at__store_opt(s->st, AT__SOPT_SCHED_REFRESH);
    }
    if (atomic_load(&s->leader))
        at__wheel_advance(s->wheel, (uint64_t)mono(s), on_timer, s);
    int64_t next = s->next_lease < s->next_refresh ? s->next_lease : s->next_refresh;
    if (atomic_load(&s->leader)) {
        uint64_t w = at__wheel_next(s->wheel);
        if (w != AT_WHEEL_NEVER && (int64_t)w < next)
            next = (int64_t)w;
    }
    return next;
}

static void *run(void *arg)
{
    at_scheduler *s = arg;
    uint64_t seen = 0;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        bool kicked = s->kicks != seen;
        seen = s->kicks;
        pthread_mutex_unlock(&s->mu);
        int64_t next = step(s, kicked);
        int64_t wait_ms = next - mono(s);
        if (wait_ms > MAX_SLEEP_MS || at_store_clock_is_manual(s->st))
            wait_ms = MAX_SLEEP_MS;
        pthread_mutex_lock(&s->mu);
        if (wait_ms <= 0 || s->stop || s->kicks != seen)
            continue;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = ts.tv_nsec + wait_ms * 1000000;
        ts.tv_sec += ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        while (!s->stop && s->kicks == seen)
            if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT)
                break;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

AT_EXTERN int at_scheduler_start(at_scheduler **out, at_store *st)
{
    if (out)
        *out = NULL;
    int rc = at__store_enter_job(st);
    if (rc)
        return rc;
    if (!out)
        return at__err_set(st, AT_ERR_INVAL, 0, "out is NULL");
    if (!at__store_has_sched(st))
        return at__err_set(st, AT_ERR_UNSUPPORTED, 0, "the %s backend does not store schedules", st->vt->scheme);
    at_scheduler *s = at__calloc(1, sizeof *s);
    if (!s || !(s->wheel = at__wheel_new((uint64_t)at_store_clock_mono(st)))) {
        at__free(s);
        return at__err_set(st, AT_ERR_NOMEM, 0, "out of memory");
    }
    s->magic = SCHEDULER_MAGIC;
    s->st = st;
    char id[AT_ID_SIZE];
    at__id_new(id);
    snprintf(s->owner, sizeof s->owner, "%s/%ld", id, (long)getpid());
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    if ((rc = pthread_create(&s->thread, NULL, run, s)) != 0) {
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        at__wheel_free(s->wheel);
        at__free(s);
        return at__err_set(st, AT_ERR_NOMEM, rc, "cannot start the scheduler thread");
    }
    pthread_mutex_lock(&st->schmu);
    s->next = st->scheds;
    st->scheds = s;
    pthread_mutex_unlock(&st->schmu);
    *out = s;
    return 0;
}

AT_EXTERN void at_scheduler_stop(at_scheduler *s)
{
    if (!s || s->magic != SCHEDULER_MAGIC)
        return;
    at_store *st = s->st;
    pthread_mutex_lock(&st->schmu);
    for (at_scheduler **pp = &st->scheds; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    pthread_mutex_unlock(&st->schmu);
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    /* Hand over now rather than after a lease period of silence. */
    if (atomic_load(&s->leader)) {
        st->vt->lease_release(st->be, LEASE_NAME, s->owner, s->token);
        at__sched_kick(st); /* followers in this process take over now */
    }
    clear_entries(s);
    at__wheel_free(s->wheel);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    s->magic = 0;
    at__free(s);
}

AT_EXTERN int32_t at_scheduler_is_leader(const at_scheduler *s)
{
    if (!s || s->magic != SCHEDULER_MAGIC)
        return 0;
    return atomic_load(&((at_scheduler *)s)->leader) ? 1 : 0;
}

AT_EXTERN void at_scheduler_counters(const at_scheduler *s, uint64_t *fired_out, uint64_t *misfires_out,
                                     uint64_t *errors_out, uint64_t *elected_out)
{
    bool ok = s && s->magic == SCHEDULER_MAGIC;
    at_scheduler *m = (at_scheduler *)s;
    if (fired_out)
        *fired_out = ok ? atomic_load(&m->fired) : 0;
    if (misfires_out)
        *misfires_out = ok ? atomic_load(&m->misfires) : 0;
    if (errors_out)
        *errors_out = ok ? atomic_load(&m->errors) : 0;
    if (elected_out)
        *elected_out = ok ? atomic_load(&m->elected) : 0;
}
