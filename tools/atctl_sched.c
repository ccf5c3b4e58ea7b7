/*
 * atctl_sched.c - the `cron` and `workflow` subcommands of atctl.
 *
 * cron edits the schedules stored in the store (at_schedule_*); a scheduler
 * in some process (at_scheduler_start) fires them, atctl never does.
 * workflow submit reads a JSON document (described in atctl(1)) into an
 * at_workflow and submits it atomically; workflow show reports progress.
 */
#include <stdlib.h>
#include <string.h>

#include "atctl.h"

/* ------------------------------------------------------------------ cron */

static const char *const misfire_names[] = {"skip", "once", "all"};

static int cron_add(atctl *a, const atctl_args *args)
{
    if (args->npos != 3)
        return args->npos < 3
                   ? atctl_usage("missing argument: atctl cron add NAME EXPR --type TYPE")
                   : atctl_usage("unexpected argument \"%s\" (quote the cron expression)", args->pos[3]);
    const char *type = atctl_opt(args, "type");
    if (!type)
        return atctl_usage("--type TYPE is required");
    int32_t misfire = -1;
    const char *m = atctl_opt(args, "misfire");
    if (m) {
        for (int32_t i = 0; i < 3; i++)
            if (strcmp(m, misfire_names[i]) == 0)
                misfire = i;
        if (misfire < 0)
            return atctl_usage("--misfire \"%s\": use skip, once or all", m);
    }
    int64_t prio = 0, attempts = 0;
    const char *s;
    int rc;
    if ((s = atctl_opt(args, "priority")) &&
        (rc = atctl_parse_int(&prio, s, "--priority", -AT_PRIORITY_MAX, AT_PRIORITY_MAX)))
        return rc;
    if ((s = atctl_opt(args, "max-attempts")) &&
        (rc = atctl_parse_int(&attempts, s, "--max-attempts", 1, 1000000)))
        return rc;
    at_schedule *sc = NULL;
    at_opts *o = NULL;
    char *payload = NULL;
    size_t plen = 0;
    if ((rc = atctl_load_payload(&payload, &plen, atctl_opt(args, "payload"))))
        return rc;
    if ((rc = at_schedule_new(&sc, args->pos[1], args->pos[2], atctl_opt(args, "tz"), type)) < 0)
        goto fail;
    if ((rc = at_schedule_set_payload(sc, payload, plen)) < 0)
        goto fail;
    /* The library's defaults for grace (10 s) and cap (100) are kept: only
     * the policy is a command-line choice. */
    if (misfire >= 0 && (rc = at_schedule_set_misfire(sc, misfire, 10000, 100)) < 0)
        goto fail;
    if ((rc = at_opts_new(&o)) < 0)
        goto fail;
    if ((s = atctl_opt(args, "queue")) && (rc = at_opts_set_str(o, AT_OPT_QUEUE, s)) < 0)
        goto fail;
    if (atctl_opt(args, "priority") && (rc = at_opts_set_int(o, AT_OPT_PRIORITY, prio)) < 0)
        goto fail;
    if (attempts && (rc = at_opts_set_int(o, AT_OPT_MAX_ATTEMPTS, attempts)) < 0)
        goto fail;
    if ((rc = at_schedule_set_opts(sc, o)) < 0)
        goto fail;
    if ((rc = atctl_open(a)))
        goto out;
    int32_t created = 0;
    if ((rc = at_schedule_add(&created, a->store, sc)) < 0)
        goto fail;
    int64_t now = 0, next = AT_TIME_NONE;
    if (at_store_now(&now, a->store) < 0 || at_schedule_next(&next, sc, now) < 0)
        next = AT_TIME_NONE;
    char tb[32];
    if (a->json) {
        json_t *j = json_object();
        json_object_set_new(j, "name", json_string(args->pos[1]));
        json_object_set_new(j, "created", json_boolean(created));
        json_object_set_new(j, "next", atctl_json_time(next));
        atctl_json_print(j);
    } else {
        printf("%s %s (next %s)\n", created ? "created" : "updated", args->pos[1], atctl_fmt_time(tb, next));
    }
    rc = 0;
    goto out;
fail:
    rc = atctl_fail(a, rc, "cron add");
out:
    at_opts_free(o);
    at_schedule_free(sc);
    free(payload);
    return rc;
}

