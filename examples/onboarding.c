/*
 * onboarding.c - a user-onboarding workflow end to end, with one worker loop:
 *
 *   create_account --+--> send_welcome ------------------+
 *                    +--> provision_storage -------------+--> notify_sales
 *                    +--> import_contacts (spawns one     |    (completion:
 *                         import_chunk per 100 contacts  |     runs whatever
 *                         and a merge_contacts) ---------+     the outcome)
 *
 * import_contacts does not know how many chunks it needs until it runs, so
 * it adds them to the workflow itself (at_workflow_spawn); merge_contacts
 * waits for every chunk, and reads their results.  send_welcome fails once
 * (retried with backoff) to show that a retry does not disturb the graph.
 *
 *   ./examples/onboarding [STORE_URI]      (default: memory:)
 * Exit status 0 when the workflow finished with every job succeeded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <asynctask.h>

#define QUEUE "onboarding"
#define CONTACTS 350

static long g_merged;

static int check(int rc, const char *what, at_store *st)
{
    if (rc == 0)
        return 0;
    char msg[256] = "";
    if (st)
        at_store_errmsg(st, msg, sizeof msg, NULL);
    fprintf(stderr, "%s: %s (%s%s)\n", what, at_err_name(rc), msg, st ? "" : at_last_error());
    exit(1);
}

/* import_contacts: one chunk per 100 contacts and a merge after them. */
static void import_contacts(at_store *st, const at_job *job)
{
    at_workflow *wf;
    check(at_workflow_new(&wf), "at_workflow_new", NULL);
    at_opts *o;
    at_opts_new(&o);
    at_opts_set_str(o, AT_OPT_QUEUE, QUEUE);
    check(at_workflow_add(wf, "merge_contacts", "contacts.merge", NULL, 0, o), "add merge", NULL);
    for (int first = 0; first < CONTACTS; first += 100) {
        char node[32], range[32];
        snprintf(node, sizeof node, "import_chunk.%d", first / 100);
        int n = snprintf(range, sizeof range, "%d-%d", first, first + 99 < CONTACTS ? first + 99 : CONTACTS - 1);
        check(at_workflow_add(wf, node, "contacts.import_chunk", range, (size_t)n, o), "add chunk", NULL);
        check(at_workflow_depend(wf, "merge_contacts", node), "depend", NULL);
    }
    check(at_workflow_spawn(st, at_job_id(job), at_job_token(job), wf), "at_workflow_spawn", st);
    printf("  import_contacts spawned %zu jobs\n", at_workflow_count(wf));
    at_opts_free(o);
    at_workflow_free(wf);
}

/* merge_contacts: sum its parents' results. */
static void merge_contacts(at_store *st, const at_job *job, char *result, size_t cap)
{
    long total = 0;
    for (size_t i = 0; i < at_job_parent_count(job); i++) {
        at_job *p;
        check(at_get(&p, st, at_job_parent_id(job, i)), "at_get parent", st);
        size_t len;
        const char *r = at_job_result(p, &len);
        if (r && len < 32 && strcmp(at_job_type(p), "contacts.import_chunk") == 0) {
            char num[32]; /* result bytes are not a C string */
            memcpy(num, r, len);
            num[len] = '\0';
            total += strtol(num, NULL, 10);
        }
        at_job_free(p);
    }
    snprintf(result, cap, "%ld", total);
    g_merged = total;
    printf("  merge_contacts: %ld contacts imported\n", total);
}

