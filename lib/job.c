/*
 * job.c - at_job snapshots: one allocation holding the record and copies of
 * every string and byte buffer, so freeing is one call and a snapshot never
 * points into a store's memory (which may change the moment a lock drops).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define JOB_MAGIC 0x616a6f62u /* "ajob" */

AT_EXTERN void at_job_info_init(at_job_info *i)
{
    if (!i)
        return;
    memset(i, 0, sizeof *i);
    i->size = sizeof *i;
    i->created_at = i->run_at = i->started_at = i->lease_until = i->finished_at = i->updated_at = AT_TIME_NONE;
}

static size_t slen(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

AT_EXTERN int at_job_create(at_job **out, const at_job_info *in)
{
    /* Version 1 of the struct ends with result_len; a backend built with an
     * older header passes a smaller size and the newer fields stay unset. */
    if (!out || !in || in->size < offsetof(at_job_info, result_len) + sizeof(size_t))
        return AT_ERR_INVAL;
    at_job_info full;
    if (in->size < sizeof full) {
        at_job_info_init(&full);
        memcpy(&full, in, in->size);
        in = &full;
    }
    *out = NULL;
    size_t nparents = in->parents ? in->nparents : 0;
    size_t need = slen(in->type) + slen(in->queue) + slen(in->idempotency_key) + slen(in->last_error) +
                  slen(in->workflow_id) + slen(in->node) + slen(in->traceparent) + in->payload_len + 1 +
                  (in->result ? in->result_len + 1 : 0) + nparents * (sizeof(char *) + AT_ID_SIZE) +
                  sizeof(char *) /* alignment slack for the parents' pointer array */;
    at_job *j = at__malloc(sizeof *j + need);
    if (!j)
        return AT_ERR_NOMEM;
    j->magic = JOB_MAGIC;
    j->info = *in;
    j->info.size = sizeof j->info;
    char *p = j->data;
#define COPY_STR(field)                                                                                      \
    if (in->field) {                                                                                         \
        size_t n_ = strlen(in->field) + 1;                                                                   \
        memcpy(p, in->field, n_);                                                                            \
        j->info.field = p;                                                                                   \
        p += n_;                                                                                             \
    }
    COPY_STR(type)
    COPY_STR(queue)
    COPY_STR(idempotency_key)
    COPY_STR(last_error)
    COPY_STR(workflow_id)
    COPY_STR(node)
    COPY_STR(traceparent)
#undef COPY_STR
    if (nparents) {
        /* The pointer array first (aligned), then the ids it points at. */
        uintptr_t a = ((uintptr_t)p + sizeof(char *) - 1) & ~(uintptr_t)(sizeof(char *) - 1);
        const char **ptrs = (const char **)a;
        p = (char *)(ptrs + nparents);
        for (size_t i = 0; i < nparents; i++) {
            snprintf(p, AT_ID_SIZE, "%s", in->parents[i] ? in->parents[i] : "");
            ptrs[i] = p;
            p += AT_ID_SIZE;
        }
        j->info.parents = ptrs;
    } else {
        j->info.parents = NULL;
        j->info.nparents = 0;
    }
    if (in->payload_len)
        memcpy(p, in->payload, in->payload_len);
    p[in->payload_len] = '\0'; /* a NUL after the bytes: text payloads print safely */
    j->info.payload = p;
    p += in->payload_len + 1;
    if (in->result) {
        if (in->result_len)
            memcpy(p, in->result, in->result_len);
        p[in->result_len] = '\0'; /* as for payloads: text results print safely */
        j->info.result = p;
    } else {
        j->info.result_len = 0;
    }
    *out = j;
    return 0;
}

AT_EXTERN void at_job_free(at_job *j)
{
    if (!j || j->magic != JOB_MAGIC)
        return;
    j->magic = 0;
    at__free(j);
}

#define OK(j) ((j) && (j)->magic == JOB_MAGIC)

AT_EXTERN const char *at_job_id(const at_job *j)
{
    return OK(j) ? j->info.id : NULL;
}
AT_EXTERN const char *at_job_type(const at_job *j)
{
    return OK(j) ? j->info.type : NULL;
}
AT_EXTERN const char *at_job_queue(const at_job *j)
{
    return OK(j) ? j->info.queue : NULL;
}
AT_EXTERN const void *at_job_payload(const at_job *j, size_t *len)
{
    if (len)
        *len = OK(j) ? j->info.payload_len : 0;
    return OK(j) ? j->info.payload : NULL;
}
AT_EXTERN int32_t at_job_state(const at_job *j)
{
    return OK(j) ? j->info.state : AT_ERR_INVAL;
}
AT_EXTERN int32_t at_job_priority(const at_job *j)
{
    return OK(j) ? j->info.priority : 0;
}
AT_EXTERN uint32_t at_job_attempts(const at_job *j)
{
    return OK(j) ? j->info.attempts : 0;
}
AT_EXTERN uint32_t at_job_max_attempts(const at_job *j)
{
    return OK(j) ? j->info.max_attempts : 0;
}
AT_EXTERN uint64_t at_job_token(const at_job *j)
{
    return OK(j) ? j->info.token : 0;
}
AT_EXTERN int64_t at_job_time(const at_job *j, int32_t which)
{
    if (!OK(j))
        return AT_TIME_NONE;
    switch (which) {
    case AT_JOB_TIME_CREATED:
        return j->info.created_at;
    case AT_JOB_TIME_RUN_AT:
        return j->info.run_at;
    case AT_JOB_TIME_STARTED:
        return j->info.started_at;
    case AT_JOB_TIME_LEASE:
        return j->info.lease_until;
    case AT_JOB_TIME_FINISHED:
        return j->info.finished_at;
    case AT_JOB_TIME_UPDATED:
        return j->info.updated_at;
    default:
        return AT_TIME_NONE;
    }
}
AT_EXTERN const char *at_job_last_error(const at_job *j)
{
    return OK(j) ? j->info.last_error : NULL;
}
AT_EXTERN const void *at_job_result(const at_job *j, size_t *len)
{
    if (len)
        *len = OK(j) ? j->info.result_len : 0;
    return OK(j) ? j->info.result : NULL;
}
AT_EXTERN const char *at_job_idempotency_key(const at_job *j)
{
    return OK(j) ? j->info.idempotency_key : NULL;
}
AT_EXTERN int32_t at_job_cancel_requested(const at_job *j)
{
    return OK(j) ? (j->info.cancel_requested != 0) : 0;
}
AT_EXTERN const char *at_job_workflow_id(const at_job *j)
{
    return OK(j) ? j->info.workflow_id : NULL;
}
AT_EXTERN const char *at_job_node(const at_job *j)
{
    return OK(j) ? j->info.node : NULL;
}
AT_EXTERN size_t at_job_parent_count(const at_job *j)
{
    return OK(j) ? j->info.nparents : 0;
}
AT_EXTERN const char *at_job_parent_id(const at_job *j, size_t i)
{
    return OK(j) && i < j->info.nparents ? j->info.parents[i] : NULL;
}
AT_EXTERN uint32_t at_job_parents_left(const at_job *j)
{
    return OK(j) ? j->info.parents_left : 0;
}
AT_EXTERN int32_t at_job_parent_policy(const at_job *j)
{
    return OK(j) ? j->info.on_parent_failure : 0;
}
AT_EXTERN const char *at_job_traceparent(const at_job *j)
{
    return OK(j) ? j->info.traceparent : NULL;
}