static json_t *schedule_json(const at_schedule *sc, int64_t next)
{
    json_t *j = json_object();
    int64_t grace = 0;
    int32_t cap = 0, pol = at_schedule_misfire(sc, &grace, &cap);
    size_t len;
    const void *p = at_schedule_payload(sc, &len);
    json_object_set_new(j, "name", json_string(at_schedule_name(sc)));
    json_object_set_new(j, "expr", json_string(at_schedule_expr(sc)));
    json_object_set_new(j, "tz", json_string(at_schedule_tz(sc)));
    json_object_set_new(j, "type", json_string(at_schedule_type(sc)));
    json_object_set_new(j, "queue", json_string(at_schedule_queue(sc)));
    atctl_json_set_bytes(j, "payload", p ? p : "", p ? len : 0);
    json_object_set_new(j, "misfire", json_string(pol >= 0 && pol < 3 ? misfire_names[pol] : "unknown"));
    json_object_set_new(j, "misfire_grace_ms", json_integer(grace));
    json_object_set_new(j, "misfire_cap", json_integer(cap));
    json_object_set_new(j, "paused", json_boolean(at_schedule_paused(sc)));
    json_object_set_new(j, "next", atctl_json_time(next));
    json_object_set_new(j, "last_fire", atctl_json_time(at_schedule_time(sc, AT_SCHEDULE_TIME_LAST_FIRE)));
    const char *last = at_schedule_last_job_id(sc);
    json_object_set_new(j, "last_job_id", last ? json_string(last) : json_null());
    json_object_set_new(j, "created", atctl_json_time(at_schedule_time(sc, AT_SCHEDULE_TIME_CREATED)));
    json_object_set_new(j, "updated", atctl_json_time(at_schedule_time(sc, AT_SCHEDULE_TIME_UPDATED)));
    return j;
}

static int cron_list(atctl *a, const atctl_args *args)
{
    int rc;
    if (args->npos != 1)
        return atctl_usage("unexpected argument \"%s\" (atctl cron list)", args->pos[1]);
    if ((rc = atctl_open(a)))
        return rc;
    at_schedule **list;
    size_t n;
    if ((rc = at_schedule_list(&list, &n, a->store)) < 0)
        return atctl_fail(a, rc, "at_schedule_list");
    int64_t now = 0;
    if ((rc = at_store_now(&now, a->store)) < 0) {
        at_schedule_list_free(list, n);
        return atctl_fail(a, rc, "at_store_now");
    }
    static const char *const hdr[] = {"NAME",    "EXPR",   "TZ",   "TYPE",     "QUEUE",
                                      "MISFIRE", "PAUSED", "NEXT", "LAST FIRE"};
    atctl_table *t = a->json ? NULL : atctl_table_new(9, hdr, NULL);
    json_t *arr = a->json ? json_array() : NULL;
    for (size_t i = 0; i < n; i++) {
        const at_schedule *sc = list[i];
        int64_t next = AT_TIME_NONE;
        /* A paused schedule does not fire: showing a next time would lie. */
        if (!at_schedule_paused(sc) && at_schedule_next(&next, sc, now) < 0)
            next = AT_TIME_NONE;
        if (arr) {
            json_array_append_new(arr, schedule_json(sc, next));
            continue;
        }
        int32_t pol = at_schedule_misfire(sc, NULL, NULL);
        char nb[32], lb[32];
        const char *row[] = {at_schedule_name(sc),
                             at_schedule_expr(sc),
                             at_schedule_tz(sc),
                             at_schedule_type(sc),
                             at_schedule_queue(sc),
                             pol >= 0 && pol < 3 ? misfire_names[pol] : "?",
                             at_schedule_paused(sc) ? "yes" : "no",
                             atctl_fmt_time(nb, next),
                             atctl_fmt_time(lb, at_schedule_time(sc, AT_SCHEDULE_TIME_LAST_FIRE))};
        atctl_table_add(t, row);
    }
    at_schedule_list_free(list, n);
    if (arr)
        atctl_json_print(arr);
    else
        atctl_table_print(t);
    return 0;
}

