/*
 * workflow.c - the workflow builder and the at_workflow_* calls (ADR/0014).
 *
 * The core owns everything about a workflow that does not need the store:
 * node names, the graph, cycle detection, ids, the order of submission
 * (parents before children, so a backend resolves every in-call parent from
 * what it created a moment before) and the idempotency keys of spawned
 * nodes.  Backends only keep dependency counters and apply the propagation
 * rule atomically with each transition.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define WF_MAGIC 0x6177666cu /* "awfl" */

struct wnode {
    char name[AT_NAME_MAX + 1];
    char *type;
    void *payload;
    size_t payload_len;
    at_opts opts;    /* idem_key owned here */
    int32_t policy;
    size_t *parents; /* node indexes */
    size_t np, capp;
    char **ext;      /* parents that are existing jobs (canonical ids) */
    size_t ne, cape;
    char id[AT_ID_SIZE]; /* after a submit */
};

struct at_workflow {
    uint32_t magic;
    struct wnode *n;
    size_t count, cap;
    /* Name -> index, open addressing; rebuilt as it grows. */
    size_t *slots;
    size_t nslots;
};

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static bool valid(const at_workflow *wf)
{
    return wf && wf->magic == WF_MAGIC;
}

AT_EXTERN int at_workflow_new(at_workflow **out)
{
    at__err_clear();
    if (!out)
        return at__err_set(NULL, AT_ERR_INVAL, 0, "out is NULL");
    *out = at__calloc(1, sizeof **out);
    if (!*out)
        return at__err_set(NULL, AT_ERR_NOMEM, 0, "out of memory");
    (*out)->magic = WF_MAGIC;
    return 0;
}

static void node_free(struct wnode *n)
{
    at__free(n->type);
    at__free(n->payload);
    at__free(n->opts.idem_key);
    at__free(n->parents);
    for (size_t i = 0; i < n->ne; i++)
        at__free(n->ext[i]);
    at__free(n->ext);
}

AT_EXTERN void at_workflow_free(at_workflow *wf)
{
    if (!valid(wf))
        return;
    for (size_t i = 0; i < wf->count; i++)
        node_free(&wf->n[i]);
    at__free(wf->n);
    at__free(wf->slots);
    wf->magic = 0;
    at__free(wf);
}

AT_EXTERN size_t at_workflow_count(const at_workflow *wf)
{
    return valid(wf) ? wf->count : 0;
}

/* Index of node `name`, or SIZE_MAX. */
static size_t lookup(const at_workflow *wf, const char *name)
{
    if (!wf->nslots || !name)
        return SIZE_MAX;
    for (size_t i = hash(name) & (wf->nslots - 1);; i = (i + 1) & (wf->nslots - 1)) {
        size_t v = wf->slots[i];
        if (v == SIZE_MAX)
            return SIZE_MAX;
        if (strcmp(wf->n[v].name, name) == 0)
            return v;
    }
}

static int rehash(at_workflow *wf, size_t nslots)
{
    size_t *slots = at__malloc(nslots * sizeof *slots);
    if (!slots)
        return AT_ERR_NOMEM;
    memset(slots, 0xff, nslots * sizeof *slots);
    for (size_t k = 0; k < wf->count; k++) {
        size_t i = hash(wf->n[k].name) & (nslots - 1);
        while (slots[i] != SIZE_MAX)
            i = (i + 1) & (nslots - 1);
        slots[i] = k;
    }
    at__free(wf->slots);
    wf->slots = slots;
    wf->nslots = nslots;
    return 0;
}

static int nomem(void)
{
    return at__err_set(NULL, AT_ERR_NOMEM, 0, "out of memory");
}

