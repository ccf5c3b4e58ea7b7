/*
 * atctl_jobs.c - the job and queue subcommands of atctl: enqueue, show,
 * list, cancel, dead, stats, purge, pause and resume.
 *
 * Each parses its whole command line before opening the store, so a typo
 * never creates a database file, and maps library errors to the exit codes
 * of atctl(1) through atctl_fail.
 */
#include <stdlib.h>
#include <string.h>

#include "atctl.h"

/* Largest page asked of at_list (its limit is 1..10000). */
#define PAGE_MAX 1000

int atctl_cmd_enqueue(atctl *a, int argc, char **argv)
{
    static const atctl_optdef defs[] = {{"payload", 1},  {"delay", 1}, {"at", 1},           {"queue", 1},
                                        {"priority", 1}, {"key", 1},   {"max-attempts", 1}, {NULL, 0}};
    atctl_args args;
    int rc = atctl_parse(&args, a, "enqueue", argc, argv, defs);
    if (rc || (rc = atctl_want_pos(&args, "enqueue", 1, "TYPE")))
        return rc;
    const char *delay = atctl_opt(&args, "delay"), *at = atctl_opt(&args, "at");
    if (delay && at)
        return atctl_usage("--delay and --at exclude each other");
    int64_t v;
    at_opts *o = NULL;
    if (at_opts_new(&o) < 0)
        return atctl_fail(a, AT_ERR_NOMEM, "at_opts_new");
    char *payload = NULL;
    size_t plen = 0;
    const char *q = atctl_opt(&args, "queue"), *key = atctl_opt(&args, "key"), *s;
    if (delay) {
        if ((rc = atctl_parse_duration(&v, delay, "--delay")))
            goto out;
        if ((rc = at_opts_set_int(o, AT_OPT_DELAY_MS, v)) < 0)
            goto fail;
    }
    if (at) {
        if ((rc = atctl_parse_time(&v, at, "--at")))
            goto out;
        if ((rc = at_opts_set_int(o, AT_OPT_RUN_AT, v)) < 0)
            goto fail;
    }
    if ((s = atctl_opt(&args, "priority"))) {
        if ((rc = atctl_parse_int(&v, s, "--priority", -AT_PRIORITY_MAX, AT_PRIORITY_MAX)))
            goto out;
        if ((rc = at_opts_set_int(o, AT_OPT_PRIORITY, v)) < 0)
            goto fail;
    }
    if ((s = atctl_opt(&args, "max-attempts"))) {
        if ((rc = atctl_parse_int(&v, s, "--max-attempts", 1, 1000000)))
            goto out;
        if ((rc = at_opts_set_int(o, AT_OPT_MAX_ATTEMPTS, v)) < 0)
            goto fail;
    }
    if (q && (rc = at_opts_set_str(o, AT_OPT_QUEUE, q)) < 0)
        goto fail;
    if (key && (rc = at_opts_set_str(o, AT_OPT_IDEMPOTENCY_KEY, key)) < 0)
        goto fail;
    if ((rc = atctl_load_payload(&payload, &plen, atctl_opt(&args, "payload"))))
        goto out;
    if ((rc = atctl_open(a)))
        goto out;
    char id[AT_ID_SIZE] = "";
    rc = at_enqueue(id, a->store, args.pos[0], payload, plen, o);
    if (rc < 0 && rc != AT_ERR_DUPLICATE)
        goto fail;
    if (a->json) {
        json_t *j = json_object();
        json_object_set_new(j, "id", json_string(id));
        json_object_set_new(j, "duplicate", json_boolean(rc == AT_ERR_DUPLICATE));
        atctl_json_print(j);
    } else {
        puts(id);
    }
    /* A duplicate still prints the existing job's id (what a script needs
     * to follow it), but is reported and exits with the conflict code. */
    if (rc == AT_ERR_DUPLICATE) {
        fprintf(stderr, "atctl: enqueue: %s: %s (key \"%s\" is held by job %s)\n", at_err_name(rc),
                at_strerror(rc), key ? key : "", id);
        rc = atctl_exit_code(rc);
        goto out;
    }
    rc = 0;
    goto out;
fail:
    rc = atctl_fail(a, rc, "at_enqueue");
out:
    free(payload);
    at_opts_free(o);
    return rc;
}