static int cron_name_op(atctl *a, const atctl_args *args, const char *op)
{
    int rc = atctl_want_pos(args, "cron", 2, "rm|pause|resume NAME");
    if (rc || (rc = atctl_open(a)))
        return rc;
    const char *name = args->pos[1];
    const char *done;
    if (strcmp(op, "rm") == 0) {
        rc = at_schedule_remove(a->store, name);
        done = "removed";
    } else if (strcmp(op, "pause") == 0) {
        rc = at_schedule_pause(a->store, name);
        done = "paused";
    } else {
        rc = at_schedule_resume(a->store, name);
        done = "resumed";
    }
    if (rc < 0)
        return atctl_fail(a, rc, op);
    if (a->json) {
        json_t *j = json_object();
        json_object_set_new(j, "name", json_string(name));
        json_object_set_new(j, "done", json_string(done));
        atctl_json_print(j);
    } else {
        printf("%s schedule %s\n", done, name);
    }
    return 0;
}

int atctl_cmd_cron(atctl *a, int argc, char **argv)
{
    static const atctl_optdef defs[] = {{"tz", 1},       {"type", 1},         {"payload", 1}, {"queue", 1},
                                        {"priority", 1}, {"max-attempts", 1}, {"misfire", 1}, {NULL, 0}};
    atctl_args args;
    int rc = atctl_parse(&args, a, "cron", argc, argv, defs);
    if (rc)
        return rc;
    if (args.npos == 0)
        return atctl_usage("missing subcommand: atctl cron add|list|rm|pause|resume");
    const char *sub = args.pos[0];
    if (strcmp(sub, "add") == 0)
        return cron_add(a, &args);
    if (args.nopt > 0)
        return atctl_usage("option --%s goes with cron add", args.opt_name[0]);
    if (strcmp(sub, "list") == 0)
        return cron_list(a, &args);
    if (strcmp(sub, "rm") == 0 || strcmp(sub, "pause") == 0 || strcmp(sub, "resume") == 0)
        return cron_name_op(a, &args, sub);
    return atctl_usage("unknown subcommand \"%s\" (cron add|list|rm|pause|resume)", sub);
}

/* -------------------------------------------------------------- workflow */

/* Print the first problem of node i of the document and return the usage
 * exit code. */
static int node_error(const char *file, size_t i, const char *name, const char *fmt, const char *arg)
{
    char msg[512];
    snprintf(msg, sizeof msg, fmt, arg);
    if (name)
        return atctl_usage("%s: nodes[%zu] (\"%s\"): %s", file, i, name, msg);
    return atctl_usage("%s: nodes[%zu]: %s", file, i, msg);
}

/* Report a failed at_workflow_* builder call on node i. */
static int node_fail(atctl *a, const char *file, size_t i, const char *name, int rc)
{
    const char *d = at_last_error();
    fprintf(stderr, "atctl: workflow submit: %s: %s (%s: nodes[%zu] (\"%s\")%s%s)\n", at_err_name(rc),
            at_strerror(rc), file, i, name, d && d[0] ? ": " : "", d ? d : "");
    (void)a;
    return atctl_exit_code(rc);
}

