/*
 * bad_input_dump.c - the canonical store dump of tests/bad_input.h.
 *
 * Only the public API is used, so the dump means the same on every backend
 * and checks what a user can observe.  Output is line-oriented text in a
 * fixed order (jobs by id, queues and schedules by name), so equal stores
 * give equal bytes.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bad_input.h"

static void hex(FILE *f, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%02x", b[i]);
}

static void str(FILE *f, const char *name, const char *v)
{
    fprintf(f, " %s=%s", name, v ? v : "(null)");
}

static void dump_job(FILE *f, at_store *s, const char *id)
{
    at_job *j = NULL;
    int rc = at_get(&j, s, id);
    if (rc) {
        fprintf(f, "job %s: at_get %s\n", id, at_err_name(rc));
        return;
    }
    size_t n = 0;
    const void *p = at_job_payload(j, &n);
    fprintf(f, "job %s", at_job_id(j));
    str(f, "type", at_job_type(j));
    str(f, "queue", at_job_queue(j));
    fprintf(f, " state=%d prio=%d att=%u/%u token=%" PRIu64, (int)at_job_state(j), (int)at_job_priority(j),
            at_job_attempts(j), at_job_max_attempts(j), at_job_token(j));
    for (int32_t w = AT_JOB_TIME_CREATED; w <= AT_JOB_TIME_UPDATED; w++)
        fprintf(f, " t%d=%" PRId64, (int)w, at_job_time(j, w));
    fprintf(f, " payload=");
    hex(f, p, n);
    const void *r = at_job_result(j, &n);
    fprintf(f, " result=");
    if (r)
        hex(f, r, n);
    else
        fprintf(f, "(null)");
    str(f, "error", at_job_last_error(j));
    str(f, "key", at_job_idempotency_key(j));
    str(f, "trace", at_job_traceparent(j));
    str(f, "wf", at_job_workflow_id(j));
    str(f, "node", at_job_node(j));
    fprintf(f, " cancel=%d left=%u policy=%d parents=", (int)at_job_cancel_requested(j), at_job_parents_left(j),
            (int)at_job_parent_policy(j));
    for (size_t i = 0; i < at_job_parent_count(j); i++)
        fprintf(f, "%s%s", i ? "," : "", at_job_parent_id(j, i));
    fputc('\n', f);
    at_job_free(j);
}

/* The distinct workflow ids seen while listing (a handful in these tests). */
struct wfs {
    char id[16][AT_ID_SIZE];
    size_t n;
};

static void note_wf(struct wfs *w, const char *id)
{
    if (!id)
        return;
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->id[i], id) == 0)
            return;
    if (w->n < 16)
        snprintf(w->id[w->n++], AT_ID_SIZE, "%s", id);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static void dump_jobs(FILE *f, at_store *s, struct wfs *wfs)
{
    char cursor[AT_CURSOR_SIZE] = "";
    at_job *jobs[7];
    /* A small page makes the dump walk the cursor path too. */
    do {
        size_t n = 0;
        int rc = at_list(jobs, &n, cursor, s, NULL, AT_STATE_ANY, cursor, 7);
        if (rc) {
            fprintf(f, "at_list %s\n", at_err_name(rc));
            return;
        }
        for (size_t i = 0; i < n; i++) {
            note_wf(wfs, at_job_workflow_id(jobs[i]));
            dump_job(f, s, at_job_id(jobs[i]));
            at_job_free(jobs[i]);
        }
    } while (cursor[0]);
}

static void dump_paused(FILE *f, at_store *s, const char *q)
{
    int32_t paused = -1;
    int rc = at_queue_is_paused(&paused, s, q);
    if (rc)
        fprintf(f, "paused %s: %s\n", q, at_err_name(rc));
    else
        fprintf(f, "paused %s=%d\n", q, (int)paused);
}