/* One "label: value" line of `show`. */
static void field(const char *label, const char *value)
{
    printf("%-16s %s\n", label, value ? value : "-");
}

static void field_time(const char *label, const at_job *job, int32_t which)
{
    char buf[32];
    field(label, atctl_fmt_time(buf, at_job_time(job, which)));
}

static void field_bytes(const char *label, const void *bytes, size_t len)
{
    printf("%-16s ", label);
    if (bytes)
        atctl_print_quoted(stdout, bytes, len);
    else
        fputc('-', stdout);
    fputc('\n', stdout);
}

int atctl_cmd_show(atctl *a, int argc, char **argv)
{
    atctl_args args;
    int rc = atctl_parse(&args, a, "show", argc, argv, NULL);
    if (rc || (rc = atctl_want_pos(&args, "show", 1, "ID")) || (rc = atctl_open(a)))
        return rc;
    at_job *job;
    if ((rc = at_get(&job, a->store, args.pos[0])) < 0)
        return atctl_fail(a, rc, "at_get");
    if (a->json) {
        atctl_json_print(atctl_job_json(job));
        at_job_free(job);
        return 0;
    }
    char buf[64];
    size_t len;
    const void *p;
    field("id", at_job_id(job));
    field("type", at_job_type(job));
    field("queue", at_job_queue(job));
    field("state", at_state_name(at_job_state(job)));
    snprintf(buf, sizeof buf, "%d", (int)at_job_priority(job));
    field("priority", buf);
    snprintf(buf, sizeof buf, "%u of %u", (unsigned)at_job_attempts(job), (unsigned)at_job_max_attempts(job));
    field("attempts", buf);
    field_time("created", job, AT_JOB_TIME_CREATED);
    field_time("run at", job, AT_JOB_TIME_RUN_AT);
    field_time("started", job, AT_JOB_TIME_STARTED);
    field_time("lease until", job, AT_JOB_TIME_LEASE);
    field_time("finished", job, AT_JOB_TIME_FINISHED);
    field_time("updated", job, AT_JOB_TIME_UPDATED);
    field("idempotency key", at_job_idempotency_key(job));
    if (at_job_cancel_requested(job))
        field("cancel", "requested");
    p = at_job_payload(job, &len);
    field_bytes("payload", p, len);
    p = at_job_result(job, &len);
    field_bytes("result", p, len);
    const char *err = at_job_last_error(job);
    field_bytes("last error", err, err ? strlen(err) : 0);
    if (at_job_workflow_id(job)) {
        field("workflow", at_job_workflow_id(job));
        field("node", at_job_node(job));
    }
    for (size_t i = 0; i < at_job_parent_count(job); i++)
        field(i == 0 ? "parents" : "", at_job_parent_id(job, i));
    if (at_job_parent_count(job)) {
        snprintf(buf, sizeof buf, "%u", (unsigned)at_job_parents_left(job));
        field("parents left", buf);
        field("parent failure", atctl_policy_name(at_job_parent_policy(job)));
    }
    at_job_free(job);
    return 0;
}

/* At most `limit` jobs of (queue, state), page by page, into a table or a
 * JSON array.  `dead` selects the dead-letter columns. */