/* The node's options from its JSON fields. */
static int node_opts(at_opts *o, json_t *node, const char *file, size_t i, const char *name)
{
    int64_t v;
    json_t *f;
    int rc;
    char what[64];
    if ((f = json_object_get(node, "queue"))) {
        if (!json_is_string(f))
            return node_error(file, i, name, "%s must be a string", "\"queue\"");
        if ((rc = at_opts_set_str(o, AT_OPT_QUEUE, json_string_value(f))) < 0)
            return node_error(file, i, name, "\"queue\": %s", at_strerror(rc));
    }
    if ((f = json_object_get(node, "key"))) {
        if (!json_is_string(f))
            return node_error(file, i, name, "%s must be a string", "\"key\"");
        if ((rc = at_opts_set_str(o, AT_OPT_IDEMPOTENCY_KEY, json_string_value(f))) < 0)
            return node_error(file, i, name, "\"key\": %s", at_strerror(rc));
    }
    if ((f = json_object_get(node, "priority"))) {
        if (!json_is_integer(f) || json_integer_value(f) < -AT_PRIORITY_MAX ||
            json_integer_value(f) > AT_PRIORITY_MAX)
            return node_error(file, i, name, "%s must be an integer in -1000..1000", "\"priority\"");
        at_opts_set_int(o, AT_OPT_PRIORITY, json_integer_value(f));
    }
    if ((f = json_object_get(node, "max_attempts"))) {
        if (!json_is_integer(f) || json_integer_value(f) < 1 || json_integer_value(f) > 1000000)
            return node_error(file, i, name, "%s must be an integer in 1..1000000", "\"max_attempts\"");
        at_opts_set_int(o, AT_OPT_MAX_ATTEMPTS, json_integer_value(f));
    }
    json_t *delay = json_object_get(node, "delay"), *at = json_object_get(node, "at");
    if (delay && at)
        return node_error(file, i, name, "%s exclude each other", "\"delay\" and \"at\"");
    if (delay) {
        snprintf(what, sizeof what, "%s: nodes[%zu] \"delay\"", file, i);
        if (!json_is_string(delay) || (rc = atctl_parse_duration(&v, json_string_value(delay), what)))
            return json_is_string(delay)
                       ? ATCTL_EXIT_USAGE
                       : node_error(file, i, name, "%s must be a duration string", "\"delay\"");
        if ((rc = at_opts_set_int(o, AT_OPT_DELAY_MS, v)) < 0)
            return node_error(file, i, name, "\"delay\": %s", at_strerror(rc));
    }
    if (at) {
        snprintf(what, sizeof what, "%s: nodes[%zu] \"at\"", file, i);
        if (!json_is_string(at) || (rc = atctl_parse_time(&v, json_string_value(at), what)))
            return json_is_string(at) ? ATCTL_EXIT_USAGE
                                      : node_error(file, i, name, "%s must be an RFC 3339 string", "\"at\"");
        if ((rc = at_opts_set_int(o, AT_OPT_RUN_AT, v)) < 0)
            return node_error(file, i, name, "\"at\": %s", at_strerror(rc));
    }
    return 0;
}

static int node_policy(int32_t *out, const char *s)
{
    static const char *const names[] = {"cancel", "run", "dead"};
    static const int32_t values[] = {AT_PARENT_FAIL_CANCEL, AT_PARENT_FAIL_RUN, AT_PARENT_FAIL_DEAD};
    for (int i = 0; i < 3; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = values[i];
            return 0;
        }
    return -1;
}

/* Add the nodes of the document to wf: first every node (so "after" may
 * name a node defined later in the file), then the edges and policies. */