int main(int argc, char **argv)
{
    const char *uri = argc > 1 ? argv[1] : "memory:";
    at_store *st;
    check(at_store_open(&st, uri), "at_store_open", NULL);

    at_workflow *wf;
    check(at_workflow_new(&wf), "at_workflow_new", NULL);
    at_opts *o;
    at_opts_new(&o);
    at_opts_set_str(o, AT_OPT_QUEUE, QUEUE);
    at_opts_set_int(o, AT_OPT_BACKOFF_BASE_MS, 50);
    at_opts_set_int(o, AT_OPT_BACKOFF_CAP_MS, 100);
    const char *user = "{\"user\":\"ada\"}";
    check(at_workflow_add(wf, "create_account", "account.create", user, strlen(user), o), "add", NULL);
    check(at_workflow_add(wf, "send_welcome", "email.welcome", user, strlen(user), o), "add", NULL);
    check(at_workflow_add(wf, "provision_storage", "storage.provision", user, strlen(user), o), "add", NULL);
    check(at_workflow_add(wf, "import_contacts", "contacts.import", user, strlen(user), o), "add", NULL);
    check(at_workflow_depend(wf, "send_welcome", "create_account"), "depend", NULL);
    check(at_workflow_depend(wf, "provision_storage", "create_account"), "depend", NULL);
    check(at_workflow_depend(wf, "import_contacts", "create_account"), "depend", NULL);
    check(at_workflow_add_completion(wf, "notify_sales", "sales.notify", user, strlen(user), o), "completion", NULL);
    char wf_id[AT_ID_SIZE];
    check(at_workflow_submit(wf_id, st, wf), "at_workflow_submit", st);
    printf("submitted workflow %s (%zu jobs)\n", wf_id, at_workflow_count(wf));
    at_workflow_free(wf);
    at_opts_free(o);

    int welcome_failures = 0;
    const char *queues[] = {QUEUE};
    for (;;) {
        int32_t done = 0, failed = 0;
        check(at_workflow_status(&done, &failed, NULL, st, wf_id), "at_workflow_status", st);
        if (done)
            break;
        at_job *job;
        size_t n;
        check(at_poll(&job, &n, st, queues, 1, 1, 5000), "at_poll", st);
        if (n == 0) {
            fprintf(stderr, "no job became ready within 5 s\n");
            return 1;
        }
        const char *node = at_job_node(job) ? at_job_node(job) : "?";
        char result[64] = "";
        printf("run %-20s attempt %u\n", node, at_job_attempts(job));
        if (strcmp(node, "send_welcome") == 0 && welcome_failures++ == 0) {
            int32_t state;
            check(at_fail(&state, st, at_job_id(job), at_job_token(job), "smtp: 421 try again later", 0), "at_fail",
                  st);
            printf("  send_welcome failed, now %s\n", at_state_name(state));
            at_job_free(job);
            continue;
        }
        if (strcmp(node, "import_contacts") == 0)
            import_contacts(st, job);
        else if (strcmp(node, "merge_contacts") == 0)
            merge_contacts(st, job, result, sizeof result);
        else if (strncmp(node, "import_chunk.", 13) == 0) {
            size_t len;
            const char *range = at_job_payload(job, &len); /* "lo-hi", NUL-terminated by the library */
            const char *dash = strchr(range, '-');
            long lo = strtol(range, NULL, 10), hi = dash ? strtol(dash + 1, NULL, 10) : lo;
            snprintf(result, sizeof result, "%ld", hi - lo + 1);
        } else if (strcmp(node, "notify_sales") == 0) {
            uint64_t c[AT_STATE_COUNT__];
            check(at_workflow_status(NULL, NULL, c, st, at_job_workflow_id(job)), "status", st);
            printf("  notify_sales: %llu jobs succeeded, %llu failed so far\n", (unsigned long long)c[AT_STATE_SUCCEEDED],
                   (unsigned long long)(c[AT_STATE_DEAD] + c[AT_STATE_CANCELLED]));
        }
        check(at_ack(st, at_job_id(job), at_job_token(job), result, strlen(result)), "at_ack", st);
        at_job_free(job);
    }
    uint64_t c[AT_STATE_COUNT__];
    int32_t failed = 0;
    check(at_workflow_status(NULL, &failed, c, st, wf_id), "at_workflow_status", st);
    printf("workflow %s done: %llu succeeded, %s\n", wf_id, (unsigned long long)c[AT_STATE_SUCCEEDED],
           failed ? "with failures" : "no failures");
    at_store_close(st);
    /* 5 submitted + 4 chunks + 1 merge, and every contact imported once. */
    return !failed && c[AT_STATE_SUCCEEDED] == 5 + (CONTACTS + 99) / 100 + 1 && g_merged == CONTACTS ? 0 : 1;
}