AT_EXTERN int at_workflow_add(at_workflow *wf, const char *node, const char *type, const void *payload,
                              size_t payload_len, const at_opts *opts)
{
    at__err_clear();
    if (!valid(wf))
        return at__err_set(NULL, AT_ERR_INVAL, 0, "bad workflow");
    if (at__check_name(node))
        return at__err_set(NULL, AT_ERR_NAME, 0, "node name must be 1..%d of [A-Za-z0-9._:-]", AT_NAME_MAX);
    if (at__check_name(type))
        return at__err_set(NULL, AT_ERR_NAME, 0, "job type must be 1..%d of [A-Za-z0-9._:-]", AT_NAME_MAX);
    if (!payload && payload_len)
        return at__err_set(NULL, AT_ERR_INVAL, 0, "payload is NULL but its length is %zu", payload_len);
    if (payload_len > ((size_t)1 << 30)) /* as at_batch_add: refused before any copy */
        return at__err_set(NULL, AT_ERR_TOOBIG, 0, "payload of %zu bytes exceeds any store's limit", payload_len);
    if (lookup(wf, node) != SIZE_MAX)
        return at__err_set(NULL, AT_ERR_EXISTS, 0, "the workflow already has a node '%s'", node);
    if (wf->count >= AT_WORKFLOW_MAX_NODES)
        return at__err_set(NULL, AT_ERR_INVAL, 0, "a workflow holds at most %d nodes", AT_WORKFLOW_MAX_NODES);
    if (wf->count == wf->cap) {
        size_t cap = wf->cap ? wf->cap * 2 : 16;
        struct wnode *v = at__realloc(wf->n, cap * sizeof *v);
        if (!v)
            return nomem();
        wf->n = v;
        wf->cap = cap;
    }
    if ((wf->count + 1) * 2 > wf->nslots && rehash(wf, wf->nslots ? wf->nslots * 2 : 32))
        return nomem();
    struct wnode *n = &wf->n[wf->count];
    memset(n, 0, sizeof *n);
    snprintf(n->name, sizeof n->name, "%s", node);
    at__opts_init(&n->opts);
    if (opts) {
        n->opts = *opts;
        n->opts.idem_key = NULL;
    }
    n->type = at__strdup(type);
    if (payload_len)
        n->payload = at__memdup(payload, payload_len);
    n->payload_len = payload_len;
    if (opts && opts->idem_key)
        n->opts.idem_key = at__strdup(opts->idem_key);
    if (!n->type || (payload_len && !n->payload) || (opts && opts->idem_key && !n->opts.idem_key)) {
        node_free(n);
        return nomem();
    }
    n->policy = AT_PARENT_FAIL_CANCEL;
    wf->count++;
    size_t i = hash(node) & (wf->nslots - 1);
    while (wf->slots[i] != SIZE_MAX)
        i = (i + 1) & (wf->nslots - 1);
    wf->slots[i] = wf->count - 1;
    return 0;
}

static size_t find_node(const at_workflow *wf, const char *name, const char *role)
{
    size_t i = lookup(wf, name);
    if (i == SIZE_MAX)
        at__err_set(NULL, AT_ERR_NOTFOUND, 0, "the workflow has no %s node '%s'", role, name ? name : "(null)");
    return i;
}

AT_EXTERN int at_workflow_depend(at_workflow *wf, const char *child, const char *parent)
{
    at__err_clear();
    if (!valid(wf))
        return at__err_set(NULL, AT_ERR_INVAL, 0, "bad workflow");
    size_t c = find_node(wf, child, "child"), p;
    if (c == SIZE_MAX || (p = find_node(wf, parent, "parent")) == SIZE_MAX)
        return AT_ERR_NOTFOUND;
    if (c == p)
        return at__err_set(NULL, AT_ERR_INVAL, 0, "node '%s' cannot depend on itself", child);
    struct wnode *n = &wf->n[c];
    for (size_t i = 0; i < n->np; i++)
        if (n->parents[i] == p)
            return 0;
    if (n->np == n->capp) {
        size_t cap = n->capp ? n->capp * 2 : 4;
        size_t *v = at__realloc(n->parents, cap * sizeof *v);
        if (!v)
            return nomem();
        n->parents = v;
        n->capp = cap;
    }
    n->parents[n->np++] = p;
    return 0;
}

AT_EXTERN int at_workflow_depend_on_job(at_workflow *wf, const char *child, const char *job_id)
{
    at__err_clear();
    if (!valid(wf))
        return at__err_set(NULL, AT_ERR_INVAL, 0, "bad workflow");
    size_t c = find_node(wf, child, "child");
    if (c == SIZE_MAX)
        return AT_ERR_NOTFOUND;
    char canon[AT_ID_SIZE];
    if (!job_id || at__id_canon(canon, job_id))
        return at__err_set(NULL, AT_ERR_INVAL, 0, "'%.40s' is not a job id", job_id ? job_id : "(null)");
    struct wnode *n = &wf->n[c];
    for (size_t i = 0; i < n->ne; i++)
        if (strcmp(n->ext[i], canon) == 0)
            return 0;
    if (n->ne == n->cape) {
        size_t cap = n->cape ? n->cape * 2 : 4;
        char **v = at__realloc(n->ext, cap * sizeof *v);
        if (!v)
            return nomem();
        n->ext = v;
        n->cape = cap;
    }
    if (!(n->ext[n->ne] = at__strdup(canon)))
        return nomem();
    n->ne++;
    return 0;
}