static int build_workflow(atctl *a, at_workflow *wf, json_t *nodes, const char *file)
{
    static const char *const known[] = {
        "name", "type", "payload", "queue",      "priority",          "max_attempts", "delay",
        "at",   "key",  "after",   "after_jobs", "on_parent_failure", "completion",   NULL};
    size_t n = json_array_size(nodes);
    int rc;
    for (size_t i = 0; i < n; i++) {
        json_t *node = json_array_get(nodes, i);
        if (!json_is_object(node))
            return node_error(file, i, NULL, "%s", "a node must be a JSON object");
        const char *key;
        json_t *val;
        json_object_foreach(node, key, val)
        {
            int ok = 0;
            for (const char *const *k = known; *k; k++)
                ok |= strcmp(*k, key) == 0;
            if (!ok)
                return node_error(file, i, NULL, "unknown field \"%s\" (see atctl(1), WORKFLOW DOCUMENTS)",
                                  key);
        }
        json_t *jn = json_object_get(node, "name"), *jt = json_object_get(node, "type");
        if (!json_is_string(jn))
            return node_error(file, i, NULL, "%s", "\"name\" (a string) is required");
        const char *name = json_string_value(jn);
        if (!json_is_string(jt))
            return node_error(file, i, name, "%s", "\"type\" (a string) is required");
        json_t *jp = json_object_get(node, "payload");
        char *payload = NULL;
        size_t plen = 0;
        /* A string payload is used as its bytes; any other JSON value is
         * sent as its compact JSON text, so handlers that take JSON can be
         * written naturally in the document. */
        if (json_is_string(jp)) {
            plen = json_string_length(jp);
            payload = malloc(plen + 1);
            if (payload)
                memcpy(payload, json_string_value(jp), plen + 1);
        } else if (jp && !json_is_null(jp)) {
            payload = json_dumps(jp, JSON_COMPACT | JSON_ENCODE_ANY);
            plen = payload ? strlen(payload) : 0;
        }
        if (jp && !json_is_null(jp) && !payload)
            return atctl_fail(a, AT_ERR_NOMEM, "payload");
        at_opts *o = NULL;
        if ((rc = at_opts_new(&o)) < 0) {
            free(payload);
            return atctl_fail(a, rc, "at_opts_new");
        }
        rc = node_opts(o, node, file, i, name);
        if (rc == 0) {
            json_t *comp = json_object_get(node, "completion");
            if (comp && !json_is_boolean(comp))
                rc = node_error(file, i, name, "%s must be true or false", "\"completion\"");
            else if (json_is_true(comp) &&
                     (json_object_get(node, "after") || json_object_get(node, "on_parent_failure")))
                rc = node_error(file, i, name, "%s",
                                "a completion node waits for every node before it: no \"after\" or "
                                "\"on_parent_failure\"");
            else if (json_is_true(comp))
                rc = at_workflow_add_completion(wf, name, json_string_value(jt), payload, plen, o);
            else
                rc = at_workflow_add(wf, name, json_string_value(jt), payload, plen, o);
            if (rc < 0)
                rc = node_fail(a, file, i, name, rc);
        }
        at_opts_free(o);
        free(payload);
        if (rc)
            return rc;
        if (i % 1000 == 999)
            atctl_progress("workflow: added %zu of %zu nodes", i + 1, n);
    }
    for (size_t i = 0; i < n; i++) {
        json_t *node = json_array_get(nodes, i);
        const char *name = json_string_value(json_object_get(node, "name"));
        json_t *after = json_object_get(node, "after"), *jobs = json_object_get(node, "after_jobs");
        json_t *pol = json_object_get(node, "on_parent_failure");
        size_t k;
        json_t *v;
        if (after && !json_is_array(after))
            return node_error(file, i, name, "%s must be an array of node names", "\"after\"");
        if (jobs && !json_is_array(jobs))
            return node_error(file, i, name, "%s must be an array of job ids", "\"after_jobs\"");
        json_array_foreach(after, k, v)
        {
            if (!json_is_string(v))
                return node_error(file, i, name, "%s must be an array of node names", "\"after\"");
            if ((rc = at_workflow_depend(wf, name, json_string_value(v))) == AT_ERR_NOTFOUND)
                return node_error(file, i, name, "\"after\": no node named \"%s\"", json_string_value(v));
            if (rc == AT_ERR_INVAL)
                return node_error(file, i, name, "%s", "\"after\": a node cannot wait for itself");
            if (rc < 0)
                return node_fail(a, file, i, name, rc);
        }
        json_array_foreach(jobs, k, v)
        {
            if (!json_is_string(v))
                return node_error(file, i, name, "%s must be an array of job ids", "\"after_jobs\"");
            if ((rc = at_workflow_depend_on_job(wf, name, json_string_value(v))) < 0)
                return node_fail(a, file, i, name, rc);
        }
        if (pol) {
            int32_t p;
            if (!json_is_string(pol) || node_policy(&p, json_string_value(pol)) < 0)
                return node_error(file, i, name, "%s must be \"cancel\", \"run\" or \"dead\"",
                                  "\"on_parent_failure\"");
            if ((rc = at_workflow_set_policy(wf, name, p)) < 0)
                return node_fail(a, file, i, name, rc);
        }
    }
    return 0;
}

