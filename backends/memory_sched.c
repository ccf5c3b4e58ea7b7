/*
 * memory_sched.c - schedules and leases of the memory backend.
 *
 * Kept apart from the job tables: schedules are few, change rarely and have
 * their own lock, so a scheduler reading them never waits behind a burst of
 * enqueues.  Records sit in an array sorted by name (bytewise), which is
 * also the listing order the vtable asks for.  Leases are judged by the
 * store's wall clock like everything else in the backend, so a manual clock
 * moves them in tests.
 */
#include <stdio.h>
#include <string.h>

#include "memory_sched.h"

struct srec {
    char *name;
    void *spec;
    size_t spec_len;
    int32_t paused;
    int64_t created_at, updated_at, last_fire_at;
    char last_job_id[AT_ID_SIZE];
};

struct lrec {
    char *name;
    char owner[AT_KEY_MAX + 1];
    uint64_t token;
    int64_t expires_at;
    struct lrec *next;
};

struct at__msched {
    at_store *store;
    pthread_mutex_t mu;
    struct srec *v;
    size_t n, cap;
    struct lrec *leases;
};

int at__msched_new(struct at__msched **out, at_store *store)
{
    struct at__msched *m = at__calloc(1, sizeof *m);
    if (!m)
        return AT_ERR_NOMEM;
    m->store = store;
    pthread_mutex_init(&m->mu, NULL);
    *out = m;
    return 0;
}

void at__msched_free(struct at__msched *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++) {
        at__free(m->v[i].name);
        at__free(m->v[i].spec);
    }
    at__free(m->v);
    for (struct lrec *l = m->leases, *n; l; l = n) {
        n = l->next;
        at__free(l->name);
        at__free(l);
    }
    pthread_mutex_destroy(&m->mu);
    at__free(m);
}

/* Index of `name`, or of where it would go (and *found false). */
static size_t find(const struct at__msched *m, const char *name, bool *found)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->v[mid].name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static int not_found(struct at__msched *m, const char *name)
{
    return at_store_error(m->store, AT_ERR_NOTFOUND, 0, "no schedule named '%s'", name);
}

int at__msched_put(struct at__msched *m, int32_t *created_out, const char *name, const void *spec, size_t len)
{
    void *copy = at__memdup(spec, len ? len : 1);
    if (!copy)
        return AT_ERR_NOMEM;
    int64_t now = at_store_clock_wall(m->store);
    pthread_mutex_lock(&m->mu);
    bool found;
    size_t i = find(m, name, &found);
    if (found) {
        struct srec *r = &m->v[i];
        if (r->spec_len != len || memcmp(r->spec, spec, len) != 0)
            r->updated_at = now;
        at__free(r->spec);
        r->spec = copy;
        r->spec_len = len;
        pthread_mutex_unlock(&m->mu);
        *created_out = 0;
        return 0;
    }
    char *nm = at__strdup(name);
    if (nm && m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 8;
        struct srec *v = at__realloc(m->v, cap * sizeof *v);
        if (v) {
            m->v = v;
            m->cap = cap;
        }
    }
    if (!nm || m->n == m->cap) {
        pthread_mutex_unlock(&m->mu);
        at__free(nm);
        at__free(copy);
        return AT_ERR_NOMEM;
    }
    memmove(&m->v[i + 1], &m->v[i], (m->n - i) * sizeof *m->v);
    m->v[i] = (struct srec){.name = nm,
                            .spec = copy,
                            .spec_len = len,
                            .created_at = now,
                            .updated_at = now,
                            .last_fire_at = AT_TIME_NONE};
    m->n++;
    pthread_mutex_unlock(&m->mu);
    *created_out = 1;
    return 0;
}

int at__msched_remove(struct at__msched *m, const char *name)
{
    pthread_mutex_lock(&m->mu);
    bool found;
    size_t i = find(m, name, &found);
    if (!found) {
        pthread_mutex_unlock(&m->mu);
        return not_found(m, name);
    }
    at__free(m->v[i].name);
    at__free(m->v[i].spec);
    memmove(&m->v[i], &m->v[i + 1], (m->n - i - 1) * sizeof *m->v);
    m->n--;
    pthread_mutex_unlock(&m->mu);
    return 0;
}

int at__msched_pause(struct at__msched *m, const char *name, int32_t paused)
{
    pthread_mutex_lock(&m->mu);
    bool found;
    size_t i = find(m, name, &found);
    if (found)
        m->v[i].paused = paused ? 1 : 0;
    pthread_mutex_unlock(&m->mu);
    return found ? 0 : not_found(m, name);
}