static void dump_stats(FILE *f, at_store *s, const char *const *extra)
{
    at_stats *st = NULL;
    int rc = at_stats_get(&st, s);
    if (rc) {
        fprintf(f, "at_stats_get %s\n", at_err_name(rc));
        return;
    }
    for (size_t i = 0; i < at_stats_queue_count(st); i++) {
        fprintf(f, "queue %s", at_stats_queue_name(st, i));
        for (int32_t k = AT_STATE_ANY; k < AT_STATE_COUNT__; k++)
            fprintf(f, " %" PRIu64, at_stats_count(st, i, k));
        fprintf(f, " due=%" PRId64 "\n", at_stats_next_due(st, i));
        dump_paused(f, s, at_stats_queue_name(st, i));
    }
    at_stats_free(st);
    for (size_t i = 0; extra && extra[i]; i++)
        dump_paused(f, s, extra[i]);
}

static void dump_schedules(FILE *f, at_store *s)
{
    at_schedule **v = NULL;
    size_t n = 0;
    int rc = at_schedule_list(&v, &n, s);
    if (rc) {
        fprintf(f, "at_schedule_list %s\n", at_err_name(rc));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const void *p = at_schedule_payload(v[i], &len);
        int64_t grace = 0;
        int32_t cap = 0;
        int32_t mis = at_schedule_misfire(v[i], &grace, &cap);
        fprintf(f, "schedule %s", at_schedule_name(v[i]));
        str(f, "expr", at_schedule_expr(v[i]));
        str(f, "tz", at_schedule_tz(v[i]));
        str(f, "type", at_schedule_type(v[i]));
        str(f, "queue", at_schedule_queue(v[i]));
        fprintf(f, " misfire=%d/%" PRId64 "/%d paused=%d", (int)mis, grace, (int)cap, (int)at_schedule_paused(v[i]));
        for (int32_t w = AT_SCHEDULE_TIME_CREATED; w <= AT_SCHEDULE_TIME_LAST_FIRE; w++)
            fprintf(f, " t%d=%" PRId64, (int)w, at_schedule_time(v[i], w));
        str(f, "last", at_schedule_last_job_id(v[i]));
        fprintf(f, " payload=");
        hex(f, p, len);
        fputc('\n', f);
    }
    at_schedule_list_free(v, n);
}

static void dump_workflows(FILE *f, at_store *s, struct wfs *w)
{
    qsort(w->id, w->n, sizeof w->id[0], cmp_str);
    for (size_t i = 0; i < w->n; i++) {
        int32_t done = -1, failed = -1;
        uint64_t counts[AT_STATE_COUNT__] = {0};
        int rc = at_workflow_status(&done, &failed, counts, s, w->id[i]);
        fprintf(f, "workflow %s rc=%s done=%d failed=%d counts=", w->id[i], at_err_name(rc), (int)done,
                (int)failed);
        for (int k = 1; k < AT_STATE_COUNT__; k++)
            fprintf(f, "%s%" PRIu64, k > 1 ? "," : "", counts[k]);
        char cursor[AT_CURSOR_SIZE] = "";
        at_job *jobs[16];
        size_t n = 0;
        rc = at_workflow_jobs(jobs, &n, cursor, s, w->id[i], NULL, 16);
        fprintf(f, " jobs(%s)=", at_err_name(rc));
        for (size_t k = 0; k < n; k++) {
            fprintf(f, "%s%s", k ? "," : "", at_job_id(jobs[k]));
            at_job_free(jobs[k]);
        }
        fprintf(f, " more=%d\n", cursor[0] != '\0');
    }
}

char *bi_dump(at_store *s, const char *const *extra)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    for (int32_t o = AT_OPT_STORE_MAX_PAYLOAD; o <= AT_OPT_STORE_SCHEDULER_REFRESH_MS; o++) {
        int64_t v = 0;
        int rc = at_store_get_option(&v, s, o);
        fprintf(f, "option %d=%" PRId64 " %s\n", (int)o, v, rc ? at_err_name(rc) : "");
    }
    struct wfs wfs = {.n = 0};
    dump_jobs(f, s, &wfs);
    dump_stats(f, s, extra);
    dump_schedules(f, s);
    dump_workflows(f, s, &wfs);
    fclose(f);
    return buf;
}