static int list_jobs(atctl *a, const char *queue, int32_t state, int64_t limit, int dead)
{
    static const char *const hdr[] = {"ID", "STATE", "QUEUE", "TYPE", "PRIO", "ATTEMPTS", "RUN AT"};
    static const int right[] = {0, 0, 0, 0, 1, 1, 0};
    static const char *const dhdr[] = {"ID", "QUEUE", "TYPE", "ATTEMPTS", "FINISHED", "LAST ERROR"};
    static const int dright[] = {0, 0, 0, 1, 0, 0};
    json_t *arr = a->json ? json_array() : NULL;
    atctl_table *t = a->json ? NULL
                     : dead  ? atctl_table_new(6, dhdr, dright)
                             : atctl_table_new(7, hdr, right);
    char cursor[AT_CURSOR_SIZE] = "";
    int64_t left = limit;
    int rc = 0;
    /* at_list fills a caller-provided array of job handles. */
    at_job **jobs = malloc(PAGE_MAX * sizeof *jobs);
    if (!jobs) {
        json_decref(arr);
        atctl_table_print(t);
        return atctl_fail(a, AT_ERR_NOMEM, "malloc");
    }
    while (left > 0) {
        size_t n = 0;
        size_t page = left > PAGE_MAX ? PAGE_MAX : (size_t)left;
        rc = at_list(jobs, &n, cursor, a->store, queue, state, cursor, page);
        if (rc < 0)
            break;
        for (size_t i = 0; i < n; i++) {
            const at_job *job = jobs[i];
            if (arr) {
                json_array_append_new(arr, atctl_job_json(job));
                continue;
            }
            char att[32], prio[16], tbuf[32];
            snprintf(att, sizeof att, "%u/%u", (unsigned)at_job_attempts(job),
                     (unsigned)at_job_max_attempts(job));
            snprintf(prio, sizeof prio, "%d", (int)at_job_priority(job));
            if (dead) {
                char err[72] = "-";
                const char *e = at_job_last_error(job);
                if (e) {
                    /* One line per job: the first line of the error, cut. */
                    size_t l = strcspn(e, "\r\n");
                    size_t rest = l + strspn(e + l, " \t\r\n");
                    snprintf(err, sizeof err, "%.*s%s", (int)(l > 60 ? 60 : l), e,
                             l > 60 || e[rest] ? "..." : "");
                }
                const char *row[] = {at_job_id(job),
                                     at_job_queue(job),
                                     at_job_type(job),
                                     att,
                                     atctl_fmt_time(tbuf, at_job_time(job, AT_JOB_TIME_FINISHED)),
                                     err};
                atctl_table_add(t, row);
            } else {
                const char *row[] = {at_job_id(job),
                                     at_state_name(at_job_state(job)),
                                     at_job_queue(job),
                                     at_job_type(job),
                                     prio,
                                     att,
                                     atctl_fmt_time(tbuf, at_job_time(job, AT_JOB_TIME_RUN_AT))};
                atctl_table_add(t, row);
            }
        }
        for (size_t i = 0; i < n; i++)
            at_job_free(jobs[i]);
        left -= (int64_t)n;
        if (cursor[0] == '\0' || n == 0)
            break;
    }
    free(jobs);
    if (rc < 0) {
        json_decref(arr);
        atctl_table_print(t);
        return atctl_fail(a, rc, "at_list");
    }
    if (arr)
        atctl_json_print(arr);
    else
        atctl_table_print(t);
    return 0;
}

int atctl_cmd_list(atctl *a, int argc, char **argv)
{
    static const atctl_optdef defs[] = {{"queue", 1}, {"state", 1}, {"limit", 1}, {NULL, 0}};
    atctl_args args;
    int rc = atctl_parse(&args, a, "list", argc, argv, defs);
    if (rc || (rc = atctl_want_pos(&args, "list", 0, "")))
        return rc;
    int32_t state = AT_STATE_ANY;
    const char *s = atctl_opt(&args, "state");
    if (s && strcmp(s, "any") != 0 && (state = at_state_from_name(s)) < 0)
        return atctl_usage(
            "--state \"%s\": not a state (waiting, scheduled, ready, running, succeeded, dead, "
            "cancelled or any)",
            s);
    int64_t limit = 100;
    if ((s = atctl_opt(&args, "limit")) && (rc = atctl_parse_int(&limit, s, "--limit", 1, 10000000)))
        return rc;
    if ((rc = atctl_open(a)))
        return rc;
    return list_jobs(a, atctl_opt(&args, "queue"), state, limit, 0);
}