static void to_row(at_sched_row *row, const struct srec *r)
{
    at_sched_row_init(row);
    row->name = r->name;
    row->spec = r->spec;
    row->spec_len = r->spec_len;
    row->paused = r->paused;
    row->created_at = r->created_at;
    row->updated_at = r->updated_at;
    row->last_fire_at = r->last_fire_at;
    memcpy(row->last_job_id, r->last_job_id, AT_ID_SIZE);
}

int at__msched_list(struct at__msched *m, const char *name, at_sched_row_fn fn, void *ud)
{
    /* The callback runs under the lock: the vtable forbids it to call back
     * into the store, and the snapshot is consistent for free. */
    pthread_mutex_lock(&m->mu);
    int rc = 0;
    size_t lo = 0, hi = m->n;
    if (name) {
        bool found;
        lo = find(m, name, &found);
        if (!found) {
            pthread_mutex_unlock(&m->mu);
            return not_found(m, name);
        }
        hi = lo + 1;
    }
    for (size_t i = lo; i < hi && rc == 0; i++) {
        at_sched_row row;
        to_row(&row, &m->v[i]);
        rc = fn(ud, &row);
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static struct lrec *find_lease(struct at__msched *m, const char *name)
{
    for (struct lrec *l = m->leases; l; l = l->next)
        if (strcmp(l->name, name) == 0)
            return l;
    return NULL;
}

int at__msched_fired(struct at__msched *m, const char *name, int64_t fire_at, const char *job_id,
                     const char *lease, uint64_t token)
{
    int64_t now = at_store_clock_wall(m->store);
    pthread_mutex_lock(&m->mu);
    struct lrec *l = find_lease(m, lease);
    if (!l || l->token != token || l->expires_at <= now) {
        pthread_mutex_unlock(&m->mu);
        return at_store_error(m->store, AT_ERR_STALE, 0, "lease '%s' is not held with token %llu", lease,
                              (unsigned long long)token);
    }
    bool found;
    size_t i = find(m, name, &found);
    if (!found) {
        pthread_mutex_unlock(&m->mu);
        return not_found(m, name);
    }
    struct srec *r = &m->v[i];
    if (r->last_fire_at == AT_TIME_NONE || fire_at > r->last_fire_at) {
        r->last_fire_at = fire_at;
        snprintf(r->last_job_id, sizeof r->last_job_id, "%s", job_id ? job_id : "");
    }
    pthread_mutex_unlock(&m->mu);
    return 0;
}

int at__msched_lease_acquire(struct at__msched *m, uint64_t *token_out, int64_t *ttl_left_out, const char *name,
                             const char *owner, int64_t ttl_ms)
{
    int64_t now = at_store_clock_wall(m->store);
    pthread_mutex_lock(&m->mu);
    struct lrec *l = find_lease(m, name);
    if (!l) {
        l = at__calloc(1, sizeof *l);
        if (!l || !(l->name = at__strdup(name))) {
            pthread_mutex_unlock(&m->mu);
            at__free(l);
            return AT_ERR_NOMEM;
        }
        l->next = m->leases;
        m->leases = l;
    }
    if (l->token != 0 && l->expires_at > now && strcmp(l->owner, owner) != 0) {
        *token_out = l->token;
        *ttl_left_out = l->expires_at - now;
        pthread_mutex_unlock(&m->mu);
        return at_store_error(m->store, AT_ERR_BUSY, 0, "lease '%s' is held by another owner", name);
    }
    if (l->token == 0 || strcmp(l->owner, owner) != 0) {
        l->token++;
        snprintf(l->owner, sizeof l->owner, "%s", owner);
    }
    l->expires_at = now + ttl_ms;
    *token_out = l->token;
    *ttl_left_out = ttl_ms;
    pthread_mutex_unlock(&m->mu);
    return 0;
}

int at__msched_lease_release(struct at__msched *m, const char *name, const char *owner, uint64_t token)
{
    int64_t now = at_store_clock_wall(m->store);
    pthread_mutex_lock(&m->mu);
    struct lrec *l = find_lease(m, name);
    bool held = l && l->token == token && strcmp(l->owner, owner) == 0 && l->expires_at > now;
    if (held)
        l->expires_at = now;
    pthread_mutex_unlock(&m->mu);
    return held ? 0
                : at_store_error(m->store, AT_ERR_STALE, 0, "lease '%s' is not held by this owner with token %llu",
                                 name, (unsigned long long)token);
}