AT_EXTERN int at_workflow_set_policy(at_workflow *wf, const char *node, int32_t policy)
{
    at__err_clear();
    if (!valid(wf))
        return at__err_set(NULL, AT_ERR_INVAL, 0, "bad workflow");
    if (policy != AT_PARENT_FAIL_CANCEL && policy != AT_PARENT_FAIL_RUN && policy != AT_PARENT_FAIL_DEAD)
        return at__err_set(NULL, AT_ERR_INVAL, 0, "unknown parent-failure policy %d", (int)policy);
    size_t i = find_node(wf, node, "");
    if (i == SIZE_MAX)
        return AT_ERR_NOTFOUND;
    wf->n[i].policy = policy;
    return 0;
}

AT_EXTERN int at_workflow_add_completion(at_workflow *wf, const char *node, const char *type, const void *payload,
                                         size_t payload_len, const at_opts *opts)
{
    if (!valid(wf))
        return at__err_set(NULL, AT_ERR_INVAL, 0, "bad workflow");
    size_t before = wf->count;
    int rc = at_workflow_add(wf, node, type, payload, payload_len, opts);
    if (rc)
        return rc;
    struct wnode *n = &wf->n[before];
    n->parents = before ? at__malloc(before * sizeof *n->parents) : NULL;
    if (before && !n->parents) {
        /* Undo the add: the call is all or nothing. */
        node_free(n);
        wf->count--;
        rehash(wf, wf->nslots);
        return nomem();
    }
    for (size_t i = 0; i < before; i++)
        n->parents[i] = i;
    n->np = n->capp = before;
    n->policy = AT_PARENT_FAIL_RUN;
    return 0;
}

AT_EXTERN const char *at_workflow_job_id(const at_workflow *wf, const char *node)
{
    if (!valid(wf))
        return NULL;
    size_t i = lookup(wf, node);
    return i == SIZE_MAX || !wf->n[i].id[0] ? NULL : wf->n[i].id;
}

/* A topological order of the nodes (Kahn), parents first.  On a cycle:
 * AT_ERR_CYCLE naming a node that lies on one. */
static int topo_order(at_store *st, const at_workflow *wf, size_t *order)
{
    size_t n = wf->count;
    size_t *indeg = at__calloc(n, sizeof *indeg), *nchild = at__calloc(n + 1, sizeof *nchild);
    size_t *child = NULL;
    int rc = 0;
    if (!indeg || !nchild) {
        rc = AT_ERR_NOMEM;
        goto out;
    }
    /* Children lists in one array (CSR): nchild[i]..nchild[i+1]. */
    size_t edges = 0;
    for (size_t c = 0; c < n; c++) {
        indeg[c] = wf->n[c].np;
        edges += wf->n[c].np;
        for (size_t k = 0; k < wf->n[c].np; k++)
            nchild[wf->n[c].parents[k] + 1]++;
    }
    for (size_t i = 0; i < n; i++)
        nchild[i + 1] += nchild[i];
    child = at__malloc((edges ? edges : 1) * sizeof *child);
    size_t *fill = at__malloc((n ? n : 1) * sizeof *fill);
    if (!child || !fill) {
        at__free(fill);
        rc = AT_ERR_NOMEM;
        goto out;
    }
    memcpy(fill, nchild, n * sizeof *fill);
    for (size_t c = 0; c < n; c++)
        for (size_t k = 0; k < wf->n[c].np; k++)
            child[fill[wf->n[c].parents[k]]++] = c;
    at__free(fill);
    size_t head = 0, tail = 0;
    for (size_t i = 0; i < n; i++)
        if (indeg[i] == 0)
            order[tail++] = i;
    while (head < tail) {
        size_t p = order[head++];
        for (size_t k = nchild[p]; k < nchild[p + 1]; k++)
            if (--indeg[child[k]] == 0)
                order[tail++] = child[k];
    }
    if (tail < n) {
        /* Every node left has a parent left; walking parents from one of
         * them must repeat a node, and the first repeated one is on a cycle. */
        size_t v = SIZE_MAX;
        for (size_t i = 0; i < n && v == SIZE_MAX; i++)
            if (indeg[i] > 0)
                v = i;
        for (size_t steps = 0; steps < n; steps++) {
            const struct wnode *w = &wf->n[v];
            for (size_t k = 0; k < w->np; k++)
                if (indeg[w->parents[k]] > 0) {
                    v = w->parents[k];
                    break;
                }
        }
        rc = at__err_set(st, AT_ERR_CYCLE, 0, "the dependencies form a cycle through node '%s'", wf->n[v].name);
    }
out:
    at__free(indeg);
    at__free(nchild);
    at__free(child);
    return rc == AT_ERR_NOMEM ? at__err_set(st, rc, 0, "out of memory") : rc;
}