static int workflow_submit(atctl *a, const atctl_args *args)
{
    int rc = atctl_want_pos(args, "workflow", 2, "submit FILE.json");
    if (rc)
        return rc;
    const char *file = args->pos[1];
    json_error_t err;
    json_t *doc = strcmp(file, "-") == 0 ? json_loadf(stdin, JSON_REJECT_DUPLICATES, &err)
                                         : json_load_file(file, JSON_REJECT_DUPLICATES, &err);
    if (!doc) {
        if (err.line < 1)
            return atctl_usage("%s: %s", file, err.text);
        return atctl_usage("%s:%d:%d: %s", file, err.line, err.column, err.text);
    }
    json_t *nodes = json_object_get(doc, "nodes");
    const char *key;
    json_t *val;
    if (!json_is_object(doc) || !json_is_array(nodes)) {
        json_decref(doc);
        return atctl_usage("%s: expected an object {\"nodes\": [...]} (see atctl(1), WORKFLOW DOCUMENTS)",
                           file);
    }
    json_object_foreach(doc, key, val)
    {
        if (strcmp(key, "nodes") != 0) {
            rc = atctl_usage("%s: unknown field \"%s\" (a workflow document has only \"nodes\")", file, key);
            json_decref(doc);
            return rc;
        }
    }
    if (json_array_size(nodes) == 0) {
        json_decref(doc);
        return atctl_usage("%s: \"nodes\" is empty", file);
    }
    at_workflow *wf;
    if ((rc = at_workflow_new(&wf)) < 0) {
        json_decref(doc);
        return atctl_fail(a, rc, "at_workflow_new");
    }
    rc = build_workflow(a, wf, nodes, file);
    if (rc == 0)
        rc = atctl_open(a);
    char wf_id[AT_ID_SIZE] = "";
    if (rc == 0) {
        atctl_progress("workflow: submitting %zu nodes...", at_workflow_count(wf));
        int src = at_workflow_submit(wf_id, a->store, wf);
        atctl_progress(NULL);
        if (src < 0)
            rc = atctl_fail(a, src, "at_workflow_submit");
    }
    atctl_progress(NULL);
    if (rc == 0) {
        if (a->json) {
            json_t *j = json_object(), *jobs = json_object();
            size_t i;
            json_array_foreach(nodes, i, val)
            {
                const char *name = json_string_value(json_object_get(val, "name"));
                const char *id = at_workflow_job_id(wf, name);
                json_object_set_new(jobs, name, id ? json_string(id) : json_null());
            }
            json_object_set_new(j, "workflow_id", json_string(wf_id));
            json_object_set_new(j, "jobs", jobs);
            atctl_json_print(j);
        } else {
            puts(wf_id);
        }
    }
    at_workflow_free(wf);
    json_decref(doc);
    return rc;
}

