/*
 * batch.c - at_batch: jobs collected by the caller and enqueued in one
 * atomic backend call (one transaction, one script), so a bulk producer pays
 * one round trip and one fsync per batch, and a failure leaves nothing.
 */
#include <string.h>

#include "internal.h"

#define BATCH_MAGIC 0x61626174u /* "abat" */

struct entry {
    char *type;
    void *payload;
    size_t len;
    at_opts opts; /* a copy; opts.idem_key owned by the entry */
    int32_t status;
    char id[AT_ID_SIZE];
};

struct at_batch {
    uint32_t magic;
    struct entry *e;
    size_t n, cap;
    bool done; /* ids/statuses valid */
};

AT_EXTERN int at_batch_new(at_batch **out)
{
    if (!out)
        return AT_ERR_INVAL;
    *out = at__calloc(1, sizeof **out);
    if (!*out)
        return AT_ERR_NOMEM;
    (*out)->magic = BATCH_MAGIC;
    return 0;
}

AT_EXTERN void at_batch_clear(at_batch *b)
{
    if (!b || b->magic != BATCH_MAGIC)
        return;
    for (size_t i = 0; i < b->n; i++) {
        at__free(b->e[i].type);
        at__free(b->e[i].payload);
        at__free(b->e[i].opts.idem_key);
    }
    b->n = 0;
    b->done = false;
}

AT_EXTERN void at_batch_free(at_batch *b)
{
    if (!b || b->magic != BATCH_MAGIC)
        return;
    at_batch_clear(b);
    at__free(b->e);
    b->magic = 0;
    at__free(b);
}

AT_EXTERN int at_batch_add(at_batch *b, const char *type, const void *payload, size_t len, const at_opts *o)
{
    at__err_clear();
    if (!b || b->magic != BATCH_MAGIC)
        return AT_ERR_INVAL;
    if (at__check_name(type))
        return at__err_set(NULL, AT_ERR_NAME, 0, "job type must be 1..%d of [A-Za-z0-9._:-]", AT_NAME_MAX);
    if (!payload && len)
        return at__err_set(NULL, AT_ERR_INVAL, 0, "payload is NULL but its length is %zu", len);
    if (len > ((size_t)1 << 30))
        return at__err_set(NULL, AT_ERR_TOOBIG, 0, "payload of %zu bytes exceeds any store's limit", len);
    if (b->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 16;
        struct entry *e = at__realloc(b->e, nc * sizeof *e);
        if (!e)
            return AT_ERR_NOMEM;
        b->e = e;
        b->cap = nc;
    }
    struct entry *e = &b->e[b->n];
    memset(e, 0, sizeof *e);
    e->type = at__strdup(type);
    e->payload = at__memdup(payload, len);
    e->len = len;
    if (o) {
        e->opts = *o;
        e->opts.idem_key = o->idem_key ? at__strdup(o->idem_key) : NULL;
    } else {
        at__opts_init(&e->opts);
    }
    if (!e->type || !e->payload || (o && o->idem_key && !e->opts.idem_key)) {
        at__free(e->type);
        at__free(e->payload);
        at__free(e->opts.idem_key);
        return AT_ERR_NOMEM;
    }
    b->n++;
    b->done = false;
    return 0;
}

AT_EXTERN size_t at_batch_count(const at_batch *b)
{
    return b && b->magic == BATCH_MAGIC ? b->n : 0;
}

AT_EXTERN const char *at_batch_id(const at_batch *b, size_t i)
{
    return b && b->magic == BATCH_MAGIC && b->done && i < b->n ? b->e[i].id : NULL;
}

AT_EXTERN int at_batch_status(const at_batch *b, size_t i)
{
    if (!b || b->magic != BATCH_MAGIC || !b->done || i >= b->n)
        return AT_ERR_INVAL;
    return b->e[i].status;
}

AT_EXTERN int at_enqueue_batch(at_store *s, at_batch *b)
{
    int rc = at__store_enter_job(s);
    if (rc)
        return rc;
    if (!b || b->magic != BATCH_MAGIC)
        return at__err_set(s, AT_ERR_INVAL, 0, "not a batch handle");
    if (b->n == 0)
        return at__err_set(s, AT_ERR_INVAL, 0, "the batch is empty");
    b->done = false;
    at_enqueue_item *items = at__malloc(b->n * sizeof *items);
    if (!items)
        return AT_ERR_NOMEM;
    for (size_t i = 0; i < b->n && rc == 0; i++) {
        struct entry *e = &b->e[i];
        rc = at__store_fill_job(s, &items[i].job, e->type, e->payload, e->len, &e->opts);
        if (rc) {
            char msg[400];
            at_store_errmsg(s, msg, sizeof msg, NULL);
            rc = at__err_set(s, rc, 0, "batch job %zu: %s", i, msg);
            break;
        }
        items[i].status = 0;
        memcpy(items[i].result_id, items[i].job.id, AT_ID_SIZE);
    }
    if (rc == 0)
        rc = s->vt->enqueue(s->be, items, b->n);
    if (rc == 0) {
        bool created = false;
        for (size_t i = 0; i < b->n; i++) {
            b->e[i].status = items[i].status;
            memcpy(b->e[i].id, items[i].result_id, AT_ID_SIZE);
            created |= items[i].status == 0;
        }
        b->done = true;
        if (created) {
            at_store_notify(s);
            at__store_emit_enqueued(s, items, b->n);
        }
    }
    at__free(items);
    return rc;
}