int atctl_cmd_cancel(atctl *a, int argc, char **argv)
{
    atctl_args args;
    int rc = atctl_parse(&args, a, "cancel", argc, argv, NULL);
    if (rc || (rc = atctl_want_pos(&args, "cancel", 1, "ID")) || (rc = atctl_open(a)))
        return rc;
    int32_t pending = 0;
    if ((rc = at_cancel(&pending, a->store, args.pos[0])) < 0)
        return atctl_fail(a, rc, "at_cancel");
    if (a->json) {
        json_t *j = json_object();
        json_object_set_new(j, "id", json_string(args.pos[0]));
        json_object_set_new(j, "pending", json_boolean(pending));
        atctl_json_print(j);
    } else if (pending) {
        printf("cancel requested %s (running: it becomes cancelled when its worker answers)\n", args.pos[0]);
    } else {
        printf("cancelled %s\n", args.pos[0]);
    }
    return 0;
}

/* The names of every queue the store knows (freed with free_names). */
static int queue_names(char ***names_out, size_t *n_out, atctl *a)
{
    at_stats *st;
    int rc = at_stats_get(&st, a->store);
    if (rc < 0)
        return rc;
    size_t n = at_stats_queue_count(st);
    char **names = calloc(n ? n : 1, sizeof *names);
    if (!names) {
        at_stats_free(st);
        return AT_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++)
        if (!(names[i] = strdup(at_stats_queue_name(st, i)))) {
            for (size_t j = 0; j < i; j++)
                free(names[j]);
            free(names);
            at_stats_free(st);
            return AT_ERR_NOMEM;
        }
    at_stats_free(st);
    *names_out = names;
    *n_out = n;
    return 0;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static int dead_requeue(atctl *a, const atctl_args *args)
{
    int all = atctl_flag(args, "all");
    const char *queue = atctl_opt(args, "queue");
    if (all && args->npos > 1)
        return atctl_usage("give a job ID or --all, not both");
    if (!all && queue)
        return atctl_usage("--queue goes with --all");
    if (!all && args->npos != 2)
        return args->npos < 2 ? atctl_usage("missing argument: atctl dead requeue ID|--all [--queue Q]")
                              : atctl_usage("unexpected argument \"%s\"", args->pos[2]);
    int rc = atctl_open(a);
    if (rc)
        return rc;
    uint64_t total = 0, n = 0;
    if (!all) {
        rc = at_requeue(&n, a->store, NULL, args->pos[1]);
        total = n;
    } else if (queue) {
        atctl_progress("requeueing the dead jobs of %s...", queue);
        rc = at_requeue(&n, a->store, queue, NULL);
        total = n;
    } else {
        /* Queue by queue rather than one call for the whole store, so a
         * terminal can show how far it got on a large dead-letter set. */
        char **names;
        size_t nq;
        if ((rc = queue_names(&names, &nq, a)) < 0)
            return atctl_fail(a, rc, "at_stats_get");
        for (size_t i = 0; i < nq && rc >= 0; i++) {
            atctl_progress("requeueing dead jobs: queue %zu of %zu (%s), %llu moved so far", i + 1, nq,
                           names[i], (unsigned long long)total);
            n = 0;
            rc = at_requeue(&n, a->store, names[i], NULL);
            total += n;
        }
        free_names(names, nq);
    }
    atctl_progress(NULL);
    if (rc < 0) {
        if (total)
            fprintf(stderr, "atctl: dead requeue: %llu jobs were requeued before the error\n",
                    (unsigned long long)total);
        return atctl_fail(a, rc, "at_requeue");
    }
    if (a->json) {
        json_t *j = json_object();
        json_object_set_new(j, "requeued", json_integer((json_int_t)total));
        atctl_json_print(j);
    } else {
        printf("requeued %llu\n", (unsigned long long)total);
    }
    return 0;
}

int atctl_cmd_dead(atctl *a, int argc, char **argv)
{
    static const atctl_optdef defs[] = {{"queue", 1}, {"all", 0}, {"limit", 1}, {NULL, 0}};
    atctl_args args;
    int rc = atctl_parse(&args, a, "dead", argc, argv, defs);
    if (rc)
        return rc;
    if (args.npos == 0)
        return atctl_usage("missing subcommand: atctl dead list|requeue");
    if (strcmp(args.pos[0], "requeue") == 0) {
        if (atctl_opt(&args, "limit"))
            return atctl_usage("--limit goes with dead list");
        return dead_requeue(a, &args);
    }
    if (strcmp(args.pos[0], "list") != 0)
        return atctl_usage("unknown subcommand \"%s\" (dead list|requeue)", args.pos[0]);
    if (atctl_flag(&args, "all"))
        return atctl_usage("--all goes with dead requeue");
    if ((rc = atctl_want_pos(&args, "dead", 1, "list [--queue Q] [--limit N]")))
        return rc;
    int64_t limit = 100;
    const char *s = atctl_opt(&args, "limit");
    if (s && (rc = atctl_parse_int(&limit, s, "--limit", 1, 10000000)))
        return rc;
    if ((rc = atctl_open(a)))
        return rc;
    return list_jobs(a, atctl_opt(&args, "queue"), AT_STATE_DEAD, limit, 1);
}

int atctl_cmd_stats(atctl *a, int argc, char **argv)
{
    atctl_args args;
    int rc = atctl_parse(&args, a, "stats", argc, argv, NULL);
    if (rc || (rc = atctl_want_pos(&args, "stats", 0, "")) || (rc = atctl_open(a)))
        return rc;
    at_stats *st;
    if ((rc = at_stats_get(&st, a->store)) < 0)
        return atctl_fail(a, rc, "at_stats_get");
    size_t nq = at_stats_queue_count(st);
    uint64_t totals[AT_STATE_COUNT__] = {0};
    static const char *const hdr[] = {"QUEUE", "WAITING",   "SCHEDULED", "READY",    "RUNNING", "SUCCEEDED",
                                      "DEAD",  "CANCELLED", "TOTAL",     "NEXT DUE", "PAUSED"};
    static const int right[] = {0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
    atctl_table *t = a->json ? NULL : atctl_table_new(11, hdr, right);
    json_t *jq = a->json ? json_array() : NULL;
    for (size_t i = 0; i < nq; i++) {
        const char *name = at_stats_queue_name(st, i);
        int32_t paused = 0;
        int prc = at_queue_is_paused(&paused, a->store, name);
        if (prc < 0 && prc != AT_ERR_UNSUPPORTED) {
            at_stats_free(st);
            json_decref(jq);
            atctl_table_print(t);
            return atctl_fail(a, prc, "at_queue_is_paused");
        }
        char cells[AT_STATE_COUNT__ + 1][24], due[32];
        const char *row[11];
        row[0] = name;
        json_t *counts = json_object();
        for (int32_t s = AT_STATE_WAITING; s < AT_STATE_COUNT__; s++) {
            uint64_t c = at_stats_count(st, i, s);
            totals[s] += c;
            snprintf(cells[s], sizeof cells[s], "%llu", (unsigned long long)c);
            row[s] = cells[s];
            json_object_set_new(counts, at_state_name(s), json_integer((json_int_t)c));
        }
        uint64_t total = at_stats_count(st, i, AT_STATE_ANY);
        totals[AT_STATE_ANY] += total;
        snprintf(cells[0], sizeof cells[0], "%llu", (unsigned long long)total);
        row[8] = cells[0];
        int64_t next = at_stats_next_due(st, i);
        row[9] = atctl_fmt_time(due, next);
        row[10] = prc == AT_ERR_UNSUPPORTED ? "-" : paused ? "yes" : "no";
        if (t) {
            atctl_table_add(t, row);
            json_decref(counts);
        } else {
            json_t *q = json_object();
            json_object_set_new(q, "name", json_string(name));
            json_object_set_new(q, "counts", counts);
            json_object_set_new(q, "total", json_integer((json_int_t)total));
            json_object_set_new(q, "next_due", atctl_json_time(next));
            json_object_set_new(q, "paused", prc == AT_ERR_UNSUPPORTED ? json_null() : json_boolean(paused));
            json_array_append_new(jq, q);
        }
    }
    at_stats_free(st);
    if (jq) {
        json_t *j = json_object(), *counts = json_object();
        for (int32_t s = AT_STATE_WAITING; s < AT_STATE_COUNT__; s++)
            json_object_set_new(counts, at_state_name(s), json_integer((json_int_t)totals[s]));
        json_object_set_new(j, "queues", jq);
        json_object_set_new(j, "counts", counts);
        json_object_set_new(j, "total", json_integer((json_int_t)totals[AT_STATE_ANY]));
        atctl_json_print(j);
        return 0;
    }
    char cells[AT_STATE_COUNT__][24];
    const char *row[11] = {"(all)"};
    for (int32_t s = AT_STATE_WAITING; s < AT_STATE_COUNT__; s++) {
        snprintf(cells[s], sizeof cells[s], "%llu", (unsigned long long)totals[s]);
        row[s] = cells[s];
    }
    snprintf(cells[0], sizeof cells[0], "%llu", (unsigned long long)totals[AT_STATE_ANY]);
    row[8] = cells[0];
    row[9] = "";
    row[10] = "";
    atctl_table_add(t, row);
    atctl_table_print(t);
    return 0;
}

int atctl_cmd_purge(atctl *a, int argc, char **argv)
{
    static const atctl_optdef defs[] = {{"older-than", 1}, {NULL, 0}};
    atctl_args args;
    int rc = atctl_parse(&args, a, "purge", argc, argv, defs);
    if (rc || (rc = atctl_want_pos(&args, "purge", 0, "[--older-than DUR]")))
        return rc;
    int64_t older = -1;
    const char *s = atctl_opt(&args, "older-than");
    if (s && (rc = atctl_parse_duration(&older, s, "--older-than")))
        return rc;
    if ((rc = atctl_open(a)))
        return rc;
    char dur[64];
    /* at_purge is one store operation with no partial count to report, so
     * the terminal gets a status line for its whole duration. */
    if (older < 0)
        atctl_progress("purging jobs finished before the store's retention...");
    else
        atctl_progress("purging jobs finished more than %s ago...",
                       atctl_fmt_duration(dur, sizeof dur, older));
    uint64_t n = 0;
    rc = at_purge(&n, a->store, older);
    atctl_progress(NULL);
    if (rc < 0)
        return atctl_fail(a, rc, "at_purge");
    if (a->json) {
        json_t *j = json_object();
        json_object_set_new(j, "purged", json_integer((json_int_t)n));
        atctl_json_print(j);
    } else {
        printf("purged %llu\n", (unsigned long long)n);
    }
    return 0;
}

static int queue_flag(atctl *a, int argc, char **argv, const char *cmd, int pause)
{
    atctl_args args;
    int rc = atctl_parse(&args, a, cmd, argc, argv, NULL);
    if (rc || (rc = atctl_want_pos(&args, cmd, 1, "QUEUE")) || (rc = atctl_open(a)))
        return rc;
    rc = pause ? at_queue_pause(a->store, args.pos[0]) : at_queue_resume(a->store, args.pos[0]);
    if (rc < 0)
        return atctl_fail(a, rc, pause ? "at_queue_pause" : "at_queue_resume");
    if (a->json) {
        json_t *j = json_object();
        json_object_set_new(j, "queue", json_string(args.pos[0]));
        json_object_set_new(j, "paused", json_boolean(pause));
        atctl_json_print(j);
    } else {
        printf("%s %s\n", pause ? "paused" : "resumed", args.pos[0]);
    }
    return 0;
}

int atctl_cmd_pause(atctl *a, int argc, char **argv)
{
    return queue_flag(a, argc, argv, "pause", 1);
}

int atctl_cmd_resume(atctl *a, int argc, char **argv)
{
    return queue_flag(a, argc, argv, "resume", 0);
}