static bool has_wf(const at_store *st)
{
    const at_store_vtable *vt = st->vt;
    return vt->version >= 2 && vt->size >= offsetof(at_store_vtable, wf_jobs) + sizeof vt->wf_jobs && vt->wf_submit &&
           vt->wf_status && vt->wf_cancel && vt->wf_jobs;
}

static int enter(at_store *st)
{
    int rc = at__store_enter_job(st);
    if (rc)
        return rc;
    if (!has_wf(st))
        return at__err_set(st, AT_ERR_UNSUPPORTED, 0, "the %s backend has no workflows", st->vt->scheme);
    return 0;
}

/* Build the items (in topological order) and hand them to the backend. */
static int submit(at_store *st, at_workflow *wf, const char *wf_id, const char *guard, uint64_t token)
{
    size_t n = wf->count;
    if (n == 0)
        return at__err_set(st, AT_ERR_INVAL, 0, "the workflow has no nodes");
    size_t *order = at__malloc(n * sizeof *order);
    at_enqueue_item *items = at__calloc(n, sizeof *items);
    size_t *pos = at__malloc(n * sizeof *pos); /* node -> item index */
    size_t total_parents = 0;
    for (size_t i = 0; i < n; i++)
        total_parents += wf->n[i].np + wf->n[i].ne + (guard ? 1 : 0);
    const char **parents = at__malloc((total_parents ? total_parents : 1) * sizeof *parents);
    char(*keys)[AT_KEY_MAX + 1] = guard ? at__malloc(n * sizeof *keys) : NULL;
    int rc = 0;
    if (!order || !items || !pos || !parents || (guard && !keys)) {
        rc = at__err_set(st, AT_ERR_NOMEM, 0, "out of memory");
        goto out;
    }
    if ((rc = topo_order(st, wf, order)) != 0)
        goto out;
    size_t pp = 0;
    for (size_t k = 0; k < n; k++) {
        struct wnode *w = &wf->n[order[k]];
        pos[order[k]] = k;
        at_opts o = w->opts;
        if (guard && !o.idem_key) {
            snprintf(keys[k], sizeof keys[k], "at:spawn:%s:%s", guard, w->name);
            o.idem_key = keys[k];
        }
        at_job_info *j = &items[k].job;
        if ((rc = at__store_fill_job(st, j, w->type, w->payload, w->payload_len, &o)) != 0)
            goto out;
        /* The queue name lives in the options struct: point at the node's
         * own copy, not at `o`, which the next iteration overwrites. */
        j->queue = w->opts.queue[0] ? w->opts.queue : "default";
        j->traceparent = w->opts.traceparent[0] ? w->opts.traceparent : NULL;
        j->workflow_id = wf_id;
        j->node = w->name;
        j->on_parent_failure = w->policy;
        j->parents = &parents[pp];
        for (size_t i = 0; i < w->np; i++)
            parents[pp++] = items[pos[w->parents[i]]].job.id; /* parents precede: pos is set */
        for (size_t i = 0; i < w->ne; i++)
            parents[pp++] = w->ext[i];
        if (guard)
            parents[pp++] = guard;
        j->nparents = (size_t)(&parents[pp] - j->parents);
        items[k].status = 0;
        memcpy(items[k].result_id, j->id, AT_ID_SIZE);
    }
    rc = st->vt->wf_submit(st->be, items, n, guard, token);
    if (rc == 0) {
        for (size_t k = 0; k < n; k++)
            memcpy(wf->n[order[k]].id, items[k].result_id, AT_ID_SIZE);
        at_store_notify(st);
        at__store_emit_enqueued(st, items, n);
    }
out:
    at__free(order);
    at__free(items);
    at__free(pos);
    at__free(parents);
    at__free(keys);
    return rc;
}

AT_EXTERN int at_workflow_submit(char *wf_id_out, at_store *st, at_workflow *wf)
{
    if (wf_id_out)
        wf_id_out[0] = '\0';
    int rc = enter(st);
    if (rc)
        return rc;
    if (!valid(wf))
        return at__err_set(st, AT_ERR_INVAL, 0, "bad workflow");
    for (size_t i = 0; i < wf->count; i++)
        wf->n[i].id[0] = '\0';
    char id[AT_ID_SIZE];
    at__id_new(id);
    rc = submit(st, wf, id, NULL, 0);
    if (rc == 0 && wf_id_out)
        memcpy(wf_id_out, id, AT_ID_SIZE);
    return rc;
}

