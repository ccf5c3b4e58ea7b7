/*
 * internal.h - declarations shared by the core's modules and the in-tree
 * backends.  Nothing here is exported: every symbol is hidden by
 * -fvisibility=hidden, and the names carry the at__ prefix.
 */
#ifndef AT_INTERNAL_H
#define AT_INTERNAL_H

/* configure's results (which optional backends are built). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdint.h>

#include "asynctask.h"
#include "asynctask/store.h"

#define AT__UNSET INT64_MIN

/* Limits checked by the core (documented in at_enqueue(3), at_opts_new(3)). */
#define AT__MAX_QUEUES_PER_POLL 64
#define AT__MAX_POLL_BATCH 1000
#define AT__MAX_LIST_LIMIT 10000
#define AT__MAX_ATTEMPTS_LIMIT 1000000
#define AT__YEAR_MS (INT64_C(366) * 24 * 3600 * 1000)
#define AT__DAY_MS (INT64_C(24) * 3600 * 1000)
#define AT__MAX_ERROR_TEXT 4096

/* ---- allocator (alloc.c) ---- */
void *at__malloc(size_t n);
void *at__calloc(size_t n, size_t size);
void *at__realloc(void *p, size_t n);
void at__free(void *p);
char *at__strdup(const char *s);
void *at__memdup(const void *p, size_t n);

/* ---- clocks (clock.c) ---- */
int64_t at__real_wall_ns(void);
int64_t at__real_mono_ns(void);

struct at_clock {
    uint32_t magic;
    pthread_mutex_t mu; /* guards `stores` */
    _Atomic int64_t wall_ms;
    _Atomic int64_t mono_ms;
    struct at_store *stores; /* stores using this clock, linked by clock_next */
};

/* Take the store off its manual clock's list (no-op on the real clock). */
void at__clock_detach(at_store *s);
/* Both readings of the store's clock, in ns (a manual clock's ms * 1e6). */
void at__store_clock_ns(const at_store *s, int64_t *wall_ns, int64_t *mono_ns);

/* ---- ids (id.c) ---- */
void at__id_new(char out[AT_ID_SIZE]);
void at__id_after_fork(void);
/* Check an id and write its canonical (upper case) form; AT_ERR_INVAL if it
 * is not one.  Backends receive only canonical ids. */
int at__id_canon(char out[AT_ID_SIZE], const char *id);

/* ---- names (names.c) ---- */
int at__check_name(const char *s);
int at__check_key(const char *s);