static int workflow_show(atctl *a, const atctl_args *args)
{
    int rc = atctl_want_pos(args, "workflow", 2, "show ID");
    if (rc || (rc = atctl_open(a)))
        return rc;
    const char *id = args->pos[1];
    int32_t done = 0, failed = 0;
    uint64_t counts[AT_STATE_COUNT__] = {0};
    if ((rc = at_workflow_status(&done, &failed, counts, a->store, id)) < 0)
        return atctl_fail(a, rc, "at_workflow_status");
    const char *status =
        done ? (failed ? "failed" : "succeeded") : (failed ? "running, with failures" : "running");
    static const char *const hdr[] = {"NODE", "ID", "STATE", "TYPE", "QUEUE", "ATTEMPTS"};
    static const int right[] = {0, 0, 0, 0, 0, 1};
    atctl_table *t = a->json ? NULL : atctl_table_new(6, hdr, right);
    json_t *arr = a->json ? json_array() : NULL;
    at_job **jobs = malloc(1000 * sizeof *jobs);
    char cursor[AT_CURSOR_SIZE] = "";
    if (!jobs)
        rc = AT_ERR_NOMEM;
    while (rc == 0) {
        size_t n = 0;
        if ((rc = at_workflow_jobs(jobs, &n, cursor, a->store, id, cursor, 1000)) < 0)
            break;
        for (size_t i = 0; i < n; i++) {
            const at_job *job = jobs[i];
            if (arr) {
                json_array_append_new(arr, atctl_job_json(job));
            } else {
                char att[32];
                snprintf(att, sizeof att, "%u/%u", (unsigned)at_job_attempts(job),
                         (unsigned)at_job_max_attempts(job));
                const char *row[] = {at_job_node(job), at_job_id(job),    at_state_name(at_job_state(job)),
                                     at_job_type(job), at_job_queue(job), att};
                atctl_table_add(t, row);
            }
            at_job_free(jobs[i]);
        }
        if (cursor[0] == '\0' || n == 0)
            break;
    }
    free(jobs);
    if (rc < 0) {
        json_decref(arr);
        atctl_table_print(t);
        return atctl_fail(a, rc, "at_workflow_jobs");
    }
    if (arr) {
        json_t *j = json_object(), *jc = json_object();
        for (int32_t s = AT_STATE_WAITING; s < AT_STATE_COUNT__; s++)
            json_object_set_new(jc, at_state_name(s), json_integer((json_int_t)counts[s]));
        json_object_set_new(j, "id", json_string(id));
        json_object_set_new(j, "status", json_string(status));
        json_object_set_new(j, "done", json_boolean(done));
        json_object_set_new(j, "failed", json_boolean(failed));
        json_object_set_new(j, "counts", jc);
        json_object_set_new(j, "jobs", arr);
        atctl_json_print(j);
        return 0;
    }
    printf("workflow %s\nstatus   %s\ncounts  ", id, status);
    uint64_t total = 0;
    for (int32_t s = AT_STATE_WAITING; s < AT_STATE_COUNT__; s++) {
        total += counts[s];
        if (counts[s])
            printf(" %s %llu", at_state_name(s), (unsigned long long)counts[s]);
    }
    printf(" (%llu jobs)\n\n", (unsigned long long)total);
    atctl_table_print(t);
    return 0;
}

int atctl_cmd_workflow(atctl *a, int argc, char **argv)
{
    atctl_args args;
    int rc = atctl_parse(&args, a, "workflow", argc, argv, NULL);
    if (rc)
        return rc;
    if (args.npos == 0)
        return atctl_usage("missing subcommand: atctl workflow submit|show");
    if (strcmp(args.pos[0], "submit") == 0)
        return workflow_submit(a, &args);
    if (strcmp(args.pos[0], "show") == 0)
        return workflow_show(a, &args);
    return atctl_usage("unknown subcommand \"%s\" (workflow submit|show)", args.pos[0]);
}