AT_EXTERN int at_workflow_spawn(at_store *st, const char *job_id, uint64_t token, at_workflow *wf)
{
    int rc = enter(st);
    if (rc)
        return rc;
    if (!valid(wf))
        return at__err_set(st, AT_ERR_INVAL, 0, "bad workflow");
    char canon[AT_ID_SIZE];
    if (!job_id || at__id_canon(canon, job_id))
        return at__err_set(st, AT_ERR_INVAL, 0, "'%.40s' is not a job id", job_id ? job_id : "(null)");
    for (size_t i = 0; i < wf->count; i++)
        wf->n[i].id[0] = '\0';
    /* The spawner's workflow, read before: the guard in the same atomic
     * step as the creation makes a stale read harmless (a job's workflow
     * never changes). */
    at_job *j = NULL;
    if ((rc = st->vt->get(&j, st->be, canon)) != 0)
        return rc;
    char wf_id[AT_ID_SIZE];
    snprintf(wf_id, sizeof wf_id, "%s", j->info.workflow_id ? j->info.workflow_id : canon);
    at_job_free(j);
    return submit(st, wf, wf_id, canon, token);
}

static int check_wf_id(at_store *st, const char *wf_id, char canon[AT_ID_SIZE])
{
    if (!wf_id || at__id_canon(canon, wf_id))
        return at__err_set(st, AT_ERR_INVAL, 0, "'%.40s' is not a workflow id", wf_id ? wf_id : "(null)");
    return 0;
}

AT_EXTERN int at_workflow_status(int32_t *done_out, int32_t *failed_out, uint64_t *counts_out, at_store *st,
                                 const char *wf_id)
{
    if (done_out)
        *done_out = 0;
    if (failed_out)
        *failed_out = 0;
    int rc = enter(st);
    char canon[AT_ID_SIZE];
    if (rc || (rc = check_wf_id(st, wf_id, canon)) != 0)
        return rc;
    uint64_t c[AT_STATE_COUNT__] = {0};
    if ((rc = st->vt->wf_status(st->be, canon, c)) != 0)
        return rc;
    if (counts_out)
        memcpy(counts_out, c, sizeof c);
    if (done_out)
        *done_out = !(c[AT_STATE_WAITING] || c[AT_STATE_SCHEDULED] || c[AT_STATE_READY] || c[AT_STATE_RUNNING]);
    if (failed_out)
        *failed_out = c[AT_STATE_DEAD] || c[AT_STATE_CANCELLED];
    return 0;
}

AT_EXTERN int at_workflow_jobs(at_job **jobs_out, size_t *n_out, char *cursor_out, at_store *st, const char *wf_id,
                               const char *cursor, size_t limit)
{
    if (n_out)
        *n_out = 0;
    if (cursor_out)
        cursor_out[0] = '\0';
    int rc = enter(st);
    char canon[AT_ID_SIZE];
    if (rc || (rc = check_wf_id(st, wf_id, canon)) != 0)
        return rc;
    if (!jobs_out || !n_out || !cursor_out)
        return at__err_set(st, AT_ERR_INVAL, 0, "jobs_out, n_out and cursor_out are required");
    if (limit < 1 || limit > AT__MAX_LIST_LIMIT)
        return at__err_set(st, AT_ERR_INVAL, 0, "limit %zu is outside 1..%d", limit, AT__MAX_LIST_LIMIT);
    if (cursor && strlen(cursor) >= AT_CURSOR_SIZE)
        return at__err_set(st, AT_ERR_INVAL, 0, "cursor is longer than AT_CURSOR_SIZE");
    return st->vt->wf_jobs(jobs_out, n_out, cursor_out, st->be, canon, cursor && *cursor ? cursor : NULL, limit);
}

AT_EXTERN int at_workflow_cancel(uint64_t *n_out, at_store *st, const char *wf_id)
{
    if (n_out)
        *n_out = 0;
    int rc = enter(st);
    char canon[AT_ID_SIZE];
    if (rc || (rc = check_wf_id(st, wf_id, canon)) != 0)
        return rc;
    uint64_t n = 0;
    rc = st->vt->wf_cancel(&n, st->be, canon);
    if (n_out)
        *n_out = n;
    if (rc == 0)
        at_store_notify(st); /* RUN-policy children may have been released */
    return rc;
}