/* ---- errors (errors.c, store.c) ---- */
void at__err_clear(void);
int at__err_set(const at_store *s, int code, int32_t native, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int at__err_setv(const at_store *s, int code, int32_t native, const char *fmt, va_list ap);

/* ---- options (opts.c) ---- */
struct at_opts {
    uint32_t magic;
    char queue[AT_NAME_MAX + 1]; /* "" = unset */
    int64_t priority, run_at, delay_ms, max_attempts, backoff_base_ms, backoff_cap_ms, backoff_jitter,
        lease_ms, idem_ttl_ms; /* AT__UNSET = default */
    char *idem_key;            /* NULL = none */
    char traceparent[56];      /* "" = none */
};

/* All options unset (defaults); no allocation. */
void at__opts_init(at_opts *o);

/* ---- store (store.c) ---- */
enum {
    AT__SOPT_MAX_PAYLOAD,
    AT__SOPT_RETENTION,
    AT__SOPT_LEASE,
    AT__SOPT_MAX_ATTEMPTS,
    AT__SOPT_BACKOFF_BASE,
    AT__SOPT_BACKOFF_CAP,
    AT__SOPT_BACKOFF_JITTER,
    AT__SOPT_IDEM_TTL,
    AT__SOPT_MAX_RESULT,
    AT__SOPT_WATCH_INTERVAL,
    AT__SOPT_SCHED_LEASE,
    AT__SOPT_SCHED_REFRESH,
    AT__SOPT_COUNT
};

struct at_store {
    uint32_t magic;
    const at_store_vtable *vt;
    at_backend *be;
    unsigned fork_gen;
    at_clock *clock;        /* NULL: the host's real clock */
    struct at_store *clock_next;
    atomic_bool used;       /* a job operation ran: the clock is fixed */
    _Atomic int64_t opt[AT__SOPT_COUNT];
    /* Pollers sleep on wcv.  Every change that may make a job claimable
     * bumps wgen; only when a poller is registered in nwaiters does the
     * notifier take wmu and broadcast (both sequentially consistent, so
     * either the notifier sees the waiter or the waiter sees the bump: no
     * wake-up is lost, and a busy store pays one atomic add per change). */
    pthread_mutex_t wmu;
    pthread_cond_t wcv;
    _Atomic uint64_t wgen;
    atomic_int nwaiters;
    _Atomic uint64_t intr; /* at_store_interrupt: blocked pollers return */
    /* Schedulers running on this store (scheduler.c), kicked when a local
     * call changes a schedule or a manual clock moves. */
    pthread_mutex_t schmu;
    struct at_scheduler *scheds;
    /* at_store_on_event: set before the store is shared, read without a
     * lock afterwards. */
    at_event_fn ev_fn;
    void *ev_ud;
    struct at__metrics *metrics; /* metrics.c */
};

/* ---- metrics (metrics.c) ---- */
struct at__metrics;
int at__metrics_new(struct at__metrics **out);
void at__metrics_free(struct at__metrics *m);
void at__metrics_enqueued(struct at__metrics *m, const char *queue, uint64_t n);
void at__metrics_claimed(struct at__metrics *m, at_job *const *jobs, size_t n);
void at__metrics_acked(struct at__metrics *m, const char *id, int64_t now_ms);
void at__metrics_failed(struct at__metrics *m, const char *id, int32_t state, int64_t now_ms);
void at__metrics_released(struct at__metrics *m, const char *id);
void at__metrics_cancelled(struct at__metrics *m, const char *id);

/* at_poll that gives up (0 jobs) once *abort is set and the store notified. */
int at__poll(at_job **jobs_out, size_t *n_out, at_store *s, const char *const *queues, size_t nqueues, size_t max,
             int64_t timeout_ms, const atomic_int *abort);

/* Metrics, and AT_EVENT_ENQUEUED when a hook is set, for each created item. */
void at__store_emit_enqueued(at_store *s, const at_enqueue_item *items, size_t n);

int at__store_enter(at_store *s);
/* As at__store_enter, and fixes the store's clock (a job operation). */
int at__store_enter_job(at_store *s);
#define AT__ENTER(s)                                                                                         \
    do {                                                                                                     \
        int enter_rc_ = at__store_enter(s);                                                                  \
        if (enter_rc_ != 0)                                                                                  \
            return enter_rc_;                                                                                \
    } while (0)
int64_t at__store_opt(const at_store *s, int which);
int at__store_fill_job(at_store *s, at_job_info *job, const char *type, const void *payload, size_t len,
                       const at_opts *o);

/* ---- registry (registry.c) ---- */
const at_store_vtable *at__registry_find(const char *scheme, size_t len);
extern const at_store_vtable at__memory_vtable;

/* ---- backoff (backoff.c) ---- */
int64_t at__backoff_ms(uint32_t attempt, int64_t base_ms, int64_t cap_ms, int32_t jitter_permille,
                       uint64_t random64);
uint64_t at__random64(void);

/* ---- stats (stats.c) ---- */
struct at_stats_queue {
    char *name;
    uint64_t counts[AT_STATE_COUNT__];
    int64_t next_due;
};
struct at_stats {
    uint32_t magic;
    struct at_stats_queue *q;
    size_t n, cap;
};
int at__stats_new(at_stats **out);
void at__stats_sort(at_stats *st);

/* ---- jobs (job.c) ---- */
struct at_job {
    uint32_t magic;
    at_job_info info; /* strings point into `data` */
    char data[];
};

/* Token bucket of a queue (the backend's rate_take); AT_ERR_UNSUPPORTED
 * without one. */
int at__store_rate_take(uint32_t *granted_out, int64_t *wait_ms_out, at_store *s, const char *queue, uint32_t limit,
                        int64_t period_ms, uint32_t want);
bool at__store_has_rate(const at_store *s);

/* ---- log (log.c) ---- */
bool at__log_enabled(int32_t level);
void at__log(int32_t level, const char *component, const at_job *job, int32_t code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* ---- schedules (schedule.c, scheduler.c) ---- */
/* Wake this store's schedulers: a schedule changed or the clock moved. */
void at__sched_kick(at_store *s);
#define at__sched_changed(s) at__sched_kick(s)

#endif /* AT_INTERNAL_H */
